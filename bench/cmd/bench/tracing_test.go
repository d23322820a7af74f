package main

import "testing"

func TestCheckSpans(t *testing.T) {
	const n, out = 100_000, 37_000
	full := int64(n*w1SpansPerInput + out*w1SpansPerOutput)
	cases := []struct {
		name  string
		ratio float64
		spans int64
		ok    bool
	}{
		{"off, none", 0, 0, true},
		{"off, some", 0, 3, false},
		{"on, all", 1, full, true},
		{"on, one lost", 1, full - 1, false},
		{"on, batcher dropped most", 1, 57344, false},
		{"on, one span per record", 1, n, false},
		{"1%, exact", 0.01, full / 100, true},
		{"1%, within 6 sigma", 0.01, full * 115 / 10000, true},
		{"1%, beyond 6 sigma", 0.01, full * 12 / 1000, false},
		{"1%, nothing", 0.01, 0, false},
		{"1%, all", 0.01, full, false},
		{"1%, 10%", 0.01, full / 10, false},
		{"1%, 0.5%", 0.01, full / 200, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkSpans(tc.ratio, n, out, tc.spans)
			if (err == nil) != tc.ok {
				t.Fatalf("checkSpans(%v, %d, %d, %d) = %v, want ok=%v", tc.ratio, n, out, tc.spans, err, tc.ok)
			}
		})
	}
}

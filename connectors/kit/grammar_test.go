package kit

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "500ms", want: 500 * time.Millisecond},
		{in: "2s", want: 2 * time.Second},
		{in: "1m30s", want: 90 * time.Second},
		{in: "1.5h", want: 90 * time.Minute},
		{in: "7d", want: 7 * Day},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "0.5d", want: 12 * time.Hour},
		{in: "250us", want: 250 * time.Microsecond},
		{in: "250µs", want: 250 * time.Microsecond},
		{in: "10ns", want: 10},
		{in: "0", want: 0},
		{in: "-2s", want: -2 * time.Second},
		{in: "+2s", want: 2 * time.Second},
		{in: "30", wantErr: `duration "30": a duration needs a unit: write 30s for seconds (or 30ms, 30m, ...)`},
		{in: "1.5", wantErr: `duration "1.5": a duration needs a unit: write 1.5s for seconds (or 1.5ms, 1.5m, ...)`},
		{in: "", wantErr: `duration "": want a duration like 500ms, 2s or 1m30s`},
		{in: "soon", wantErr: `duration "soon": want a duration like 500ms, 2s or 1m30s`},
		{in: "5parsecs", wantErr: `duration "5parsecs": unknown unit "parsecs" (units: ns, us, ms, s, m, h, d)`},
		{in: "1w", wantErr: `duration "1w": unknown unit "w" (units: ns, us, ms, s, m, h, d)`},
		{in: "1m30", wantErr: `duration "1m30": 30 has no unit (units: ns, us, ms, s, m, h, d)`},
		{in: "1..5s", wantErr: `duration "1..5s": want a duration like 500ms, 2s or 1m30s`},
		{in: "-", wantErr: `duration "-": want a duration like 500ms, 2s or 1m30s`},
		{in: "200000d", wantErr: `duration "200000d": duration too long (the limit is about 106751d)`},
		{in: "1.5e300d", wantErr: `duration "1.5e300d": unknown unit "e" (units: ns, us, ms, s, m, h, d)`},
	}
	for _, tc := range tests {
		got, err := ParseDuration(tc.in)
		switch {
		case tc.wantErr != "":
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("ParseDuration(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
		case err != nil || got != tc.want:
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatDurationRoundTrips(t *testing.T) {
	for _, d := range []time.Duration{0, time.Millisecond, 90 * time.Second, Day, 7 * Day, 36 * time.Hour} {
		s := FormatDuration(d)
		got, err := ParseDuration(s)
		if err != nil || got != d {
			t.Errorf("FormatDuration(%v) = %q, parses to %v, %v", d, s, got, err)
		}
	}
	if s := FormatDuration(2 * Day); s != "2d" {
		t.Errorf("FormatDuration(2d) = %q", s)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{in: "1048576", want: 1 << 20},
		{in: "0", want: 0},
		{in: "512B", want: 512},
		{in: "512KiB", want: 512 << 10},
		{in: "4MiB", want: 4 << 20},
		{in: "1GiB", want: 1 << 30},
		{in: "1TiB", want: 1 << 40},
		{in: "64kB", want: 64000},
		{in: "64KB", want: 64000},
		{in: "1MB", want: 1e6},
		{in: "2GB", want: 2e9},
		{in: "4mib", want: 4 << 20},
		{in: "2 GiB", want: 2 << 30},
		{in: " 7 ", want: 7},
		{in: "", wantErr: `size "": want a size like 4MiB, 512KiB, 1MB or a number of bytes`},
		{in: "MiB", wantErr: `size "MiB": want a size like 4MiB, 512KiB, 1MB or a number of bytes`},
		{in: "-1", wantErr: `size "-1": want a size like 4MiB, 512KiB, 1MB or a number of bytes`},
		{in: "1XB", wantErr: `size "1XB": unknown unit "XB" (units: B, KiB, MiB, GiB, TiB, kB, MB, GB, TB)`},
		{in: "1.5MiB", wantErr: `size "1.5MiB": a size is a whole number of its unit (write 1536KiB, not 1.5MiB)`},
		{in: "4m", wantErr: `size "4m": unit "m" is ambiguous: write MiB (powers of 1024) or MB (powers of 1000)`},
		{in: "8k", wantErr: `size "8k": unit "k" is ambiguous: write KiB (powers of 1024) or KB (powers of 1000)`},
		{in: "9000000TiB", wantErr: `size "9000000TiB": size too large`},
	}
	for _, tc := range tests {
		got, err := ParseSize(tc.in)
		switch {
		case tc.wantErr != "":
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("ParseSize(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
		case err != nil || got != tc.want:
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 1000: "1000", 1536 << 10: "1536KiB", 4 << 20: "4MiB", 1 << 40: "1TiB"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParseBool(t *testing.T) {
	for in, want := range map[string]bool{"true": true, "TRUE": true, "yes": true, "on": true, "1": true, "t": true,
		"false": false, "False": false, "no": false, "off": false, "0": false, "f": false} {
		if got, err := ParseBool(in); err != nil || got != want {
			t.Errorf("ParseBool(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "maybe", "2", "yess"} {
		if _, err := ParseBool(bad); err == nil || err.Error() != `"`+bad+`": want true or false` {
			t.Errorf("ParseBool(%q) error = %v", bad, err)
		}
	}
}

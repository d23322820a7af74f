package chart

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

// elements parses svg strictly and counts its elements by name.
func elements(t *testing.T, svg []byte) map[string]int {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(svg))
	d.Strict = true
	n := map[string]int{}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok {
			n[se.Name.Local]++
		}
	}
}

func TestSVG(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name       string
		r          Report
		wantTitles int // <title> tooltips: one per bar, two per latency row, two per scaling point
		wantLines  int // polylines (scaling curves)
		wantText   []string
	}{
		{
			name: "empty",
			r:    Report{Title: "t", Subtitle: "s"},
		},
		{
			name: "all panels, escaping",
			r: Report{
				Title:    "bench <quick> & \"noisy\"",
				Subtitle: "AMD EPYC · 2 cores",
				Bars: []Bar{
					{Label: "W1 · pipeline", Value: 0.93, Min: 0.8, Max: 1.1, Target: 0.8, Met: &yes, Caption: "0.93×"},
					{Label: "W2 · CPU/msg", Value: 1.3, Target: 1.1, Lower: true, Met: &no, Caption: "1.30×"},
					{Label: "no target", Value: 42, Caption: "clamped"},
				},
				Latencies: []Latency{{Label: "ring", P50: 0.08, P99: 12}, {Label: "W2", P50: 900, P99: 25000}, {Label: "p50 only", P50: 3}},
				Scaling:   []Point{{1, 300e3, 30}, {8, 200e3, 60}, {64, 220e3, 118}},
			},
			wantTitles: 3 + 5 + 6,
			wantLines:  2,
			wantText:   []string{"bench &lt;quick&gt; &amp;", "target ≥0.8", "target ≤1.1", "p50 900 µs, p99 25 ms", "80 ns", "pipelines in the process"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svg := tt.r.SVG()
			n := elements(t, svg)
			if n["svg"] != 1 {
				t.Errorf("%d svg elements, want 1", n["svg"])
			}
			if n["title"] != tt.wantTitles {
				t.Errorf("%d title elements, want %d", n["title"], tt.wantTitles)
			}
			if n["polyline"] != tt.wantLines {
				t.Errorf("%d polylines, want %d", n["polyline"], tt.wantLines)
			}
			for _, s := range tt.wantText {
				if !strings.Contains(string(svg), s) {
					t.Errorf("svg lacks %q", s)
				}
			}
		})
	}
}

func TestNiceStep(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{{0.3, 0.5}, {0.25, 0.25}, {0.11, 0.2}, {7, 10}, {120, 200}, {0, 1}} {
		if got := niceStep(c.in); got != c.want {
			t.Errorf("niceStep(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

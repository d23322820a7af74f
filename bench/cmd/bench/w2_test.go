package main

import "testing"

// w2Good is a run where every pipeline variant meets every W2 criterion.
func w2Good() map[w2Key]*w2Series {
	s := map[w2Key]*w2Series{}
	for _, rel := range w2Relays {
		s[w2Key{rel.name, "unpaced"}] = &w2Series{cpu: []float64{50}, rss: []float64{20}, cpuRatio: []float64{1.05}, tputRatio: []float64{1}}
		s[w2Key{rel.name, "paced"}] = &w2Series{p99: []float64{3000}, p99Ratio: []float64{1.1}}
	}
	for _, tv := range w2Tracing {
		s[w2Key{tv.name, "unpaced"}] = &w2Series{cpu: []float64{90}, rss: []float64{24}, cpuRatio: []float64{1}, spansMin: 0}
	}
	on := s[w2Key{"trace-on", "unpaced"}]
	on.spans, on.spansMin = 5000, 2500
	return s
}

// verdicts maps "workload|variant" rows that have a verdict to it.
func verdicts(rs []result) map[string]bool {
	m := map[string]bool{}
	for _, r := range rs {
		if r.Met != nil {
			m[r.Variant+"|"+r.Unit] = *r.Met
		}
	}
	return m
}

func TestW2VerdictNeedsEveryCriterion(t *testing.T) {
	unpaced := func(relay string) w2Key { return w2Key{relay, "unpaced"} }
	for _, tc := range []struct {
		name   string
		break_ func(map[w2Key]*w2Series)
		rows   []string // the rows whose verdict must turn false
	}{
		{"all met", nil, nil},
		{"CPU", func(s map[w2Key]*w2Series) { s[unpaced("pipeline")].cpuRatio = []float64{1.11} }, []string{"pipeline (sync publish)|CPU µs/msg"}},
		{"RSS", func(s map[w2Key]*w2Series) { s[unpaced("pipeline-async")].rss = []float64{24.5} }, []string{"pipeline, async_publish|CPU µs/msg"}},
		{"loss", func(s map[w2Key]*w2Series) { s[unpaced("pipeline")].lost = 1 }, []string{"pipeline (sync publish)|CPU µs/msg"}},
		{"unexpected", func(s map[w2Key]*w2Series) { s[unpaced("pipeline")].unexpected = 1 }, []string{"pipeline (sync publish)|CPU µs/msg"}},
		{"paced p99", func(s map[w2Key]*w2Series) { s[w2Key{"pipeline", "paced"}].p99Ratio = []float64{1.3} }, []string{"pipeline (sync publish)|CPU µs/msg", "pipeline (sync publish)|p99 µs"}},
		{"paced p99 async", func(s map[w2Key]*w2Series) { s[w2Key{"pipeline-async", "paced"}].p99Ratio = []float64{1.3} }, []string{"pipeline, async_publish|CPU µs/msg", "pipeline, async_publish|p99 µs"}},
		{"paced loss", func(s map[w2Key]*w2Series) { s[w2Key{"pipeline", "paced"}].lost = 1 }, []string{"pipeline (sync publish)|p99 µs"}},
		{"off exported spans", func(s map[w2Key]*w2Series) { s[unpaced("trace-off")].spans = 1 }, []string{"(b) otel, always_off|CPU µs/msg"}},
		{"on exported none in a round", func(s map[w2Key]*w2Series) { s[unpaced("trace-on")].spansMin = 0 }, []string{"(d) otel, always_on|CPU µs/msg"}},
		{"1% over budget", func(s map[w2Key]*w2Series) { s[unpaced("trace-1pct")].cpuRatio = []float64{1.2} }, []string{"(c) otel, parentbased_traceidratio 0.01|CPU µs/msg"}},
		{"on over budget", func(s map[w2Key]*w2Series) { s[unpaced("trace-on")].cpuRatio = []float64{3.1} }, []string{"(d) otel, always_on|CPU µs/msg"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := w2Good()
			if tc.break_ != nil {
				tc.break_(s)
			}
			v := verdicts(append(w2Report(s, 1000, 100, 2000), w2TracingReport(s, 500)...))
			// 2 relay variants x 2 phases + 3 tracing variants.
			if len(v) != 7 {
				t.Fatalf("%d rows with a verdict, want 7: %v", len(v), v)
			}
			for row, met := range v {
				want := true
				for _, r := range tc.rows {
					want = want && row != r
				}
				if met != want {
					t.Errorf("%s: met = %v, want %v", row, met, want)
				}
			}
		})
	}
}

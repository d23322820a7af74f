package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMedianAndMinmax(t *testing.T) {
	tests := []struct {
		in          []float64
		med, lo, hi float64
	}{
		{[]float64{3}, 3, 3, 3},
		{[]float64{5, 1, 3}, 3, 1, 5},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4},
		{nil, 0, 0, 0},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.med {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.med)
		}
		if lo, hi := minmax(tt.in); lo != tt.lo || hi != tt.hi {
			t.Errorf("minmax(%v) = %v, %v; want %v, %v", tt.in, lo, hi, tt.lo, tt.hi)
		}
	}
}

func TestSummarizeTargets(t *testing.T) {
	ge := func(x float64) bool { return x >= 0.8 }
	r := summarize("w", "cand", "base", "rec/s", []float64{10, 30, 20}, []float64{0.7, 0.9, 0.85}, "≥0.8×", ge)
	if r.Median != 20 || r.Min != 10 || r.Max != 30 || r.Ratio != 0.85 || r.Met == nil || !*r.Met {
		t.Errorf("with baseline: %+v", r)
	}
	// Without a baseline the target applies to the median.
	r = summarize("w", "ring", "", "values/s", []float64{4e6, 6e6, 7e6}, nil, "≥5M/s", func(x float64) bool { return x >= 5e6 })
	if r.Met == nil || !*r.Met || r.Ratio != 0 {
		t.Errorf("without baseline: %+v", r)
	}
	r = summarize("w", "x", "base", "rec/s", []float64{1}, []float64{0.5}, "", nil)
	if r.Met != nil {
		t.Errorf("no target but a verdict: %+v", r)
	}
}

// TestAlternate checks the A/B order, the per-round ratios and the
// same-work check, with stand-in variants.
func TestAlternate(t *testing.T) {
	var order []string
	mk := func(name string, wall time.Duration, records func(round int) int) abRun {
		return abRun{name, func(_ context.Context, round int) (childRun, error) {
			order = append(order, name)
			return childRun{Records: records(round), Wall: wall, CPU: wall, RSS: 8 << 20}, nil
		}}
	}
	same := func(int) int { return 7 }
	cfg := &config{rounds: 3}
	tput, cpu, rss, ratios, err := alternate(context.Background(), cfg, 1000, []abRun{
		mk("a", time.Second, same), mk("b", 500*time.Millisecond, same)})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, ""); got != "ababab" {
		t.Errorf("order %q, want ababab", got)
	}
	if median(tput["a"]) != 1000 || median(tput["b"]) != 2000 || median(ratios["b"]) != 2 || len(ratios["b"]) != 3 {
		t.Errorf("tput %v ratios %v", tput, ratios)
	}
	if median(cpu["a"]) != 1e6 || median(rss["b"]) != 8 {
		t.Errorf("cpu %v rss %v", cpu, rss)
	}
	// A variant that writes less than the baseline is an error, as is one
	// whose output changes between rounds.
	if _, _, _, _, err := alternate(context.Background(), cfg, 1000, []abRun{
		mk("a", time.Second, same), mk("b", time.Second, func(int) int { return 6 })}); err == nil {
		t.Error("different work: no error")
	}
	if _, _, _, _, err := alternate(context.Background(), cfg, 1000, []abRun{
		mk("a", time.Second, func(r int) int { return r })}); err == nil {
		t.Error("output changing between rounds: no error")
	}
}

func TestReportMarkdownAndChart(t *testing.T) {
	yes, no := true, false
	rep := report{Date: "2026-01-01T00:00:00Z", Rounds: 5, Machine: map[string]string{"cpu": "Test CPU", "cores": "2", "gomaxprocs": "2", "go": "go1.26"},
		Workloads: []result{
			{Workload: "W1", Variant: "loop", Unit: "rec/s", Median: 2.5e6, Min: 2e6, Max: 3e6},
			{Workload: "W1", Variant: "pipeline", Baseline: "loop", Unit: "rec/s", Median: 2e6, Min: 1e6, Max: 3e6,
				Ratio: 0.81, Ratios: []float64{0.8, 0.81, 0.9}, Target: "≥0.80×", Goal: 0.8, Met: &yes},
			{Workload: "W2", Variant: "pipeline", Baseline: "paho", Unit: "CPU µs/msg", Median: 30, Ratio: 1.3, Ratios: []float64{1.3},
				Goal: 1.1, Lower: true, Met: &no, Latency: map[string]float64{"p50": 800, "p99": 2500}},
			{Workload: scalingPipelines, Variant: "1 pipeline", Unit: "rec/s", Median: 1e6, Extra: map[string]float64{"pipelines": 1, "RSS MiB": 20}},
			{Workload: scalingPipelines, Variant: "4 pipelines", Baseline: "1 pipeline", Unit: "rec/s", Median: 9e5, Ratio: 0.9, Ratios: []float64{0.9}, Extra: map[string]float64{"pipelines": 4, "RSS MiB": 28}},
		},
		Skipped: []string{"w3: no kfake"}}
	md := rep.markdown("x.svg")
	for _, want := range []string{"Test CPU", "GOMAXPROCS 2", "**0.81×** loop [0.80 0.81 0.90]", "| yes |", "| **no** |", "p50 800 µs", "Skipped: w3: no kfake", "[x.svg](x.svg)"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	svg := string(rep.chart())
	for _, want := range []string{"<svg", "W1 · pipeline", "target ≥0.8", "target ≤1.1", "polyline", "Test CPU"} {
		if !strings.Contains(svg, want) {
			t.Errorf("svg lacks %q", want)
		}
	}
	// The scaling rows are drawn as a curve, not as ratio bars.
	if strings.Contains(svg, "4 pipelines: 0.90×") {
		t.Error("scaling row drawn as a bar")
	}
}

func TestFmtNum(t *testing.T) {
	for _, c := range []struct {
		in   float64
		want string
	}{{2.5e6, "2.50M"}, {45000, "45k"}, {250, "250"}, {3.14159, "3.14"}, {0, "0.00"}, {0.0123, "0.0123"}} {
		if got := fmtNum(c.in); got != c.want {
			t.Errorf("fmtNum(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestDocsMatchLatestReport fails when the benchmark summary in README.md
// or bench/README.md is not exactly what the newest committed report
// renders: figures are copied by the harness, never edited by hand.
func TestDocsMatchLatestReport(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	latest, err := latestReport(filepath.Join(root, "bench", "results"))
	if err != nil {
		t.Fatal(err)
	}
	rep, stamp, err := readReport(latest)
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range docTargets {
		doc, err := os.ReadFile(filepath.Join(root, target.path))
		if err != nil {
			t.Fatal(err)
		}
		want, err := replaceBlock(doc, rep.summary(stamp, target))
		if err != nil {
			t.Fatalf("%s: %v", target.path, err)
		}
		if !bytes.Equal(doc, want) {
			t.Errorf("%s: benchmark summary differs from %s; run: go run ./bench/cmd/bench -docs %s", target.path, latest, filepath.ToSlash(filepath.Join("bench", "results", stamp+".json")))
		}
	}
}

func TestSummaryRows(t *testing.T) {
	yes := true
	rep := report{Date: "d", Rounds: 5, Machine: map[string]string{"cpu": "c"}, Workloads: []result{
		{Workload: "W1", Variant: "loop", Unit: "rec/s", Median: 1},
		{Workload: "W1", Variant: "ref", Baseline: "loop", Unit: "rec/s", Median: 1, Ratio: 0.5, Ratios: []float64{0.5}},
		{Workload: "W1", Variant: "pipe", Baseline: "loop", Unit: "rec/s", Median: 1, Ratio: 1.2, Ratios: []float64{1.2}, Target: "≥1.0×", Met: &yes},
	}}
	readme := rep.summary("S", docTargets[0])
	full := rep.summary("S", docTargets[1])
	if strings.Contains(readme, "| ref |") || !strings.Contains(readme, rep.Workloads[2].mdRow()) {
		t.Errorf("README summary must hold exactly the verdict rows:\n%s", readme)
	}
	if !strings.Contains(full, "| ref |") || strings.Contains(full, "| loop |") || !strings.Contains(full, "[`S.md`](results/S.md)") {
		t.Errorf("bench/README summary must hold every compared row:\n%s", full)
	}
	if _, err := replaceBlock([]byte("no markers"), "x"); err == nil {
		t.Error("missing markers accepted")
	}
	doc := []byte("a\n" + docsBegin + "\nold\n" + docsEnd + "\nb\n")
	got, err := replaceBlock(doc, "new\n")
	if err != nil || string(got) != "a\n"+docsBegin+"\nnew\n"+docsEnd+"\nb\n" {
		t.Errorf("replaceBlock = %q, %v", got, err)
	}
}

// TestW1RowTargets checks W1's verdicts: every criterion of DESIGN.md §9
// is required, the target string states them, Extra and Note show the
// measured CPU ratio, the peak RSS and what was missed.
func TestW1RowTargets(t *testing.T) {
	const loop = w1LoopName
	tests := []struct {
		name       string
		role       w1Role
		procs      int
		ratio      float64 // throughput ratio of every round
		cpu        float64 // candidate cpu ns/rec (the loop's is 100)
		rss        []float64
		met        bool
		target     string // substring of the target
		note       string // substring of the note ("" : no miss)
		goal       float64
		noVerdict  bool
		noBaseline bool
	}{
		{name: "all met", role: w1Default, procs: 2, ratio: 1.05, cpu: 120, rss: []float64{20, 23},
			met: true, target: "≥1.0× rec/s, ≤1.3× cpu/rec, ≤24 MiB peak RSS", goal: 1},
		{name: "slower", role: w1Default, procs: 2, ratio: 0.95, cpu: 120, rss: []float64{20},
			note: "rec/s 0.95× < 1.0×", goal: 1},
		{name: "cpu", role: w1Default, procs: 2, ratio: 1.1, cpu: 140, rss: []float64{20},
			note: "cpu/rec 1.40× > 1.3×", goal: 1},
		{name: "one round above the RSS limit", role: w1Default, procs: 2, ratio: 1.1, cpu: 100, rss: []float64{20, 25, 21},
			note: "peak RSS 25.0 MiB > 24 MiB", goal: 1},
		{name: "parallel on 2 cores needs 1.5x", role: w1Parallel2, procs: 2, ratio: 1.3, cpu: 110, rss: []float64{20},
			target: "≥1.5× rec/s", note: "rec/s 1.30× < 1.5×", goal: 1.5},
		{name: "parallel on 2 cores met", role: w1Parallel2, procs: 2, ratio: 1.6, cpu: 110, rss: []float64{20},
			met: true, goal: 1.5},
		{name: "parallel on 1 core: the base target", role: w1Parallel2, procs: 1, ratio: 1.1, cpu: 110, rss: []float64{20},
			met: true, target: "≥1.0× rec/s", goal: 1},
		{name: "map loop: reference, no verdict", role: w1Reference, procs: 2, ratio: 0.5, cpu: 300, rss: []float64{30},
			noVerdict: true},
		{name: "strong loop: the baseline", role: w1Baseline, procs: 2, ratio: 1, cpu: 100, rss: []float64{10},
			noVerdict: true, noBaseline: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := "cand"
			if tt.role == w1Baseline {
				v = loop
			}
			tput := series{loop: {1000, 1000}, v: {1000 * tt.ratio, 1000 * tt.ratio}}
			cpu := series{loop: {100, 100}, v: {tt.cpu, tt.cpu}}
			rss := series{loop: {10, 10}, v: tt.rss}
			ratios := series{v: {tt.ratio, tt.ratio}}
			r := w1Row("W1", v, loop, tt.role, tt.procs, tput, cpu, rss, ratios)
			if tt.noBaseline != (r.Baseline == "") {
				t.Errorf("baseline %q", r.Baseline)
			}
			if tt.noVerdict {
				if r.Met != nil || r.Target != "" {
					t.Errorf("verdict on a reference row: met %v target %q", r.Met, r.Target)
				}
			} else {
				if r.Met == nil {
					t.Fatal("no verdict")
				}
				if *r.Met != tt.met {
					t.Fatalf("met %v, want %v (note %q)", *r.Met, tt.met, r.Note)
				}
				if !strings.Contains(r.Target, tt.target) {
					t.Errorf("target %q lacks %q", r.Target, tt.target)
				}
				if r.Goal != tt.goal {
					t.Errorf("goal %v, want %v", r.Goal, tt.goal)
				}
				if tt.note != "" && !strings.Contains(r.Note, tt.note) {
					t.Errorf("note %q lacks %q", r.Note, tt.note)
				}
				if tt.met && strings.Contains(r.Note, "missed") {
					t.Errorf("met but note %q", r.Note)
				}
			}
			_, peak := minmax(tt.rss)
			if r.Extra["peak RSS MiB"] != peak {
				t.Errorf("peak RSS %v, want %v", r.Extra["peak RSS MiB"], peak)
			}
			if tt.role != w1Baseline {
				if got, want := r.Extra["cpu/rec vs loop"], tt.cpu/100; got != want {
					t.Errorf("cpu/rec vs loop %v, want %v", got, want)
				}
			}
		})
	}
}

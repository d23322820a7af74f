package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aimdb-dev/aimdb-flow/bench/buffers"
	"github.com/aimdb-dev/aimdb-flow/bench/w1"
)

func workloads() []workload {
	return []workload{
		{name: "buffers", run: runBuffers},
		{name: "w1", run: runW1},
	}
}

// runChild executes one variant in this (child) process and prints JSON.
func runChild(variant, input string, n int) int {
	var cr childRun
	var err error
	ctx := context.Background()
	out := input + "." + variant + ".out"
	defer os.Remove(out)
	switch variant {
	case "w1-baseline":
		cr.Records, err = w1.Baseline(input, out)
	case "w1-pipeline-1", "w1-pipeline-2":
		workers := 1
		if variant == "w1-pipeline-2" {
			workers = 2
		}
		snap, e := w1.Pipeline(ctx, input, out, workers)
		err = e
		cr.Records = int(snap.Pipelines["w1"].Out)
	default:
		err = fmt.Errorf("unknown variant %q", variant)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(cr)
	return 0
}

func runW1(ctx context.Context, cfg config, dir string) ([]result, error) {
	n := 1_000_000
	if cfg.quick {
		n = 200_000
	}
	if cfg.records > 0 {
		n = cfg.records
	}
	input := filepath.Join(dir, "w1.jsonl")
	if err := w1.Generate(input, n); err != nil {
		return nil, err
	}
	variants := []string{"w1-baseline", "w1-pipeline-1", "w1-pipeline-2"}
	tput := map[string][]float64{}
	cpu := map[string][]float64{}
	rss := map[string][]float64{}
	ratios := map[string][]float64{}
	for round := 0; round < cfg.rounds; round++ {
		got := map[string]float64{}
		for _, v := range variants {
			cr, err := spawn(ctx, v, input, n)
			if err != nil {
				return nil, err
			}
			rps := float64(n) / cr.Wall.Seconds()
			got[v] = rps
			tput[v] = append(tput[v], rps)
			cpu[v] = append(cpu[v], float64(cr.CPU.Nanoseconds())/float64(n))
			rss[v] = append(rss[v], float64(cr.MaxRSS)/(1<<20))
		}
		for _, v := range variants[1:] {
			ratios[v] = append(ratios[v], got[v]/got["w1-baseline"])
		}
	}
	var out []result
	for _, v := range variants {
		base, target := "", ""
		var met func(float64) bool
		if v != "w1-baseline" {
			base, target = "w1-baseline", "≥0.80× and ≤32 MiB RSS"
			maxRSS := median(rss[v])
			met = func(r float64) bool { return r >= 0.8 && maxRSS <= 32 }
		}
		r := summarize("W1 JSON filter/map (Go API)", v, base, "rec/s", tput[v], ratios[v], target, met)
		r.Extra = map[string]float64{"cpu ns/rec": median(cpu[v]), "RSS MiB": median(rss[v])}
		out = append(out, r)
	}
	return out, nil
}

func runBuffers(ctx context.Context, cfg config, dir string) ([]result, error) {
	n := 2_000_000
	if cfg.quick {
		n = 500_000
	}
	var out []result
	for _, k := range buffers.Kinds {
		for _, readers := range []int{1, 4} {
			var tput, p50, p99 []float64
			for round := 0; round < cfg.rounds; round++ {
				res := buffers.HandOff(k, readers, n)
				tput = append(tput, res.PerSec)
				p50 = append(p50, float64(res.P50.Nanoseconds()))
				p99 = append(p99, float64(res.P99.Nanoseconds()))
			}
			ns, allocs := buffers.SameGoroutine(k, n)
			target := ""
			var met func(float64) bool
			if k.Kind == buffers.Kinds[0].Kind && readers == 1 {
				target = "≥5M/s, 0 allocs"
				met = func(m float64) bool { return m >= 5e6 && allocs == 0 }
			}
			r := summarize("buffer hand-off", fmt.Sprintf("%s, %d reader(s)", k, readers), "", "values/s", tput, nil, target, met)
			r.Extra = map[string]float64{"p50 ns (saturated)": median(p50), "p99 ns (saturated)": median(p99),
				"same-goroutine ns/op": ns, "allocs/op": allocs}
			out = append(out, r)
		}
	}
	return out, nil
}

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

const (
	scalingCores     = "W1 scaling: cores"
	scalingPipelines = "W1 scaling: pipelines in one process"
)

// runScaling measures W1 on 1 and 2 cores (GOMAXPROCS of the child),
// against the strong loop on the same GOMAXPROCS with W1's targets (the
// parallel 2 target only at GOMAXPROCS 2), and with 1 to 64 W1 pipelines
// in one process.
func runScaling(ctx context.Context, cfg *config) ([]result, error) {
	out, err := scalingCores2(ctx, cfg)
	if err != nil {
		return nil, err
	}
	more, err := scalingPipelinesCurve(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return append(out, more...), nil
}

func scalingCores2(ctx context.Context, cfg *config) ([]result, error) {
	n := cfg.pick(1_000_000, 50_000)
	input, err := w1Input(cfg, n)
	if err != nil {
		return nil, err
	}
	var res []result
	for _, procs := range []int{1, 2} {
		variants := append(w1Loops(cfg, procs, input),
			abRun{"w1-pipeline-1", func(ctx context.Context, _ int) (childRun, error) {
				return spawn(ctx, cfg, procs, "w1-pipeline", "-input", input, "-k", "1")
			}},
			abRun{"w1-pipeline-2", func(ctx context.Context, _ int) (childRun, error) {
				return spawn(ctx, cfg, procs, "w1-pipeline", "-input", input, "-k", "2")
			}},
		)
		tput, cpu, rss, ratios, err := alternate(ctx, cfg, n, variants)
		if err != nil {
			return nil, err
		}
		roles := map[string]w1Role{w1LoopName: w1Baseline, w1MapLoopName: w1Reference, "w1-pipeline-1": w1Default, "w1-pipeline-2": w1Parallel2}
		for _, v := range variants {
			r := w1Row(scalingCores, v.name, w1LoopName, roles[v.name], procs, tput, cpu, rss, ratios)
			r.Variant = fmt.Sprintf("%s @ GOMAXPROCS=%d", v.name, procs)
			if r.Baseline != "" {
				r.Baseline = fmt.Sprintf("%s @ GOMAXPROCS=%d", r.Baseline, procs)
			}
			r.Extra["GOMAXPROCS"] = float64(procs)
			res = append(res, r)
		}
	}
	return res, nil
}

// scalingPipelinesCurve runs the same total number of records through 1,
// 2, 4, ... 64 pipelines (each gets total/N records), alternating the
// pipeline counts within each round. Memory per pipeline is the slope of
// peak RSS against the number of pipelines (least squares).
func scalingPipelinesCurve(ctx context.Context, cfg *config) ([]result, error) {
	total := cfg.pick(1_000_000, 64_000)
	counts := []int{1, 2, 4, 8, 16, 32, 64}
	if cfg.quick {
		counts = []int{1, 4, 16, 64}
	}
	inputs := map[int]string{}
	for _, k := range counts {
		p, err := w1Input(cfg, max(total/k, 1))
		if err != nil {
			return nil, err
		}
		inputs[k] = p
	}
	var variants []abRun
	for _, k := range counts {
		variants = append(variants, abRun{strconv.Itoa(k), func(ctx context.Context, round int) (childRun, error) {
			dir := filepath.Join(cfg.dir, fmt.Sprintf("scale-%d-%d", k, round))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return childRun{}, err
			}
			defer os.RemoveAll(dir)
			cr, err := spawn(ctx, cfg, 0, "scale", "-input", inputs[k], "-k", strconv.Itoa(k), "-output", dir)
			if err == nil && cr.Records == 0 {
				err = fmt.Errorf("%d pipelines wrote nothing", k)
			}
			// The variants do different amounts of filtering work (k copies of
			// a prefix of the input): opt out of alternate's equal-output check.
			cr.Records = 0
			return cr, err
		}})
	}
	if total%counts[len(counts)-1] != 0 {
		return nil, fmt.Errorf("scaling: total %d must be a multiple of %d", total, counts[len(counts)-1])
	}
	tput, _, rss, ratios, err := alternate(ctx, cfg, total, variants)
	if err != nil {
		return nil, err
	}
	// Least-squares slope of RSS against pipelines.
	var sx, sy, sxx, sxy float64
	for _, k := range counts {
		x, y := float64(k), median(rss[strconv.Itoa(k)])
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	m := float64(len(counts))
	slope := (m*sxy - sx*sy) / (m*sxx - sx*sx)
	var res []result
	for _, k := range counts {
		v := strconv.Itoa(k)
		var r result
		if k == 1 {
			r = summarize(scalingPipelines, "1 pipeline", "", "rec/s", tput[v], nil, "", nil)
		} else {
			r = summarize(scalingPipelines, v+" pipelines", "1 pipeline", "rec/s", tput[v], ratios[v], "", nil)
		}
		r.Extra = map[string]float64{"pipelines": float64(k), "RSS MiB": median(rss[v]),
			"MiB/pipeline (fit)": slope}
		res = append(res, r)
	}
	return res, nil
}

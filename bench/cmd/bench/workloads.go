package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"

	"github.com/aimdb-dev/aimdb-flow/bench/scaling"
	"github.com/aimdb-dev/aimdb-flow/bench/w1"
	"github.com/aimdb-dev/aimdb-flow/bench/w3kafka"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

func workloads() []workload {
	return []workload{
		{name: "buffers", about: "buffer hand-off: each kind, 1 and 4 readers (values/s, p50/p99, ns/op, allocs/op)", run: runBuffers},
		{name: "w1", about: "W1 JSON filter/map via the Go API (serial and Parallel(2)) vs the strong hand-written loop; the map loop as a reference", run: runW1},
		{name: "w1-cli", about: "W1 as pipelines/w1.flow and w1-parallel.flow (parallel 2) through the aimdb-flow CLI binary vs the same loops", run: runW1CLI},
		{name: "tracing", about: "W1 via the CLI with tracing: none, OTLP with always_off, parentbased_traceidratio 0.01, always_on", run: runTracing},
		{name: "tracing-api", about: "W1 via the Go API with an in-process tracer (spans discarded): none, never, 1%, always", run: runTracingAPI},
		{name: "scaling", about: "W1 on GOMAXPROCS 1 and 2; 1 to 64 W1 pipelines in one process (throughput, memory per pipeline)", run: runScaling},
		{name: "w2", about: "W2 MQTT relay through mosquitto: aimdb-flow vs a hand-written paho.golang relay", run: runW2},
		{name: "w3", about: "W3 Kafka consume -> filter -> produce on kfake: aimdb-flow (.flow-shaped and raw Go API) vs hand-written kafka-go and franz-go loops", run: runW3},
	}
}

type childArgs struct {
	variant, input, brokers, group, output string
	n, k, expect                           int
}

// profileEnv names the file a child writes its CPU profile to.
const profileEnv = "AIMDB_BENCH_CPUPROFILE"

// runChild executes one variant in this (child) process and prints JSON.
func runChild(a childArgs) int {
	var cr childRun
	var err error
	if path := os.Getenv(profileEnv); path != "" {
		f, perr := os.Create(path)
		if perr != nil {
			fmt.Fprintln(os.Stderr, perr)
			return 1
		}
		defer f.Close()
		if perr := pprof.StartCPUProfile(f); perr != nil {
			fmt.Fprintln(os.Stderr, perr)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()
	out := a.output
	if out == "" {
		out = a.input + "." + a.variant + ".out"
		defer os.Remove(out)
	}
	switch a.variant {
	case "w1-baseline":
		cr.Records, err = w1.Baseline(a.input, out)
	case "w1-map-loop":
		cr.Records, err = w1.MapBaseline(a.input, out)
	case "w1-pipeline":
		var snap pipeline.Snapshot
		snap, err = w1.Pipeline(ctx, a.input, out, max(a.k, 1))
		cr.Records = int(snap.Pipelines["w1"].Out)
	case "trace-none", "trace-off", "trace-1pct", "trace-on":
		cr.Records, err = runTraceChild(ctx, a.variant, a.input, out)
	case "scale":
		dir := a.output
		cr.Records, err = scaling.Run(ctx, a.input, dir, a.k)
	case "w3-kafkago", "w3-franz", "w3-pipeline", "w3-flow":
		job := w3kafka.Job{Brokers: strings.Split(a.brokers, ","), Group: a.group, Output: a.output, Records: a.n, Expect: a.expect}
		run := map[string]func(context.Context, w3kafka.Job) (w3kafka.Result, error){
			"w3-kafkago": w3kafka.KafkaGo, "w3-franz": w3kafka.Franz, "w3-pipeline": w3kafka.Pipeline, "w3-flow": w3kafka.Flow}[a.variant]
		var res w3kafka.Result
		res, err = run(ctx, job)
		cr.Records = int(res.Out)
		cr.Extra = map[string]float64{"work_s": res.Work.Seconds(), "wall_s": res.Wall.Seconds(),
			"commit_lag_ms": float64(res.CommitLag.Milliseconds()), "uncommitted_at_end": float64(res.LagRecords)}
	default:
		err = fmt.Errorf("unknown variant %q", a.variant)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pprof.StopCPUProfile()
	cr.RSS = vmHWM(0)
	json.NewEncoder(os.Stdout).Encode(cr)
	return 0
}

// w1Input generates (once per harness run and size) W1's input file.
func w1Input(cfg *config, n int) (string, error) {
	path := filepath.Join(cfg.dir, fmt.Sprintf("w1-%d.jsonl", n))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	return path, w1.Generate(path, n)
}

// abRun is one variant of an A/B workload: how to run it once.
type abRun struct {
	name string
	run  func(ctx context.Context, round int) (childRun, error)
}

// alternate runs the variants in turn for cfg.rounds rounds and returns
// per-variant throughput (n / wall), CPU ns per record, RSS MiB and the
// per-round throughput ratio to the first variant.
func alternate(ctx context.Context, cfg *config, n int, variants []abRun) (tput, cpu, rss, ratios series, err error) {
	tput, cpu, rss, ratios = series{}, series{}, series{}, series{}
	var records map[string]int
	for round := 0; round < cfg.rounds; round++ {
		got := map[string]float64{}
		for _, v := range variants {
			cr, err := v.run(ctx, round)
			if err != nil {
				return nil, nil, nil, nil, err
			}
			// Every variant must do the same work.
			if records == nil {
				records = map[string]int{}
			}
			if prev, ok := records[v.name]; ok && prev != cr.Records {
				return nil, nil, nil, nil, fmt.Errorf("%s wrote %d records, %d in an earlier round", v.name, cr.Records, prev)
			}
			records[v.name] = cr.Records
			if first := records[variants[0].name]; cr.Records != first {
				return nil, nil, nil, nil, fmt.Errorf("%s wrote %d records, %s wrote %d: not the same work", v.name, cr.Records, variants[0].name, first)
			}
			rps := float64(n) / cr.Wall.Seconds()
			got[v.name] = rps
			tput.add(v.name, rps)
			cpu.add(v.name, float64(cr.CPU.Nanoseconds())/float64(n))
			rss.add(v.name, float64(cr.RSS)/(1<<20))
		}
		for _, v := range variants[1:] {
			ratios.add(v.name, got[v.name]/got[variants[0].name])
		}
	}
	return tput, cpu, rss, ratios, nil
}

// W1's variants as the harness names them (abRun names and report rows).
const (
	w1LoopName    = "w1-loop"
	w1MapLoopName = "w1-map-loop"
)

// w1Loops are the two hand-written loops every W1 comparison alternates
// with its candidates: the strong loop first (the baseline of every
// ratio), then the map loop (a reference row). procs is the children's
// GOMAXPROCS (0: the harness default).
func w1Loops(cfg *config, procs int, input string) []abRun {
	return []abRun{
		{w1LoopName, func(ctx context.Context, _ int) (childRun, error) {
			return spawn(ctx, cfg, procs, "w1-baseline", "-input", input)
		}},
		{w1MapLoopName, func(ctx context.Context, _ int) (childRun, error) {
			return spawn(ctx, cfg, procs, "w1-map-loop", "-input", input)
		}},
	}
}

// w1Role says which target, if any, a W1 row is held to.
type w1Role int

const (
	w1Baseline  w1Role = iota // the strong loop: every ratio's baseline
	w1Reference               // a weaker loop: ratio shown, no target
	w1Default                 // the pipeline with default settings
	w1Parallel2               // the pipeline with parallel 2
)

// W1's targets (DESIGN.md §9). A row meets its target only when every
// criterion holds.
const (
	w1MinRatio         = 1.0  // throughput vs the strong loop
	w1MinParallelRatio = 1.5  // with parallel 2, when GOMAXPROCS >= 2
	w1MaxCPURatio      = 1.3  // CPU per record vs the strong loop
	w1MaxRSSMiB        = 24.0 // peak RSS of every round
)

// childProcs is the GOMAXPROCS a child spawned with procs runs with.
func childProcs(cfg *config, procs int) int {
	if procs == 0 {
		procs = cfg.procs
	}
	if procs == 0 {
		procs = runtime.GOMAXPROCS(0)
	}
	return procs
}

func runW1(ctx context.Context, cfg *config) ([]result, error) {
	n := cfg.pick(1_000_000, 100_000)
	input, err := w1Input(cfg, n)
	if err != nil {
		return nil, err
	}
	variants := append(w1Loops(cfg, 0, input),
		abRun{"w1-pipeline-1", func(ctx context.Context, _ int) (childRun, error) {
			return spawn(ctx, cfg, 0, "w1-pipeline", "-input", input, "-k", "1")
		}},
		abRun{"w1-pipeline-2", func(ctx context.Context, _ int) (childRun, error) {
			return spawn(ctx, cfg, 0, "w1-pipeline", "-input", input, "-k", "2")
		}},
	)
	tput, cpu, rss, ratios, err := alternate(ctx, cfg, n, variants)
	if err != nil {
		return nil, err
	}
	roles := map[string]w1Role{w1LoopName: w1Baseline, w1MapLoopName: w1Reference, "w1-pipeline-1": w1Default, "w1-pipeline-2": w1Parallel2}
	procs := childProcs(cfg, 0)
	var out []result
	for _, v := range variants {
		r := w1Row("W1 JSON filter/map (Go API)", v.name, w1LoopName, roles[v.name], procs, tput, cpu, rss, ratios)
		switch v.name {
		case "w1-pipeline-1":
			r.Note = joinNote("Go API, one pipeline goroutine", r.Note)
		case "w1-pipeline-2":
			r.Note = joinNote("Parallel(2): decode/filter/map/encode on 2 goroutines", r.Note)
		}
		out = append(out, r)
	}
	return out, nil
}

// w1Row summarizes a W1-like variant against the strong loop base. The
// candidates' target is every criterion of DESIGN.md §9: throughput
// ≥ 1.0× the loop (≥ 1.5× for parallel 2 when procs ≥ 2), CPU per record
// ≤ 1.3× the loop's and peak RSS ≤ 24 MiB in every round; the target
// string states them, Extra holds the measured CPU ratio and peak RSS,
// and Note names the criteria missed.
func w1Row(workload, v, base string, role w1Role, procs int, tput, cpu, rss, ratios series) result {
	_, peakRSS := minmax(rss[v])
	extra := map[string]float64{"cpu ns/rec": median(cpu[v]), "peak RSS MiB": peakRSS}
	if role == w1Baseline {
		r := summarize(workload, v, "", "rec/s", tput[v], nil, "", nil)
		r.Extra = extra
		r.Note = "strong loop: fastjson, expr VM and environment reused, append encoding"
		return r
	}
	cpuRatio := median(cpu[v]) / median(cpu[base])
	extra["cpu/rec vs loop"] = cpuRatio
	if role == w1Reference {
		r := summarize(workload, v, base, "rec/s", tput[v], ratios[v], "", nil)
		r.Extra = extra
		r.Note = "reference: the project's JSON codec into map[string]any"
		return r
	}
	minRatio := w1MinRatio
	if role == w1Parallel2 && procs >= 2 {
		minRatio = w1MinParallelRatio
	}
	target := fmt.Sprintf("≥%.1f× rec/s, ≤%.1f× cpu/rec, ≤%.0f MiB peak RSS", minRatio, w1MaxCPURatio, w1MaxRSSMiB)
	if role == w1Parallel2 && procs < 2 {
		target += fmt.Sprintf(" (GOMAXPROCS %d: the %.1f× parallel target needs ≥ 2)", procs, w1MinParallelRatio)
	}
	var misses []string
	r := summarize(workload, v, base, "rec/s", tput[v], ratios[v], target, func(ratio float64) bool {
		if ratio < minRatio {
			misses = append(misses, fmt.Sprintf("rec/s %.2f× < %.1f×", ratio, minRatio))
		}
		if !(cpuRatio <= w1MaxCPURatio) {
			misses = append(misses, fmt.Sprintf("cpu/rec %.2f× > %.1f×", cpuRatio, w1MaxCPURatio))
		}
		if !(peakRSS <= w1MaxRSSMiB) {
			misses = append(misses, fmt.Sprintf("peak RSS %.1f MiB > %.0f MiB", peakRSS, w1MaxRSSMiB))
		}
		return len(misses) == 0
	})
	r.Goal = minRatio
	r.Extra = extra
	if len(misses) > 0 {
		r.Note = "missed: " + strings.Join(misses, ", ")
	}
	return r
}

// joinNote joins non-empty notes with "; ".
func joinNote(notes ...string) string {
	var out []string
	for _, n := range notes {
		if n != "" {
			out = append(out, n)
		}
	}
	return strings.Join(out, "; ")
}

// runW1CLI runs pipelines/w1.flow (default settings) and
// pipelines/w1-parallel.flow with parallel 2 through the CLI binary,
// alternating with both loops.
// cliFlows finds the named files in pipelines/ (a workload whose file is
// missing is skipped) and builds the aimdb-flow CLI once for the run.
func cliFlows(ctx context.Context, cfg *config, names ...string) (flows map[string]string, cli string, err error) {
	flows = map[string]string{}
	for _, f := range names {
		path := filepath.Join(cfg.root, "pipelines", f)
		if _, err := os.Stat(path); err != nil {
			return nil, "", &skipError{reason: "pipelines/" + f + " not found"}
		}
		flows[f] = path
	}
	cli, err = buildTool(ctx, cfg, "./cmd/aimdb-flow", "aimdb-flow")
	if err != nil {
		return nil, "", err
	}
	return flows, cli, nil
}

func runW1CLI(ctx context.Context, cfg *config) ([]result, error) {
	n := cfg.pick(1_000_000, 100_000)
	input, err := w1Input(cfg, n)
	if err != nil {
		return nil, err
	}
	flows, cli, err := cliFlows(ctx, cfg, "w1.flow", "w1-parallel.flow")
	if err != nil {
		return nil, err
	}
	out := filepath.Join(cfg.dir, "w1-cli.out.jsonl")
	defer os.Remove(out)
	var cliRunWith func(cli, flow string, env ...string) func(ctx context.Context, _ int) (childRun, error)
	cliRun := func(flow string, env ...string) func(ctx context.Context, _ int) (childRun, error) {
		return cliRunWith(cli, flow, env...)
	}
	cliRunWith = func(cli, flow string, env ...string) func(ctx context.Context, _ int) (childRun, error) {
		return func(ctx context.Context, _ int) (childRun, error) {
			// The file sink appends: start from an empty output.
			if err := os.Remove(out); err != nil && !os.IsNotExist(err) {
				return childRun{}, err
			}
			args := []string{"run", "--status", "off"}
			if cfg.profile != "" {
				cfg.spawned++
				args = append(args, "--cpuprofile", filepath.Join(cfg.profile, fmt.Sprintf("%03d-cli-%s.pprof", cfg.spawned, filepath.Base(flow))))
			}
			cmd := exec.CommandContext(ctx, cli, append(args, flow)...)
			cmd.Env = append(cfg.env(0), append([]string{"W1_IN=" + input, "W1_OUT=" + out}, env...)...)
			p, err := runProc(ctx, cmd)
			if err != nil {
				return childRun{}, err
			}
			lines, err := countLines(out)
			if err != nil {
				return childRun{}, err
			}
			return childRun{Records: lines, Wall: p.Wall, CPU: p.CPU, RSS: p.PeakRSS}, nil
		}
	}
	const (
		serial   = "aimdb-flow run w1.flow"
		parallel = "aimdb-flow run w1-parallel.flow (parallel 2)"
	)
	variants := append(w1Loops(cfg, 0, input),
		abRun{serial, cliRun(flows["w1.flow"])},
		abRun{parallel, cliRun(flows["w1-parallel.flow"], "W1_WORKERS=2")},
	)
	if b := cfg.before; b != nil {
		variants = append(variants, abRun{b.name(serial), cliRunWith(b.cli, flows["w1.flow"])})
	}
	tput, cpu, rss, ratios, err := alternate(ctx, cfg, n, variants)
	if err != nil {
		return nil, err
	}
	roles := map[string]w1Role{w1LoopName: w1Baseline, w1MapLoopName: w1Reference, serial: w1Default, parallel: w1Parallel2}
	procs := childProcs(cfg, 0)
	var res []result
	if b := cfg.before; b != nil {
		variants = variants[:len(variants)-1]
		res = append(res, regressionRow("W1 via .flow + CLI", serial, b, tput))
	}
	for _, v := range variants {
		r := w1Row("W1 via .flow + CLI", v.name, w1LoopName, roles[v.name], procs, tput, cpu, rss, ratios)
		if roles[v.name] == w1Default || roles[v.name] == w1Parallel2 {
			r.Note = joinNote("process start, DSL load and expr compile included", r.Note)
		}
		res = append(res, r)
	}
	return res, nil
}

func countLines(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 256<<10)
	buf := make([]byte, 256<<10)
	n := 0
	for {
		k, err := r.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if err != nil {
			return n, nil
		}
	}
}

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
	"runtime/pprof"
	"strings"

	"github.com/aimdb-dev/aimdb-flow/bench/buffers"
	"github.com/aimdb-dev/aimdb-flow/bench/scaling"
	"github.com/aimdb-dev/aimdb-flow/bench/w1"
	"github.com/aimdb-dev/aimdb-flow/bench/w3kafka"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

func workloads() []workload {
	return []workload{
		{name: "buffers", about: "buffer hand-off: each kind, 1 and 4 readers (values/s, p50/p99, ns/op, allocs/op)", run: runBuffers},
		{name: "w1", about: "W1 JSON filter/map via the Go API vs a hand-written loop", run: runW1},
		{name: "w1-cli", about: "W1 as pipelines/w1.flow through the aimdb-flow CLI binary vs the same loop", run: runW1CLI},
		{name: "tracing", about: "W1 via the CLI with tracing: none, OTLP with always_off, parentbased_traceidratio 0.01, always_on", run: runTracing},
		{name: "tracing-api", about: "W1 via the Go API with an in-process tracer (spans discarded): none, never, 1%, always", run: runTracingAPI},
		{name: "scaling", about: "W1 on GOMAXPROCS 1 and 2; 1 to 64 W1 pipelines in one process (throughput, memory per pipeline)", run: runScaling},
		{name: "w2", about: "W2 MQTT relay through mosquitto: aimdb-flow vs a hand-written paho.golang relay", run: runW2},
		{name: "w3", about: "W3 Kafka consume -> filter -> produce on kfake: aimdb-flow vs a hand-written kafka-go loop", run: runW3},
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
	case "w1-pipeline":
		var snap pipeline.Snapshot
		snap, err = w1.Pipeline(ctx, a.input, out, max(a.k, 1))
		cr.Records = int(snap.Pipelines["w1"].Out)
	case "trace-none", "trace-off", "trace-1pct", "trace-on":
		cr.Records, err = runTraceChild(ctx, a.variant, a.input, out)
	case "scale":
		dir := a.output
		cr.Records, err = scaling.Run(ctx, a.input, dir, a.k)
	case "w3-baseline", "w3-pipeline":
		job := w3kafka.Job{Brokers: strings.Split(a.brokers, ","), Group: a.group, Output: a.output, Records: a.n, Expect: a.expect}
		var res w3kafka.Result
		if a.variant == "w3-baseline" {
			res, err = w3kafka.Baseline(ctx, job)
		} else {
			res, err = w3kafka.Pipeline(ctx, job)
		}
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

func runW1(ctx context.Context, cfg *config) ([]result, error) {
	n := cfg.pick(1_000_000, 100_000)
	input, err := w1Input(cfg, n)
	if err != nil {
		return nil, err
	}
	variants := []abRun{
		{"w1-baseline", func(ctx context.Context, _ int) (childRun, error) {
			return spawn(ctx, cfg, 0, "w1-baseline", "-input", input)
		}},
		{"w1-pipeline-1", func(ctx context.Context, _ int) (childRun, error) {
			return spawn(ctx, cfg, 0, "w1-pipeline", "-input", input, "-k", "1")
		}},
		{"w1-pipeline-2", func(ctx context.Context, _ int) (childRun, error) {
			return spawn(ctx, cfg, 0, "w1-pipeline", "-input", input, "-k", "2")
		}},
	}
	tput, cpu, rss, ratios, err := alternate(ctx, cfg, n, variants)
	if err != nil {
		return nil, err
	}
	var out []result
	for _, v := range variants {
		r := w1Row("W1 JSON filter/map (Go API)", v.name, variants[0].name, tput, cpu, rss, ratios)
		if v.name == "w1-pipeline-2" {
			r.Note = "Parallel(2): decode/filter/map/encode on 2 goroutines"
		}
		out = append(out, r)
	}
	return out, nil
}

// w1Row summarizes a W1-like variant: target ≥ 0.8× the baseline and
// ≤ 32 MiB RSS.
func w1Row(workload, v, base string, tput, cpu, rss, ratios series) result {
	if v == base {
		r := summarize(workload, v, "", "rec/s", tput[v], nil, "", nil)
		r.Extra = map[string]float64{"cpu ns/rec": median(cpu[v]), "RSS MiB": median(rss[v])}
		return r
	}
	maxRSS := median(rss[v])
	r := summarize(workload, v, base, "rec/s", tput[v], ratios[v], "≥0.80× and ≤32 MiB RSS",
		func(x float64) bool { return x >= 0.8 && maxRSS <= 32 })
	r.Goal = 0.8
	r.Extra = map[string]float64{"cpu ns/rec": median(cpu[v]), "RSS MiB": maxRSS,
		"cpu/rec vs baseline": median(cpu[v]) / median(cpu[base])}
	return r
}

func runW1CLI(ctx context.Context, cfg *config) ([]result, error) {
	n := cfg.pick(1_000_000, 100_000)
	input, err := w1Input(cfg, n)
	if err != nil {
		return nil, err
	}
	flow := filepath.Join(cfg.root, "pipelines", "w1.flow")
	if _, err := os.Stat(flow); err != nil {
		return nil, &skipError{reason: "pipelines/w1.flow not found"}
	}
	cli, err := buildTool(ctx, cfg, "./cmd/aimdb-flow", "aimdb-flow")
	if err != nil {
		return nil, err
	}
	out := filepath.Join(cfg.dir, "w1-cli.out.jsonl")
	defer os.Remove(out)
	variants := []abRun{
		{"w1-baseline", func(ctx context.Context, _ int) (childRun, error) {
			return spawn(ctx, cfg, 0, "w1-baseline", "-input", input)
		}},
		{"aimdb-flow run w1.flow", func(ctx context.Context, _ int) (childRun, error) {
			// The file sink appends: start from an empty output.
			if err := os.Remove(out); err != nil && !os.IsNotExist(err) {
				return childRun{}, err
			}
			cmd := exec.CommandContext(ctx, cli, "run", "--status", "off", flow)
			cmd.Env = append(cfg.env(0), "W1_IN="+input, "W1_OUT="+out)
			p, err := runProc(ctx, cmd)
			if err != nil {
				return childRun{}, err
			}
			lines, err := countLines(out)
			if err != nil {
				return childRun{}, err
			}
			return childRun{Records: lines, Wall: p.Wall, CPU: p.CPU, RSS: p.PeakRSS}, nil
		}},
	}
	tput, cpu, rss, ratios, err := alternate(ctx, cfg, n, variants)
	if err != nil {
		return nil, err
	}
	var res []result
	for _, v := range variants {
		r := w1Row("W1 via .flow + CLI", v.name, variants[0].name, tput, cpu, rss, ratios)
		if v.name != variants[0].name {
			r.Note = "process start, DSL load and expr compile included"
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

func runBuffers(ctx context.Context, cfg *config) ([]result, error) {
	n := cfg.pick(2_000_000, 200_000)
	var out []result
	for _, k := range buffers.Kinds {
		for _, readers := range []int{1, 4} {
			var tput, p50, p99 []float64
			for round := 0; round < cfg.rounds; round++ {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				res := buffers.HandOff(k, readers, n)
				tput = append(tput, res.PerSec)
				p50 = append(p50, float64(res.P50.Nanoseconds()))
				p99 = append(p99, float64(res.P99.Nanoseconds()))
			}
			ns, allocs := buffers.SameGoroutine(k, n)
			target := ""
			var met func(float64) bool
			var goal float64
			if k.Kind == buffers.Kinds[0].Kind && readers == 1 {
				target = "≥5M/s, 0 allocs"
				goal = 5e6
				met = func(m float64) bool { return m >= 5e6 && allocs == 0 }
			}
			r := summarize("buffer hand-off", fmt.Sprintf("%s, %d reader(s)", k, readers), "", "values/s", tput, nil, target, met)
			r.Goal = goal
			r.Extra = map[string]float64{"same-goroutine ns/op": ns, "allocs/op": allocs}
			if median(p99) > 0 {
				r.Latency = map[string]float64{"p50": median(p50) / 1e3, "p99": median(p99) / 1e3}
				r.Note = "latency with the writer saturating the buffer"
			} else {
				r.Note = "no latency sample reached reader 0 (values collapsed)"
			}
			out = append(out, r)
		}
	}
	return out, nil
}

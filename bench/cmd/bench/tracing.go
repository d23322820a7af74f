package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/aimdb-dev/aimdb-flow/bench/otlpsink"
	"github.com/aimdb-dev/aimdb-flow/bench/w1"
	"github.com/aimdb-dev/aimdb-flow/observability/otelflow"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// W1's spans under the CLI's tracing (otelflow.Setup: JourneySpans
// mode): every input record gets a receive span (decode as an event) and
// one "process w1" span (buffer, each stage, encode and send as events),
// whether or not it passes the filter.
const (
	w1SpansPerInput  = 2
	w1SpansPerOutput = 0
)

// traceVariant is one way of running pipelines/w1.flow through the CLI.
type traceVariant struct {
	name    string
	sampler string  // OTEL_TRACES_SAMPLER; "" = no OTEL_* variables at all
	ratio   float64 // expected sampled fraction of records
}

var traceVariants = []traceVariant{
	{name: "no tracer"},
	{name: "otel always_off", sampler: "always_off", ratio: 0},
	{name: "otel parentbased_traceidratio 0.01", sampler: "parentbased_traceidratio", ratio: 0.01},
	{name: "otel always_on", sampler: "always_on", ratio: 1},
}

// checkSpans verifies what the OTLP sink received from one run of n input
// records of which out passed the filter. ratio 0: none; 1: every span of
// every record; in between: the sampled spans must lie within a wide
// (6 sigma) binomial bound around ratio, counted in records.
func checkSpans(ratio float64, n, out int, spans int64) error {
	full := int64(n*w1SpansPerInput + out*w1SpansPerOutput)
	switch {
	case ratio == 0:
		if spans != 0 {
			return fmt.Errorf("sampler off exported %d spans, want 0", spans)
		}
	case ratio >= 1:
		if spans != full {
			return fmt.Errorf("always_on exported %d spans, want %d (%d records × %d + %d passing × %d): spans lost or not traced",
				spans, full, n, w1SpansPerInput, out, w1SpansPerOutput)
		}
	default:
		// Records are sampled independently; compare sampled records
		// estimated from the mean span count per record.
		perRec := float64(full) / float64(n)
		got := float64(spans) / perRec
		mean := ratio * float64(n)
		sd := math.Sqrt(float64(n) * ratio * (1 - ratio))
		if spans == 0 || math.Abs(got-mean) > 6*sd+1 {
			return fmt.Errorf("ratio %.3g exported %d spans (≈%.0f records), want ≈%.0f ± %.0f records", ratio, spans, got, mean, 6*sd+1)
		}
	}
	return nil
}

// runTracing runs pipelines/w1.flow through the CLI four ways: no
// tracing, and OTel exporting over OTLP/HTTP to a discarding receiver in
// this process with samplers always_off, parentbased_traceidratio 0.01
// and always_on. The receiver counts the spans after each child exited
// (the CLI shuts the provider down, flushing, before it exits).
//
// always_on costs tens of times the no-tracer run per record, so the
// full run uses 150k records (a 5-round run stays near two minutes).
func runTracing(ctx context.Context, cfg *config) ([]result, error) {
	n := cfg.pick(150_000, 30_000)
	input, err := w1Input(cfg, n)
	if err != nil {
		return nil, err
	}
	flows, cli, err := cliFlows(ctx, cfg, "w1.flow")
	if err != nil {
		return nil, err
	}
	flow := flows["w1.flow"]
	sink, err := otlpsink.Start(ctx)
	if err != nil {
		return nil, err
	}
	defer sink.Close()
	out := filepath.Join(cfg.dir, "tracing.out.jsonl")
	defer os.Remove(out)
	spans := series{}
	var variants []abRun
	for _, tv := range traceVariants {
		variants = append(variants, abRun{tv.name, func(ctx context.Context, _ int) (childRun, error) {
			if err := os.Remove(out); err != nil && !os.IsNotExist(err) {
				return childRun{}, err
			}
			cmd := exec.CommandContext(ctx, cli, "run", "--status", "off", flow)
			cmd.Env = append(cfg.env(0), "W1_IN="+input, "W1_OUT="+out)
			if tv.sampler != "" {
				cmd.Env = append(cmd.Env, "OTEL_TRACES_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_ENDPOINT="+sink.URL(),
					"OTEL_TRACES_SAMPLER="+tv.sampler, "OTEL_TRACES_SAMPLER_ARG="+fmt.Sprint(tv.ratio),
					// Block rather than drop when the exporter lags: the
					// SDK's default drops most of always_on's spans.
					"AIMDB_OTEL_BSP_BLOCK=true")
			}
			sink.Reset()
			p, err := runProc(ctx, cmd)
			if err != nil {
				return childRun{}, err
			}
			lines, err := countLines(out)
			if err != nil {
				return childRun{}, err
			}
			got := sink.Spans()
			if bad := sink.Bad(); bad != 0 {
				return childRun{}, fmt.Errorf("%s: %d OTLP requests the sink could not decode", tv.name, bad)
			}
			if tv.sampler != "" {
				if err := checkSpans(tv.ratio, n, lines, got); err != nil {
					return childRun{}, fmt.Errorf("%s: %w", tv.name, err)
				}
			} else if got != 0 {
				return childRun{}, fmt.Errorf("%s: the sink received %d spans", tv.name, got)
			}
			spans.add(tv.name, float64(got)/float64(n))
			return childRun{Records: lines, Wall: p.Wall, CPU: p.CPU, RSS: p.PeakRSS}, nil
		}})
	}
	tput, cpu, rss, ratios, err := alternate(ctx, cfg, n, variants)
	if err != nil {
		return nil, err
	}
	const wl = "Tracing on W1 via CLI + OTLP"
	base := traceVariants[0].name
	var res []result
	for i, tv := range traceVariants {
		v := tv.name
		var r result
		switch i {
		case 0:
			r = summarize(wl, v, "", "rec/s", tput[v], nil, "", nil)
		case 1:
			r = summarize(wl, v, base, "rec/s", tput[v], ratios[v], "≥0.97×", func(x float64) bool { return x >= 0.97 })
			r.Goal = 0.97
		case 2:
			r = summarize(wl, v, base, "rec/s", tput[v], ratios[v], "≥0.90×", func(x float64) bool { return x >= 0.90 })
			r.Goal = 0.90
		case 3:
			// The verdict is on CPU per record, per round.
			cr := make([]float64, len(cpu[v]))
			for k := range cr {
				cr[k] = cpu[v][k] / cpu[base][k]
			}
			r = summarize(wl, v, base, "rec/s", tput[v], cr, "CPU/rec ≤3× no tracer", func(x float64) bool { return x <= 3 })
			r.Goal, r.Lower = 3, true
			r.Note = fmt.Sprintf("ratio column is CPU per record vs no tracer; throughput ratio %.2f×", median(ratios[v]))
		}
		r.Extra = map[string]float64{"cpu ns/rec": median(cpu[v]), "RSS MiB": median(rss[v]), "spans/rec": median(spans[v])}
		if i > 0 {
			r.Extra["cpu/rec vs none"] = median(cpu[v]) / median(cpu[base])
			r.Extra["rec/s vs none"] = median(ratios[v])
			if r.Note == "" {
				r.Note = "OTLP/HTTP to a discarding receiver in the harness; AIMDB_OTEL_BSP_BLOCK=true (no span dropped)"
			}
		}
		res = append(res, r)
	}
	return res, nil
}

// runTracingAPI is the in-process variant kept from earlier reports: W1
// through the Go API with an otelflow Tracer whose batcher hands spans to
// an exporter that drops them, so no process start, DSL load or wire
// export is included. Informational rows (the verdicts are on the CLI).
func runTracingAPI(ctx context.Context, cfg *config) ([]result, error) {
	n := cfg.pick(300_000, 30_000)
	input, err := w1Input(cfg, n)
	if err != nil {
		return nil, err
	}
	names := []string{"trace-none", "trace-off", "trace-1pct", "trace-on"}
	var variants []abRun
	for _, name := range names {
		variants = append(variants, abRun{name, func(ctx context.Context, _ int) (childRun, error) {
			return spawn(ctx, cfg, 0, name, "-input", input)
		}})
	}
	tput, cpu, rss, ratios, err := alternate(ctx, cfg, n, variants)
	if err != nil {
		return nil, err
	}
	const wl = "Tracing on W1, Go API in-process (spans discarded, not exported)"
	labels := map[string]string{"trace-none": "no tracer", "trace-off": "otel, sampler never",
		"trace-1pct": "otel, 1% sampled (SDK ParentBased ratio)", "trace-on": "otel, every record sampled"}
	var out []result
	for _, v := range names {
		var r result
		if v == "trace-none" {
			r = summarize(wl, labels[v], "", "rec/s", tput[v], nil, "", nil)
		} else {
			r = summarize(wl, labels[v], labels["trace-none"], "rec/s", tput[v], ratios[v], "", nil)
		}
		r.Extra = map[string]float64{"cpu ns/rec": median(cpu[v]), "RSS MiB": median(rss[v])}
		if v != "trace-none" {
			r.Extra["cpu/rec vs none"] = median(cpu[v]) / median(cpu["trace-none"])
		}
		out = append(out, r)
	}
	return out, nil
}

// runTraceChild runs one in-process tracing variant (runTracingAPI's child).
func runTraceChild(ctx context.Context, variant, input, out string) (int, error) {
	var tr pipeline.Tracer
	var tp *sdktrace.TracerProvider
	switch variant {
	case "trace-off":
		tp = sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardSpans{}), sdktrace.WithSampler(sdktrace.NeverSample()))
	case "trace-1pct":
		tp = sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardSpans{}), sdktrace.WithSampler(otelflow.SampleRatio(0.01)))
	case "trace-on":
		tp = sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardSpans{}), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	}
	if tp != nil {
		tr = otelflow.New(tp)
	}
	snap, err := w1.PipelineWith(ctx, input, out, 1, pipeline.RunOptions{Tracer: tr})
	if tp != nil {
		if e := tp.Shutdown(ctx); e != nil && err == nil {
			err = e
		}
	}
	return int(snap.Pipelines["w1"].Out), err
}

// discardSpans is an exporter that drops what the batch processor hands
// it: every span is still built, sampled, queued and exported, so the
// figure is the tracing cost inside the process.
type discardSpans struct{}

func (discardSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardSpans) Shutdown(context.Context) error                             { return nil }

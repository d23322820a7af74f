package otelflow_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/aimdb-dev/aimdb-flow/connectors/file"
	"github.com/aimdb-dev/aimdb-flow/observability/metrics"
	"github.com/aimdb-dev/aimdb-flow/observability/otelflow"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// discard is an exporter that drops what the batch processor hands it:
// every span is still built, sampled, queued and exported, so the figure
// is the tracing cost inside the process.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

func benchInput(b *testing.B, n int) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "in.jsonl")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := 0; i < n; i++ {
		fmt.Fprintf(w, `{"device":"d-%d","temp":%d,"seq":%d}`+"\n", i%100, 10+i%30, i)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// runW1 runs W1 (JSON lines -> filter temp > 25 -> add alert -> JSON
// lines) once over in with tracer installed.
func runW1(b *testing.B, in, out string, tracer pipeline.Tracer) {
	g := pipeline.New().Connector("", file.New())
	g.Record("readings").WithBuffer(buffer.Config{Kind: buffer.Queue, Size: 4096}).From("file://"+in, codec.JSON{})
	g.Pipeline("w1").From("readings").Via(stages.FilterValue(hotOnly), stages.MapValue(markAlert)).
		To("file://"+out, codec.JSON{})
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{Tracer: tracer, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkTracingOverhead compares W1 in one run with tracing off, with
// hop latency histograms only, and with OpenTelemetry spans (always
// sampled, in both stage modes; and 1% sampled), every span going through
// the SDK's batch processor to a discarding exporter.
// tracerVariant builds one tracing configuration for the overhead
// benchmarks; stop flushes and shuts its provider down.
type tracerVariant struct {
	name   string
	tracer func() (tr pipeline.Tracer, stop func())
}

func overheadVariants() []tracerVariant {
	tp := func(s sdktrace.Sampler) *sdktrace.TracerProvider {
		return sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}), sdktrace.WithSampler(s))
	}
	otel := func(s sdktrace.Sampler, opts ...otelflow.Option) func() (pipeline.Tracer, func()) {
		return func() (pipeline.Tracer, func()) {
			p := tp(s)
			return otelflow.New(p, opts...), func() { _ = p.Shutdown(context.Background()) }
		}
	}
	return []tracerVariant{
		{"off", func() (pipeline.Tracer, func()) { return nil, func() {} }},
		{"latency-histograms", func() (pipeline.Tracer, func()) { return metrics.NewLatency(nil), func() {} }},
		{"latency-histograms-1in16", func() (pipeline.Tracer, func()) {
			return metrics.NewLatency(nil, metrics.MeasureEvery(16)), func() {}
		}},
		{"otel-always", otel(sdktrace.AlwaysSample())},
		{"otel-always-fused-events", otel(sdktrace.AlwaysSample(), otelflow.WithStageMode(otelflow.FusedStageEvents))},
		{"otel-always-journey", otel(sdktrace.AlwaysSample(), otelflow.WithStageMode(otelflow.JourneySpans))},
		{"otel-always-hops-stage", otel(sdktrace.AlwaysSample(), otelflow.WithHops(pipeline.HopStage))},
		{"otel-sdk-ratio-1pct", otel(otelflow.SampleRatio(0.01))},
		{"otel-root-ratio-1pct", otel(sdktrace.ParentBased(sdktrace.AlwaysSample()), otelflow.WithRootRatio(0.01))},
		// What the CLI builds from OTEL_TRACES_SAMPLER (Setup), the
		// issue's three tracing rows.
		{"setup-always_off", setupVariant("always_off", "")},
		{"setup-parentbased_traceidratio-0.01", setupVariant("parentbased_traceidratio", "0.01")},
		{"setup-always_on", setupVariant("always_on", "")},
	}
}

// setupVariant builds the tracer the CLI builds for OTEL_TRACES_SAMPLER=
// sampler (and OTEL_TRACES_SAMPLER_ARG=arg), exporting to discard.
func setupVariant(sampler, arg string) func() (pipeline.Tracer, func()) {
	return func() (pipeline.Tracer, func()) {
		env := map[string]string{"OTEL_TRACES_SAMPLER": sampler, "OTEL_TRACES_SAMPLER_ARG": arg}
		p, err := otelflow.Setup(context.Background(), otelflow.Config{
			SpanExporter: discard{},
			Getenv:       func(k string) string { return env[k] },
		})
		if err != nil {
			panic(err)
		}
		return p.PipelineTracer(), func() { _ = p.Shutdown(context.Background()) }
	}
}

// BenchmarkTracingOverhead runs W1 with each tracing configuration as a
// sub-benchmark (for allocations per run): tracing off, hop latency
// histograms only, OpenTelemetry always sampled (span per stage, fused
// events, stage hops only) and 1% sampled, every span going through the
// SDK's batch processor to a discarding exporter.
func BenchmarkTracingOverhead(b *testing.B) {
	const n = 50000
	in := benchInput(b, n)
	out := filepath.Join(b.TempDir(), "out.jsonl")
	for _, v := range overheadVariants() {
		b.Run(v.name, func(b *testing.B) {
			tr, stop := v.tracer()
			defer stop()
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				runW1(b, in, out, tr)
			}
			cpu := cpuTime() - cpu0
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(n*b.N), "cpu-ns/record")
		})
	}
}

// BenchmarkTracingOverheadRounds runs the same variants interleaved: every
// iteration is one round running W1 once per variant, and the reported
// figure per variant is the median over rounds of its wall and CPU time
// divided by the "off" run of the same round. Interleaving keeps a machine
// whose load drifts from favouring one variant.
func BenchmarkTracingOverheadRounds(b *testing.B) {
	const n = 50000
	in := benchInput(b, n)
	out := filepath.Join(b.TempDir(), "out.jsonl")
	vs := overheadVariants()
	tracers := make([]pipeline.Tracer, len(vs))
	for i, v := range vs {
		tr, stop := v.tracer()
		defer stop()
		tracers[i] = tr
	}
	wall := make([][]float64, len(vs))
	cpu := make([][]float64, len(vs))
	for b.Loop() {
		for i := range vs {
			t0, c0 := time.Now(), cpuTime()
			runW1(b, in, out, tracers[i])
			wall[i] = append(wall[i], float64(time.Since(t0)))
			cpu[i] = append(cpu[i], float64(cpuTime()-c0))
		}
	}
	for i, v := range vs {
		var wr, cr []float64
		for r := range wall[i] {
			wr = append(wr, wall[i][r]/wall[0][r])
			cr = append(cr, cpu[i][r]/cpu[0][r])
		}
		b.ReportMetric(median(cpu[i])/n, v.name+"-cpu-ns/rec")
		if i > 0 {
			b.ReportMetric(median(wr), v.name+"-wall-x")
			b.ReportMetric(median(cr), v.name+"-cpu-x")
		}
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// BenchmarkStartHop is the cost of one stage hop on a sampled and on an
// unsampled record.
func BenchmarkStartHop(b *testing.B) {
	info := &pipeline.HopInfo{Hop: pipeline.HopStage, Pipeline: "p", Stage: "1:filter"}
	recv := &pipeline.HopInfo{Hop: pipeline.HopReceive, Scheme: "mem"}
	for _, c := range []struct {
		name    string
		sampler sdktrace.Sampler
	}{{"sampled", sdktrace.AlwaysSample()}, {"unsampled", sdktrace.NeverSample()}} {
		b.Run(c.name, func(b *testing.B) {
			p := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}), sdktrace.WithSampler(c.sampler))
			defer func() { _ = p.Shutdown(context.Background()) }()
			tr := otelflow.New(p)
			env := &pipeline.Envelope{}
			rs := tr.StartHop(context.Background(), env, recv)
			sc := otelflow.SpanContext(env)
			rs.End(nil)
			env.Trace = sc // what the record carries after its receive hop
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if s := tr.StartHop(ctx, env, info); s != nil {
					s.End(nil)
				}
			}
		})
	}
}

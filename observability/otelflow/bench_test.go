package otelflow_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

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
func BenchmarkTracingOverhead(b *testing.B) {
	const n = 50000
	in := benchInput(b, n)
	out := filepath.Join(b.TempDir(), "out.jsonl")
	tp := func(s sdktrace.Sampler) *sdktrace.TracerProvider {
		return sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}), sdktrace.WithSampler(s))
	}
	variants := []struct {
		name   string
		tracer func() (pipeline.Tracer, func())
	}{
		{"off", func() (pipeline.Tracer, func()) { return nil, func() {} }},
		{"latency-histograms", func() (pipeline.Tracer, func()) { return metrics.NewLatency(nil), func() {} }},
		{"otel-always", func() (pipeline.Tracer, func()) {
			p := tp(sdktrace.AlwaysSample())
			return otelflow.New(p), func() { _ = p.Shutdown(context.Background()) }
		}},
		{"otel-always-fused-events", func() (pipeline.Tracer, func()) {
			p := tp(sdktrace.AlwaysSample())
			return otelflow.New(p, otelflow.WithStageMode(otelflow.FusedStageEvents)), func() { _ = p.Shutdown(context.Background()) }
		}},
		{"otel-always-hops-stage", func() (pipeline.Tracer, func()) {
			p := tp(sdktrace.AlwaysSample())
			return otelflow.New(p, otelflow.WithHops(pipeline.HopStage)), func() { _ = p.Shutdown(context.Background()) }
		}},
		{"otel-ratio-1pct", func() (pipeline.Tracer, func()) {
			p := tp(otelflow.SampleRatio(0.01))
			return otelflow.New(p), func() { _ = p.Shutdown(context.Background()) }
		}},
	}
	for _, v := range variants {
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
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*b.N), "ns/record")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(n*b.N), "cpu-ns/record")
		})
	}
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

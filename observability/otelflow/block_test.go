package otelflow_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/aimdb-dev/aimdb-flow/observability/otelflow"
)

// slowExporter counts spans and takes a while per batch, so a burst of
// spans outruns it and fills the batcher's queue (2048 by default).
type slowExporter struct{ n atomic.Int64 }

func (e *slowExporter) ExportSpans(_ context.Context, s []sdktrace.ReadOnlySpan) error {
	time.Sleep(5 * time.Millisecond)
	e.n.Add(int64(len(s)))
	return nil
}
func (e *slowExporter) Shutdown(context.Context) error { return nil }

// TestSetupBlockKeepsEverySpan: with Block (or AIMDB_OTEL_BSP_BLOCK=true)
// a full queue waits for the exporter instead of dropping spans, so every
// span started is exported by Shutdown.
func TestSetupBlockKeepsEverySpan(t *testing.T) {
	const spans = 20_000
	for _, tc := range []struct {
		name string
		cfg  otelflow.Config
	}{
		{"config", otelflow.Config{Block: true, Getenv: env(nil)}},
		{"env", otelflow.Config{Getenv: env(map[string]string{"AIMDB_OTEL_BSP_BLOCK": "true"})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exp := &slowExporter{}
			tc.cfg.SpanExporter = exp
			tc.cfg.Sampler = sdktrace.AlwaysSample()
			p, err := otelflow.Setup(context.Background(), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			tr := p.TracerProvider.Tracer("t")
			for range spans {
				_, s := tr.Start(context.Background(), "hop")
				s.End()
			}
			if err := p.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := exp.n.Load(); got != spans {
				t.Fatalf("exported %d spans, want %d (dropped on a full queue)", got, spans)
			}
		})
	}
}

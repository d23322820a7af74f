package otlpsink_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/aimdb-dev/aimdb-flow/bench/otlpsink"
)

// TestCountsExportedSpans exports spans through the real OTLP/HTTP exporter
// and checks that the sink counted every one.
func TestCountsExportedSpans(t *testing.T) {
	ctx := context.Background()
	sink, err := otlpsink.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(sink.URL()+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	tr := tp.Tracer("t")
	for range 7 {
		_, sp := tr.Start(ctx, "hop")
		sp.End()
	}
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sink.Spans(); got != 7 {
		t.Fatalf("spans = %d, want 7 (requests %d, bad %d)", got, sink.Requests(), sink.Bad())
	}
	if sink.Bad() != 0 {
		t.Fatalf("bad requests: %d", sink.Bad())
	}
}

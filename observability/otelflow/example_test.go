package otelflow_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/observability/otelflow"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// Tracing a graph: install the Tracer in RunOptions. In a program,
// otelflow.Setup builds the provider from the OTEL_* environment instead
// of the in-memory recorder used here.
func ExampleNew() {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()

	bus := mem.NewBus()
	g := pipeline.New().Connector("", mem.New(bus))
	g.Record("sensor.temp").From("mem://sensors/+/temp", codec.JSON{})
	g.Pipeline("alerts").From("sensor.temp").
		Via(stages.FilterValue(func(m map[string]any) bool { return m["temp"].(float64) > 25 })).
		To("mem://alerts/{device}", codec.JSON{})
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{Tracer: otelflow.New(tp), Logger: quiet})
	if err != nil {
		panic(err)
	}
	out, unsub := bus.Subscribe("alerts/#", 1)
	defer unsub()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	for r.Ready() != nil {
		time.Sleep(time.Millisecond)
	}

	in := pipeline.Envelope{Payload: []byte(`{"device":"d-1","temp":30}`)}
	_ = bus.Publish(ctx, "sensors/d-1/temp", &in)
	alert := <-out
	for len(rec.Ended()) < 6 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done

	var names []string
	for _, s := range rec.Ended() {
		names = append(names, s.Name())
	}
	sort.Strings(names)
	fmt.Println(strings.Join(names, "\n"))
	tp2, _ := alert.Headers.Get("traceparent")
	fmt.Println("traceparent sent:", len(tp2) == 55)
	// Output:
	// alerts 1:filter
	// buffer sensor.temp
	// decode sensor.temp
	// encode alerts/{device}
	// receive
	// send alerts/{device}
	// traceparent sent: true
}

// Setup reads the standard OTEL_* variables; with none set, tracing is off
// and the runner gets no hook at all.
func ExampleSetup() {
	ctx := context.Background()
	p, err := otelflow.Setup(ctx, otelflow.Config{Getenv: func(string) string { return "" }})
	if err != nil {
		panic(err)
	}
	defer func() { _ = p.Shutdown(ctx) }()
	opts := pipeline.RunOptions{Tracer: p.PipelineTracer()}
	fmt.Println("tracing on:", p.Enabled(), opts.Tracer != nil)
	// Output: tracing on: false false
}

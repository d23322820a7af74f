package gostreams_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/gostreams"
	streams "github.com/reugn/go-streams"
	"github.com/reugn/go-streams/extension"
	"github.com/reugn/go-streams/flow"
)

// go-streams source -> aimdb-flow record -> pipeline -> record -> go-streams sink.
func TestBothWays(t *testing.T) {
	g := pipeline.New().Connector("", mem.New(nil))
	g.Record("in")
	g.Record("out")
	g.Pipeline("double").From("in").
		Via(stages.MapValue(func(v int) (int, error) { return v * 2, nil })).
		Via(gostreams.Stage("go-streams filter", func() streams.Flow {
			return flow.NewFilter(func(v any) bool { return v.(int)%3 != 0 }, 1)
		})).
		Into("out")
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	outReader, err := r.Subscribe("out")
	if err != nil {
		t.Fatal(err)
	}
	w, err := r.Writer("in")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()

	// go-streams pipeline feeding the record.
	src := make(chan any, 10)
	for i := 1; i <= 9; i++ {
		src <- i
	}
	close(src)
	sink := gostreams.RecordSink(ctx, w)
	go extension.NewChanSource(src).Via(flow.NewPassThrough()).To(sink)

	// go-streams pipeline consuming the output record.
	got := make(chan any, 20)
	go gostreams.RecordSource(ctx, outReader).Via(flow.NewPassThrough()).To(extension.NewChanSink(got))

	var vals []int
	for len(vals) < 6 {
		select {
		case v := <-got:
			vals = append(vals, v.(int))
		case <-ctx.Done():
			t.Fatalf("timed out with %v", vals)
		}
	}
	sink.AwaitCompletion()
	if sink.Err() != nil {
		t.Fatal(sink.Err())
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if want := []int{2, 4, 8, 10, 14, 16}; !slices.Equal(vals, want) {
		t.Fatalf("got %v want %v", vals, want)
	}
}

func TestProcessorAsFlow(t *testing.T) {
	src := make(chan any, 4)
	for _, v := range []any{map[string]any{"temp": 30.0}, map[string]any{"temp": 10.0}, "not a map", map[string]any{"temp": 26.0}} {
		src <- v
	}
	close(src)
	out := make(chan any, 4)
	hot := stages.FilterValue(func(m map[string]any) bool { return m["temp"].(float64) > 25 })
	extension.NewChanSource(src).Via(gostreams.Flow(hot)).To(extension.NewChanSink(out))
	var n int
	for range out {
		n++
	}
	if n != 2 {
		t.Fatalf("got %d elements, want 2", n)
	}
}

func ExampleFlow() {
	src := make(chan any, 3)
	src <- 1.0
	src <- 30.0
	src <- 27.5
	close(src)
	out := make(chan any, 3)
	over25 := stages.FilterValue(func(t float64) bool { return t > 25 })
	extension.NewChanSource(src).Via(gostreams.Flow(over25)).To(extension.NewChanSink(out))
	for v := range out {
		fmt.Println(v)
	}
	// Output:
	// 30
	// 27.5
}

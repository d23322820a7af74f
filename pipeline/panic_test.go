package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// panicky panics on the payload "boom" in whichever role it is given.
type panicky struct{}

func (panicky) Decode(p []byte) (any, error) {
	if string(p) == `"boom"` {
		panic("decoder exploded")
	}
	return codec.JSON{}.Decode(p)
}

func (panicky) Encode(v any) ([]byte, error) {
	if v == "boom" {
		var m map[string]int
		m["x"] = 1 // a real runtime error: assignment to entry in nil map
	}
	return codec.JSON{}.Encode(v)
}

// TestPanicsAreContained runs the README's own Go example stage, and
// panicking decoders, encoders, key functions and async stages: the record
// that panics is dead-lettered with the panic and where it happened, and the
// records after it still flow. Without the runner's recover, the first
// case kills the test binary.
func TestPanicsAreContained(t *testing.T) {
	readmeFilter := stages.FilterValue(func(m map[string]any) bool { return m["temp"].(float64) > 25 })
	cases := []struct {
		name    string
		build   func(g *pipeline.Graph)
		bad     string
		good    string
		stage   string // the dead letter's stage
		inError string // the dead letter's error contains
	}{
		{"stage (README example)", func(g *pipeline.Graph) {
			g.Record("in").From("mem://in", codec.JSON{})
			g.Pipeline("p").From("in").Via(readmeFilter).To("mem://out", codec.JSON{})
		}, `{"temp":"x"}`, `{"temp":30}`, "1:filter", "interface conversion"},
		{"stage with parallel workers", func(g *pipeline.Graph) {
			g.Record("in").From("mem://in", codec.JSON{})
			g.Pipeline("p").From("in").Via(readmeFilter).Parallel(3).To("mem://out", codec.JSON{})
		}, `{"temp":"x"}`, `{"temp":30}`, "1:filter", "interface conversion"},
		{"decoder", func(g *pipeline.Graph) {
			g.Record("in").From("mem://in", panicky{})
			g.Pipeline("p").From("in").To("mem://out", codec.JSON{})
		}, `"boom"`, `{"temp":30}`, "decode", "decoder exploded"},
		{"encoder", func(g *pipeline.Graph) {
			g.Record("in").From("mem://in", codec.JSON{})
			g.Pipeline("p").From("in").To("mem://out", panicky{})
		}, `"boom"`, `{"temp":30}`, "send mem://out", "assignment to entry in nil map"},
		{"key function", func(g *pipeline.Graph) {
			g.Record("in").From("mem://in", codec.JSON{})
			g.Pipeline("p").From("in").To("mem://out", codec.JSON{}, pipeline.Key(func(env *pipeline.Envelope) ([]byte, error) {
				return []byte(env.Value.(map[string]any)["device"].(string)), nil
			}))
		}, `{"temp":30}`, `{"temp":31,"device":"d-1"}`, "send mem://out", "interface conversion"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bus := mem.NewBus()
			g := pipeline.New().Connector("", mem.New(bus))
			c.build(g)
			g.DeadLetterTo("mem://dlq", codec.Raw{})
			r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			out, c1 := bus.Subscribe("out", 10)
			defer c1()
			dlq, c2 := bus.Subscribe("dlq", 10)
			defer c2()
			ctx, stop := runMem(t, r)
			publishMem(t, ctx, bus, "in", c.bad, c.good)
			var dl pipeline.DeadLetter
			if err := json.Unmarshal(recv(t, dlq).Payload, &dl); err != nil {
				t.Fatal(err)
			}
			if dl.Stage != c.stage || !strings.Contains(dl.Error, "panic: ") || !strings.Contains(dl.Error, c.inError) ||
				!strings.Contains(dl.Error, "panic_test.go:") || dl.Payload != c.bad {
				t.Errorf("dead letter = %+v; want stage %q, a panic %q with its place in panic_test.go, payload %s", dl, c.stage, c.inError, c.bad)
			}
			got := recv(t, out)
			var gotV, wantV any
			_ = json.Unmarshal(got.Payload, &gotV)
			_ = json.Unmarshal([]byte(c.good), &wantV)
			if !reflect.DeepEqual(gotV, wantV) {
				t.Errorf("after the panic, out = %s, want %s", got.Payload, c.good)
			}
			if err := stop(); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v", err)
			}
			if s := r.Stats(); s.DeadLetters != 1 {
				t.Errorf("dead letters = %d, want 1", s.DeadLetters)
			}
		})
	}
}

// panicWindow is an async stage that panics on its second record.
type panicWindow struct{}

func (panicWindow) Kind() string { return "window" }
func (panicWindow) Run(ctx context.Context, in <-chan pipeline.Envelope, emit pipeline.Emit) error {
	n := 0
	for e := range in {
		n++
		if n == 2 {
			panic("window state corrupt")
		}
		err := emit(ctx, &e)
		e.Ack.Finish(err)
	}
	return nil
}

// TestAsyncStagePanicEndsOnlyThatStage: a panic in an async stage's own
// goroutine is returned by Run as a *pipeline.PanicError; the other
// pipeline of the graph keeps delivering until the run is stopped.
func TestAsyncStagePanicEndsOnlyThatStage(t *testing.T) {
	bus := mem.NewBus()
	g := pipeline.New().Connector("", mem.New(bus))
	g.Record("in").From("mem://in", codec.JSON{})
	g.Pipeline("windowed").From("in").Via(panicWindow{}).To("mem://w", codec.JSON{})
	g.Pipeline("plain").From("in").To("mem://out", codec.JSON{})
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{DrainTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	out, c1 := bus.Subscribe("out", 10)
	defer c1()
	ctx, stop := runMem(t, r)
	for i := range 3 {
		e := pipeline.Envelope{Payload: []byte(`{"seq":` + itoa(i) + `}`)}
		if err := bus.Publish(ctx, "in", &e); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if got := recv(t, out); !strings.Contains(string(got.Payload), `"seq":`+itoa(i)) {
			t.Fatalf("plain pipeline record %d = %s", i, got.Payload)
		}
	}
	err = stop()
	var pe *pipeline.PanicError
	if !errors.As(err, &pe) || pe.Value != "window state corrupt" {
		t.Fatalf("Run = %v, want the window's *PanicError", err)
	}
}

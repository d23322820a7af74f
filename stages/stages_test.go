package stages_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
)

// run drives a processor with inputs and returns what it emitted.
func runProc(t *testing.T, p pipeline.Processor, inputs ...any) ([]any, []error) {
	t.Helper()
	var outs []any
	var errs []error
	for _, v := range inputs {
		env := pipeline.Envelope{Value: v}
		err := p.Process(context.Background(), &env, func(_ context.Context, e *pipeline.Envelope) error {
			outs = append(outs, e.Value)
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return outs, errs
}

// runAsync feeds an async stage and collects its outputs.
func runAsync(t *testing.T, s pipeline.AsyncStage, feed func(in chan<- pipeline.Envelope, out <-chan pipeline.Envelope)) []pipeline.Envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in := make(chan pipeline.Envelope)
	out := make(chan pipeline.Envelope, 100)
	done := make(chan error)
	go func() {
		done <- s.Run(ctx, in, func(_ context.Context, e *pipeline.Envelope) error {
			out <- *e
			e.Ack.Done()
			return nil
		})
	}()
	var outs []pipeline.Envelope
	feed(in, out)
	close(in)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	close(out)
	for e := range out {
		outs = append(outs, e)
	}
	return outs
}

func TestProcessors(t *testing.T) {
	tests := []struct {
		name     string
		p        pipeline.Processor
		in       []any
		want     string
		wantErrs int
	}{
		{"filter", stages.FilterValue(func(f float64) bool { return f > 1 }), []any{1.0, 2.0, 3.0}, "[2 3]", 0},
		{"filter type mismatch", stages.FilterValue(func(f float64) bool { return true }), []any{"x", 1.0}, "[1]", 1},
		{"map", stages.MapValue(func(f float64) (string, error) { return strconv.Itoa(int(f)), nil }), []any{1.0, 2.0}, "[1 2]", 0},
		{"map error", stages.MapValue(func(f float64) (float64, error) {
			if f == 0 {
				return 0, errors.New("division by zero")
			}
			return 1 / f, nil
		}), []any{0.0, 2.0}, "[0.5]", 1},
		{"dedupe", stages.Dedupe(func(e *pipeline.Envelope) ([]byte, error) { return []byte(fmt.Sprint(e.Value)), nil }, 2),
			[]any{"a", "b", "a", "c", "a"}, "[a b c a]", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outs, errs := runProc(t, tt.p, tt.in...)
			if got := fmt.Sprint(outs); got != tt.want {
				t.Errorf("got %s want %s", got, tt.want)
			}
			if len(errs) != tt.wantErrs {
				t.Errorf("errors %v, want %d", errs, tt.wantErrs)
			}
		})
	}
}

func TestEncodeDecodeStages(t *testing.T) {
	outs, errs := runProc(t, stages.Decode(jsonish{}), nil)
	if len(errs) != 0 || fmt.Sprint(outs) != "[decoded]" {
		t.Fatalf("%v %v", outs, errs)
	}
}

type jsonish struct{}

func (jsonish) Decode([]byte) (any, error) { return "decoded", nil }

func TestBatchBySizeAndTime(t *testing.T) {
	var acked int
	var sizes []int
	runAsync(t, stages.Batch(3, 20*time.Millisecond), func(in chan<- pipeline.Envelope, out <-chan pipeline.Envelope) {
		for i := 0; i < 7; i++ {
			in <- pipeline.Envelope{Value: i, Ack: pipeline.NewAck(func(error) { acked++ })}
		}
		for len(sizes) < 3 { // two full batches, then the time trigger flushes the 7th alone
			sizes = append(sizes, len((<-out).Value.([]any)))
		}
		in <- pipeline.Envelope{Value: 7, Ack: pipeline.NewAck(func(error) { acked++ })}
		sizes = append(sizes, len((<-out).Value.([]any)))
	})
	if fmt.Sprint(sizes) != "[3 3 1 1]" {
		t.Fatalf("batch sizes %v, want [3 3 1 1]", sizes)
	}
	if acked != 8 {
		t.Fatalf("acked %d inputs, want 8 (group acks complete inputs)", acked)
	}
}

// virtualClock is a clock whose time moves only when the code under test
// sleeps, recording every sleep: timing checks become exact and
// independent of the machine's load.
type virtualClock struct {
	t      time.Time
	sleeps []time.Duration
	at     []int // how many envelopes had been emitted at each sleep
	outs   *int
}

func (c *virtualClock) now() time.Time { return c.t }
func (c *virtualClock) sleep(_ context.Context, d time.Duration) error {
	c.sleeps = append(c.sleeps, d)
	c.at = append(c.at, *c.outs)
	c.t = c.t.Add(d)
	return nil
}

func TestThrottleDelaysNeverDrops(t *testing.T) {
	const n, per = 5, 20 * time.Millisecond
	emitted := 0
	clk := &virtualClock{t: time.Unix(0, 0), outs: &emitted}
	s := stages.ThrottleWithClock(n, per, clk.now, clk.sleep)
	in := make(chan pipeline.Envelope, 12)
	for i := 0; i < 12; i++ {
		in <- pipeline.Envelope{Value: i}
	}
	close(in)
	var outs []any
	err := s.Run(context.Background(), in, func(_ context.Context, e *pipeline.Envelope) error {
		emitted++
		outs = append(outs, e.Value)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 12 {
		t.Fatalf("got %d, want all 12", len(outs))
	}
	for i, v := range outs {
		if v != i {
			t.Fatalf("output %d = %v, want order kept", i, v)
		}
	}
	// 12 envelopes at 5 per 20 ms: the throttle must wait a full period
	// after the 5th and after the 10th (the clock does not move otherwise).
	if want := []time.Duration{per, per}; !slices.Equal(clk.sleeps, want) {
		t.Fatalf("throttle slept %v, want %v", clk.sleeps, want)
	}
	if want := []int{5, 10}; !slices.Equal(clk.at, want) {
		t.Fatalf("throttle slept after %v envelopes, want after %v", clk.at, want)
	}
}

func TestTumblingWindowGroupsAndAcks(t *testing.T) {
	acked := 0
	outs := runAsync(t, stages.TumblingWindow(30*time.Millisecond), func(in chan<- pipeline.Envelope, _ <-chan pipeline.Envelope) {
		for i := 0; i < 4; i++ {
			in <- pipeline.Envelope{Value: i, Time: time.Now(), Ack: pipeline.NewAck(func(error) { acked++ })}
		}
	})
	total := 0
	for _, o := range outs {
		total += len(o.Value.([]any))
	}
	if total != 4 || acked != 4 {
		t.Fatalf("windows held %d values, acked %d; want 4 and 4", total, acked)
	}
}

func TestSessionWindow(t *testing.T) {
	var first pipeline.Envelope
	outs := runAsync(t, stages.SessionWindow(30*time.Millisecond), func(in chan<- pipeline.Envelope, out <-chan pipeline.Envelope) {
		in <- pipeline.Envelope{Value: 1}
		in <- pipeline.Envelope{Value: 2}
		first = <-out // the gap closes the first session
		in <- pipeline.Envelope{Value: 3}
	})
	if len(first.Value.([]any)) != 2 || len(outs) != 1 || len(outs[0].Value.([]any)) != 1 {
		t.Fatalf("sessions %v then %v, want [1 2] then [3]", first.Value, outs)
	}
}

func ExampleFilterValue() {
	hot := stages.FilterValue(func(m map[string]any) bool { return m["temp"].(float64) > 25 })
	for _, temp := range []float64{20, 30} {
		env := pipeline.Envelope{Value: map[string]any{"temp": temp}}
		hot.Process(context.Background(), &env, func(_ context.Context, e *pipeline.Envelope) error {
			fmt.Println("kept", e.Value.(map[string]any)["temp"])
			return nil
		})
	}
	// Output: kept 30
}

// A keyed window emits one record per key and window, in order of each
// key's first record, with the key's typed value as a field; every input
// is acknowledged once, when its key's output is.
func TestKeyedWindowSplitsByKey(t *testing.T) {
	key := func(env *pipeline.Envelope) (any, error) { return env.Value.(map[string]any)["dev"], nil }
	keyBy := stages.KeyBy(func(env *pipeline.Envelope) ([]byte, error) {
		v, _ := key(env)
		return []byte(fmt.Sprint(v)), nil
	})
	acks := map[int]int{}
	w := stages.ByKey(stages.TumblingWindow(time.Hour), "dev", key) // one window, flushed at close
	outs := runAsync(t, w, func(in chan<- pipeline.Envelope, _ <-chan pipeline.Envelope) {
		for i, dev := range []float64{7, 3, 7, 7, 3} {
			env := pipeline.Envelope{Value: map[string]any{"dev": dev, "i": float64(i)}}
			if err := keyBy.Process(context.Background(), &env, func(_ context.Context, e *pipeline.Envelope) error {
				i := i
				e.Ack = pipeline.NewAck(func(error) { acks[i]++ })
				in <- *e
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	})
	if len(outs) != 2 {
		t.Fatalf("%d outputs, want 2 (one per key): %v", len(outs), outs)
	}
	for i, want := range []struct {
		dev   float64
		items []float64
	}{{7, []float64{0, 2, 3}}, {3, []float64{1, 4}}} {
		m := outs[i].Value.(map[string]any)
		if m["dev"] != want.dev || string(outs[i].Key) != fmt.Sprint(want.dev) {
			t.Fatalf("output %d: dev %v key %q, want %v", i, m["dev"], outs[i].Key, want.dev)
		}
		items := m["items"].([]any)
		var got []float64
		for _, it := range items {
			got = append(got, it.(map[string]any)["i"].(float64))
		}
		if !slices.Equal(got, want.items) {
			t.Fatalf("output %d items %v, want %v", i, got, want.items)
		}
	}
	for i := 0; i < 5; i++ {
		if acks[i] != 1 {
			t.Fatalf("input %d acked %d times, want 1 (acks %v)", i, acks[i], acks)
		}
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name    string
		list    func(*pipeline.Envelope) (any, error)
		in      any
		want    []any
		wantErr bool
	}{
		{"value list", nil, []any{1.0, "a", nil}, []any{1.0, "a", nil}, false},
		{"empty", nil, []any{}, nil, false},
		{"field", func(e *pipeline.Envelope) (any, error) { return e.Value.(map[string]any)["xs"], nil },
			map[string]any{"xs": []any{"p", "q"}}, []any{"p", "q"}, false},
		{"not a list", nil, map[string]any{"a": 1.0}, nil, true},
		{"list error", func(*pipeline.Envelope) (any, error) { return nil, errors.New("boom") }, []any{1.0}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			outs, errs := runProc(t, stages.Split(tc.list), tc.in)
			if (len(errs) > 0) != tc.wantErr {
				t.Fatalf("errors %v, want error %v", errs, tc.wantErr)
			}
			if !slices.EqualFunc(outs, tc.want, func(a, b any) bool { return a == b }) {
				t.Fatalf("outputs %v, want %v", outs, tc.want)
			}
		})
	}
}

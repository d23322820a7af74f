package pipeline_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

func newRunnerT(t *testing.T, g *pipeline.Graph) *pipeline.Runner {
	t.Helper()
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A watch with no room drops and counts, and never blocks the writer,
// for every buffer kind; a watch takes no ack share, so a lossless
// record's real reader still gets every value.
func TestWatchDropsInsteadOfBlocking(t *testing.T) {
	for _, cfg := range []buffer.Config{{Kind: buffer.Ring, Size: 8}, {Kind: buffer.Latest}, {Kind: buffer.Mailbox}, {Kind: buffer.Queue, Size: 8}} {
		t.Run(cfg.String(), func(t *testing.T) {
			g := pipeline.New()
			g.Record("a").WithBuffer(cfg)
			r := newRunnerT(t, g)
			rd, err := r.Subscribe("a")
			if err != nil {
				t.Fatal(err)
			}
			w, err := r.Watch(3, "a")
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			wr, err := r.Writer("a")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			const n = 100
			for i := 0; i < n; i++ {
				ack := pipeline.NewAck(func(error) {})
				if err := wr.Write(ctx, &pipeline.Envelope{Value: i, Ack: ack}); err != nil {
					t.Fatalf("write %d: %v (a watcher must not block the writer)", i, err)
				}
				ack.Done()
				// The real reader keeps up; the watcher never reads.
				v, ok, _ := rd.TryRecv()
				if ok {
					v.Ack.Done()
				}
				if cfg.Kind == buffer.Queue && (!ok || v.Value != i) {
					t.Fatalf("queue reader: got %v (ok %v), want %d", v.Value, ok, i)
				}
			}
			if got := w.Dropped(); got != n-3 {
				t.Errorf("dropped %d, want %d", got, n-3)
			}
			for i := 0; i < 3; i++ {
				ev := <-w.C()
				if ev.Record != "a" || ev.Env.Value != i || ev.Env.Ack != nil {
					t.Errorf("event %d: %+v", i, ev)
				}
			}
			if len(w.C()) != 0 {
				t.Errorf("%d events left", len(w.C()))
			}
		})
	}
}

// Closing a watch stops its deliveries; other watches go on.
func TestWatchClose(t *testing.T) {
	g := pipeline.New()
	g.Record("a").WithBuffer(buffer.Config{Kind: buffer.Latest})
	g.Record("b").WithBuffer(buffer.Config{Kind: buffer.Latest})
	r := newRunnerT(t, g)
	w1, _ := r.Watch(10, "a", "b", "a")
	w2, _ := r.Watch(10, "a")
	if got := strings.Join(w1.Records(), ","); got != "a,b" {
		t.Errorf("records %s, want a,b", got)
	}
	wa, _ := r.Writer("a")
	wb, _ := r.Writer("b")
	ctx := context.Background()
	wa.WriteValue(ctx, 1)
	wb.WriteValue(ctx, 2)
	w1.Close()
	w1.Close()
	wa.WriteValue(ctx, 3)
	if len(w1.C()) != 2 || len(w2.C()) != 2 {
		t.Fatalf("w1 %d events (want 2), w2 %d (want 2)", len(w1.C()), len(w2.C()))
	}
	if ev := <-w1.C(); ev.Record != "a" || ev.Env.Value != 1 {
		t.Errorf("w1 first %+v", ev)
	}
	if ev := <-w1.C(); ev.Record != "b" || ev.Env.Value != 2 {
		t.Errorf("w1 second %+v", ev)
	}
	w2.Close()
	if _, err := r.Watch(1, "nope"); !errors.Is(err, pipeline.ErrUnknownRecord) {
		t.Errorf("watch of an unknown record: %v", err)
	}
}

func TestSet(t *testing.T) {
	g := pipeline.New()
	g.Record("setpoint").WithBuffer(buffer.Config{Kind: buffer.Latest}).WithSettable()
	g.Record("plain").WithBuffer(buffer.Config{Kind: buffer.Latest})
	r := newRunnerT(t, g)
	ctx := context.Background()
	if err := r.Set(ctx, "setpoint", pipeline.Envelope{Value: 21.5}); err != nil {
		t.Fatal(err)
	}
	env, ok := r.Latest("setpoint")
	if !ok || env.Value != 21.5 || env.Time.IsZero() {
		t.Errorf("latest %+v %v", env, ok)
	}
	if err := r.Set(ctx, "plain", pipeline.Envelope{Value: 1}); !errors.Is(err, pipeline.ErrNotSettable) {
		t.Errorf("set of a record not declared settable: %v", err)
	}
	if err := r.Set(ctx, "nope", pipeline.Envelope{Value: 1}); !errors.Is(err, pipeline.ErrUnknownRecord) {
		t.Errorf("set of an unknown record: %v", err)
	}
	if _, ok := r.Latest("plain"); ok {
		t.Error("a refused set wrote the record")
	}
}

func TestSettableHasNoOtherWriter(t *testing.T) {
	tests := []struct {
		name  string
		build func(g *pipeline.Graph)
		want  string
	}{
		{"inbound link", func(g *pipeline.Graph) {
			g.Connector("", newChanConn())
			g.Record("s").WithSettable().From("chan://x", codec.JSON{})
		}, "record s: settable, but written by its inbound links"},
		{"pipeline into", func(g *pipeline.Graph) {
			g.Record("in")
			g.Record("s").WithSettable()
			g.Pipeline("p").From("in").Into("s")
		}, "pipeline p: record s already has a writer (it is settable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := pipeline.New()
			tc.build(g)
			err := g.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
}

// Watching costs the hot path nothing while nobody watches, and no
// allocation when somebody does (the channel holds envelopes by value),
// also when the watcher is full and drops.
func TestWriteAllocsWithAndWithoutWatchers(t *testing.T) {
	g := pipeline.New()
	g.Record("a").WithBuffer(buffer.Config{Kind: buffer.Ring, Size: 1024})
	g.Record("q").WithBuffer(buffer.Config{Kind: buffer.Queue, Size: 1024})
	r := newRunnerT(t, g)
	ctx := context.Background()
	env := &pipeline.Envelope{Value: any(nil), Payload: []byte(`{"x":1}`), Topic: "t"}
	for _, name := range []string{"a", "q"} {
		wr, _ := r.Writer(name)
		rd, _ := r.Subscribe(name) // ignored for the ring; drained for the queue
		_ = rd
		write := func() {
			if err := wr.Write(ctx, env); err != nil {
				t.Fatal(err)
			}
			if name == "q" {
				rd.TryRecv()
			}
		}
		if n := testing.AllocsPerRun(1000, write); n != 0 {
			t.Errorf("%s: %v allocations per write without watchers, want 0", name, n)
		}
		w, _ := r.Watch(4096, name)
		if n := testing.AllocsPerRun(1000, write); n != 0 {
			t.Errorf("%s: %v allocations per write with a watcher, want 0", name, n)
		}
		full, _ := r.Watch(1, name)
		if n := testing.AllocsPerRun(1000, write); n != 0 {
			t.Errorf("%s: %v allocations per write with a full watcher, want 0", name, n)
		}
		if full.Dropped() == 0 {
			t.Errorf("%s: the full watcher dropped nothing", name)
		}
		w.Close()
		full.Close()
	}
}

// Concurrent sets into a settable queue record (and a Go writer beside
// them) are serialized: the queue's one writer slot is never shared, and
// every value reaches the reader.
func TestConcurrentSetsReachTheReader(t *testing.T) {
	g := pipeline.New()
	g.Record("s").WithBuffer(buffer.Config{Kind: buffer.Queue, Size: 2}).WithSettable()
	r := newRunnerT(t, g)
	rd, _ := r.Subscribe("s")
	wr, err := r.Writer("s")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const writers, each = 4, 200
	errs := make(chan error, writers+1)
	for i := 0; i < writers; i++ {
		go func() {
			for j := 0; j < each; j++ {
				if err := r.Set(ctx, "s", pipeline.Envelope{Value: j}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	go func() {
		for j := 0; j < each; j++ {
			if err := wr.WriteValue(ctx, j); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	for n := 0; n < (writers+1)*each; n++ {
		if _, err := rd.Recv(ctx); err != nil {
			t.Fatalf("after %d values: %v", n, err)
		}
	}
	for i := 0; i < writers+1; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

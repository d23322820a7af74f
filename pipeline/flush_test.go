package pipeline_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// holdConn is a sink connector (scheme "hold") that batches the way a
// pipeline.Flusher may: PublishAsync keeps each record and its ack share,
// and only Flush delivers what is held and acknowledges it. A record the
// runner does not flush is never delivered.
type holdConn struct {
	mu        sync.Mutex
	held      []pubCall
	flushes   int
	delivered chan string
}

func newHoldConn() *holdConn { return &holdConn{delivered: make(chan string, 1024)} }

func (c *holdConn) Scheme() string { return "hold" }
func (c *holdConn) Build(context.Context, pipeline.BuildEnv) (pipeline.Connector, error) {
	return c, nil
}
func (c *holdConn) Close(context.Context) error { return nil }

func (c *holdConn) Publish(_ context.Context, dest string, _ any, env *pipeline.Envelope) error {
	c.delivered <- string(env.Payload)
	return nil
}

func (c *holdConn) PublishAsync(_ context.Context, dest string, _ any, env *pipeline.Envelope) error {
	c.mu.Lock()
	c.held = append(c.held, pubCall{dest: dest, payload: string(env.Payload), ack: env.Ack})
	c.mu.Unlock()
	return nil
}

func (c *holdConn) Flush(context.Context) error {
	c.mu.Lock()
	held := c.held
	c.held = nil
	c.flushes++
	c.mu.Unlock()
	for _, p := range held {
		c.delivered <- p.payload
		p.ack.Done()
	}
	return nil
}

func (c *holdConn) flushCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushes
}

// next waits for the next delivered payload.
func (c *holdConn) next(t *testing.T, what string) string {
	t.Helper()
	select {
	case p := <-c.delivered:
		return p
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: never delivered (held back and not flushed)", what)
	}
	return ""
}

// TestRunnerFlushesOutputs: for every kind of outbound loop (a pipeline's
// output, a record's publisher, a parallel pipeline, a pipeline ending in
// an async stage), the runner flushes a batching connector when it has
// nothing more ready, so a single record is delivered without more
// records following it, a burst is delivered whole, and the records
// written just before the stop are delivered by the drain. The source's
// acks settle only once the connector acknowledged.
func TestRunnerFlushesOutputs(t *testing.T) {
	tests := []struct {
		name  string
		graph func(g *pipeline.Graph)
	}{
		{"pipeline output", func(g *pipeline.Graph) {
			g.Pipeline("p").From("in").To("hold://out", codec.Raw{})
		}},
		{"record publisher", func(g *pipeline.Graph) {
			g.Record("in").To("hold://out", codec.Raw{})
		}},
		{"parallel pipeline", func(g *pipeline.Graph) {
			g.Pipeline("p").From("in").Parallel(2).To("hold://out", codec.Raw{})
		}},
		{"async stage", func(g *pipeline.Graph) {
			g.Pipeline("p").From("in").Via(stages.Throttle(1_000_000, time.Second)).To("hold://out", codec.Raw{})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := newHoldConn()
			g := pipeline.New().Connector("hold", sink)
			g.Record("in")
			tc.graph(g)
			r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			w, err := r.Writer("in")
			if err != nil {
				t.Fatal(err)
			}
			ctx, stop := runMem(t, r)
			write := func(payload string) *outcome {
				t.Helper()
				o := &outcome{done: make(chan struct{})}
				env := &pipeline.Envelope{Payload: []byte(payload), Time: time.Now()}
				env.Ack = pipeline.NewAck(func(err error) {
					o.mu.Lock()
					defer o.mu.Unlock()
					o.calls++
					o.err = err
					if o.calls == 1 {
						close(o.done)
					}
				})
				if err := w.Write(ctx, env); err != nil {
					t.Fatal(err)
				}
				env.Ack.Done() // the writer's share
				return o
			}

			// One record and nothing after it.
			first := write("single")
			if got := sink.next(t, "a single record"); got != "single" {
				t.Fatalf("delivered %q, want single", got)
			}
			if err := first.wait(t, "single"); err != nil {
				t.Fatalf("single: ack %v", err)
			}

			// A burst, delivered whole and in order.
			const burst = 300
			acks := make([]*outcome, burst)
			for i := range acks {
				acks[i] = write(strconv.Itoa(i))
			}
			for i := 0; i < burst; i++ {
				if got := sink.next(t, "record "+strconv.Itoa(i)); got != strconv.Itoa(i) {
					t.Fatalf("delivery %d is %q", i, got)
				}
			}
			for i, o := range acks {
				if err := o.wait(t, "record "+strconv.Itoa(i)); err != nil {
					t.Fatalf("record %d: ack %v", i, err)
				}
			}
			if n := sink.flushCount(); n < 2 || n > burst+1 {
				t.Errorf("%d flushes for %d records", n, burst+1)
			}

			// Written right before the stop: the drain flushes them.
			last := make([]*outcome, 20)
			for i := range last {
				last[i] = write("last-" + strconv.Itoa(i))
			}
			if err := stop(); err != nil {
				t.Fatalf("run: %v", err)
			}
			for i, o := range last {
				if !o.settled() {
					t.Fatalf("record last-%d not settled when Run returned", i)
				}
				if err := o.wait(t, "last"); err != nil {
					t.Fatalf("record last-%d: ack %v", i, err)
				}
			}
		})
	}
}

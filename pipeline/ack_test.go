package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// ackSource is a source connector that emits n messages with acks and
// records each message's outcome; failSink is a sink that rejects
// payloads listed in reject. Together they check the runner's ack
// propagation: a source message is acked only when every sink it reached
// has acked, and nacked when any rejected it.
type ackSource struct {
	n       int
	mu      sync.Mutex
	outcome map[int]error
	done    chan struct{}
	reject  map[string]bool
	pubMu   sync.Mutex
	pubs    map[string]int
}

func (s *ackSource) Scheme() string { return "acktest" }
func (s *ackSource) Build(context.Context, pipeline.BuildEnv) (pipeline.Connector, error) {
	return s, nil
}
func (s *ackSource) Close(context.Context) error { return nil }
func (s *ackSource) Publish(_ context.Context, dest string, _ any, env *pipeline.Envelope) error {
	if s.reject[string(env.Payload)] {
		return fmt.Errorf("rejected %s", env.Payload)
	}
	s.pubMu.Lock()
	s.pubs[dest]++
	s.pubMu.Unlock()
	return nil
}
func (s *ackSource) Finite([]pipeline.Subscription) bool { return true }
func (s *ackSource) Serve(ctx context.Context, subs []pipeline.Subscription, d pipeline.Dispatcher) error {
	for i := 0; i < s.n; i++ {
		env := pipeline.Envelope{Topic: "in", Payload: []byte(fmt.Sprint(i))}
		env.Ack = pipeline.NewAck(func(err error) {
			s.mu.Lock()
			s.outcome[i] = err
			if len(s.outcome) == s.n {
				close(s.done)
			}
			s.mu.Unlock()
		})
		if err := d.Dispatch(ctx, &env); err != nil {
			return nil
		}
	}
	return nil
}

func TestAcksFanInThroughTheGraph(t *testing.T) {
	for _, kind := range []buffer.Config{{Kind: buffer.Queue, Size: 4}, {Kind: buffer.Ring, Size: 1024}} {
		t.Run(kind.String(), func(t *testing.T) {
			src := &ackSource{n: 50, outcome: map[int]error{}, done: make(chan struct{}),
				reject: map[string]bool{"7": true, "8": true}, pubs: map[string]int{}}
			g := pipeline.New().Connector("", src).Connector("", mem.New(nil))
			g.Record("in").WithBuffer(kind).From("acktest://in", codec.JSON{})
			g.Record("mid").WithBuffer(kind)
			g.Pipeline("fan").From("in").Into("mid")
			g.Pipeline("a").From("mid").To("acktest://a", codec.JSON{})
			g.Pipeline("b").From("mid").
				Via(stages.FilterValue(func(v float64) bool { return int(v)%2 == 0 })).
				To("acktest://b", codec.JSON{})
			g.Pipeline("c").From("mid").Via(stages.Batch(5, 0)).To("acktest://c", codec.JSON{})
			r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := r.Run(ctx); err != nil {
				t.Fatal(err)
			}
			select {
			case <-src.done:
			case <-ctx.Done():
				t.Fatalf("only %d of %d messages settled", len(src.outcome), src.n)
			}
			for i := 0; i < src.n; i++ {
				err := src.outcome[i]
				rejected := i == 7 || i == 8
				switch {
				case kind.Kind.Lossless() && rejected && err == nil:
					t.Errorf("message %d was rejected by a sink but acked", i)
				case kind.Kind.Lossless() && !rejected && err != nil:
					t.Errorf("message %d nacked: %v", i, err)
				case !kind.Kind.Lossless() && err != nil:
					t.Errorf("lossy buffer must ack on write, message %d: %v", i, err)
				}
			}
			if src.pubs["a"] != 48 || src.pubs["b"] != 24 || src.pubs["c"] != 10 {
				t.Fatalf("published %v, want a:48 b:24 c:10", src.pubs)
			}
		})
	}
}

func TestDrainOnCancelDeliversInFlight(t *testing.T) {
	// A slow sink and a cancelled context: everything already accepted by
	// the graph still reaches the sink before Run returns.
	bus := mem.NewBus()
	g := pipeline.New().Connector("", mem.New(bus))
	g.Record("in").WithBuffer(buffer.Config{Kind: buffer.Queue, Size: 64}).From("mem://in", codec.Raw{})
	g.Pipeline("slow").From("in").Via(stages.Tap(func(*pipeline.Envelope) { time.Sleep(time.Millisecond) })).To("mem://out", codec.Raw{})
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{DrainTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	out, unsub := bus.Subscribe("out", 1000)
	defer unsub()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	waitReady(t, r)
	for i := 0; i < 50; i++ {
		e := pipeline.Envelope{Payload: []byte("x")}
		if err := bus.Publish(context.Background(), "in", &e); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(out) != 50 {
		t.Fatalf("%d of 50 accepted records reached the sink", len(out))
	}
}

// stageFunc is a Processor running fn, for stages a test controls.
type stageFunc func(ctx context.Context, env *pipeline.Envelope, next pipeline.Emit) error

func (stageFunc) Kind() string { return "block" }
func (f stageFunc) Process(ctx context.Context, env *pipeline.Envelope, next pipeline.Emit) error {
	return f(ctx, env, next)
}

// TestDrainTimeout stops a graph whose only record is stuck in a stage.
// Run must return ErrDrainTimeout, the record's source message must be
// nacked (never acked) and nothing reaches the sink. A stage that ignores
// its context is abandoned after the grace: the error names the pipeline
// and the stage.
func TestDrainTimeout(t *testing.T) {
	const drain = 100 * time.Millisecond
	for _, tc := range []struct {
		name       string
		honoursCtx bool
		workers    int
		wantMsg    string // in the error; "" means exactly ErrDrainTimeout
	}{
		{name: "stage returns on cancel", honoursCtx: true},
		{name: "stage ignores cancel", wantMsg: "pipeline stuck (last stage entered: 2:block)"},
		{name: "parallel stage ignores cancel", workers: 2, wantMsg: "pipeline stuck (last stage entered: 2:block)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newChanConn()
			entered := make(chan struct{}, 1)
			block := make(chan struct{})
			t.Cleanup(func() { close(block) }) // lets an abandoned stage's goroutine end
			g := pipeline.New().Connector("", c)
			g.Record("in").From("chan://in", codec.Raw{})
			g.Pipeline("stuck").From("in").
				Via(stages.Tap(func(*pipeline.Envelope) {}), stageFunc(func(ctx context.Context, env *pipeline.Envelope, next pipeline.Emit) error {
					entered <- struct{}{}
					if tc.honoursCtx {
						select {
						case <-ctx.Done():
							return ctx.Err()
						case <-block:
						}
					} else {
						<-block
					}
					return next(ctx, env)
				})).
				Parallel(max(tc.workers, 1)).
				To("chan://out", codec.Raw{})
			r, err := pipeline.NewRunner(g, pipeline.RunOptions{DrainTimeout: drain})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			o := c.inject(t, "in", "x")
			select {
			case <-entered:
			case <-time.After(5 * time.Second):
				t.Fatal("record never reached the stage")
			}
			cancel()
			// A hang detector, not a timing assertion: the drain timeout,
			// the grace (at most the drain timeout again) and 2 s of slack.
			select {
			case err = <-done:
			case <-time.After(2*drain + 2*time.Second):
				t.Fatal("Run did not return after the drain timeout")
			}
			if !errors.Is(err, pipeline.ErrDrainTimeout) {
				t.Fatalf("err = %v, want ErrDrainTimeout", err)
			}
			if tc.wantMsg == "" && err != pipeline.ErrDrainTimeout {
				t.Fatalf("err = %v, want exactly ErrDrainTimeout (the stage returned)", err)
			}
			if tc.wantMsg != "" && !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("err = %v, want it to name %q", err, tc.wantMsg)
			}
			if !o.settled() {
				t.Fatal("the stuck record's source message was neither acked nor nacked when Run returned")
			}
			if err := o.wait(t, "stuck record"); err == nil {
				t.Fatal("the stuck record's source message was acked, want nacked")
			}
			select {
			case p := <-c.published:
				t.Fatalf("stuck record reached the sink: %s", p.payload)
			default:
			}
		})
	}
}

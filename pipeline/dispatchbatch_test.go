package pipeline_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// batchSource hands its messages to the runner in one DispatchBatch call.
type batchSource struct {
	payloads []string
	mu       sync.Mutex
	acks     map[int][]error // message index -> ack outcomes
	served   chan struct{}
}

func (b *batchSource) Scheme() string { return "batch" }
func (b *batchSource) Build(context.Context, pipeline.BuildEnv) (pipeline.Connector, error) {
	return b, nil
}
func (b *batchSource) Close(context.Context) error { return nil }
func (b *batchSource) Publish(context.Context, string, any, *pipeline.Envelope) error {
	return fmt.Errorf("source only")
}

func (b *batchSource) Serve(ctx context.Context, subs []pipeline.Subscription, d pipeline.Dispatcher) error {
	bd, ok := d.(pipeline.BatchDispatcher)
	if !ok {
		return fmt.Errorf("the runner's dispatcher takes no batches")
	}
	envs := make([]pipeline.Envelope, len(b.payloads))
	for i, p := range b.payloads {
		i := i
		envs[i] = pipeline.Envelope{Topic: subs[0].Filter, Payload: []byte(p), Ack: pipeline.NewAck(func(err error) {
			b.mu.Lock()
			b.acks[i] = append(b.acks[i], err)
			b.mu.Unlock()
		})}
	}
	err := bd.DispatchBatch(ctx, envs)
	close(b.served)
	<-ctx.Done()
	return err
}

// DispatchBatch is Dispatch of each message in order: through a queue
// smaller than the batch, a payload that does not decode is dead-lettered
// in its place, the others arrive in order, and every message is
// acknowledged exactly once.
func TestDispatchBatch(t *testing.T) {
	src := &batchSource{acks: map[int][]error{}, served: make(chan struct{}),
		payloads: []string{`{"n":0}`, `{"n":1}`, `{"n":`, `{"n":3}`, `{"n":4}`, `{"n":5}`}}
	bus := mem.NewBus()
	g := pipeline.New().Connector("", src).Connector("", mem.New(bus))
	g.Record("in").WithBuffer(buffer.Config{Kind: buffer.Queue, Size: 2}).From("batch://in", codec.LazyJSON{})
	g.Pipeline("p").From("in").To("mem://out", codec.LazyJSON{})
	g.DeadLetterTo("mem://dead", codec.JSON{})
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, unsub := bus.Subscribe("out", 16)
	defer unsub()
	dead, unsubDead := bus.Subscribe("dead", 16)
	defer unsubDead()
	_, stop := runMem(t, r)
	for _, want := range []string{`{"n":0}`, `{"n":1}`, `{"n":3}`, `{"n":4}`, `{"n":5}`} {
		if got := string(recv(t, out).Payload); got != want {
			t.Fatalf("out %s, want %s", got, want)
		}
	}
	if d := recv(t, dead); d.Payload == nil {
		t.Fatal("no dead letter for the bad payload")
	}
	<-src.served
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	for i := range src.payloads {
		if len(src.acks[i]) != 1 || src.acks[i][0] != nil {
			t.Fatalf("message %d acked %v, want once with nil", i, src.acks[i])
		}
	}
}

package pipeline_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// asyncSink confirms publishes from another goroutine and rejects payload
// "bad" permanently, the way a broker reports a policy violation after the
// hand-off.
type asyncSink struct {
	env pipeline.BuildEnv
	wg  sync.WaitGroup
}

func (s *asyncSink) Scheme() string { return "async" }
func (s *asyncSink) Build(_ context.Context, env pipeline.BuildEnv) (pipeline.Connector, error) {
	s.env = env
	return s, nil
}
func (s *asyncSink) Publish(context.Context, string, any, *pipeline.Envelope) error {
	return errors.New("sync path not used")
}
func (s *asyncSink) Close(context.Context) error { s.wg.Wait(); return nil }
func (s *asyncSink) PublishAsync(ctx context.Context, dest string, _ any, env *pipeline.Envelope) error {
	kept := pipeline.Envelope{Payload: append([]byte(nil), env.Payload...), Topic: dest, Ack: env.Ack}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if string(kept.Payload) != `"bad"` {
			kept.Ack.Done()
			return
		}
		err := s.env.DeadLetter(context.Background(), &kept, dest, errors.New("policy violation"))
		kept.Ack.Finish(err)
	}()
	return nil
}

func TestAsyncPermanentFailureIsDeadLettered(t *testing.T) {
	bus := mem.NewBus()
	g := pipeline.New().Connector("", mem.New(bus)).Connector("", &asyncSink{})
	g.Record("in").From("mem://in", codec.JSON{})
	g.Pipeline("p").From("in").To("async://out", codec.JSON{})
	g.DeadLetterTo("mem://dlq", codec.Raw{})
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dlq, unsub := bus.Subscribe("dlq", 4)
	defer unsub()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	waitReady(t, r)
	for _, p := range []string{`"good"`, `"bad"`} {
		e := pipeline.Envelope{Payload: []byte(p)}
		if err := bus.Publish(ctx, "in", &e); err != nil {
			t.Fatal(err)
		}
	}
	d := recv(t, dlq)
	for _, want := range []string{`"stage":"publish"`, "policy violation", `async://out`, `\"bad\"`} {
		if !strings.Contains(string(d.Payload), want) {
			t.Fatalf("dead letter %s lacks %s", d.Payload, want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := r.Stats().DeadLetters; n != 1 {
		t.Fatalf("dead letters = %d, want 1", n)
	}
}

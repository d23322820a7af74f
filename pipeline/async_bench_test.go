package pipeline_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// batchSink confirms publishes in order on one goroutine, as a broker
// client's completion loop does.
type batchSink struct {
	acks chan *pipeline.Ack
	wg   sync.WaitGroup
}

func newBatchSink() *batchSink {
	s := &batchSink{acks: make(chan *pipeline.Ack, 1024)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for a := range s.acks {
			a.Done()
		}
	}()
	return s
}

func (s *batchSink) Scheme() string { return "batch" }
func (s *batchSink) Build(context.Context, pipeline.BuildEnv) (pipeline.Connector, error) {
	return s, nil
}
func (s *batchSink) Publish(context.Context, string, any, *pipeline.Envelope) error {
	return errors.New("sync path not used")
}
func (s *batchSink) Close(context.Context) error { close(s.acks); s.wg.Wait(); return nil }
func (s *batchSink) PublishAsync(_ context.Context, _ string, _ any, env *pipeline.Envelope) error {
	s.acks <- env.Ack
	return nil
}

// manySource dispatches n raw messages with acks and ends.
type manySource struct {
	n       int
	settled sync.WaitGroup
}

func (s *manySource) Scheme() string { return "many" }
func (s *manySource) Build(context.Context, pipeline.BuildEnv) (pipeline.Connector, error) {
	return s, nil
}
func (s *manySource) Publish(context.Context, string, any, *pipeline.Envelope) error {
	return errors.New("source only")
}
func (s *manySource) Close(context.Context) error         { return nil }
func (s *manySource) Finite([]pipeline.Subscription) bool { return true }
func (s *manySource) Settle(uint64, error)                { s.settled.Done() }
func (s *manySource) Serve(ctx context.Context, _ []pipeline.Subscription, d pipeline.Dispatcher) error {
	payload := []byte(`{"temp":30}`)
	acks := make([]pipeline.Ack, s.n)
	s.settled.Add(s.n)
	for i := 0; i < s.n; i++ {
		pipeline.InitAck(&acks[i], s, uint64(i))
		env := pipeline.Envelope{Topic: "in", Payload: payload, Ack: &acks[i]}
		if err := d.Dispatch(ctx, &env); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkAsyncPublishPath is the runner's cost per record between a
// source and an asynchronous publisher: dispatch, buffer, outbound loop,
// the ack share and its settlement.
func BenchmarkAsyncPublishPath(b *testing.B) {
	b.ReportAllocs()
	src := &manySource{n: b.N}
	g := pipeline.New().Connector("", newBatchSink()).Connector("", src)
	g.Record("in").From("many://in", codec.Raw{})
	g.Pipeline("p").From("in").To("batch://out", codec.Raw{})
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	if err := r.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	src.settled.Wait()
}

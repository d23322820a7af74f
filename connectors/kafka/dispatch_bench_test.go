package kafka

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	kafkago "github.com/segmentio/kafka-go"
)

// settlingDispatcher acknowledges every record it is handed, as a sink
// that finished at once would, and closes done after offset last.
type settlingDispatcher struct {
	last int64
	done chan struct{}
}

func (d settlingDispatcher) Dispatch(_ context.Context, env *pipeline.Envelope) error {
	env.Ack.Done()
	if env.Offset == d.last {
		close(d.done)
	}
	return nil
}

// BenchmarkDispatchPath measures the consume side's own cost per record:
// a fetcher hands records to the dispatch goroutine, which tracks each in
// the watermark, dispatches it with an ack, and the ack settles. The
// pipeline behind the dispatcher does nothing.
func BenchmarkDispatchPath(b *testing.B) {
	c := &conn{log: slog.New(slog.DiscardHandler)}
	s := newSource(c)
	p := &partition{topic: "t", log: c.log, committed: -1, space: make(chan struct{}, 1)}
	p.pass = newPass(p, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := settlingDispatcher{last: int64(b.N - 1), done: make(chan struct{})}
	stopped := make(chan struct{})
	go func() { defer close(stopped); s.dispatch(ctx, d) }()
	payload := []byte(`{"device":"d-1","temp":27.5,"seq":1}`)
	msg := kafkago.Message{Topic: "t", Value: payload, Key: []byte("d-1"), Time: time.Now()}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msg.Offset = int64(i)
		if !s.enqueue(ctx, p, 0, &msg) {
			b.Fatal("enqueue failed")
		}
	}
	<-d.done
	b.StopTimer()
	p.mu.Lock()
	off, _ := p.pass.commitOffset()
	p.mu.Unlock()
	if off != int64(b.N) {
		b.Fatalf("watermark %d, want %d", off, b.N)
	}
	cancel()
	<-stopped
}

package kafka

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	kafkago "github.com/segmentio/kafka-go"
)

// recordingDispatcher records the offsets dispatched and settles each
// record with outcome(offset) synchronously; after is called after each.
type recordingDispatcher struct {
	mu      sync.Mutex
	offs    []int64
	outcome func(off int64) error
	after   func(off int64)
}

func (d *recordingDispatcher) Dispatch(_ context.Context, env *pipeline.Envelope) error {
	d.mu.Lock()
	d.offs = append(d.offs, env.Offset)
	d.mu.Unlock()
	env.Ack.Finish(d.outcome(env.Offset))
	if d.after != nil {
		d.after(env.Offset)
	}
	return nil
}

func testSource() (*source, *partition) {
	c := &conn{log: slog.New(slog.DiscardHandler)}
	s := newSource(c)
	p := &partition{topic: "t", log: c.log, committed: -1, space: make(chan struct{}, 1)}
	p.pass = newPass(p, 0)
	return s, p
}

// TestDispatchStopsAtNack: once a record of a batch is nacked, the rest of
// the batch is not dispatched (it is fetched again after the rewind), the
// partition is marked nacked and the watermark stays at the failed record.
func TestDispatchStopsAtNack(t *testing.T) {
	s, p := testSource()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := int64(0); i < 5; i++ {
		if !s.enqueue(ctx, p, 0, &kafkago.Message{Topic: "t", Offset: i}) {
			t.Fatal("enqueue failed")
		}
	}
	nacked := make(chan struct{})
	d := &recordingDispatcher{
		outcome: func(off int64) error {
			if off == 2 {
				return errors.New("sink failed")
			}
			return nil
		},
		after: func(off int64) {
			if off == 2 {
				close(nacked)
			}
		},
	}
	stopped := make(chan struct{})
	go func() { defer close(stopped); s.dispatch(ctx, d) }()
	<-nacked
	cancel()
	<-stopped
	if len(d.offs) != 3 || d.offs[0] != 0 || d.offs[1] != 1 || d.offs[2] != 2 {
		t.Fatalf("dispatched %v, want [0 1 2]", d.offs)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	off, _ := p.pass.commitOffset()
	if !p.nacked || off != 2 || p.pass.pending.Load() != 0 {
		t.Fatalf("nacked %v watermark %d pending %d, want true 2 0", p.nacked, off, p.pass.pending.Load())
	}
	// A record fetched after the nack is not queued.
	p.mu.Unlock()
	ok := s.enqueue(context.Background(), p, 0, &kafkago.Message{Topic: "t", Offset: 5})
	p.mu.Lock()
	if !ok || len(p.q) != 0 {
		t.Fatalf("enqueue after nack: %v, queue %d", ok, len(p.q))
	}
}

// TestDispatchInOrderWithBackpressure: a fetcher far ahead of dispatch is
// held at queueMax queued records, and every record reaches the pipeline
// once, in offset order; the watermark reaches the end.
func TestDispatchInOrderWithBackpressure(t *testing.T) {
	const n = 10 * queueMax
	s, p := testSource()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	maxQueued := 0
	d := &recordingDispatcher{
		outcome: func(int64) error { return nil },
		after: func(off int64) {
			p.mu.Lock()
			maxQueued = max(maxQueued, len(p.q))
			p.mu.Unlock()
			if off == n-1 {
				close(done)
			}
		},
	}
	stopped := make(chan struct{})
	go func() { defer close(stopped); s.dispatch(ctx, d) }()
	for i := int64(0); i < n; i++ {
		if !s.enqueue(ctx, p, 0, &kafkago.Message{Topic: "t", Offset: i}) {
			t.Fatal("enqueue failed")
		}
	}
	<-done
	cancel()
	<-stopped
	if len(d.offs) != n {
		t.Fatalf("dispatched %d records, want %d", len(d.offs), n)
	}
	for i, off := range d.offs {
		if off != int64(i) {
			t.Fatalf("record %d has offset %d", i, off)
		}
	}
	if maxQueued > queueMax {
		t.Fatalf("%d records queued, want at most %d", maxQueued, queueMax)
	}
	p.mu.Lock()
	off, _ := p.pass.commitOffset()
	p.mu.Unlock()
	if off != n {
		t.Fatalf("watermark %d, want %d", off, n)
	}
}

// TestEnqueueBounded: a fetcher whose queue holds queueMax records waits
// for dispatch to take them instead of queueing more (here until its
// context ends).
func TestEnqueueBounded(t *testing.T) {
	s, p := testSource()
	for i := int64(0); i < queueMax; i++ {
		if !s.enqueue(context.Background(), p, 0, &kafkago.Message{Topic: "t", Offset: i}) {
			t.Fatal("enqueue failed")
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if s.enqueue(ctx, p, 0, &kafkago.Message{Topic: "t", Offset: queueMax}) {
		t.Fatal("enqueue into a full queue returned true")
	}
	if len(p.q) != queueMax {
		t.Fatalf("queue holds %d records, want %d", len(p.q), queueMax)
	}
}

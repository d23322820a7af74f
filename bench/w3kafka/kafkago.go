package w3kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// WriteChunk is the most messages the kafka-go loop hands to one
// WriteMessages call.
const WriteChunk = 256

// MaxInFlight bounds the output messages the hand-written loops have
// produced but not yet seen acknowledged; the loop waits beyond it, so
// memory stays bounded when the broker is slower than the input.
const MaxInFlight = 10_000

// inRef is the input record an output message came from.
type inRef struct {
	part int
	off  int64
}

// KafkaGo runs the hand-written kafka-go loop until every input offset is
// committed (see the package documentation).
func KafkaGo(ctx context.Context, job Job) (Result, error) {
	// CommitInterval 0: CommitMessages commits synchronously, and only
	// what the committer below hands it.
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: job.Brokers, GroupID: job.Group, Topic: Input,
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 500 * time.Millisecond, QueueCapacity: 1024,
		StartOffset: kafkago.FirstOffset, HeartbeatInterval: time.Second, SessionTimeout: 10 * time.Second})
	var (
		mu       sync.Mutex
		wake     = sync.NewCond(&mu)
		marks    Watermarks
		inFlight int
		failure  error // the first produce or bookkeeping error
	)
	fail := func(err error) { // with mu held
		if failure == nil {
			failure = err
		}
	}
	w := &kafkago.Writer{Addr: kafkago.TCP(job.Brokers...), Topic: job.Output, Balancer: kafkago.Murmur2Balancer{Consistent: true},
		RequiredAcks: kafkago.RequireAll, BatchSize: BatchSize, BatchTimeout: Linger, Transport: &kafkago.Transport{},
		Async: true,
		Completion: func(msgs []kafkago.Message, err error) {
			mu.Lock()
			defer mu.Unlock()
			inFlight -= len(msgs)
			wake.Broadcast()
			if err != nil {
				// Not finished, so never committed: redelivered after a restart.
				fail(fmt.Errorf("w3 kafka-go: produce: %w", err))
				return
			}
			for i := range msgs {
				ref := msgs[i].WriterData.(*inRef)
				if err := marks.Finish(ref.part, ref.off); err != nil {
					fail(err)
				}
			}
		}}

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fetched := make(chan kafkago.Message, 1024)
	go func() {
		defer close(fetched)
		for {
			m, err := r.FetchMessage(rctx)
			if err != nil {
				return
			}
			select {
			case fetched <- m:
			case <-rctx.Done():
				return
			}
		}
	}()

	// The loop: filter, record every taken-in offset (finishing the
	// filtered ones), then hand the passing ones to the async writer.
	loopErr := make(chan error, 1)
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		type taken struct {
			part int
			off  int64
			pass bool
		}
		var f Filter
		in := make([]taken, 0, 4*WriteChunk)
		out := make([]kafkago.Message, 0, WriteChunk)
		for m := range fetched {
			in, out = in[:0], out[:0]
			// WriterData points into refs: a fresh array per chunk,
			// since completions read it after WriteMessages returns.
			refs := make([]inRef, 0, WriteChunk)
			take := func(m kafkago.Message) {
				pass := f.Pass(m.Value)
				in = append(in, taken{m.Partition, m.Offset, pass})
				if pass {
					refs = append(refs, inRef{m.Partition, m.Offset})
					out = append(out, kafkago.Message{Key: m.Key, Value: m.Value, Headers: m.Headers, WriterData: &refs[len(refs)-1]})
				}
			}
			take(m)
		drain:
			for len(out) < WriteChunk && len(in) < cap(in) {
				select {
				case m, ok := <-fetched:
					if !ok {
						break drain
					}
					take(m)
				default:
					break drain
				}
			}
			mu.Lock()
			for failure == nil && inFlight > 0 && inFlight+len(out) > MaxInFlight {
				wake.Wait()
			}
			// Offsets are taken in before their output can complete.
			for _, t := range in {
				if err := marks.Add(t.part, t.off); err != nil {
					fail(err)
				} else if !t.pass {
					_ = marks.Finish(t.part, t.off) // just added: cannot fail
				}
			}
			inFlight += len(out)
			err := failure
			mu.Unlock()
			if err != nil {
				loopErr <- err
				return
			}
			if len(out) > 0 {
				// Async: returns once the messages are queued.
				if err := w.WriteMessages(rctx, out...); err != nil {
					if rctx.Err() == nil {
						loopErr <- fmt.Errorf("w3 kafka-go: write: %w", err)
					}
					return
				}
			}
		}
	}()

	var ms []Mark
	commit := func(ctx context.Context) error {
		mu.Lock()
		ms = marks.Advanced(ms[:0])
		mu.Unlock()
		if len(ms) == 0 {
			return nil
		}
		msgs := make([]kafkago.Message, len(ms))
		for i, m := range ms {
			// CommitMessages commits a message's offset + 1.
			msgs[i] = kafkago.Message{Topic: Input, Partition: m.Partition, Offset: m.Next - 1}
		}
		if err := r.CommitMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("w3 kafka-go: commit: %w", err)
		}
		return nil
	}
	commitDone, failed := commitEvery(rctx, commit, loopErr)

	res, err := waitDone(ctx, job, failed)
	// Shut down: stop fetching, let the loop finish, flush the writer (Close
	// waits for every completion), then commit what is finished.
	cancel()
	<-loopDone
	<-commitDone
	err = errors.Join(err, w.Close())
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer fcancel()
	err = errors.Join(err, commit(fctx))
	mu.Lock()
	err = errors.Join(err, failure)
	mu.Unlock()
	err = errors.Join(err, r.Close())
	return res, err
}

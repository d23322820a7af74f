package buffer

import (
	"context"
	"sync"
	"sync/atomic"
)

type queue[T any] struct {
	mu        sync.Mutex
	_         [56]byte      // keep events off the mutex's cache line: spinning readers poll it
	events    atomic.Uint64 // bumped by every Push and Close, for spinning readers
	_         [56]byte
	size      int
	closed    bool
	pushed    uint64
	delivered uint64
	readers   []*queueReader[T]
	writer    waiter // the writer parks here while some reader is full
	// last is the most recent value when there was no reader to hold it;
	// with readers, the value stays in their slots (consumed slots are not
	// cleared: that would cost a write per value, and retention is bounded
	// by the queue size).
	last T
}

func newQueue[T any](n int) *queue[T] {
	return &queue[T]{size: n, writer: newWaiter()}
}

func (q *queue[T]) Config() Config { return Config{Kind: Queue, Size: q.size} }

func (q *queue[T]) full() bool {
	for _, rd := range q.readers {
		if rd.n == len(rd.items) {
			return true
		}
	}
	return false
}

// PushBatch implements BatchPusher: vs are pushed in order under one lock
// acquisition while every reader has room; when one is full the readers
// are woken and the writer waits, as in Push.
func (q *queue[T]) PushBatch(ctx context.Context, vs []T) (int, error) {
	q.mu.Lock()
	wake := func() {
		for _, rd := range q.readers {
			rd.w.wake()
		}
		q.events.Add(1)
	}
	for i := 0; i < len(vs); {
		if q.closed {
			q.mu.Unlock()
			return i, ErrClosed
		}
		if q.full() {
			if i > 0 {
				q.last = vs[i-1]
			}
			wake()
			q.writer.waiting = true
			if err := q.writer.park(ctx, &q.mu); err != nil {
				return i, err
			}
			q.mu.Lock()
			continue
		}
		q.put(vs[i])
		i++
	}
	if len(vs) > 0 {
		q.last = vs[len(vs)-1]
	}
	wake()
	q.mu.Unlock()
	return len(vs), nil
}

// put appends v to every reader's slots; the caller holds mu and made
// sure every reader has room.
func (q *queue[T]) put(v T) {
	for _, rd := range q.readers {
		rd.items[(rd.start+rd.n)%len(rd.items)] = v
		rd.n++
		rd.written++
	}
	q.pushed++
}

func (q *queue[T]) Push(ctx context.Context, v T) error {
	q.mu.Lock()
	for {
		if q.closed {
			q.mu.Unlock()
			return ErrClosed
		}
		if !q.full() {
			break
		}
		q.writer.waiting = true
		if err := q.writer.park(ctx, &q.mu); err != nil {
			return err
		}
		q.mu.Lock()
	}
	q.last = v
	q.put(v)
	for _, rd := range q.readers {
		rd.w.wake()
	}
	q.events.Add(1)
	q.mu.Unlock()
	return nil
}

func (q *queue[T]) Last() (v T, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pushed == 0 {
		return v, false
	}
	return q.last, true
}

func (q *queue[T]) Subscribe() Reader[T] {
	q.mu.Lock()
	defer q.mu.Unlock()
	rd := &queueReader[T]{q: q, items: make([]T, q.size), w: newWaiter()}
	q.readers = append(q.readers, rd)
	return rd
}

func (q *queue[T]) Close() {
	q.mu.Lock()
	q.closed = true
	q.events.Add(1)
	for _, rd := range q.readers {
		rd.w.wake()
	}
	q.writer.wake()
	q.mu.Unlock()
}

func (q *queue[T]) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := Stats{Kind: Queue, Capacity: q.size, Pushed: q.pushed, Delivered: q.delivered, Readers: len(q.readers)}
	for _, rd := range q.readers {
		s.Occupancy = max(s.Occupancy, rd.n)
	}
	return s
}

type queueReader[T any] struct {
	q       *queue[T]
	items   []T
	start   int
	n       int
	written uint64 // values ever pushed to this reader
	w       waiter
	closed  bool
}

func (rd *queueReader[T]) next() (v T, ok bool, err error) {
	q := rd.q
	if rd.n > 0 && !rd.closed {
		v = rd.items[rd.start]
		// Clear the slot: a read value must not stay reachable from the
		// buffer (it would keep its payload and decoded value alive); Last
		// keeps its own copy of the newest value.
		var zero T
		rd.items[rd.start] = zero
		rd.start = (rd.start + 1) % len(rd.items)
		rd.n--
		q.delivered++
		q.writer.wake()
		return v, true, nil
	}
	if q.closed || rd.closed {
		return v, false, ErrClosed
	}
	return v, false, nil
}

func (rd *queueReader[T]) TryRecv() (T, bool, error) {
	rd.q.mu.Lock()
	defer rd.q.mu.Unlock()
	return rd.next()
}

func (rd *queueReader[T]) Recv(ctx context.Context) (T, error) {
	spun := false
	for {
		rd.q.mu.Lock()
		v, ok, err := rd.next()
		if ok || err != nil {
			rd.q.mu.Unlock()
			return v, err
		}
		if !spun {
			seen := rd.q.events.Load()
			rd.q.mu.Unlock()
			spun = true
			spin(&rd.q.events, seen)
			continue
		}
		spun = false
		rd.w.waiting = true
		if err := rd.w.park(ctx, &rd.q.mu); err != nil {
			return v, err
		}
	}
}

// Close unsubscribes; values still queued for this reader are discarded and
// the writer no longer waits for it. A reader that must not lose values
// drains with TryRecv before closing.
func (rd *queueReader[T]) Close() {
	q := rd.q
	q.mu.Lock()
	defer q.mu.Unlock()
	rd.closed = true
	rd.w.wake()
	q.readers = removeReader(q.readers, rd)
	q.writer.wake()
}

func (rd *queueReader[T]) RecvBatch(ctx context.Context, dst []T) (int, error) {
	if len(dst) == 0 {
		return 0, nil
	}
	spun := false
	for {
		rd.q.mu.Lock()
		v, ok, err := rd.next()
		if err != nil {
			rd.q.mu.Unlock()
			return 0, err
		}
		if ok {
			dst[0] = v
			n := 1
			for n < len(dst) {
				// Within one lock the writer cannot push, so no lag can
				// appear after the first value; a closed end is reported
				// by the next call.
				v, ok, err := rd.next()
				if !ok || err != nil {
					break
				}
				dst[n] = v
				n++
			}
			rd.q.mu.Unlock()
			return n, nil
		}
		if !spun {
			seen := rd.q.events.Load()
			rd.q.mu.Unlock()
			spun = true
			spin(&rd.q.events, seen)
			continue
		}
		spun = false
		rd.w.waiting = true
		if err := rd.w.park(ctx, &rd.q.mu); err != nil {
			return 0, err
		}
	}
}

package buffer

import (
	"context"
	"sync"
	"sync/atomic"
)

type latest[T any] struct {
	mu        sync.Mutex
	_         [56]byte      // keep events off the mutex's cache line: spinning readers poll it
	events    atomic.Uint64 // bumped by every Push and Close, for spinning readers
	_         [56]byte
	val       T
	version   uint64 // number of values pushed
	closed    bool
	readers   []*latestReader[T]
	delivered uint64
	dropped   uint64
}

func newLatest[T any]() *latest[T] { return &latest[T]{} }

func (l *latest[T]) Config() Config { return Config{Kind: Latest} }

func (l *latest[T]) Push(_ context.Context, v T) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.val = v
	l.version++
	for _, rd := range l.readers {
		rd.w.wake()
	}
	l.events.Add(1)
	l.mu.Unlock()
	return nil
}

func (l *latest[T]) Last() (T, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.val, l.version > 0
}

func (l *latest[T]) Subscribe() Reader[T] {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := l.version
	if seen > 0 {
		seen-- // a new reader first receives the current value
	}
	rd := &latestReader[T]{l: l, seen: seen, w: newWaiter()}
	l.readers = append(l.readers, rd)
	return rd
}

func (l *latest[T]) Close() {
	l.mu.Lock()
	l.closed = true
	l.events.Add(1)
	for _, rd := range l.readers {
		rd.w.wake()
	}
	l.mu.Unlock()
}

func (l *latest[T]) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Stats{Kind: Latest, Capacity: 1, Pushed: l.version, Delivered: l.delivered,
		Dropped: l.dropped, Readers: len(l.readers)}
	for _, rd := range l.readers {
		if rd.seen < l.version {
			s.Occupancy = 1
		}
	}
	return s
}

type latestReader[T any] struct {
	l      *latest[T]
	seen   uint64
	w      waiter
	closed bool
}

func (rd *latestReader[T]) next() (v T, ok bool, err error) {
	l := rd.l
	if rd.seen < l.version {
		l.dropped += l.version - rd.seen - 1
		rd.seen = l.version
		l.delivered++
		return l.val, true, nil
	}
	if l.closed || rd.closed {
		return v, false, ErrClosed
	}
	return v, false, nil
}

func (rd *latestReader[T]) TryRecv() (T, bool, error) {
	rd.l.mu.Lock()
	defer rd.l.mu.Unlock()
	return rd.next()
}

func (rd *latestReader[T]) Recv(ctx context.Context) (T, error) {
	spun := false
	for {
		rd.l.mu.Lock()
		v, ok, err := rd.next()
		if ok || err != nil {
			rd.l.mu.Unlock()
			return v, err
		}
		if !spun {
			seen := rd.l.events.Load()
			rd.l.mu.Unlock()
			spun = true
			spin(&rd.l.events, seen)
			continue
		}
		spun = false
		rd.w.waiting = true
		if err := rd.w.park(ctx, &rd.l.mu); err != nil {
			return v, err
		}
	}
}

func (rd *latestReader[T]) Close() {
	l := rd.l
	l.mu.Lock()
	defer l.mu.Unlock()
	rd.closed = true
	rd.w.wake()
	l.readers = removeReader(l.readers, rd)
}

func (rd *latestReader[T]) RecvBatch(ctx context.Context, dst []T) (int, error) {
	if len(dst) == 0 {
		return 0, nil
	}
	spun := false
	for {
		rd.l.mu.Lock()
		v, ok, err := rd.next()
		if err != nil {
			rd.l.mu.Unlock()
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
			rd.l.mu.Unlock()
			return n, nil
		}
		if !spun {
			seen := rd.l.events.Load()
			rd.l.mu.Unlock()
			spun = true
			spin(&rd.l.events, seen)
			continue
		}
		spun = false
		rd.w.waiting = true
		if err := rd.w.park(ctx, &rd.l.mu); err != nil {
			return 0, err
		}
	}
}

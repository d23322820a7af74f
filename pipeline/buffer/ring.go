package buffer

import (
	"context"
	"sync"
	"sync/atomic"
)

type ring[T any] struct {
	mu        sync.Mutex
	_         [56]byte      // keep events off the mutex's cache line: spinning readers poll it
	events    atomic.Uint64 // bumped by every Push and Close, for spinning readers
	_         [56]byte
	slots     []T
	head      uint64 // sequence number of the next write
	closed    bool
	readers   []*ringReader[T]
	delivered uint64
	lagged    uint64
}

func newRing[T any](n int) *ring[T] {
	return &ring[T]{slots: make([]T, n)}
}

func (r *ring[T]) Config() Config { return Config{Kind: Ring, Size: len(r.slots)} }

func (r *ring[T]) Push(_ context.Context, v T) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	r.slots[r.head%uint64(len(r.slots))] = v
	r.head++
	for _, rd := range r.readers {
		rd.w.wake()
	}
	r.events.Add(1)
	r.mu.Unlock()
	return nil
}

func (r *ring[T]) Last() (v T, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.head == 0 {
		return v, false
	}
	return r.slots[(r.head-1)%uint64(len(r.slots))], true
}

func (r *ring[T]) Subscribe() Reader[T] {
	r.mu.Lock()
	defer r.mu.Unlock()
	rd := &ringReader[T]{r: r, pos: r.head, w: newWaiter()}
	r.readers = append(r.readers, rd)
	return rd
}

func (r *ring[T]) Close() {
	r.mu.Lock()
	r.closed = true
	r.events.Add(1)
	for _, rd := range r.readers {
		rd.w.wake()
	}
	r.mu.Unlock()
}

func (r *ring[T]) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{Kind: Ring, Capacity: len(r.slots), Pushed: r.head, Delivered: r.delivered,
		Lagged: r.lagged, Readers: len(r.readers)}
	for _, rd := range r.readers {
		if occ := int(min(r.head-rd.pos, uint64(len(r.slots)))); occ > s.Occupancy {
			s.Occupancy = occ
		}
	}
	return s
}

type ringReader[T any] struct {
	r      *ring[T]
	pos    uint64
	w      waiter
	closed bool
	// lag is the reader's one LagError, reused so that a lagging reader
	// does not allocate (see LagError).
	lag LagError
}

// next must be called with the lock held.
func (rd *ringReader[T]) next() (v T, ok bool, err error) {
	r := rd.r
	n := uint64(len(r.slots))
	if r.head > n && rd.pos < r.head-n {
		missed := r.head - n - rd.pos
		rd.pos = r.head - n
		r.lagged += missed
		rd.lag.Missed = missed
		return v, false, &rd.lag
	}
	if rd.pos < r.head {
		v = r.slots[rd.pos%n]
		rd.pos++
		r.delivered++
		return v, true, nil
	}
	if r.closed || rd.closed {
		return v, false, ErrClosed
	}
	return v, false, nil
}

func (rd *ringReader[T]) TryRecv() (T, bool, error) {
	rd.r.mu.Lock()
	defer rd.r.mu.Unlock()
	return rd.next()
}

func (rd *ringReader[T]) Recv(ctx context.Context) (T, error) {
	spun := false
	for {
		rd.r.mu.Lock()
		v, ok, err := rd.next()
		if ok || err != nil {
			rd.r.mu.Unlock()
			return v, err
		}
		if !spun {
			seen := rd.r.events.Load()
			rd.r.mu.Unlock()
			spun = true
			spin(&rd.r.events, seen)
			continue
		}
		spun = false
		rd.w.waiting = true
		if err := rd.w.park(ctx, &rd.r.mu); err != nil {
			return v, err
		}
	}
}

func (rd *ringReader[T]) Close() {
	r := rd.r
	r.mu.Lock()
	defer r.mu.Unlock()
	rd.closed = true
	rd.w.wake()
	r.readers = removeReader(r.readers, rd)
}

func (rd *ringReader[T]) RecvBatch(ctx context.Context, dst []T) (int, error) {
	if len(dst) == 0 {
		return 0, nil
	}
	spun := false
	for {
		rd.r.mu.Lock()
		v, ok, err := rd.next()
		if err != nil {
			rd.r.mu.Unlock()
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
			rd.r.mu.Unlock()
			return n, nil
		}
		if !spun {
			seen := rd.r.events.Load()
			rd.r.mu.Unlock()
			spun = true
			spin(&rd.r.events, seen)
			continue
		}
		spun = false
		rd.w.waiting = true
		if err := rd.w.park(ctx, &rd.r.mu); err != nil {
			return 0, err
		}
	}
}

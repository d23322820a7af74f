package buffer

import (
	"context"
	"sync"
	"sync/atomic"
)

type mailbox[T any] struct {
	mu        sync.Mutex
	_         [56]byte      // keep events off the mutex's cache line: spinning readers poll it
	events    atomic.Uint64 // bumped by every Push and Close, for spinning readers
	_         [56]byte
	val       T
	full      bool
	closed    bool
	pushed    uint64
	delivered uint64
	dropped   uint64
	readers   []*mailboxReader[T]
}

func newMailbox[T any]() *mailbox[T] { return &mailbox[T]{} }

func (m *mailbox[T]) Config() Config { return Config{Kind: Mailbox} }

func (m *mailbox[T]) Push(_ context.Context, v T) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	if m.full {
		m.dropped++
	}
	m.val = v
	m.full = true
	m.pushed++
	// Readers compete for the slot: waking one is enough, but a woken reader
	// may have been cancelled meanwhile, so wake all and let them race.
	for _, rd := range m.readers {
		rd.w.wake()
	}
	m.events.Add(1)
	m.mu.Unlock()
	return nil
}

func (m *mailbox[T]) Last() (T, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.val, m.pushed > 0
}

func (m *mailbox[T]) Subscribe() Reader[T] {
	m.mu.Lock()
	defer m.mu.Unlock()
	rd := &mailboxReader[T]{m: m, w: newWaiter()}
	m.readers = append(m.readers, rd)
	return rd
}

func (m *mailbox[T]) Close() {
	m.mu.Lock()
	m.closed = true
	m.events.Add(1)
	for _, rd := range m.readers {
		rd.w.wake()
	}
	m.mu.Unlock()
}

func (m *mailbox[T]) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Stats{Kind: Mailbox, Capacity: 1, Pushed: m.pushed, Delivered: m.delivered,
		Dropped: m.dropped, Readers: len(m.readers)}
	if m.full {
		s.Occupancy = 1
	}
	return s
}

type mailboxReader[T any] struct {
	m      *mailbox[T]
	w      waiter
	closed bool
}

func (rd *mailboxReader[T]) next() (v T, ok bool, err error) {
	m := rd.m
	if m.full && !rd.closed {
		v = m.val // kept in the slot: Last reports it
		m.full = false
		m.delivered++
		return v, true, nil
	}
	if m.closed || rd.closed {
		return v, false, ErrClosed
	}
	return v, false, nil
}

func (rd *mailboxReader[T]) TryRecv() (T, bool, error) {
	rd.m.mu.Lock()
	defer rd.m.mu.Unlock()
	return rd.next()
}

func (rd *mailboxReader[T]) Recv(ctx context.Context) (T, error) {
	spun := false
	for {
		rd.m.mu.Lock()
		v, ok, err := rd.next()
		if ok || err != nil {
			rd.m.mu.Unlock()
			return v, err
		}
		if !spun {
			seen := rd.m.events.Load()
			rd.m.mu.Unlock()
			spun = true
			spin(&rd.m.events, seen)
			continue
		}
		spun = false
		rd.w.waiting = true
		if err := rd.w.park(ctx, &rd.m.mu); err != nil {
			return v, err
		}
	}
}

func (rd *mailboxReader[T]) Close() {
	m := rd.m
	m.mu.Lock()
	defer m.mu.Unlock()
	rd.closed = true
	rd.w.wake()
	m.readers = removeReader(m.readers, rd)
}

func (rd *mailboxReader[T]) RecvBatch(ctx context.Context, dst []T) (int, error) {
	if len(dst) == 0 {
		return 0, nil
	}
	spun := false
	for {
		rd.m.mu.Lock()
		v, ok, err := rd.next()
		if err != nil {
			rd.m.mu.Unlock()
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
			rd.m.mu.Unlock()
			return n, nil
		}
		if !spun {
			seen := rd.m.events.Load()
			rd.m.mu.Unlock()
			spun = true
			spin(&rd.m.events, seen)
			continue
		}
		spun = false
		rd.w.waiting = true
		if err := rd.w.park(ctx, &rd.m.mu); err != nil {
			return 0, err
		}
	}
}

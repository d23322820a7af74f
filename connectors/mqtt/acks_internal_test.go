package mqtt

import (
	"bytes"
	"io"
	"log/slog"
	"sync"
	"testing"
)

// ackWire records every write as one element, so a test sees how the
// acknowledgements were coalesced.
type ackWire struct {
	mu     sync.Mutex
	writes [][]byte
}

func (w *ackWire) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

func puback(ids ...uint16) []byte {
	var b []byte
	for _, id := range ids {
		b = append(b, 0x40, 2, byte(id>>8), byte(id))
	}
	return b
}

// TestInboundAcksInArrivalOrder drives the acknowledgement order directly:
// outcomes arrive in any order, PUBACKs leave in arrival order, every
// PUBACK ready at a flush goes out in one write, a rejected message holds
// back the later ones, and nothing is sent for a lost connection.
func TestInboundAcksInArrivalOrder(t *testing.T) {
	type step struct {
		mark   int  // index of the message to mark (-1: none)
		ok     bool // outcome of the mark
		flush  bool
		unbind bool
	}
	tests := []struct {
		name  string
		ids   []uint16
		steps []step
		want  [][]byte // the writes, in order
		acked uint64
	}{
		{
			name: "later outcomes wait for the first, then one write",
			ids:  []uint16{7, 8, 9},
			steps: []step{
				{mark: 2, ok: true, flush: true},
				{mark: 1, ok: true, flush: true},
				{mark: 0, ok: true, flush: true},
			},
			want:  [][]byte{puback(7, 8, 9)},
			acked: 3,
		},
		{
			name: "each ready prefix in its own flush",
			ids:  []uint16{1, 2, 3},
			steps: []step{
				{mark: 0, ok: true, flush: true},
				{mark: 2, ok: true, flush: true},
				{mark: 1, ok: true, flush: true},
			},
			want:  [][]byte{puback(1), puback(2, 3)},
			acked: 3,
		},
		{
			name: "a rejected message holds back the later ones",
			ids:  []uint16{1, 2, 3},
			steps: []step{
				{mark: 0, ok: true},
				{mark: 1, ok: false},
				{mark: 2, ok: true, flush: true},
			},
			want:  [][]byte{puback(1)},
			acked: 1,
		},
		{
			name: "nothing is sent for a lost connection",
			ids:  []uint16{1, 2},
			steps: []step{
				{mark: -1, unbind: true},
				{mark: 0, ok: true, flush: true},
				{mark: 1, ok: true, flush: true},
			},
			acked: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Conn{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			a := newInAcks(c, 0)
			w := &ackWire{}
			a.bind(w)
			slots := make([]*inSlot, len(tt.ids))
			for i, id := range tt.ids {
				slots[i] = a.add(id, 1, "t")
			}
			for _, s := range tt.steps {
				if s.unbind {
					a.unbind()
				}
				if s.mark >= 0 {
					a.mark(slots[s.mark], s.ok)
				}
				if s.flush {
					a.flush()
				}
			}
			if len(w.writes) != len(tt.want) {
				t.Fatalf("writes = %x, want %x", w.writes, tt.want)
			}
			for i := range tt.want {
				if !bytes.Equal(w.writes[i], tt.want[i]) {
					t.Errorf("write %d = %x, want %x", i, w.writes[i], tt.want[i])
				}
			}
			if got := c.acked.Load(); got != tt.acked {
				t.Errorf("acked = %d, want %d", got, tt.acked)
			}
		})
	}
}

// TestInboundAckSlotsReused checks that a steady flow of messages, with
// one always pending so the order never empties, reuses the slots of
// flushed acknowledgements and keeps the order's storage bounded instead
// of allocating.
func TestInboundAckSlotsReused(t *testing.T) {
	c := &Conn{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	a := newInAcks(c, 0)
	a.bind(io.Discard)
	id := uint16(1)
	prev := a.add(id, 1, "t")
	cycle := func() {
		id++
		s := a.add(id, 1, "t")
		a.mark(prev, true)
		a.flush()
		prev = s
	}
	for range 10 {
		cycle()
	}
	if n := testing.AllocsPerRun(10000, cycle); n != 0 {
		t.Errorf("%v allocations per acknowledged message, want 0", n)
	}
	if n := cap(a.cur.q); n > 16 {
		t.Errorf("the order grew to %d entries with 2 pending", n)
	}
}

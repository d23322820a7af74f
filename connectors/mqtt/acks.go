package mqtt

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho/session/state"
)

// Inbound acknowledgements.
//
// MQTT requires a client to acknowledge QoS 1 and 2 messages in the order
// they arrived. paho's manual acknowledgement mode does that, but it writes
// every PUBACK separately (one system call, and one wake-up of the broker,
// per message) and scans its whole pending list on every arrival and every
// Ack. The connector keeps the order itself instead: each inbound QoS>0
// message takes a slot in arrival order; the message's ack (when every sink
// finished with it) marks its slot; a flush sends the acknowledgements of
// every marked slot at the head of the order, all QoS 1 PUBACKs of a flush
// in one write. A flush runs ack_interval after the head of the order was
// marked, so a busy connection sends about one write per interval and an
// idle one none at all (there is no ticker).
//
// A slot belongs to one network connection. When the connection is lost,
// its pending slots are dropped unsent: their packet identifiers mean
// nothing on the next connection, and the broker redelivers those messages
// to the resumed session (at-least-once).

// slot states.
const (
	slotPending  = iota // waiting for the pipeline
	slotAcked           // finished: acknowledge once every earlier one is
	slotRejected        // rejected: never acknowledged on this connection
)

// inSlot is one inbound QoS>0 message awaiting acknowledgement. Slots are
// reused (only after their acknowledgement was flushed, so their ack
// callback has run), and fn is bound once per slot.
type inSlot struct {
	ring  *ackRing
	id    uint16
	qos   byte
	state uint8 // guarded by inAcks.mu
	topic string
	fn    func(error)
}

// ackRing is the arrival order of one network connection.
type ackRing struct {
	w    io.Writer // the connection the messages arrived on
	dead bool      // connection lost: nothing more is sent
	q    []*inSlot // q[head:] are pending, in arrival order
	head int
	free []*inSlot
}

// inAcks sends the acknowledgements of one subscribing client.
type inAcks struct {
	c        *Conn
	inner    *state.State
	interval time.Duration
	kick     chan struct{} // a flush is wanted (capacity 1)

	flushMu sync.Mutex // one flush at a time; held while the connection changes
	mu      sync.Mutex
	cur     *ackRing // nil while disconnected
	buf     []byte   // PUBACKs of one flush (flushMu)
	batch   []ackRef // slots taken by one flush (flushMu)
}

type ackRef struct {
	id  uint16
	qos byte
}

func newInAcks(c *Conn, interval time.Duration) *inAcks {
	return &inAcks{c: c, inner: state.New(newPacketStore(), newPacketStore()), interval: interval, kick: make(chan struct{}, 1)}
}

// bind starts the order of a new connection (from the session's
// ConAckReceived, before any message of it is read).
func (a *inAcks) bind(w io.Writer) {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur != nil {
		a.cur.dead = true
	}
	a.cur = &ackRing{w: w}
}

// unbind drops the order of the lost connection: its pending
// acknowledgements are never sent.
func (a *inAcks) unbind() {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur != nil {
		a.cur.dead = true
		a.cur = nil
	}
}

// add takes the next slot in arrival order for a QoS>0 message. It runs on
// paho's router goroutine, which delivers one connection's messages in
// order.
func (a *inAcks) add(id uint16, qos byte, topic string) *inSlot {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.cur
	if r == nil {
		// Read before the connection was lost: it cannot be acknowledged.
		r = &ackRing{dead: true}
	}
	var s *inSlot
	if n := len(r.free); n > 0 {
		s, r.free = r.free[n-1], r.free[:n-1]
	} else {
		s = &inSlot{ring: r}
		s.fn = func(err error) { a.c.settle(s, err) }
	}
	s.id, s.qos, s.state, s.topic = id, qos, slotPending, topic
	if !r.dead {
		if r.head > 0 && (r.head == len(r.q) || r.head*2 >= len(r.q)) {
			// Move the pending slots to the front instead of growing.
			n := copy(r.q, r.q[r.head:])
			clear(r.q[n:])
			r.q, r.head = r.q[:n], 0
		}
		r.q = append(r.q, s)
	}
	return s
}

// mark records the outcome of slot s. It reports false when s belongs to
// a lost connection (nothing will be sent for it).
func (a *inAcks) mark(s *inSlot, ok bool) bool {
	a.mu.Lock()
	r := s.ring
	if r.dead || s.state != slotPending {
		a.mu.Unlock()
		return false
	}
	if !ok {
		s.state = slotRejected
		a.mu.Unlock()
		return true
	}
	s.state = slotAcked
	head := r.q[r.head] == s
	a.mu.Unlock()
	if head {
		select {
		case a.kick <- struct{}{}:
		default: // a flush is already due
		}
	}
	return true
}

// run flushes ack_interval after each kick until ctx ends.
func (a *inAcks) run(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-a.kick:
		case <-ctx.Done():
			return
		}
		if a.interval > 0 {
			t.Reset(a.interval)
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
		a.flush()
	}
}

// flush sends the acknowledgements of the acknowledged slots at the head of
// the order: every QoS 1 PUBACK in one write; a QoS 2 PUBREC through the
// session state, which records it.
func (a *inAcks) flush() {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	a.mu.Lock()
	r := a.cur
	if r == nil {
		a.mu.Unlock()
		return
	}
	batch := a.batch[:0]
	for r.head < len(r.q) && r.q[r.head].state == slotAcked {
		s := r.q[r.head]
		r.q[r.head] = nil
		r.head++
		batch = append(batch, ackRef{s.id, s.qos})
		s.topic = ""
		r.free = append(r.free, s)
	}
	if r.head == len(r.q) {
		r.q, r.head = r.q[:0], 0
	}
	a.mu.Unlock()
	a.batch = batch
	if len(batch) == 0 {
		return
	}
	buf := a.buf[:0]
	sent := 0
	for _, ref := range batch {
		if ref.qos == 1 {
			// PUBACK, reason Success without properties: remaining length
			// 2, the packet identifier (MQTT 5, 3.4.2.1).
			buf = append(buf, packets.PUBACK<<4, 2, byte(ref.id>>8), byte(ref.id))
			continue
		}
		if !a.write(r.w, buf) {
			return
		}
		sent += len(buf) / 4
		buf = buf[:0]
		if err := a.inner.Ack(&packets.Publish{PacketID: ref.id, QoS: ref.qos}); err != nil {
			a.c.acked.Add(uint64(sent))
			return
		}
		sent++
	}
	if a.write(r.w, buf) {
		sent += len(buf) / 4
	}
	a.buf = buf
	a.c.acked.Add(uint64(sent))
}

// write sends b whole (under the connection's packet lock); on failure it
// closes the connection, so that paho notices and autopaho reconnects.
func (a *inAcks) write(w io.Writer, b []byte) bool {
	if len(b) == 0 {
		return true
	}
	if l, ok := w.(sync.Locker); ok {
		l.Lock()
		defer l.Unlock()
	}
	if _, err := w.Write(b); err != nil {
		a.c.log.Debug("mqtt: sending acknowledgements failed; reconnecting", "error", err)
		if cl, ok := w.(io.Closer); ok {
			_ = cl.Close()
		}
		return false
	}
	return true
}

package mqtt

import (
	"bytes"
	"errors"
	"io"
	"sync"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho/session/state"
)

// connSession is the session state of one client connection: paho's
// state (packet identifiers, the store of unacknowledged packets that are
// resent on a resumed session, the broker's send quota), through which the
// connector also learns of connection changes and of the broker's
// confirmations:
//
//   - a subscribing client (acks set) sends inbound acknowledgements itself
//     (inAcks) instead of paho doing it after the message handler;
//   - a publishing client (pub set) finishes its publishes from the
//     PUBACK, PUBCOMP or failing PUBREC as paho's reader goroutine hands it
//     over (publisher.confirmed), with no goroutine waiting per publish.
type connSession struct {
	*state.State
	acks *inAcks    // nil: the client does not subscribe
	pub  *publisher // nil: the client does not publish
}

func newConnSession(acks *inAcks, pub *publisher) connSession {
	var st *state.State
	if acks != nil {
		st = acks.inner
	} else {
		st = state.New(newPacketStore(), newPacketStore())
	}
	return connSession{State: st, acks: acks, pub: pub}
}

// ConAckReceived binds a new connection. Publishes awaiting confirmation
// from a session the broker did not resume are taken back for resending
// before paho's state forgets them (and may hand their identifiers out
// again).
func (s connSession) ConAckReceived(w io.Writer, cp *packets.Connect, ca *packets.Connack) error {
	if s.pub != nil && !ca.SessionPresent {
		s.pub.sessionLost()
	}
	if err := s.State.ConAckReceived(w, cp, ca); err != nil {
		return err
	}
	if s.acks != nil {
		s.acks.bind(w)
	}
	if s.pub != nil {
		s.pub.connected(w, cp, ca)
	}
	return nil
}

// ConnectionLost unbinds the connection; when the session ends with it,
// publishes awaiting confirmation are taken back for resending.
func (s connSession) ConnectionLost(dp *packets.Disconnect) error {
	if s.acks != nil {
		s.acks.unbind()
	}
	if s.pub != nil {
		s.pub.disconnected(dp)
	}
	return s.State.ConnectionLost(dp)
}

// PacketReceived passes every packet to paho's state and finishes the
// publish a final acknowledgement belongs to. The publish is taken from
// the connector's table before the state frees its packet identifier, so a
// new publish reusing the identifier cannot be mistaken for it.
func (s connSession) PacketReceived(recv *packets.ControlPacket, pubs chan<- *packets.Publish) error {
	if s.pub == nil {
		return s.State.PacketReceived(recv, pubs)
	}
	var (
		final bool // the last packet of an outgoing publish
		r     *pubReq
		code  byte
		props *packets.Properties
	)
	switch p := recv.Content.(type) {
	case *packets.Puback:
		final, code, props = true, p.ReasonCode, p.Properties
		r = s.pub.take(p.PacketID)
	case *packets.Pubcomp:
		final, code, props = true, p.ReasonCode, p.Properties
		r = s.pub.take(p.PacketID)
	case *packets.Pubrec:
		if p.ReasonCode >= 0x80 { // QoS 2 refused; otherwise PUBREL follows
			final, code, props = true, p.ReasonCode, p.Properties
			r = s.pub.take(p.PacketID)
		}
	}
	err := s.State.PacketReceived(recv, pubs)
	if final {
		// If the state knew the packet identifier, it sent the packet to
		// the shared channel: take it out (see publisher.ret).
		select {
		case <-s.pub.ret:
		default:
		}
	}
	if r != nil {
		s.pub.confirmed(r, code, props)
	}
	return err
}

// Ack is what paho calls once the message handler returned. A subscribing
// client acknowledges through inAcks, when the pipeline finished.
func (s connSession) Ack(pb *packets.Publish) error {
	if s.acks != nil {
		return nil
	}
	return s.State.Ack(pb)
}

// packetStore is an in-memory store for paho's session state that keeps
// each packet as it was put instead of serialising it on every publish;
// a packet is serialised only when the state reads it back, to resend it
// on a resumed session. Packets put in the store are never modified
// afterwards (the connector builds a new one per publish).
type packetStore struct {
	mu   sync.Mutex
	data map[uint16]storedPacket
	seq  uint64
}

type storedPacket struct {
	seq uint64
	w   io.WriterTo
}

var errNotInStore = errors.New("mqtt: packet not in the session store")

func newPacketStore() *packetStore { return &packetStore{data: map[uint16]storedPacket{}} }

func (m *packetStore) Put(id uint16, _ byte, w io.WriterTo) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	m.data[id] = storedPacket{seq: m.seq, w: w}
	return nil
}

func (m *packetStore) Get(id uint16) (io.ReadCloser, error) {
	m.mu.Lock()
	p, ok := m.data[id]
	m.mu.Unlock()
	if !ok {
		return nil, errNotInStore
	}
	var b bytes.Buffer
	if _, err := p.w.WriteTo(&b); err != nil {
		return nil, err
	}
	return io.NopCloser(&b), nil
}

func (m *packetStore) Delete(id uint16) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.data[id]; !ok {
		return errNotInStore
	}
	delete(m.data, id)
	return nil
}

func (m *packetStore) Quarantine(id uint16) error { return m.Delete(id) }

// List returns the stored identifiers in the order they were put.
func (m *packetStore) List() ([]uint16, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]uint16, 0, len(m.data))
	for id := range m.data {
		ids = append(ids, id)
	}
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && m.data[ids[j]].seq < m.data[ids[j-1]].seq; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
	return ids, nil
}

func (m *packetStore) Reset() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.data)
	return nil
}

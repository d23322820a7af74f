package knxnet

import (
	"errors"
	"fmt"
	"time"
)

// TunnelConfig configures a Tunnel. Zero durations take the defaults of
// the KNXnet/IP specification, shown with each field.
type TunnelConfig struct {
	// Control and Data are the client's endpoints sent in CONNECT_REQUEST
	// (the zero Endpoint asks the server to answer to the sender: NAT).
	Control, Data Endpoint
	// ConnectTimeout bounds the wait for CONNECT_RESPONSE (10s).
	ConnectTimeout time.Duration
	// AckTimeout bounds the wait for a TUNNELLING_ACK (1s); a request is
	// sent once more after it, and the tunnel is lost after the second.
	AckTimeout time.Duration
	// ConfirmTimeout bounds the wait for the L_Data.con of an acknowledged
	// request (3s). Zero waits for no confirmation when NoConfirm is set.
	ConfirmTimeout time.Duration
	// NoConfirm reports a request as sent on its TUNNELLING_ACK instead of
	// its L_Data.con (for gateways that send no confirmations).
	NoConfirm bool
	// Heartbeat is the interval of CONNECTIONSTATE_REQUESTs (60s).
	Heartbeat time.Duration
	// HeartbeatTimeout bounds the wait for a CONNECTIONSTATE_RESPONSE
	// (10s).
	HeartbeatTimeout time.Duration
	// HeartbeatTries is how many unanswered CONNECTIONSTATE_REQUESTs in a
	// row lose the tunnel (3).
	HeartbeatTries int
	// MaxQueue bounds the requests waiting for their turn (64).
	MaxQueue int
}

func (c *TunnelConfig) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ConnectTimeout, 10*time.Second)
	def(&c.AckTimeout, time.Second)
	def(&c.ConfirmTimeout, 3*time.Second)
	def(&c.Heartbeat, 60*time.Second)
	def(&c.HeartbeatTimeout, 10*time.Second)
	if c.HeartbeatTries <= 0 {
		c.HeartbeatTries = 3
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = 64
	}
}

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds.
const (
	// EventConnected: the tunnel is up (Channel, Address).
	EventConnected EventKind = iota + 1
	// EventIndication: a group telegram from the bus (Frame).
	EventIndication
	// EventSent: the outcome of a Send (Tag, Frame, Err nil when the
	// gateway confirmed it).
	EventSent
	// EventRejected: an input was dropped (Err, with a Reason).
	EventRejected
	// EventClosed: the tunnel ended (Err nil when closed on request).
	EventClosed
)

func (k EventKind) String() string {
	switch k {
	case EventConnected:
		return "connected"
	case EventIndication:
		return "indication"
	case EventSent:
		return "sent"
	case EventRejected:
		return "rejected"
	case EventClosed:
		return "closed"
	}
	return fmt.Sprintf("event %d", uint8(k))
}

// Event is something a Tunnel reports.
type Event struct {
	Kind    EventKind
	Frame   LData
	Tag     uint64
	Err     error
	Channel uint8
	Address IndividualAddress
}

// Errors of a Tunnel.
var (
	ErrNotConnected = errors.New("knx tunnel not connected")
	ErrQueueFull    = errors.New("knx tunnel send queue full")
	ErrClosed       = errors.New("knx tunnel closed")
)

type tunnelState uint8

const (
	stateIdle tunnelState = iota
	stateConnecting
	stateConnected
	stateDisconnecting
	stateClosed
)

type request struct {
	tag      uint64
	frame    LData
	cemi     []byte
	deadline time.Time // of its ack, then of its confirmation
}

// Tunnel is the client side of one KNXnet/IP tunnelling connection as a
// pure state machine: feed it datagrams (Handle), the passing of time
// (Tick, at Next at the latest) and requests (Connect, Send, Close), and
// take what it wants sent and what happened from Output. It does no I/O
// and reads no clock. Not safe for concurrent use.
//
// One TUNNELLING_REQUEST is outstanding at a time; it is sent again once
// when its ACK does not come within AckTimeout, and the tunnel is lost
// when the second ACK does not come either. Received requests are
// acknowledged and delivered once each, in sequence; a repeat of the last
// one is acknowledged again and dropped.
type Tunnel struct {
	cfg     TunnelConfig
	state   tunnelState
	channel uint8
	addr    IndividualAddress
	sendSeq uint8
	recvSeq uint8

	connectBy time.Time
	queue     []request // queue[0] is in flight when inflight
	inflight  bool
	retried   bool
	confirm   []request // acknowledged, waiting for L_Data.con

	hbNext    time.Time
	hbBy      time.Time
	hbTries   int
	hbWaiting bool
	closeBy   time.Time

	out    [][]byte
	events []Event
}

// NewTunnel returns a tunnel in its idle state.
func NewTunnel(cfg TunnelConfig) *Tunnel {
	cfg.defaults()
	return &Tunnel{cfg: cfg}
}

// Output returns the datagrams to send, in order, and the events since
// the last call.
func (t *Tunnel) Output() (datagrams [][]byte, events []Event) {
	datagrams, events = t.out, t.events
	t.out, t.events = nil, nil
	return datagrams, events
}

// Connected reports whether the tunnel is up.
func (t *Tunnel) Connected() bool { return t.state == stateConnected }

// Channel returns the tunnel's channel id (valid once connected).
func (t *Tunnel) Channel() uint8 { return t.channel }

// Address returns the tunnel's individual address (valid once connected).
func (t *Tunnel) Address() IndividualAddress { return t.addr }

func (t *Tunnel) emit(f Frame) { t.out = append(t.out, f.Encode(nil)) }

func (t *Tunnel) event(e Event) { t.events = append(t.events, e) }

func (t *Tunnel) reject(err error) { t.event(Event{Kind: EventRejected, Err: err}) }

// Connect sends the CONNECT_REQUEST.
func (t *Tunnel) Connect(now time.Time) {
	if t.state != stateIdle {
		return
	}
	t.state = stateConnecting
	t.connectBy = now.Add(t.cfg.ConnectTimeout)
	t.emit(Frame{Service: ConnectRequest, Control: t.cfg.Control, Data: t.cfg.Data})
}

// Send queues a group telegram (its Code, Source and Group are set
// here); its outcome is an EventSent with tag.
func (t *Tunnel) Send(now time.Time, l LData, tag uint64) error {
	if t.state != stateConnected {
		return ErrNotConnected
	}
	if len(t.queue) >= t.cfg.MaxQueue {
		return ErrQueueFull
	}
	l.Code, l.Group = LDataReq, true
	b, err := l.Encode(nil)
	if err != nil {
		return err
	}
	t.queue = append(t.queue, request{tag: tag, frame: l, cemi: b})
	t.sendNext(now)
	return nil
}

func (t *Tunnel) sendNext(now time.Time) {
	if t.state != stateConnected || t.inflight || len(t.queue) == 0 {
		return
	}
	t.inflight, t.retried = true, false
	t.queue[0].deadline = now.Add(t.cfg.AckTimeout)
	t.emit(Frame{Service: TunnellingRequest, Channel: t.channel, Seq: t.sendSeq, CEMI: t.queue[0].cemi})
}

// Close disconnects: a connected tunnel sends DISCONNECT_REQUEST and
// ends (EventClosed with a nil error) on the response or after
// AckTimeout; requests not yet sent fail with ErrClosed.
func (t *Tunnel) Close(now time.Time) {
	switch t.state {
	case stateConnected:
		t.failAll(ErrClosed)
		t.state = stateDisconnecting
		t.closeBy = now.Add(t.cfg.AckTimeout)
		t.emit(Frame{Service: DisconnectRequest, Channel: t.channel, Control: t.cfg.Control})
	case stateIdle, stateConnecting:
		t.end(nil)
	}
}

// lost ends a connected tunnel because of err, telling the server.
func (t *Tunnel) lost(err error) {
	if t.state == stateConnected {
		t.emit(Frame{Service: DisconnectRequest, Channel: t.channel, Control: t.cfg.Control})
	}
	t.end(err)
}

func (t *Tunnel) end(err error) {
	if t.state == stateClosed {
		return
	}
	cause := err
	if cause == nil {
		cause = ErrClosed
	}
	t.failAll(cause)
	t.state = stateClosed
	t.event(Event{Kind: EventClosed, Err: err})
}

func (t *Tunnel) failAll(err error) {
	for _, r := range t.confirm {
		t.event(Event{Kind: EventSent, Tag: r.tag, Frame: r.frame, Err: err})
	}
	for _, r := range t.queue {
		t.event(Event{Kind: EventSent, Tag: r.tag, Frame: r.frame, Err: err})
	}
	t.confirm, t.queue, t.inflight = nil, nil, false
}

// Next returns when Tick must be called next (the zero time: no timer
// is running).
func (t *Tunnel) Next() time.Time {
	var next time.Time
	at := func(d time.Time) {
		if !d.IsZero() && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	switch t.state {
	case stateConnecting:
		at(t.connectBy)
	case stateConnected:
		if t.inflight {
			at(t.queue[0].deadline)
		}
		if len(t.confirm) > 0 {
			at(t.confirm[0].deadline)
		}
		if t.hbWaiting {
			at(t.hbBy)
		} else {
			at(t.hbNext)
		}
	case stateDisconnecting:
		at(t.closeBy)
	}
	return next
}

// Tick runs the timers due at now: connect timeout, ACK retry and loss,
// confirmation timeouts, heartbeats.
func (t *Tunnel) Tick(now time.Time) {
	switch t.state {
	case stateConnecting:
		if !now.Before(t.connectBy) {
			t.end(fmt.Errorf("no CONNECT_RESPONSE within %v", t.cfg.ConnectTimeout))
		}
	case stateDisconnecting:
		if !now.Before(t.closeBy) {
			t.end(nil)
		}
	case stateConnected:
		if t.inflight && !now.Before(t.queue[0].deadline) {
			if t.retried {
				t.lost(fmt.Errorf("no TUNNELLING_ACK for sequence %d after one retry", t.sendSeq))
				return
			}
			t.retried = true
			t.queue[0].deadline = now.Add(t.cfg.AckTimeout)
			t.emit(Frame{Service: TunnellingRequest, Channel: t.channel, Seq: t.sendSeq, CEMI: t.queue[0].cemi})
		}
		for len(t.confirm) > 0 && !now.Before(t.confirm[0].deadline) {
			r := t.confirm[0]
			t.confirm = t.confirm[1:]
			t.event(Event{Kind: EventSent, Tag: r.tag, Frame: r.frame,
				Err: fmt.Errorf("no L_Data.con within %v", t.cfg.ConfirmTimeout)})
		}
		switch {
		case t.hbWaiting && !now.Before(t.hbBy):
			if t.hbTries >= t.cfg.HeartbeatTries {
				t.lost(fmt.Errorf("no CONNECTIONSTATE_RESPONSE to %d heartbeats", t.hbTries))
				return
			}
			t.heartbeat(now)
		case !t.hbWaiting && !now.Before(t.hbNext):
			t.hbTries = 0
			t.heartbeat(now)
		}
	}
}

func (t *Tunnel) heartbeat(now time.Time) {
	t.hbWaiting = true
	t.hbTries++
	t.hbBy = now.Add(t.cfg.HeartbeatTimeout)
	t.emit(Frame{Service: ConnectionStateRequest, Channel: t.channel, Control: t.cfg.Control})
}

// Handle takes one received datagram.
func (t *Tunnel) Handle(now time.Time, b []byte) {
	f, err := Decode(b)
	if err != nil {
		t.reject(err)
		return
	}
	if f.Service == ConnectResponse {
		t.connectResponse(now, f)
		return
	}
	if t.state != stateConnected && t.state != stateDisconnecting {
		t.reject(reasonf(ReasonUnexpected, "%s while not connected", f.Service))
		return
	}
	if f.Channel != t.channel {
		t.reject(reasonf(ReasonWrongChannel, "%s for channel %d, tunnel has %d", f.Service, f.Channel, t.channel))
		return
	}
	switch f.Service {
	case DisconnectResponse:
		if t.state == stateDisconnecting {
			t.end(nil)
			return
		}
		t.reject(reasonf(ReasonUnexpected, "%s without a request", f.Service))
	case DisconnectRequest:
		t.emit(Frame{Service: DisconnectResponse, Channel: t.channel, Status: StatusOK})
		if t.state == stateDisconnecting {
			t.end(nil)
			return
		}
		t.end(errors.New("the gateway closed the tunnel (DISCONNECT_REQUEST)"))
	case ConnectionStateResponse:
		if t.state != stateConnected {
			return
		}
		if f.Status != StatusOK {
			t.lost(fmt.Errorf("heartbeat refused: %s", f.Status))
			return
		}
		t.hbWaiting, t.hbTries = false, 0
		t.hbNext = now.Add(t.cfg.Heartbeat)
	case TunnellingAck:
		t.tunnellingAck(now, f)
	case TunnellingRequest:
		t.tunnellingRequest(now, f)
	default:
		t.reject(reasonf(ReasonUnexpected, "%s sent to a client", f.Service))
	}
}

func (t *Tunnel) connectResponse(now time.Time, f Frame) {
	if t.state != stateConnecting {
		t.reject(reasonf(ReasonUnexpected, "%s while not connecting", f.Service))
		return
	}
	if f.Status != StatusOK {
		t.end(fmt.Errorf("connect refused: %s", f.Status))
		return
	}
	t.state = stateConnected
	t.channel, t.addr = f.Channel, f.Address
	t.sendSeq, t.recvSeq = 0, 0
	t.hbNext = now.Add(t.cfg.Heartbeat)
	t.event(Event{Kind: EventConnected, Channel: f.Channel, Address: f.Address})
	t.sendNext(now)
}

func (t *Tunnel) tunnellingAck(now time.Time, f Frame) {
	if t.state != stateConnected {
		return
	}
	if !t.inflight || f.Seq != t.sendSeq {
		t.reject(reasonf(ReasonSequence, "TUNNELLING_ACK for sequence %d, waiting for %d", f.Seq, t.sendSeq))
		return
	}
	r := t.queue[0]
	t.queue = t.queue[1:]
	t.inflight = false
	t.sendSeq++
	switch {
	case f.Status != StatusOK:
		t.event(Event{Kind: EventSent, Tag: r.tag, Frame: r.frame, Err: fmt.Errorf("gateway refused the telegram: %s", f.Status)})
	case t.cfg.NoConfirm:
		t.event(Event{Kind: EventSent, Tag: r.tag, Frame: r.frame})
	default:
		r.deadline = now.Add(t.cfg.ConfirmTimeout)
		t.confirm = append(t.confirm, r)
	}
	t.sendNext(now)
}

func (t *Tunnel) tunnellingRequest(now time.Time, f Frame) {
	if t.state != stateConnected {
		return
	}
	switch f.Seq {
	case t.recvSeq:
	case t.recvSeq - 1:
		// The gateway missed our ACK: acknowledge again, deliver once.
		t.emit(Frame{Service: TunnellingAck, Channel: t.channel, Seq: f.Seq, Status: StatusOK})
		t.reject(reasonf(ReasonSequence, "repeated TUNNELLING_REQUEST %d (acknowledged again)", f.Seq))
		return
	default:
		t.reject(reasonf(ReasonSequence, "TUNNELLING_REQUEST %d, expected %d", f.Seq, t.recvSeq))
		return
	}
	t.emit(Frame{Service: TunnellingAck, Channel: t.channel, Seq: f.Seq, Status: StatusOK})
	t.recvSeq++
	l, err := DecodeLData(f.CEMI)
	if err != nil {
		t.reject(err)
		return
	}
	switch l.Code {
	case LDataInd:
		if !l.IsGroupValue() {
			t.reject(reasonf(ReasonUnsupported, "L_Data.ind that is not a group value service (to %s, %s)", destString(l), l.APCI))
			return
		}
		l.Data = append([]byte(nil), l.Data...) // do not alias the datagram
		t.event(Event{Kind: EventIndication, Frame: l})
	case LDataCon:
		t.confirmed(l)
	default:
		t.reject(reasonf(ReasonUnexpected, "%s from the gateway", l.Code))
	}
}

// confirmed matches an L_Data.con with the oldest request to the same
// destination.
func (t *Tunnel) confirmed(l LData) {
	for i, r := range t.confirm {
		if r.frame.Dest != l.Dest || r.frame.APCI != l.APCI {
			continue
		}
		t.confirm = append(t.confirm[:i:i], t.confirm[i+1:]...)
		var err error
		if l.ConfirmFail {
			err = errors.New("the gateway could not send the telegram (negative L_Data.con)")
		}
		t.event(Event{Kind: EventSent, Tag: r.tag, Frame: r.frame, Err: err})
		return
	}
	t.reject(reasonf(ReasonUnexpected, "L_Data.con to %s without a request", destString(l)))
}

func destString(l LData) string {
	if l.Group {
		return GroupAddress(l.Dest).String()
	}
	return IndividualAddress(l.Dest).String()
}

package mqtt

import (
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline/topic"
)

// Subscription is a topic filter the client subscribes to after every
// CONNACK, with the handler for the messages it matches.
type Subscription struct {
	Topic   string // topic filter ('+' and '#' wildcards, $share/GROUP/ prefix)
	QoS     QoS    // maximum QoS, 0 or 1
	Handler Handler
}

// Message is an inbound PUBLISH handed to a Handler. It and its slices are
// valid only during the call.
type Message struct {
	Topic, Payload []byte
	QoS            QoS
	Retain, Dup    bool
	ID             uint16 // packet identifier (QoS 1)
	Props          []byte // MQTT 5 properties (see Property)
}

// Property returns the message's first MQTT 5 property with identifier id
// (a user property, 0x26, gives key and value with their length
// prefixes); see Packet.Property.
func (m *Message) Property(id byte) (num uint32, data []byte, ok bool) {
	p := Packet{Props: m.Props}
	return p.Property(id)
}

// Handler receives inbound messages. A nil error acknowledges a QoS 1
// message (PUBACK after the call returns); an error leaves it
// unacknowledged, so the broker delivers it again after the next
// reconnect of a kept session.
type Handler interface {
	HandleMessage(m *Message) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(m *Message) error

// HandleMessage implements Handler.
func (f HandlerFunc) HandleMessage(m *Message) error { return f(m) }

// Config configures a Client. Every buffer is sized here and allocated
// once, by New.
type Config struct {
	// Version is the wire protocol: V311 (the default) or V5.
	Version Version
	// ClientID identifies the session. 3.1.1 brokers need CleanStart with
	// an empty id.
	ClientID string
	// Username and Password are sent when non-empty.
	Username, Password string
	// KeepAlive is sent in CONNECT (whole seconds, at most 65535 s):
	// the client sends PINGREQ when it has sent nothing, or received
	// nothing, for this long. Default 60 s; negative turns keep-alive off.
	// An MQTT 5 broker's Server Keep Alive overrides it.
	KeepAlive time.Duration
	// PingTimeout is how long to wait for PINGRESP before the connection
	// counts as lost (ErrPingTimeout). Default: KeepAlive.
	PingTimeout time.Duration
	// CleanStart (3.1.1: Clean Session) starts a new session on every
	// Connect instead of resuming the broker's one.
	CleanStart bool
	// SessionExpiry (MQTT 5, seconds) keeps the session after the
	// connection ends; 0 ends it with the connection.
	SessionExpiry uint32
	// Will is published by the broker if the connection ends without
	// DISCONNECT.
	Will *Will
	// Subscriptions are subscribed (in one SUBSCRIBE) after every CONNACK.
	Subscriptions []Subscription
	// OnMessage handles messages of subscriptions without a Handler, and
	// messages that match no subscription (from a resumed session).
	OnMessage Handler
	// MaxPacket is the largest packet the client sends or receives: the
	// size of the receive buffer, the transmit buffer and each in-flight
	// slot. Default 256. Larger inbound packets are skipped (and
	// acknowledged) and counted in Stats.Oversize; an MQTT 5 broker is told
	// the limit and does not send them.
	MaxPacket int
	// MaxInflight bounds the QoS 1 messages published but not yet
	// acknowledged (default 4). Publish returns ErrInflightFull beyond it.
	// Messages published while disconnected wait in these slots and are
	// sent after the next CONNACK.
	MaxInflight int
	// AckTimeout is how long a QoS 1 message waits for its PUBACK before
	// the client acts (default 10 s; negative: never): MQTT 3.1.1 resends
	// it with DUP on the same connection; MQTT 5, which forbids resending
	// except after reconnecting, reports ErrAckTimeout so the caller
	// reconnects and Connect resends it.
	AckTimeout time.Duration
	// ConnectTimeout bounds Connect's wait for CONNACK and SUBACK (default
	// 10 s), measured with time.Now.
	ConnectTimeout time.Duration
	// PollWait is how long Poll's read waits for data on a transport with
	// SetReadDeadline (default 1 ms).
	PollWait time.Duration
}

// Stats counts what a client did.
type Stats struct {
	Published uint64 // PUBLISH packets accepted by Publish (QoS 0 and 1)
	Acked     uint64 // PUBACKs matched to an in-flight message
	Resent    uint64 // QoS 1 retransmissions (DUP set)
	Rejected  uint64 // MQTT 5 PUBACKs with a failure reason code
	Received  uint64 // inbound PUBLISH packets
	Unrouted  uint64 // inbound messages no handler took
	Refused   uint64 // inbound messages a handler returned an error for (not acknowledged)
	Oversize  uint64 // inbound packets larger than MaxPacket, skipped
	Pings     uint64 // PINGREQs sent
	Pongs     uint64 // PINGRESPs received
	Connects  uint64 // accepted CONNACKs
}

// Errors reported by the client (decoding errors are *Error).
var (
	ErrNotConnected = errors.New("mqtt: not connected")
	ErrInflightFull = errors.New("mqtt: QoS 1 in-flight window full")
	ErrTooLarge     = errors.New("mqtt: packet larger than MaxPacket or the broker's maximum")
	ErrTopic        = errors.New("mqtt: invalid topic name")
	ErrQoS          = errors.New("mqtt: QoS must be 0 or 1")
	ErrPingTimeout  = errors.New("mqtt: no PINGRESP within PingTimeout")
	ErrAckTimeout   = errors.New("mqtt: no PUBACK within AckTimeout")
	ErrTimeout      = errors.New("mqtt: no CONNACK/SUBACK within ConnectTimeout")
	ErrClosed       = errors.New("mqtt: connection closed by the broker")
	errNoConnack    = &Error{ErrProtocol, "first packet is not CONNACK"}
	errConnack2     = &Error{ErrProtocol, "second CONNACK"}
)

// ConnectError is a CONNACK that refused the connection.
type ConnectError struct {
	Version Version
	Code    byte // 3.1.1 return code or MQTT 5 reason code
}

// Error implements error.
func (e *ConnectError) Error() string {
	return "mqtt: connection refused: code " + strconv.Itoa(int(e.Code)) + " (" + e.reason() + ")"
}

func (e *ConnectError) reason() string {
	if e.Version != V5 {
		switch e.Code {
		case 1:
			return "unacceptable protocol version"
		case 2:
			return "identifier rejected"
		case 3:
			return "server unavailable"
		case 4:
			return "bad user name or password"
		case 5:
			return "not authorized"
		}
		return "unknown"
	}
	switch e.Code {
	case 0x84:
		return "unsupported protocol version"
	case 0x85:
		return "client identifier not valid"
	case 0x86:
		return "bad user name or password"
	case 0x87:
		return "not authorized"
	case 0x88, 0x89:
		return "server unavailable or busy"
	case 0x8A:
		return "banned"
	case 0x95:
		return "packet too large"
	}
	return "see MQTT 5 reason codes"
}

// SubscribeError is a SUBACK that refused a subscription.
type SubscribeError struct {
	Topic string
	Code  byte
}

// Error implements error.
func (e *SubscribeError) Error() string {
	return "mqtt: subscription " + strconv.Quote(e.Topic) + " refused: code " + strconv.Itoa(int(e.Code))
}

// DisconnectError is an MQTT 5 DISCONNECT sent by the broker.
type DisconnectError struct{ Code byte }

// Error implements error.
func (e *DisconnectError) Error() string {
	return "mqtt: disconnected by the broker: reason code " + strconv.Itoa(int(e.Code))
}

// IOError is a failed read or write on the transport.
type IOError struct {
	Op  string // "read" or "write"
	Err error
}

// Error implements error.
func (e *IOError) Error() string { return "mqtt: " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the transport's error.
func (e *IOError) Unwrap() error { return e.Err }

const (
	stateDown uint8 = iota
	stateConnecting
	stateUp
)

const (
	slotFree uint8 = iota
	slotQueued
	slotSent
)

// slot holds one QoS 1 PUBLISH, encoded, until its PUBACK.
type slot struct {
	buf    []byte
	id     uint16
	state  uint8
	dup    bool // sent at least once: every later send has DUP set
	seq    uint32
	sentAt time.Duration
}

// pollReads bounds the reads of one Poll (it reads again only while reads
// fill the whole buffer) so a flood of inbound data cannot starve the
// caller's loop.
const pollReads = 8

// Client is an MQTT client over an io.ReadWriter. It is driven by one
// goroutine (the device main loop): Connect, then Publish and Poll; it is
// not safe for concurrent use. Handlers run inside Poll and Connect and may
// call Publish, not Poll.
type Client struct {
	cfg       Config
	conn      Connect
	subs      []Subscription
	filters   []string // subscription filters with any $share/GROUP/ stripped
	rw        io.ReadWriter
	dl        deadliner // rw's read deadlines, if it has them
	bf        buffered  // rw's Buffered, if it has it
	state     uint8
	err       error // why the last connection ended
	rx        []byte
	rs, re    int // unprocessed bytes rx[rs:re]
	skip      int // bytes of an oversize packet still to discard
	tx        []byte
	slots     []slot
	seq       uint32
	nextID    uint16
	subID     uint16
	subAcked  bool
	now       time.Duration // the caller's clock, as of the last Connect/Poll
	lastSent  time.Duration
	lastRecv  time.Duration
	pingSent  time.Duration
	pingOut   bool
	keepAlive time.Duration
	pingWait  time.Duration
	window    int // in-flight limit: MaxInflight, or the broker's Receive Maximum
	maxOut    int // the broker's Maximum Packet Size (MQTT 5), 0 if none
	maxQoS    QoS
	pkt       Packet
	msg       Message
	stats     Stats
}

// New validates cfg (every problem at once) and allocates the client's
// buffers: 2 + MaxInflight buffers of MaxPacket bytes.
func New(cfg Config) (*Client, error) {
	var errs []error
	bad := func(msg string) { errs = append(errs, errors.New("mqtt: "+msg)) }
	switch cfg.Version {
	case 0:
		cfg.Version = V311
	case V311, V5:
	default:
		bad("Version must be V311 or V5")
	}
	if cfg.MaxPacket == 0 {
		cfg.MaxPacket = 256
	}
	if cfg.MaxInflight == 0 {
		cfg.MaxInflight = 4
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = 60 * time.Second
	}
	if cfg.KeepAlive < 0 {
		cfg.KeepAlive = 0
	}
	if cfg.KeepAlive > 65535*time.Second {
		bad("KeepAlive longer than 65535 s")
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = cfg.KeepAlive
	}
	if cfg.AckTimeout == 0 {
		cfg.AckTimeout = 10 * time.Second
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.PollWait <= 0 {
		cfg.PollWait = time.Millisecond
	}
	if cfg.MaxPacket < 16 || cfg.MaxPacket > MaxRemaining {
		bad("MaxPacket must be between 16 and 268435455")
	}
	if cfg.MaxInflight < 0 || cfg.MaxInflight > 65535 {
		bad("MaxInflight must be between 1 and 65535")
	}
	for _, s := range []string{cfg.ClientID, cfg.Username, cfg.Password} {
		if len(s) > 65535 {
			bad("client id, username and password are limited to 65535 bytes")
		}
	}
	if cfg.Version == V311 {
		if cfg.ClientID == "" && !cfg.CleanStart {
			bad("MQTT 3.1.1 needs CleanStart with an empty ClientID")
		}
		if cfg.Password != "" && cfg.Username == "" {
			bad("MQTT 3.1.1 sends a Password only with a Username")
		}
	}
	if w := cfg.Will; w != nil {
		if w.QoS > 1 {
			bad("Will QoS must be 0 or 1")
		}
		if !validTopic([]byte(w.Topic)) {
			bad("invalid Will topic " + strconv.Quote(w.Topic))
		}
	}
	subs := append([]Subscription(nil), cfg.Subscriptions...)
	filters := make([]string, len(subs))
	for i, s := range subs {
		if err := topic.Validate(s.Topic); err != nil {
			bad("subscription " + strconv.Quote(s.Topic) + ": " + err.Error())
		}
		if s.QoS > 1 {
			bad("subscription " + strconv.Quote(s.Topic) + ": QoS must be 0 or 1")
		}
		filters[i], _ = topic.Filter(s.Topic)
	}
	c := &Client{cfg: cfg, subs: subs, filters: filters}
	c.conn = Connect{
		ClientID:      cfg.ClientID,
		Username:      cfg.Username,
		Password:      cfg.Password,
		KeepAlive:     uint16(cfg.KeepAlive / time.Second),
		CleanStart:    cfg.CleanStart,
		Will:          cfg.Will,
		SessionExpiry: cfg.SessionExpiry,
	}
	if cfg.Version == V5 && cfg.MaxPacket > 0 {
		c.conn.MaxPacket = uint32(cfg.MaxPacket)
	}
	if n := len(AppendConnect(nil, cfg.Version, &c.conn)); n > cfg.MaxPacket {
		bad("CONNECT packet (" + strconv.Itoa(n) + " bytes) larger than MaxPacket")
	}
	if n := len(AppendSubscribe(nil, cfg.Version, 1, subs)); len(subs) > 0 && n > cfg.MaxPacket {
		bad("SUBSCRIBE packet (" + strconv.Itoa(n) + " bytes) larger than MaxPacket")
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c.rx = make([]byte, cfg.MaxPacket)
	c.tx = make([]byte, 0, cfg.MaxPacket)
	c.slots = make([]slot, cfg.MaxInflight)
	for i := range c.slots {
		c.slots[i].buf = make([]byte, 0, cfg.MaxPacket)
	}
	return c, nil
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats { return c.stats }

// Connected reports whether the client holds an accepted connection.
func (c *Client) Connected() bool { return c.state == stateUp }

// Err returns why the last connection ended (nil while connected or
// before the first Connect).
func (c *Client) Err() error { return c.err }

// Pending returns the QoS 1 messages not yet acknowledged (sent or waiting
// to be sent).
func (c *Client) Pending() int {
	n := 0
	for i := range c.slots {
		if c.slots[i].state != slotFree {
			n++
		}
	}
	return n
}

// Free returns how many more QoS 1 messages Publish accepts now.
func (c *Client) Free() int { return len(c.slots) - c.Pending() }

// fail ends the connection with err (the caller closes the transport).
func (c *Client) fail(err error) error {
	c.state = stateDown
	c.err = err
	return err
}

func (c *Client) write(b []byte) error {
	if _, err := c.rw.Write(b); err != nil {
		return c.fail(&IOError{"write", err})
	}
	c.lastSent = c.now
	return nil
}

// Connect starts a session over rw (a fresh transport: a TCP connection, a
// modem's socket, a serial bridge): it sends CONNECT, waits for CONNACK,
// subscribes and waits for SUBACK, then sends the QoS 1 messages that are
// still unacknowledged from an earlier connection or were published while
// disconnected (with DUP set if they were sent before). now is the
// caller's monotonic clock (see Poll). After an error, close
// the transport and Connect again with a new one; unacknowledged messages
// are kept.
func (c *Client) Connect(rw io.ReadWriter, now time.Duration) error {
	c.rw, c.state, c.err = rw, stateConnecting, nil
	// Resolved once per connection: an interface assertion per Poll would
	// (rarely) allocate in Go's type-assertion cache.
	c.dl, _ = rw.(deadliner)
	c.bf, _ = rw.(buffered)
	c.rs, c.re, c.skip = 0, 0, 0
	c.now, c.lastSent, c.lastRecv, c.pingOut = now, now, now, false
	c.keepAlive, c.pingWait = c.cfg.KeepAlive, c.cfg.PingTimeout
	c.window, c.maxOut, c.maxQoS = len(c.slots), 0, QoS1
	for i := range c.slots {
		if c.slots[i].state == slotSent {
			c.slots[i].state = slotQueued
		}
	}
	c.tx = AppendConnect(c.tx[:0], c.cfg.Version, &c.conn)
	if err := c.write(c.tx); err != nil {
		return err
	}
	deadline := time.Now().Add(c.cfg.ConnectTimeout)
	if err := c.await(deadline); err != nil {
		return err
	}
	if c.pkt.Type != TypeConnack {
		return c.fail(errNoConnack)
	}
	if c.pkt.Code != 0 {
		return c.fail(&ConnectError{c.cfg.Version, c.pkt.Code})
	}
	if c.cfg.Version == V5 {
		c.connackProps()
	}
	c.state = stateUp
	c.stats.Connects++
	if len(c.subs) > 0 {
		c.subID, c.subAcked = c.newID(), false
		c.tx = AppendSubscribe(c.tx[:0], c.cfg.Version, c.subID, c.subs)
		if err := c.write(c.tx); err != nil {
			return err
		}
		for !c.subAcked {
			if err := c.await(deadline); err != nil {
				return err
			}
			if err := c.handle(); err != nil {
				return err
			}
		}
	}
	return c.flush()
}

// connackProps applies an MQTT 5 CONNACK's limits.
func (c *Client) connackProps() {
	p := &c.pkt
	if n, _, ok := p.Property(PropReceiveMaximum); ok && n > 0 && int(n) < c.window {
		c.window = int(n)
	}
	if n, _, ok := p.Property(PropMaxPacketSize); ok && n > 0 && uint64(n) < uint64(MaxRemaining) {
		c.maxOut = int(n)
	}
	if n, _, ok := p.Property(PropServerKeepAlive); ok {
		c.keepAlive = time.Duration(n) * time.Second
		if c.pingWait > c.keepAlive || c.pingWait == 0 {
			c.pingWait = c.keepAlive
		}
	}
	if n, _, ok := p.Property(PropMaximumQoS); ok && n == 0 {
		c.maxQoS = QoS0
	}
}

// await reads until a complete packet is decoded into c.pkt (blocking;
// until deadline on the wall clock).
func (c *Client) await(deadline time.Time) error {
	for {
		ok, err := c.next()
		if err != nil || ok {
			return err
		}
		n, _, err := c.fill(deadline, true)
		if err != nil {
			return err
		}
		if n == 0 && !time.Now().Before(deadline) {
			return c.fail(ErrTimeout)
		}
	}
}

// deadliner is a transport with read deadlines (net.Conn).
type deadliner interface {
	SetReadDeadline(t time.Time) error
}

// buffered is a transport that tells how many bytes it holds (a UART).
type buffered interface {
	Buffered() int
}

// timeout is an error that reports a deadline.
type timeout interface {
	Timeout() bool
}

// fill reads once from the transport into rx and returns the number of
// bytes read (0 when nothing arrived in time; bytes of a skipped oversize
// packet count, though they are not kept) and whether the read filled all
// the space rx had (so more may be waiting). With block, a transport with
// read deadlines waits until deadline; without, it waits PollWait, and one
// with Buffered() is not read while it holds nothing.
func (c *Client) fill(deadline time.Time, block bool) (int, bool, error) {
	if c.rs == c.re {
		c.rs, c.re = 0, 0
	} else if c.rs > 0 && (c.re == len(c.rx) || c.rs >= len(c.rx)/2) {
		c.compact() // a partial packet moves, once per half buffer consumed
	}
	space := len(c.rx) - c.re
	if space == 0 {
		return 0, false, nil // a whole buffer of one packet: next handles it
	}
	if c.bf != nil && !block && c.bf.Buffered() == 0 {
		return 0, false, nil
	}
	if c.dl != nil {
		if !block {
			deadline = time.Now().Add(c.cfg.PollWait)
		}
		if err := c.dl.SetReadDeadline(deadline); err != nil {
			return 0, false, c.fail(&IOError{"read", err})
		}
	}
	got, err := c.rw.Read(c.rx[c.re:])
	n := got
	if c.skip > 0 && n > 0 { // discard the rest of an oversize packet
		d := min(n, c.skip)
		copy(c.rx[c.re:], c.rx[c.re+d:c.re+n])
		c.skip -= d
		n -= d
	}
	c.re += n
	if err != nil {
		if t, ok := err.(timeout); ok && t.Timeout() {
			return got, false, nil
		}
		if err == io.EOF {
			return got, false, c.fail(&IOError{"read", ErrClosed})
		}
		return got, false, c.fail(&IOError{"read", err})
	}
	return got, got == space, nil
}

func (c *Client) compact() {
	c.re = copy(c.rx, c.rx[c.rs:c.re])
	c.rs = 0
}

// next decodes the next complete buffered packet into c.pkt; false when
// none is complete yet. An oversize packet is skipped (acknowledged if it
// is a QoS 1 PUBLISH whose header fits in rx).
func (c *Client) next() (bool, error) {
	b := c.rx[c.rs:c.re]
	n, err := PacketLen(b)
	if err != nil {
		return false, c.fail(err)
	}
	switch {
	case n == 0:
		if c.rs > 0 && c.re == len(c.rx) {
			c.compact()
		}
		return false, nil
	case n > len(c.rx):
		if c.rs > 0 {
			c.compact()
		}
		if c.re < len(c.rx) {
			return false, nil // wait until rx holds as much of it as fits
		}
		return false, c.oversize(n)
	case n > len(b):
		if c.rs+n > len(c.rx) {
			c.compact()
		}
		return false, nil
	}
	if err := c.pkt.Decode(c.cfg.Version, b[:n]); err != nil {
		return false, c.fail(err)
	}
	c.rs += n
	c.lastRecv = c.now
	return true, nil
}

// oversize skips a packet of n bytes that does not fit in rx, which holds
// its first len(rx) bytes.
func (c *Client) oversize(n int) error {
	b := c.rx
	if Type(b[0]>>4) != TypePublish {
		return c.fail(ErrTooLarge)
	}
	c.stats.Oversize++
	c.stats.Received++
	_, used := readVarint(b[1:])
	h := b[1+used:]
	qos := QoS(b[0] >> 1 & 3)
	c.rs, c.re, c.skip = 0, 0, n-len(b)
	if qos == QoS1 && len(h) >= 2 && len(h) >= 4+u16(h) {
		id := uint16(u16(h[2+u16(h):]))
		c.tx = AppendPuback(c.tx[:0], c.cfg.Version, id, 0)
		return c.write(c.tx)
	}
	return nil
}

// handle acts on c.pkt.
func (c *Client) handle() error {
	p := &c.pkt
	switch p.Type {
	case TypePublish:
		return c.deliver()
	case TypePuback:
		for i := range c.slots {
			s := &c.slots[i]
			if s.state == slotSent && s.id == p.ID {
				s.state = slotFree
				c.stats.Acked++
				if p.Code >= 0x80 {
					c.stats.Rejected++
				}
				return c.flush()
			}
		}
		return nil // a second PUBACK for a retransmitted message
	case TypeSuback:
		if p.ID != c.subID || c.subAcked {
			return nil
		}
		c.subAcked = true
		for i, code := range p.Codes {
			if code >= 0x80 && i < len(c.subs) {
				return c.fail(&SubscribeError{c.subs[i].Topic, code})
			}
		}
		return nil
	case TypePingresp:
		c.pingOut = false
		c.stats.Pongs++
		return nil
	case TypeDisconnect:
		return c.fail(&DisconnectError{p.Code})
	case TypeConnack:
		return c.fail(errConnack2)
	}
	return nil // UNSUBACK: the client never unsubscribes
}

// deliver hands the PUBLISH in c.pkt to every matching handler and
// acknowledges it (QoS 1) unless one of them failed.
func (c *Client) deliver() error {
	p := &c.pkt
	c.stats.Received++
	m := &c.msg
	*m = Message{Topic: p.Topic, Payload: p.Payload, QoS: p.QoS(), Retain: p.Retain(), Dup: p.Dup(), ID: p.ID, Props: p.Props}
	t := bytesString(p.Topic)
	handled, failed := false, false
	for i := range c.subs {
		if !topic.Match(c.filters[i], t) {
			continue
		}
		h := c.subs[i].Handler
		if h == nil {
			h = c.cfg.OnMessage
		}
		if h == nil {
			continue
		}
		handled = true
		if h.HandleMessage(m) != nil {
			failed = true
		}
	}
	if !handled && c.cfg.OnMessage != nil {
		handled = true
		failed = c.cfg.OnMessage.HandleMessage(m) != nil
	}
	if !handled {
		c.stats.Unrouted++
	}
	if failed {
		c.stats.Refused++
		return nil
	}
	if p.QoS() == QoS1 && c.state == stateUp {
		c.tx = AppendPuback(c.tx[:0], c.cfg.Version, p.ID, 0)
		return c.write(c.tx)
	}
	return nil
}

// newID returns a packet identifier no in-flight message uses.
func (c *Client) newID() uint16 {
	for {
		c.nextID++
		if c.nextID == 0 {
			c.nextID = 1
		}
		used := c.nextID == c.subID && !c.subAcked
		for i := range c.slots {
			if c.slots[i].state != slotFree && c.slots[i].id == c.nextID {
				used = true
				break
			}
		}
		if !used {
			return c.nextID
		}
	}
}

// flush sends queued QoS 1 messages, oldest first, while the in-flight
// window allows.
func (c *Client) flush() error {
	if c.state != stateUp {
		return nil
	}
	sent := 0
	for i := range c.slots {
		if c.slots[i].state == slotSent {
			sent++
		}
	}
	for sent < c.window {
		var s *slot
		for i := range c.slots {
			q := &c.slots[i]
			if q.state == slotQueued && (s == nil || q.seq-s.seq > 1<<31) {
				s = q
			}
		}
		if s == nil {
			return nil
		}
		if s.dup {
			SetDup(s.buf)
			c.stats.Resent++
		}
		s.state, s.dup, s.sentAt = slotSent, true, c.now
		if err := c.write(s.buf); err != nil {
			return err
		}
		sent++
	}
	return nil
}

// Publish sends a message. QoS 0 is written at once (ErrNotConnected while
// disconnected). QoS 1 is copied into an in-flight slot and written when
// the window allows; it stays there, retransmitted as Config.AckTimeout
// says and resent after every reconnect, until its PUBACK: Publish returns
// nil once it holds the message, ErrInflightFull when every slot is taken
// (call Poll to process acknowledgements, then try again). A write failure
// ends the connection: Poll and Err report it.
func (c *Client) Publish(topicName, payload []byte, qos QoS, retain bool) error {
	if qos > QoS1 {
		return ErrQoS
	}
	if !validTopic(topicName) {
		return ErrTopic
	}
	if qos > c.maxQoS && c.state == stateUp {
		return ErrQoS
	}
	size := PublishLen(c.cfg.Version, len(topicName), len(payload), qos)
	if size > c.cfg.MaxPacket || c.maxOut > 0 && size > c.maxOut {
		return ErrTooLarge
	}
	if qos == QoS0 {
		if c.state != stateUp {
			return ErrNotConnected
		}
		c.tx = AppendPublish(c.tx[:0], c.cfg.Version, topicName, payload, QoS0, retain, false, 0)
		if err := c.write(c.tx); err != nil {
			return err
		}
		c.stats.Published++
		return nil
	}
	var s *slot
	for i := range c.slots {
		if c.slots[i].state == slotFree {
			s = &c.slots[i]
			break
		}
	}
	if s == nil {
		return ErrInflightFull
	}
	s.id = c.newID()
	s.buf = AppendPublish(s.buf[:0], c.cfg.Version, topicName, payload, QoS1, retain, false, s.id)
	s.state, s.dup, s.seq = slotQueued, false, c.seq
	c.seq++
	c.stats.Published++
	c.flush() // a write error is kept in c.err; the message waits in its slot
	return nil
}

// Poll processes what the broker sent (handlers run here; QoS 1 messages
// are acknowledged), then runs the timers for now: PINGREQ when the
// connection was idle for KeepAlive, ErrPingTimeout when PINGRESP is late,
// and the AckTimeout action for unacknowledged QoS 1 messages. Poll does
// not block longer than Config.PollWait on a transport with read deadlines,
// or at all on one with Buffered(); on other transports Read must return
// promptly when no data is there. An error ends the connection.
//
// now is the caller's monotonic clock: any time.Duration that never goes
// back, such as time.Since(start) or a board's tick counter; only
// differences between calls matter. (A Duration rather than a time.Time
// keeps time.Time, whose String method pulls in time-zone loading, out of
// the device build: ~10 KB of flash.)
func (c *Client) Poll(now time.Duration) error {
	if c.state != stateUp {
		if c.err != nil {
			return c.err
		}
		return ErrNotConnected
	}
	c.now = now
	for i := 0; i < pollReads; i++ {
		if err := c.drain(); err != nil {
			return err
		}
		_, more, err := c.fill(time.Time{}, false)
		if err != nil {
			return err
		}
		if !more {
			// The transport had no more than this: stop, rather than wait
			// PollWait again for data that is not there.
			break
		}
	}
	if err := c.drain(); err != nil {
		return err
	}
	return c.timers(now)
}

// drain handles every complete packet in rx.
func (c *Client) drain() error {
	for {
		ok, err := c.next()
		if err != nil || !ok {
			return err
		}
		if err := c.handle(); err != nil {
			return err
		}
		if c.state != stateUp {
			return c.err
		}
	}
}

func (c *Client) timers(now time.Duration) error {
	if c.keepAlive > 0 {
		if c.pingOut {
			if now-c.pingSent >= c.pingWait {
				return c.fail(ErrPingTimeout)
			}
		} else if now-c.lastSent >= c.keepAlive || now-c.lastRecv >= c.keepAlive {
			c.tx = AppendPingreq(c.tx[:0])
			if err := c.write(c.tx); err != nil {
				return err
			}
			c.pingOut, c.pingSent = true, now
			c.stats.Pings++
		}
	}
	if c.cfg.AckTimeout > 0 {
		for i := range c.slots {
			s := &c.slots[i]
			if s.state != slotSent || now-s.sentAt < c.cfg.AckTimeout {
				continue
			}
			if c.cfg.Version == V5 {
				return c.fail(ErrAckTimeout)
			}
			SetDup(s.buf)
			s.sentAt = now
			c.stats.Resent++
			if err := c.write(s.buf); err != nil {
				return err
			}
		}
	}
	return c.flush()
}

// Disconnect sends DISCONNECT (the broker then discards the Will) and ends
// the connection; the caller closes the transport. Unacknowledged QoS 1
// messages are kept for the next Connect.
func (c *Client) Disconnect() error {
	if c.state != stateUp {
		return nil
	}
	c.tx = AppendDisconnect(c.tx[:0], c.cfg.Version, 0)
	err := c.write(c.tx)
	c.state, c.err = stateDown, ErrNotConnected
	return err
}

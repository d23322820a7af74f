package mqtt

import (
	"errors"
	"unicode/utf8"
)

// Version is the MQTT protocol level a client speaks on the wire.
type Version byte

// The two protocol levels the package speaks.
const (
	V311 Version = 4 // MQTT 3.1.1
	V5   Version = 5 // MQTT 5.0 (the subset a device needs)
)

// QoS is a delivery level. The package supports 0 (at most once) and 1 (at
// least once).
type QoS byte

// Delivery levels.
const (
	QoS0 QoS = 0
	QoS1 QoS = 1
)

// Type is an MQTT control packet type (the high nibble of the first byte).
type Type byte

// Control packet types (MQTT 3.1.1 §2.2.1, MQTT 5 §2.1.2).
const (
	TypeConnect     Type = 1
	TypeConnack     Type = 2
	TypePublish     Type = 3
	TypePuback      Type = 4
	TypePubrec      Type = 5
	TypePubrel      Type = 6
	TypePubcomp     Type = 7
	TypeSubscribe   Type = 8
	TypeSuback      Type = 9
	TypeUnsubscribe Type = 10
	TypeUnsuback    Type = 11
	TypePingreq     Type = 12
	TypePingresp    Type = 13
	TypeDisconnect  Type = 14
	TypeAuth        Type = 15
)

// MQTT 5 property identifiers the client reads or writes (MQTT 5 §2.2.2.2).
const (
	PropSessionExpiry   byte = 0x11
	PropServerKeepAlive byte = 0x13
	PropReasonString    byte = 0x1F
	PropReceiveMaximum  byte = 0x21
	PropTopicAliasMax   byte = 0x22
	PropTopicAlias      byte = 0x23
	PropMaximumQoS      byte = 0x24
	PropRetainAvailable byte = 0x25
	PropUserProperty    byte = 0x26
	PropMaxPacketSize   byte = 0x27
)

// MaxRemaining is the largest remaining length the fixed header can encode.
const MaxRemaining = 268_435_455

// Errors of the codec. Every decoding error is an *Error whose Unwrap is
// ErrMalformed (the bytes break the packet format) or ErrProtocol (well
// formed, but not allowed here: a packet a server must not send, QoS 2, a
// topic alias the client never allowed).
var (
	ErrMalformed = errors.New("mqtt: malformed packet")
	ErrProtocol  = errors.New("mqtt: protocol error")
)

// Error is a codec or protocol error with its detail. errors.Is(err,
// ErrMalformed) or errors.Is(err, ErrProtocol) classifies it.
type Error struct {
	Kind error  // ErrMalformed or ErrProtocol
	Msg  string // what was wrong
}

// Error implements error.
func (e *Error) Error() string { return e.Kind.Error() + ": " + e.Msg }

// Unwrap returns Kind.
func (e *Error) Unwrap() error { return e.Kind }

// The decoder's errors are preallocated: a hostile peer costs no heap.
var (
	errShort         = &Error{ErrMalformed, "packet shorter than its header says"}
	errLong          = &Error{ErrMalformed, "bytes after the end of the packet"}
	errLength        = &Error{ErrMalformed, "remaining length wrong for the packet type"}
	errRemLen        = &Error{ErrMalformed, "remaining length longer than 4 bytes"}
	errType0         = &Error{ErrMalformed, "reserved packet type 0"}
	errFlags         = &Error{ErrMalformed, "reserved fixed-header flags set"}
	errQoS3          = &Error{ErrMalformed, "PUBLISH with QoS 3"}
	errDupQoS0       = &Error{ErrMalformed, "PUBLISH with DUP set at QoS 0"}
	errID0           = &Error{ErrMalformed, "packet identifier 0"}
	errTopic         = &Error{ErrMalformed, "invalid topic name (empty, wildcard, NUL or bad UTF-8)"}
	errConnackFlags  = &Error{ErrMalformed, "CONNACK reserved flags set"}
	errSubackCode    = &Error{ErrMalformed, "invalid SUBACK return code"}
	errSubackEmpty   = &Error{ErrMalformed, "SUBACK without return codes"}
	errPropLen       = &Error{ErrMalformed, "property length exceeds the packet"}
	errPropID        = &Error{ErrMalformed, "unknown property identifier"}
	errPropValue     = &Error{ErrMalformed, "property value truncated"}
	errServerPacket  = &Error{ErrProtocol, "packet type a server must not send"}
	errQoS2          = &Error{ErrProtocol, "QoS 2 flow (PUBREC/PUBREL/PUBCOMP) not supported"}
	errTopicAlias    = &Error{ErrProtocol, "topic alias the client did not allow"}
	errAuth          = &Error{ErrProtocol, "AUTH exchange not supported"}
	errDisconnect311 = &Error{ErrProtocol, "DISCONNECT from a 3.1.1 server"}
)

// appendRemLen appends the variable byte integer n (MQTT §1.5.5 / §2.2.3).
func appendRemLen(dst []byte, n int) []byte {
	for {
		b := byte(n & 0x7F)
		n >>= 7
		if n > 0 {
			b |= 0x80
		}
		dst = append(dst, b)
		if n == 0 {
			return dst
		}
	}
}

// varintLen is the number of bytes appendRemLen writes for n.
func varintLen(n int) int {
	switch {
	case n < 128:
		return 1
	case n < 16_384:
		return 2
	case n < 2_097_152:
		return 3
	}
	return 4
}

// readVarint decodes a variable byte integer from the start of b: the
// value and the bytes used; used is 0 when b ends first, -1 when the
// encoding runs past 4 bytes.
func readVarint(b []byte) (val, used int) {
	mul := 1
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0
		}
		val += int(b[i]&0x7F) * mul
		if b[i]&0x80 == 0 {
			return val, i + 1
		}
		mul <<= 7
	}
	return 0, -1
}

func appendU16(dst []byte, v uint16) []byte { return append(dst, byte(v>>8), byte(v)) }

func appendU32(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func appendStr(dst []byte, s string) []byte {
	dst = appendU16(dst, uint16(len(s)))
	return append(dst, s...)
}

func appendBin(dst []byte, b []byte) []byte {
	dst = appendU16(dst, uint16(len(b)))
	return append(dst, b...)
}

// Will is a CONNECT's last-will message: the broker publishes it when the
// connection ends without a DISCONNECT.
type Will struct {
	Topic   string
	Payload []byte
	QoS     QoS
	Retain  bool
}

// Connect holds the fields of a CONNECT packet.
type Connect struct {
	ClientID string
	Username string // sent when non-empty
	Password string // sent when non-empty (3.1.1 requires a Username with it)
	// KeepAlive in seconds; 0 turns keep-alive off.
	KeepAlive uint16
	// CleanStart (3.1.1: Clean Session) discards any previous session.
	CleanStart bool
	Will       *Will
	// MQTT 5 properties, sent when non-zero.
	SessionExpiry uint32 // seconds the broker keeps the session after the connection ends
	ReceiveMax    uint16 // inbound QoS 1 messages the client accepts in flight
	MaxPacket     uint32 // largest packet the client accepts
}

// AppendConnect appends the CONNECT packet for c in protocol version v.
func AppendConnect(dst []byte, v Version, c *Connect) []byte {
	var props int // MQTT 5 CONNECT property bytes
	if v == V5 {
		if c.SessionExpiry != 0 {
			props += 5
		}
		if c.ReceiveMax != 0 {
			props += 3
		}
		if c.MaxPacket != 0 {
			props += 5
		}
	}
	flags := byte(0)
	n := 10 + 2 + len(c.ClientID) // protocol name, level, flags, keep alive; client id
	if v == V5 {
		n += varintLen(props) + props
	}
	if c.CleanStart {
		flags |= 0x02
	}
	if w := c.Will; w != nil {
		flags |= 0x04 | byte(w.QoS&3)<<3
		if w.Retain {
			flags |= 0x20
		}
		n += 2 + len(w.Topic) + 2 + len(w.Payload)
		if v == V5 {
			n++ // will properties length 0
		}
	}
	if c.Username != "" {
		flags |= 0x80
		n += 2 + len(c.Username)
	}
	if c.Password != "" {
		flags |= 0x40
		n += 2 + len(c.Password)
	}
	dst = append(dst, byte(TypeConnect)<<4)
	dst = appendRemLen(dst, n)
	dst = append(dst, 0, 4, 'M', 'Q', 'T', 'T', byte(v), flags)
	dst = appendU16(dst, c.KeepAlive)
	if v == V5 {
		dst = appendRemLen(dst, props)
		if c.SessionExpiry != 0 {
			dst = appendU32(append(dst, PropSessionExpiry), c.SessionExpiry)
		}
		if c.ReceiveMax != 0 {
			dst = appendU16(append(dst, PropReceiveMaximum), c.ReceiveMax)
		}
		if c.MaxPacket != 0 {
			dst = appendU32(append(dst, PropMaxPacketSize), c.MaxPacket)
		}
	}
	dst = appendStr(dst, c.ClientID)
	if w := c.Will; w != nil {
		if v == V5 {
			dst = append(dst, 0)
		}
		dst = appendStr(dst, w.Topic)
		dst = appendBin(dst, w.Payload)
	}
	if c.Username != "" {
		dst = appendStr(dst, c.Username)
	}
	if c.Password != "" {
		dst = appendStr(dst, c.Password)
	}
	return dst
}

// publishRem is the remaining length of a PUBLISH without properties.
func publishRem(v Version, topicLen, payloadLen int, qos QoS) int {
	n := 2 + topicLen + payloadLen
	if qos > 0 {
		n += 2
	}
	if v == V5 {
		n++ // property length 0
	}
	return n
}

// PublishLen returns the size in bytes of the PUBLISH packet AppendPublish
// writes for these lengths.
func PublishLen(v Version, topicLen, payloadLen int, qos QoS) int {
	n := publishRem(v, topicLen, payloadLen, qos)
	return 1 + varintLen(n) + n
}

// AppendPublish appends a PUBLISH packet (no MQTT 5 properties). id is the
// packet identifier, written for QoS 1 only; dup marks a retransmission.
func AppendPublish(dst []byte, v Version, topic, payload []byte, qos QoS, retain, dup bool, id uint16) []byte {
	h := byte(TypePublish)<<4 | byte(qos&3)<<1
	if dup {
		h |= 0x08
	}
	if retain {
		h |= 0x01
	}
	dst = append(dst, h)
	dst = appendRemLen(dst, publishRem(v, len(topic), len(payload), qos))
	dst = appendBin(dst, topic)
	if qos > 0 {
		dst = appendU16(dst, id)
	}
	if v == V5 {
		dst = append(dst, 0)
	}
	return append(dst, payload...)
}

// SetDup sets the DUP flag of an encoded PUBLISH packet in place.
func SetDup(pkt []byte) {
	if len(pkt) > 0 && Type(pkt[0]>>4) == TypePublish {
		pkt[0] |= 0x08
	}
}

// AppendPuback appends a PUBACK for packet id. An MQTT 5 reason code 0 is
// left out (remaining length 2), as the spec allows.
func AppendPuback(dst []byte, v Version, id uint16, reason byte) []byte {
	if v == V5 && reason != 0 {
		return append(dst, byte(TypePuback)<<4, 3, byte(id>>8), byte(id), reason)
	}
	return append(dst, byte(TypePuback)<<4, 2, byte(id>>8), byte(id))
}

// AppendSubscribe appends a SUBSCRIBE packet for the subscriptions' topic
// filters and QoS (no MQTT 5 properties; the subscription options byte
// carries only the QoS). Handlers are not used here.
func AppendSubscribe(dst []byte, v Version, id uint16, subs []Subscription) []byte {
	n := 2
	if v == V5 {
		n++
	}
	for i := range subs {
		n += 2 + len(subs[i].Topic) + 1
	}
	dst = append(dst, byte(TypeSubscribe)<<4|0x02)
	dst = appendRemLen(dst, n)
	dst = appendU16(dst, id)
	if v == V5 {
		dst = append(dst, 0)
	}
	for i := range subs {
		dst = appendStr(dst, subs[i].Topic)
		dst = append(dst, byte(subs[i].QoS&3))
	}
	return dst
}

// AppendPingreq appends a PINGREQ packet.
func AppendPingreq(dst []byte) []byte { return append(dst, byte(TypePingreq)<<4, 0) }

// AppendDisconnect appends a DISCONNECT. An MQTT 5 reason code 0 (normal
// disconnection) is left out, so both versions send E0 00 for it.
func AppendDisconnect(dst []byte, v Version, reason byte) []byte {
	if v == V5 && reason != 0 {
		return append(dst, byte(TypeDisconnect)<<4, 1, reason)
	}
	return append(dst, byte(TypeDisconnect)<<4, 0)
}

// PacketLen returns the total length (fixed header plus remaining length)
// of the packet starting at b[0], or 0 when b does not yet hold its whole
// fixed header. It fails on a remaining length longer than 4 bytes.
func PacketLen(b []byte) (int, error) {
	if len(b) < 2 {
		return 0, nil
	}
	rem, used := readVarint(b[1:])
	switch {
	case used < 0:
		return 0, errRemLen
	case used == 0:
		return 0, nil
	}
	return 1 + used + rem, nil
}

// Packet is a decoded server-to-client packet. Its byte slices point into
// the buffer passed to Decode.
type Packet struct {
	Type  Type
	Flags byte // low nibble of the first byte (PUBLISH: DUP, QoS, RETAIN)
	// ID is the packet identifier (PUBLISH at QoS 1, PUBACK, SUBACK, UNSUBACK).
	ID uint16
	// Code is the CONNACK return/reason code, the PUBACK or DISCONNECT
	// reason code (0 when left out).
	Code           byte
	SessionPresent bool   // CONNACK
	Topic, Payload []byte // PUBLISH
	Codes          []byte // SUBACK / UNSUBACK return or reason codes
	// Props holds the MQTT 5 properties, validated; see Property.
	Props []byte
}

// QoS returns a PUBLISH's QoS.
func (p *Packet) QoS() QoS { return QoS(p.Flags >> 1 & 3) }

// Dup reports a PUBLISH's DUP flag.
func (p *Packet) Dup() bool { return p.Flags&0x08 != 0 }

// Retain reports a PUBLISH's RETAIN flag.
func (p *Packet) Retain() bool { return p.Flags&0x01 != 0 }

// Property returns the first MQTT 5 property with identifier id: its value
// for integer properties (byte, two- and four-byte, variable byte
// integers), its bytes for strings and binary data (a user property gives
// key and value with their length prefixes).
func (p *Packet) Property(id byte) (num uint32, data []byte, ok bool) {
	b := p.Props
	for len(b) > 0 {
		pid, num, data, n, err := nextProp(b)
		if err != nil {
			return 0, nil, false
		}
		if pid == id {
			return num, data, true
		}
		b = b[n:]
	}
	return 0, nil, false
}

// Property value types (MQTT 5 §2.2.2.2).
const (
	ptByte = iota + 1
	ptU16
	ptU32
	ptVarint
	ptString
	ptBinary
	ptPair
)

// propType maps identifiers 0x00..0x2A to their value type (0: unknown).
var propType = [0x2B]byte{
	0x01: ptByte, 0x02: ptU32, 0x03: ptString, 0x08: ptString, 0x09: ptBinary,
	0x0B: ptVarint, 0x11: ptU32, 0x12: ptString, 0x13: ptU16, 0x15: ptString,
	0x16: ptBinary, 0x17: ptByte, 0x18: ptU32, 0x19: ptByte, 0x1A: ptString,
	0x1C: ptString, 0x1F: ptString, 0x21: ptU16, 0x22: ptU16, 0x23: ptU16,
	0x24: ptByte, 0x25: ptByte, 0x26: ptPair, 0x27: ptU32, 0x28: ptByte,
	0x29: ptByte, 0x2A: ptByte,
}

// nextProp decodes the property at the start of b.
func nextProp(b []byte) (id byte, num uint32, data []byte, n int, err error) {
	id = b[0]
	if int(id) >= len(propType) || propType[id] == 0 {
		return 0, 0, nil, 0, errPropID
	}
	v := b[1:]
	switch propType[id] {
	case ptByte:
		if len(v) < 1 {
			return 0, 0, nil, 0, errPropValue
		}
		return id, uint32(v[0]), nil, 2, nil
	case ptU16:
		if len(v) < 2 {
			return 0, 0, nil, 0, errPropValue
		}
		return id, uint32(v[0])<<8 | uint32(v[1]), nil, 3, nil
	case ptU32:
		if len(v) < 4 {
			return 0, 0, nil, 0, errPropValue
		}
		return id, uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3]), nil, 5, nil
	case ptVarint:
		x, used := readVarint(v)
		if used <= 0 {
			return 0, 0, nil, 0, errPropValue
		}
		return id, uint32(x), nil, 1 + used, nil
	case ptString, ptBinary:
		if len(v) < 2 || len(v) < 2+u16(v) {
			return 0, 0, nil, 0, errPropValue
		}
		l := u16(v)
		return id, 0, v[2 : 2+l], 3 + l, nil
	}
	// ptPair: two strings
	if len(v) < 2 || len(v) < 2+u16(v) {
		return 0, 0, nil, 0, errPropValue
	}
	k := 2 + u16(v)
	if w := v[k:]; len(w) < 2 || len(w) < 2+u16(w) {
		return 0, 0, nil, 0, errPropValue
	}
	l := k + 2 + u16(v[k:])
	return id, 0, v[:l], 1 + l, nil
}

// u16 reads a big-endian two-byte integer (len(b) >= 2).
func u16(b []byte) int { return int(b[0])<<8 | int(b[1]) }

// splitProps reads an MQTT 5 property block (length, properties) from the
// start of b, validates it, and returns it and what follows.
func splitProps(b []byte) (props, rest []byte, err error) {
	l, used := readVarint(b)
	if used <= 0 || len(b)-used < l {
		return nil, nil, errPropLen
	}
	props, rest = b[used:used+l], b[used+l:]
	for p := props; len(p) > 0; {
		_, _, _, n, err := nextProp(p)
		if err != nil {
			return nil, nil, err
		}
		p = p[n:]
	}
	return props, rest, nil
}

// validTopic checks a topic name of an inbound PUBLISH: non-empty UTF-8
// without NUL or wildcards (MQTT §4.7.3, §1.5.4).
func validTopic(t []byte) bool {
	if len(t) == 0 {
		return false
	}
	for _, c := range t {
		if c == 0 || c == '+' || c == '#' {
			return false
		}
	}
	return utf8.Valid(t)
}

// Decode decodes b, exactly one complete packet as sent by a server, in
// protocol version v. Malformed or disallowed packets return an *Error;
// Decode never panics on any input.
func (p *Packet) Decode(v Version, b []byte) error {
	*p = Packet{}
	n, err := PacketLen(b)
	if err != nil {
		return err
	}
	switch {
	case n == 0 || n > len(b):
		return errShort
	case n < len(b):
		return errLong
	}
	p.Type, p.Flags = Type(b[0]>>4), b[0]&0x0F
	_, used := readVarint(b[1:])
	body := b[1+used:]
	switch p.Type {
	case TypePublish:
		return p.decodePublish(v, body)
	case TypeConnack, TypePuback, TypeSuback, TypeUnsuback, TypePingresp, TypeDisconnect, TypeAuth:
		if p.Flags != 0 {
			return errFlags
		}
	case 0:
		return errType0
	case TypePubrec, TypePubrel, TypePubcomp:
		return errQoS2
	default:
		return errServerPacket
	}
	switch p.Type {
	case TypeConnack:
		if len(body) < 2 || v != V5 && len(body) > 2 {
			return errLength
		}
		if body[0]&^1 != 0 {
			return errConnackFlags
		}
		p.SessionPresent, p.Code = body[0] == 1, body[1]
		if v == V5 && len(body) > 2 {
			return p.tailProps(body[2:])
		}
	case TypePuback:
		if len(body) < 2 || v != V5 && len(body) > 2 {
			return errLength
		}
		if p.ID = uint16(body[0])<<8 | uint16(body[1]); p.ID == 0 {
			return errID0
		}
		if len(body) > 2 {
			p.Code = body[2]
			if len(body) > 3 {
				return p.tailProps(body[3:])
			}
		}
	case TypeSuback, TypeUnsuback:
		if len(body) < 2 {
			return errLength
		}
		if p.ID = uint16(body[0])<<8 | uint16(body[1]); p.ID == 0 {
			return errID0
		}
		rest := body[2:]
		if v == V5 {
			if p.Props, rest, err = splitProps(rest); err != nil {
				return err
			}
		}
		p.Codes = rest
		if p.Type == TypeUnsuback {
			return nil // 3.1.1: no payload; 5: reason codes
		}
		if len(rest) == 0 {
			return errSubackEmpty
		}
		for _, c := range rest {
			if c > 2 && (v != V5 && c != 0x80 || v == V5 && c < 0x80) {
				return errSubackCode
			}
		}
	case TypePingresp:
		if len(body) != 0 {
			return errLength
		}
	case TypeDisconnect:
		if v != V5 {
			return errDisconnect311
		}
		if len(body) > 0 {
			p.Code = body[0]
			if len(body) > 1 {
				return p.tailProps(body[1:])
			}
		}
	case TypeAuth:
		return errAuth
	}
	return nil
}

// tailProps decodes a property block that must end the packet.
func (p *Packet) tailProps(b []byte) error {
	props, rest, err := splitProps(b)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return errLong
	}
	p.Props = props
	return nil
}

func (p *Packet) decodePublish(v Version, body []byte) error {
	qos := p.QoS()
	switch {
	case qos == 3:
		return errQoS3
	case qos == 0 && p.Dup():
		return errDupQoS0
	case len(body) < 2:
		return errShort
	}
	tl := u16(body)
	if len(body) < 2+tl {
		return errShort
	}
	p.Topic, body = body[2:2+tl], body[2+tl:]
	if qos > 0 {
		if len(body) < 2 {
			return errShort
		}
		if p.ID = uint16(body[0])<<8 | uint16(body[1]); p.ID == 0 {
			return errID0
		}
		body = body[2:]
	}
	if v == V5 {
		var err error
		if p.Props, body, err = splitProps(body); err != nil {
			return err
		}
		if _, _, alias := p.Property(PropTopicAlias); alias {
			return errTopicAlias // the client sends no Topic Alias Maximum: 0 allowed
		}
	}
	if !validTopic(p.Topic) {
		return errTopic
	}
	if qos == 2 {
		return errQoS2 // the client subscribes at QoS <= 1 only
	}
	p.Payload = body
	return nil
}

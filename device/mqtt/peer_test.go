package mqtt_test

import (
	"github.com/aimdb-dev/aimdb-flow/device/mqtt"
)

// peer is an in-memory MQTT broker stand-in and the client's transport in
// one: what the client writes is parsed packet by packet and answered
// (CONNACK, SUBACK, PUBACK, PINGRESP) into what the client reads next. It
// uses no goroutines, no clock and, once built, no heap: the zero-allocation
// tests run the client against it. Read returns a timeout error when
// nothing is queued, like a socket with an expired read deadline.
type peer struct {
	v   mqtt.Version
	in  []byte // server -> client, unread
	out []byte // client -> server, not yet parsed

	connack     []byte // CONNACK to answer CONNECT with (default: accepted)
	dropPubacks int    // PUBACKs to swallow before answering again
	noPingresp  bool
	subackCode  byte // 0: grant what was asked

	// what the client sent
	connects, subscribes, pings, disconnects int
	publishes, dups, pubacks                 int
	lastPublish                              mqtt.Packet
	lastPublishBytes                         []byte
	pubackIDs                                []uint16
	lastConnect                              []byte
	writeErr                                 error
	maxIn                                    int // Read returns at most this many bytes (0: all)
	onPublish                                func(p *mqtt.Packet)
	// emptyErr is what Read returns with 0 bytes when nothing is queued
	// (a timeout error by default; nil acts like TinyGo's non-blocking
	// UART.Read).
	emptyErr error
}

func newPeer(v mqtt.Version) *peer {
	return &peer{v: v, in: make([]byte, 0, 512), out: make([]byte, 0, 256),
		lastPublishBytes: make([]byte, 0, 256), lastConnect: make([]byte, 0, 128), pubackIDs: make([]uint16, 0, 16),
		emptyErr: errTimeout}
}

type timeoutErr struct{}

func (timeoutErr) Error() string { return "i/o timeout" }
func (timeoutErr) Timeout() bool { return true }

var errTimeout error = timeoutErr{}

func (p *peer) Read(b []byte) (int, error) {
	if len(p.in) == 0 {
		return 0, p.emptyErr
	}
	n := len(p.in)
	if p.maxIn > 0 && n > p.maxIn {
		n = p.maxIn
	}
	n = copy(b, p.in[:n])
	p.in = p.in[:copy(p.in, p.in[n:])]
	return n, nil
}

func (p *peer) Write(b []byte) (int, error) {
	if p.writeErr != nil {
		return 0, p.writeErr
	}
	p.out = append(p.out, b...)
	for {
		n, err := mqtt.PacketLen(p.out)
		if err != nil || n == 0 || n > len(p.out) {
			break
		}
		p.serve(p.out[:n])
		p.out = p.out[:copy(p.out, p.out[n:])]
	}
	return len(b), nil
}

// send queues raw bytes for the client to read.
func (p *peer) send(b ...byte) { p.in = append(p.in, b...) }

// publish queues a PUBLISH to the client.
func (p *peer) publish(topic, payload string, qos mqtt.QoS, id uint16) {
	p.in = mqtt.AppendPublish(p.in, p.v, []byte(topic), []byte(payload), qos, false, false, id)
}

// serve answers one client packet.
func (p *peer) serve(pkt []byte) {
	_, used := remLen(pkt[1:])
	body := pkt[1+used:]
	switch mqtt.Type(pkt[0] >> 4) {
	case mqtt.TypeConnect:
		p.connects++
		p.lastConnect = append(p.lastConnect[:0], pkt...)
		if p.connack != nil {
			p.in = append(p.in, p.connack...)
		} else if p.v == mqtt.V5 {
			p.send(0x20, 3, 0, 0, 0)
		} else {
			p.send(0x20, 2, 0, 0)
		}
	case mqtt.TypeSubscribe:
		p.subscribes++
		id := body[:2]
		rest := body[2:]
		if p.v == mqtt.V5 {
			rest = rest[1:] // property length 0
		}
		var codes [16]byte
		n := 0
		for len(rest) >= 3 && n < len(codes) {
			l := int(rest[0])<<8 | int(rest[1])
			codes[n] = rest[2+l]
			if p.subackCode != 0 {
				codes[n] = p.subackCode
			}
			n++
			rest = rest[3+l:]
		}
		hdr := 2 + n
		if p.v == mqtt.V5 {
			hdr++
		}
		p.send(0x90, byte(hdr), id[0], id[1])
		if p.v == mqtt.V5 {
			p.send(0)
		}
		p.send(codes[:n]...)
	case mqtt.TypePublish:
		p.publishes++
		p.lastPublishBytes = append(p.lastPublishBytes[:0], pkt...)
		if err := p.lastPublish.Decode(p.v, p.lastPublishBytes); err != nil {
			panic("client sent a PUBLISH the codec cannot decode: " + err.Error())
		}
		if p.lastPublish.Dup() {
			p.dups++
		}
		if p.onPublish != nil {
			p.onPublish(&p.lastPublish)
		}
		if p.lastPublish.QoS() == mqtt.QoS1 {
			if p.dropPubacks > 0 {
				p.dropPubacks--
				return
			}
			p.in = mqtt.AppendPuback(p.in, p.v, p.lastPublish.ID, 0)
		}
	case mqtt.TypePuback:
		p.pubacks++
		p.pubackIDs = append(p.pubackIDs, uint16(body[0])<<8|uint16(body[1]))
	case mqtt.TypePingreq:
		p.pings++
		if !p.noPingresp {
			p.send(0xD0, 0)
		}
	case mqtt.TypeDisconnect:
		p.disconnects++
	}
}

func remLen(b []byte) (val, used int) {
	mul := 1
	for i := 0; i < 4 && i < len(b); i++ {
		val += int(b[i]&0x7F) * mul
		if b[i]&0x80 == 0 {
			return val, i + 1
		}
		mul <<= 7
	}
	return 0, -1
}

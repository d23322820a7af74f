//go:build !tinygo

package mqtt_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/device/mqtt"
)

// FuzzDecode: any bytes decode to a packet or to an *Error (ErrMalformed
// or ErrProtocol), never a panic; a decoded packet's slices lie inside the
// input, and a decoded PUBLISH without properties encodes back to a packet
// that decodes to the same fields.
func FuzzDecode(f *testing.F) {
	for _, s := range [][]byte{
		b(0x20, 2, 1, 0),
		b(0x20, 8, 0, 0, 5, 0x21, 0, 10, 0x24, 0),
		b(0x3B, 7, 0, 1, "t", 0, 7, "hi"),
		b(0x30, 13, 0, 1, "t", 7, 0x26, 0, 1, "k", 0, 1, "v", "hi"),
		b(0x32, 10, 0, 3, "a/b", 0, 10, 0, "hi"),
		b(0x40, 8, 0, 10, 0x80, 4, 0x1F, 0, 1, "x"),
		b(0x90, 5, 0, 10, 0, 2, 0x80),
		b(0xD0, 0),
		b(0xE0, 1, 0x8E),
		b(0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F),
	} {
		f.Add(false, s)
		f.Add(true, s)
	}
	f.Fuzz(func(t *testing.T, v5 bool, data []byte) {
		v := mqtt.V311
		if v5 {
			v = mqtt.V5
		}
		in := append([]byte(nil), data...)
		var p mqtt.Packet
		err := p.Decode(v, in)
		if !bytes.Equal(in, data) {
			t.Fatal("Decode modified its input")
		}
		if err != nil {
			var e *mqtt.Error
			if !errors.As(err, &e) || !errors.Is(err, mqtt.ErrMalformed) && !errors.Is(err, mqtt.ErrProtocol) {
				t.Fatalf("error %v (%T) is not a classified *mqtt.Error", err, err)
			}
			return
		}
		checkInside(t, &p, in)
		if p.Type != mqtt.TypePublish || len(p.Props) > 0 {
			return
		}
		enc := mqtt.AppendPublish(nil, v, p.Topic, p.Payload, p.QoS(), p.Retain(), p.Dup(), p.ID)
		var q mqtt.Packet
		if err := q.Decode(v, enc); err != nil {
			t.Fatalf("re-encoded PUBLISH % X does not decode: %v", enc, err)
		}
		if !bytes.Equal(q.Topic, p.Topic) || !bytes.Equal(q.Payload, p.Payload) || q.Flags != p.Flags || q.ID != p.ID {
			t.Fatalf("round trip changed the PUBLISH: %+v -> %+v", p, q)
		}
	})
}

// FuzzClientStream: whatever a hostile broker sends after CONNACK, in
// whatever read sizes, Poll returns nil or an error (and the client is then
// disconnected); it never panics or spins.
func FuzzClientStream(f *testing.F) {
	f.Add(false, uint8(0), b(0x30, 5, 0, 1, "t", "hi", 0xD0, 0))
	f.Add(true, uint8(3), b(0x32, 8, 0, 1, "t", 0, 9, 0, "hi", 0x40, 2, 0, 1))
	f.Add(false, uint8(1), b(0x32, 0xC8, 0x01, 0, 1, "t", 0, 9, bytes.Repeat([]byte{'x'}, 195)))
	f.Add(true, uint8(2), b(0xE0, 1, 0x8E))
	f.Fuzz(func(t *testing.T, v5 bool, chunk uint8, data []byte) {
		v := mqtt.V311
		if v5 {
			v = mqtt.V5
		}
		var h received
		c, err := mqtt.New(mqtt.Config{Version: v, ClientID: "d", MaxPacket: 64, MaxInflight: 2,
			Subscriptions: []mqtt.Subscription{{Topic: "#", QoS: 1, Handler: &h}}})
		if err != nil {
			t.Fatal(err)
		}
		p := newPeer(v)
		if err := c.Connect(p, t0); err != nil {
			t.Fatal(err)
		}
		_ = c.Publish([]byte("out"), []byte("x"), mqtt.QoS1, false)
		p.maxIn = int(chunk)
		p.in = append(p.in, data...)
		now := t0
		for i := 0; i < len(data)+4; i++ {
			now = now + time.Second
			if err := c.Poll(now); err != nil {
				if c.Connected() {
					t.Fatalf("Poll failed (%v) but the client is still connected", err)
				}
				return
			}
		}
	})
}

package mqtt_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/device/mqtt"
)

// b concatenates byte slices and strings into one packet for the tables.
func b(parts ...any) []byte {
	var out []byte
	for _, p := range parts {
		switch p := p.(type) {
		case int:
			out = append(out, byte(p))
		case string:
			out = append(out, p...)
		case []byte:
			out = append(out, p...)
		default:
			panic("b: unsupported part")
		}
	}
	return out
}

func hex(p []byte) string {
	const digits = "0123456789ABCDEF"
	var s strings.Builder
	for i, c := range p {
		if i > 0 {
			s.WriteByte(' ')
		}
		s.WriteByte(digits[c>>4])
		s.WriteByte(digits[c&15])
	}
	return s.String()
}

// The encodings of MQTT 3.1.1 Table 2.4 / MQTT 5 Table 1-1 (Size of
// Variable Byte Integer): the boundaries of each length.
func TestRemainingLength(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []byte
	}{
		{0, b(0x00)},
		{127, b(0x7F)},
		{128, b(0x80, 0x01)},
		{16_383, b(0xFF, 0x7F)},
		{16_384, b(0x80, 0x80, 0x01)},
		{2_097_151, b(0xFF, 0xFF, 0x7F)},
		{2_097_152, b(0x80, 0x80, 0x80, 0x01)},
		{268_435_455, b(0xFF, 0xFF, 0xFF, 0x7F)},
	} {
		if got := mqtt.AppendRemLen(nil, tc.n); !bytes.Equal(got, tc.want) {
			t.Errorf("encode %d = % X, want % X", tc.n, got, tc.want)
		}
		hdr := append([]byte{0x30}, tc.want...)
		if got, err := mqtt.PacketLen(hdr); err != nil || got != 1+len(tc.want)+tc.n {
			t.Errorf("PacketLen(% X) = %d, %v, want %d", hdr, got, err, 1+len(tc.want)+tc.n)
		}
		if got, err := mqtt.PacketLen(hdr[:len(hdr)-1]); err != nil || got != 0 {
			t.Errorf("PacketLen of a partial header % X = %d, %v, want 0 (need more)", hdr[:len(hdr)-1], got, err)
		}
	}
	if _, err := mqtt.PacketLen(b(0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F)); !errors.Is(err, mqtt.ErrMalformed) {
		t.Errorf("5-byte remaining length: %v, want ErrMalformed", err)
	}
}

func TestEncode(t *testing.T) {
	will := &mqtt.Will{Topic: "w", Payload: []byte("m"), QoS: 1}
	full := &mqtt.Connect{ClientID: "c", Username: "u", Password: "p", KeepAlive: 10, CleanStart: true, Will: will}
	mqttHdr := b(0x00, 0x04, "MQTT")
	for _, tc := range []struct {
		name string
		got  []byte
		want []byte
	}{
		// MQTT 3.1.1 Figure 3.6 (CONNECT variable header example: user name,
		// password, will QoS 1, will, clean session = flags 0xCE; keep alive
		// 10), with a one-letter client id, will, user name and password.
		{"connect 3.1.1 spec example", mqtt.AppendConnect(nil, mqtt.V311, full),
			b(0x10, 25, mqttHdr, 0x04, 0xCE, 0x00, 0x0A, 0, 1, "c", 0, 1, "w", 0, 1, "m", 0, 1, "u", 0, 1, "p")},
		// MQTT 5 Figure 3-6 (the same, plus properties length 5: Session
		// Expiry Interval (17) = 10); will properties length 0.
		{"connect 5 spec example", mqtt.AppendConnect(nil, mqtt.V5, &mqtt.Connect{ClientID: "c", Username: "u", Password: "p",
			KeepAlive: 10, CleanStart: true, Will: will, SessionExpiry: 10}),
			b(0x10, 32, mqttHdr, 0x05, 0xCE, 0x00, 0x0A, 0x05, 0x11, 0, 0, 0, 10, 0, 1, "c", 0, 0, 1, "w", 0, 1, "m", 0, 1, "u", 0, 1, "p")},
		{"connect 3.1.1 minimal", mqtt.AppendConnect(nil, mqtt.V311, &mqtt.Connect{ClientID: "d-1", KeepAlive: 60, CleanStart: true}),
			b(0x10, 15, mqttHdr, 0x04, 0x02, 0x00, 0x3C, 0, 3, "d-1")},
		{"connect 3.1.1 kept session, will retain QoS 0", mqtt.AppendConnect(nil, mqtt.V311, &mqtt.Connect{ClientID: "d",
			Will: &mqtt.Will{Topic: "s", Payload: []byte("off"), Retain: true}}),
			b(0x10, 21, mqttHdr, 0x04, 0x24, 0x00, 0x00, 0, 1, "d", 0, 1, "s", 0, 3, "off")},
		{"connect 5 limits", mqtt.AppendConnect(nil, mqtt.V5, &mqtt.Connect{ClientID: "d", KeepAlive: 30, ReceiveMax: 4, MaxPacket: 256}),
			b(0x10, 22, mqttHdr, 0x05, 0x00, 0x00, 0x1E, 8, 0x21, 0, 4, 0x27, 0, 0, 1, 0, 0, 1, "d")},
		// MQTT 3.1.1 Figure 3.11 (PUBLISH variable header: topic "a/b",
		// packet identifier 10), payload "hi".
		{"publish qos1 spec example", mqtt.AppendPublish(nil, mqtt.V311, []byte("a/b"), []byte("hi"), 1, false, false, 10),
			b(0x32, 9, 0, 3, "a/b", 0, 10, "hi")},
		{"publish qos0 retain", mqtt.AppendPublish(nil, mqtt.V311, []byte("a/b"), []byte("hi"), 0, true, false, 0),
			b(0x31, 7, 0, 3, "a/b", "hi")},
		{"publish qos1 dup", mqtt.AppendPublish(nil, mqtt.V311, []byte("a/b"), nil, 1, false, true, 0x1234),
			b(0x3A, 7, 0, 3, "a/b", 0x12, 0x34)},
		{"publish 5 qos1", mqtt.AppendPublish(nil, mqtt.V5, []byte("a/b"), []byte("hi"), 1, false, false, 10),
			b(0x32, 10, 0, 3, "a/b", 0, 10, 0, "hi")},
		{"publish 200-byte payload: two-byte remaining length", mqtt.AppendPublish(nil, mqtt.V311, []byte("t"), bytes.Repeat([]byte{'x'}, 200), 0, false, false, 0),
			b(0x30, 0xCB, 0x01, 0, 1, "t", bytes.Repeat([]byte{'x'}, 200))},
		{"puback", mqtt.AppendPuback(nil, mqtt.V311, 10, 0), b(0x40, 2, 0, 10)},
		{"puback 5 success (reason left out)", mqtt.AppendPuback(nil, mqtt.V5, 10, 0), b(0x40, 2, 0, 10)},
		{"puback 5 reason 0x10", mqtt.AppendPuback(nil, mqtt.V5, 10, 0x10), b(0x40, 3, 0, 10, 0x10)},
		// MQTT 3.1.1 Figure 3.21 (SUBSCRIBE: packet identifier 10, "a/b" at
		// QoS 1, "c/d" at QoS 2).
		{"subscribe spec example", mqtt.AppendSubscribe(nil, mqtt.V311, 10, []mqtt.Subscription{{Topic: "a/b", QoS: 1}, {Topic: "c/d", QoS: 2}}),
			b(0x82, 14, 0, 10, 0, 3, "a/b", 1, 0, 3, "c/d", 2)},
		{"subscribe 5", mqtt.AppendSubscribe(nil, mqtt.V5, 10, []mqtt.Subscription{{Topic: "a/b", QoS: 1}}),
			b(0x82, 9, 0, 10, 0, 0, 3, "a/b", 1)},
		{"pingreq", mqtt.AppendPingreq(nil), b(0xC0, 0)},
		{"disconnect", mqtt.AppendDisconnect(nil, mqtt.V311, 0), b(0xE0, 0)},
		{"disconnect 5 normal", mqtt.AppendDisconnect(nil, mqtt.V5, 0), b(0xE0, 0)},
		{"disconnect 5 with will message", mqtt.AppendDisconnect(nil, mqtt.V5, 0x04), b(0xE0, 1, 0x04)},
	} {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s:\n got  %s\n want %s", tc.name, hex(tc.got), hex(tc.want))
		}
	}
	if got, want := mqtt.PublishLen(mqtt.V5, 3, 2, 1), 12; got != want {
		t.Errorf("PublishLen = %d, want %d", got, want)
	}
	pkt := mqtt.AppendPublish(nil, mqtt.V311, []byte("a"), nil, 1, false, false, 1)
	mqtt.SetDup(pkt)
	if pkt[0] != 0x3A {
		t.Errorf("SetDup: first byte %#x, want 0x3a", pkt[0])
	}
}

func TestDecode(t *testing.T) {
	userProp := b(0x26, 0, 1, "k", 0, 1, "v")
	type want struct {
		typ     mqtt.Type
		id      uint16
		code    byte
		session bool
		topic   string
		payload string
		qos     mqtt.QoS
		retain  bool
		dup     bool
		codes   []byte
		props   []byte
	}
	// Plain loops, not subtests: on cortex-m-qemu every t.Run costs a
	// goroutine stack out of the board's 64 KB.
	for _, tc := range []struct {
		name string
		v    mqtt.Version
		in   []byte
		want want
	}{
		{"connack accepted", mqtt.V311, b(0x20, 2, 0, 0), want{typ: mqtt.TypeConnack}},
		{"connack session present", mqtt.V311, b(0x20, 2, 1, 0), want{typ: mqtt.TypeConnack, session: true}},
		{"connack refused: not authorized", mqtt.V311, b(0x20, 2, 0, 5), want{typ: mqtt.TypeConnack, code: 5}},
		{"connack 5 no properties", mqtt.V5, b(0x20, 3, 0, 0, 0), want{typ: mqtt.TypeConnack}},
		{"connack 5 receive maximum 10, maximum QoS 0", mqtt.V5, b(0x20, 8, 0, 0, 5, 0x21, 0, 10, 0x24, 0),
			want{typ: mqtt.TypeConnack, props: b(0x21, 0, 10, 0x24, 0)}},
		{"connack 5 reason 0x86", mqtt.V5, b(0x20, 3, 0, 0x86, 0), want{typ: mqtt.TypeConnack, code: 0x86}},
		{"publish qos0", mqtt.V311, b(0x30, 5, 0, 1, "t", "hi"), want{typ: mqtt.TypePublish, topic: "t", payload: "hi"}},
		{"publish qos1 retain dup", mqtt.V311, b(0x3B, 7, 0, 1, "t", 0, 7, "hi"),
			want{typ: mqtt.TypePublish, topic: "t", payload: "hi", qos: 1, id: 7, retain: true, dup: true}},
		{"publish empty payload", mqtt.V311, b(0x30, 3, 0, 1, "t"), want{typ: mqtt.TypePublish, topic: "t"}},
		{"publish utf-8 topic", mqtt.V311, b(0x30, 4, 0, 2, "é"), want{typ: mqtt.TypePublish, topic: "é"}},
		{"publish 5 user property", mqtt.V5, b(0x30, 13, 0, 1, "t", 7, userProp, "hi"),
			want{typ: mqtt.TypePublish, topic: "t", payload: "hi", props: userProp}},
		{"publish 5 no properties", mqtt.V5, b(0x32, 8, 0, 1, "t", 0, 9, 0, "hi"),
			want{typ: mqtt.TypePublish, topic: "t", payload: "hi", qos: 1, id: 9}},
		{"puback", mqtt.V311, b(0x40, 2, 0, 10), want{typ: mqtt.TypePuback, id: 10}},
		{"puback 5 reason", mqtt.V5, b(0x40, 3, 0, 10, 0x10), want{typ: mqtt.TypePuback, id: 10, code: 0x10}},
		{"puback 5 reason, empty properties", mqtt.V5, b(0x40, 4, 0, 10, 0x87, 0), want{typ: mqtt.TypePuback, id: 10, code: 0x87}},
		{"puback 5 reason string", mqtt.V5, b(0x40, 8, 0, 10, 0x80, 4, 0x1F, 0, 1, "x"),
			want{typ: mqtt.TypePuback, id: 10, code: 0x80, props: b(0x1F, 0, 1, "x")}},
		// MQTT 3.1.1 Figure 3.26 (SUBACK payload: maximum QoS 0, maximum
		// QoS 2, failure).
		{"suback spec example", mqtt.V311, b(0x90, 5, 0, 10, 0, 2, 0x80), want{typ: mqtt.TypeSuback, id: 10, codes: b(0, 2, 0x80)}},
		{"suback 5", mqtt.V5, b(0x90, 5, 0, 10, 0, 1, 0x87), want{typ: mqtt.TypeSuback, id: 10, codes: b(1, 0x87)}},
		{"pingresp", mqtt.V311, b(0xD0, 0), want{typ: mqtt.TypePingresp}},
		{"disconnect 5 session taken over", mqtt.V5, b(0xE0, 1, 0x8E), want{typ: mqtt.TypeDisconnect, code: 0x8E}},
		{"disconnect 5 normal", mqtt.V5, b(0xE0, 0), want{typ: mqtt.TypeDisconnect}},
	} {
		var p mqtt.Packet
		if err := p.Decode(tc.v, tc.in); err != nil {
			t.Errorf("%s: Decode(% X): %v", tc.name, tc.in, err)
			continue
		}
		got := want{typ: p.Type, id: p.ID, code: p.Code, session: p.SessionPresent, topic: string(p.Topic), payload: string(p.Payload),
			qos: p.QoS(), retain: p.Retain(), dup: p.Dup(), codes: p.Codes, props: p.Props}
		if p.Type != mqtt.TypePublish {
			got.qos, got.retain, got.dup = 0, false, false
		}
		if got.typ != tc.want.typ || got.id != tc.want.id || got.code != tc.want.code || got.session != tc.want.session ||
			got.topic != tc.want.topic || got.payload != tc.want.payload || got.qos != tc.want.qos ||
			got.retain != tc.want.retain || got.dup != tc.want.dup || !bytes.Equal(got.codes, tc.want.codes) || !bytes.Equal(got.props, tc.want.props) {
			t.Errorf("%s: Decode(% X)\n got  %+v\n want %+v", tc.name, tc.in, got, tc.want)
		}
	}
}

// Malformed packets (ErrMalformed) and packets a server must not send or
// the client does not support (ErrProtocol).
func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    mqtt.Version
		in   []byte
		err  error  // ErrMalformed or ErrProtocol
		msg  string // in the error text
	}{
		{"connack reserved flag", mqtt.V311, b(0x20, 2, 2, 0), mqtt.ErrMalformed, "CONNACK reserved flags"},
		{"connack 3.1.1 too long", mqtt.V311, b(0x20, 3, 0, 0, 0), mqtt.ErrMalformed, "remaining length wrong"},
		{"connack too short", mqtt.V311, b(0x20, 1, 0), mqtt.ErrMalformed, "remaining length wrong"},
		{"connack 5 truncated property", mqtt.V5, b(0x20, 5, 0, 0, 2, 0x21, 0), mqtt.ErrMalformed, "property value truncated"},
		{"connack 5 unknown property", mqtt.V5, b(0x20, 5, 0, 0, 2, 0x7F, 0), mqtt.ErrMalformed, "unknown property"},
		{"connack 5 property length past the end", mqtt.V5, b(0x20, 4, 0, 0, 5, 0x21), mqtt.ErrMalformed, "property length"},
		{"publish packet id 0", mqtt.V311, b(0x32, 5, 0, 1, "t", 0, 0), mqtt.ErrMalformed, "identifier 0"},
		{"publish qos 3", mqtt.V311, b(0x36, 5, 0, 1, "t", 0, 1), mqtt.ErrMalformed, "QoS 3"},
		{"publish qos 2", mqtt.V311, b(0x34, 5, 0, 1, "t", 0, 1), mqtt.ErrProtocol, "QoS 2"},
		{"publish dup at qos 0", mqtt.V311, b(0x38, 3, 0, 1, "t"), mqtt.ErrMalformed, "DUP"},
		{"publish empty topic", mqtt.V311, b(0x30, 2, 0, 0), mqtt.ErrMalformed, "topic"},
		{"publish wildcard topic", mqtt.V311, b(0x30, 5, 0, 3, "a/#"), mqtt.ErrMalformed, "topic"},
		{"publish NUL in topic", mqtt.V311, b(0x30, 4, 0, 2, "a", 0), mqtt.ErrMalformed, "topic"},
		{"publish bad utf-8 topic", mqtt.V311, b(0x30, 4, 0, 2, 0xC3, 0x28), mqtt.ErrMalformed, "topic"},
		{"publish topic length past the end", mqtt.V311, b(0x30, 3, 0, 5, "a"), mqtt.ErrMalformed, "shorter"},
		{"publish qos1 without packet id", mqtt.V311, b(0x32, 3, 0, 1, "t"), mqtt.ErrMalformed, "shorter"},
		{"publish 5 topic alias", mqtt.V5, b(0x30, 7, 0, 1, "t", 3, 0x23, 0, 1), mqtt.ErrProtocol, "topic alias"},
		{"publish 5 missing property length", mqtt.V5, b(0x30, 3, 0, 1, "t"), mqtt.ErrMalformed, "property length"},
		{"puback id 0", mqtt.V311, b(0x40, 2, 0, 0), mqtt.ErrMalformed, "identifier 0"},
		{"puback 3.1.1 too long", mqtt.V311, b(0x40, 3, 0, 10, 0), mqtt.ErrMalformed, "remaining length wrong"},
		{"puback reserved flags", mqtt.V311, b(0x41, 2, 0, 10), mqtt.ErrMalformed, "flags"},
		{"suback invalid code", mqtt.V311, b(0x90, 3, 0, 10, 3), mqtt.ErrMalformed, "SUBACK return code"},
		{"suback without codes", mqtt.V311, b(0x90, 2, 0, 10), mqtt.ErrMalformed, "without return codes"},
		{"suback 5 invalid code", mqtt.V5, b(0x90, 4, 0, 10, 0, 3), mqtt.ErrMalformed, "SUBACK return code"},
		{"pingresp with a body", mqtt.V311, b(0xD0, 1, 0), mqtt.ErrMalformed, "remaining length wrong"},
		{"disconnect from a 3.1.1 server", mqtt.V311, b(0xE0, 0), mqtt.ErrProtocol, "DISCONNECT"},
		{"pubrec", mqtt.V311, b(0x50, 2, 0, 1), mqtt.ErrProtocol, "QoS 2"},
		{"connect from the server", mqtt.V311, b(0x10, 0), mqtt.ErrProtocol, "server must not send"},
		{"subscribe from the server", mqtt.V311, b(0x82, 0), mqtt.ErrProtocol, "server must not send"},
		{"auth", mqtt.V5, b(0xF0, 0), mqtt.ErrProtocol, "AUTH"},
		{"type 0", mqtt.V311, b(0x00, 0), mqtt.ErrMalformed, "type 0"},
		{"bytes past the end", mqtt.V311, b(0x20, 2, 0, 0, 0), mqtt.ErrMalformed, "after the end"},
		{"truncated", mqtt.V311, b(0x20, 2, 0), mqtt.ErrMalformed, "shorter"},
		{"empty", mqtt.V311, nil, mqtt.ErrMalformed, "shorter"},
		{"5-byte remaining length", mqtt.V311, b(0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F), mqtt.ErrMalformed, "4 bytes"},
	} {
		var p mqtt.Packet
		if err := p.Decode(tc.v, tc.in); !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: Decode(% X) = %v, want %v containing %q", tc.name, tc.in, err, tc.err, tc.msg)
		}
	}
}

func TestProperty(t *testing.T) {
	var p mqtt.Packet
	in := b(0x20, 20, 0, 0, 17, 0x21, 0, 10, 0x27, 0, 0, 1, 0, 0x13, 0, 30, 0x12, 0, 3, "abc")
	if err := p.Decode(mqtt.V5, in); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   byte
		num  uint32
		data string
		ok   bool
	}{
		{mqtt.PropReceiveMaximum, 10, "", true},
		{mqtt.PropMaxPacketSize, 256, "", true},
		{mqtt.PropServerKeepAlive, 30, "", true},
		{0x12, 0, "abc", true}, // assigned client identifier
		{mqtt.PropMaximumQoS, 0, "", false},
	} {
		num, data, ok := p.Property(tc.id)
		if num != tc.num || string(data) != tc.data || ok != tc.ok {
			t.Errorf("Property(%#x) = %d, %q, %v; want %d, %q, %v", tc.id, num, data, ok, tc.num, tc.data, tc.ok)
		}
	}
}

// Every prefix and every single-byte corruption of valid packets decodes
// to a packet or an error, never a panic, and a decoded packet's slices lie
// inside the input.
func TestDecodeTruncatedAndCorrupted(t *testing.T) {
	valid := [][]byte{
		b(0x20, 8, 0, 0, 5, 0x21, 0, 10, 0x24, 0),
		b(0x3B, 7, 0, 1, "t", 0, 7, "hi"),
		b(0x30, 13, 0, 1, "t", 7, 0x26, 0, 1, "k", 0, 1, "v", "hi"),
		b(0x40, 8, 0, 10, 0x80, 4, 0x1F, 0, 1, "x"),
		b(0x90, 5, 0, 10, 0, 1, 0x87),
		b(0xE0, 1, 0x8E),
	}
	var p mqtt.Packet
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		for _, pkt := range valid {
			for n := 0; n <= len(pkt); n++ {
				_ = p.Decode(v, pkt[:n])
			}
			for i := range pkt {
				for _, x := range []byte{0x00, 0x01, 0x7F, 0x80, 0xFF} {
					c := append([]byte(nil), pkt...)
					c[i] = x
					if p.Decode(v, c) == nil {
						checkInside(t, &p, c)
					}
				}
			}
		}
	}
}

func checkInside(t *testing.T, p *mqtt.Packet, in []byte) {
	t.Helper()
	for _, s := range [][]byte{p.Topic, p.Payload, p.Codes, p.Props} {
		if len(s) == 0 {
			continue
		}
		if len(s) > len(in) || !bytes.Contains(in, s) {
			t.Fatalf("decoded slice % X not inside the input % X", s, in)
		}
	}
}

package mqtt_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/device/internal/alloctest"
	"github.com/aimdb-dev/aimdb-flow/device/mqtt"
)

// t0 is an arbitrary start on the client's monotonic clock.
const t0 = time.Hour

var versions = []struct {
	name string
	v    mqtt.Version
}{{"3.1.1", mqtt.V311}, {"5", mqtt.V5}}

// received collects inbound messages (copies).
type received struct {
	msgs []string
	fail bool
}

func (r *received) HandleMessage(m *mqtt.Message) error {
	if r.fail {
		return errors.New("refused")
	}
	r.msgs = append(r.msgs, string(m.Topic)+" "+string(m.Payload))
	return nil
}

func connect(t *testing.T, cfg mqtt.Config) (*mqtt.Client, *peer) {
	t.Helper()
	c, err := mqtt.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := newPeer(cfg.Version)
	if err := c.Connect(p, t0); err != nil {
		t.Fatal(err)
	}
	return c, p
}

func TestConnectAndSubscribe(t *testing.T) {
	for _, ver := range versions {
		t.Run(ver.name, func(t *testing.T) {
			cfg := mqtt.Config{Version: ver.v, ClientID: "d-1", KeepAlive: 30 * time.Second, CleanStart: true,
				Username: "u", Password: "p", MaxPacket: 128,
				Subscriptions: []mqtt.Subscription{{Topic: "cmd/#", QoS: 1}, {Topic: "$share/g/set/+", QoS: 0}}}
			c, p := connect(t, cfg)
			want := mqtt.AppendConnect(nil, ver.v, &mqtt.Connect{ClientID: "d-1", Username: "u", Password: "p", KeepAlive: 30, CleanStart: true})
			if ver.v == mqtt.V5 {
				want = mqtt.AppendConnect(nil, ver.v, &mqtt.Connect{ClientID: "d-1", Username: "u", Password: "p", KeepAlive: 30,
					CleanStart: true, MaxPacket: 128})
			}
			if !bytes.Equal(p.lastConnect, want) {
				t.Fatalf("CONNECT\n got  %s\n want %s", hex(p.lastConnect), hex(want))
			}
			if !c.Connected() || p.connects != 1 || p.subscribes != 1 || c.Stats().Connects != 1 {
				t.Fatalf("connected %v, connects %d, subscribes %d", c.Connected(), p.connects, p.subscribes)
			}
			if err := c.Disconnect(); err != nil || p.disconnects != 1 || c.Connected() {
				t.Fatalf("Disconnect: %v, peer saw %d", err, p.disconnects)
			}
			if err := c.Poll(t0); !errors.Is(err, mqtt.ErrNotConnected) {
				t.Fatalf("Poll after Disconnect: %v", err)
			}
		})
	}
}

func TestConnectRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		v       mqtt.Version
		connack []byte
		code    byte
		msg     string
	}{
		{"3.1.1 not authorized", mqtt.V311, b(0x20, 2, 0, 5), 5, "not authorized"},
		{"3.1.1 identifier rejected", mqtt.V311, b(0x20, 2, 0, 2), 2, "identifier rejected"},
		{"5 bad user name or password", mqtt.V5, b(0x20, 3, 0, 0x86, 0), 0x86, "bad user name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := mqtt.New(mqtt.Config{Version: tc.v, ClientID: "d"})
			if err != nil {
				t.Fatal(err)
			}
			p := newPeer(tc.v)
			p.connack = tc.connack
			err = c.Connect(p, t0)
			var ce *mqtt.ConnectError
			if !errors.As(err, &ce) || ce.Code != tc.code || !strings.Contains(err.Error(), tc.msg) || c.Connected() {
				t.Fatalf("Connect = %v, want ConnectError code %d (%s)", err, tc.code, tc.msg)
			}
		})
	}
}

func TestSubscribeRefused(t *testing.T) {
	c, err := mqtt.New(mqtt.Config{ClientID: "d", Subscriptions: []mqtt.Subscription{{Topic: "a"}, {Topic: "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	p := newPeer(mqtt.V311)
	p.subackCode = 0x80
	err = c.Connect(p, t0)
	var se *mqtt.SubscribeError
	if !errors.As(err, &se) || se.Topic != "a" || c.Connected() {
		t.Fatalf("Connect = %v, want SubscribeError for a", err)
	}
}

func TestPublishQoS1WindowAndAcks(t *testing.T) {
	for _, ver := range versions {
		t.Run(ver.name, func(t *testing.T) {
			c, p := connect(t, mqtt.Config{Version: ver.v, ClientID: "d", MaxInflight: 2})
			p.dropPubacks = 100
			for i, want := range []error{nil, nil, mqtt.ErrInflightFull} {
				if err := c.Publish([]byte("t"), []byte{'0' + byte(i)}, mqtt.QoS1, false); err != want {
					t.Fatalf("publish %d: %v, want %v", i, err, want)
				}
			}
			if p.publishes != 2 || c.Pending() != 2 || c.Free() != 0 {
				t.Fatalf("peer got %d publishes; pending %d", p.publishes, c.Pending())
			}
			if err := c.Publish([]byte("t"), []byte("q0"), mqtt.QoS0, false); err != nil {
				t.Fatalf("QoS 0 with a full window: %v", err)
			}
			p.in = mqtt.AppendPuback(p.in, ver.v, 1, 0) // ack the first only
			p.in = mqtt.AppendPuback(p.in, ver.v, 99, 0)
			if err := c.Poll(t0); err != nil {
				t.Fatal(err)
			}
			if c.Pending() != 1 || c.Stats().Acked != 1 {
				t.Fatalf("pending %d, stats %+v", c.Pending(), c.Stats())
			}
			p.dropPubacks = 0
			if err := c.Publish([]byte("t"), []byte("3"), mqtt.QoS1, false); err != nil {
				t.Fatal(err)
			}
			p.in = mqtt.AppendPuback(p.in, ver.v, 2, 0)
			if err := c.Poll(t0); err != nil || c.Pending() != 0 {
				t.Fatalf("Poll: %v, pending %d", err, c.Pending())
			}
			if st := c.Stats(); st.Published != 4 || st.Acked != 3 || st.Resent != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// An MQTT 5 broker's Receive Maximum narrows the window: the second
// message waits in its slot until the first is acknowledged.
func TestReceiveMaximum(t *testing.T) {
	c, err := mqtt.New(mqtt.Config{Version: mqtt.V5, ClientID: "d", MaxInflight: 4})
	if err != nil {
		t.Fatal(err)
	}
	p := newPeer(mqtt.V5)
	p.connack = b(0x20, 6, 0, 0, 3, 0x21, 0, 1)
	p.dropPubacks = 1
	if err := c.Connect(p, t0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := c.Publish([]byte("t"), []byte{'a' + byte(i)}, mqtt.QoS1, false); err != nil {
			t.Fatal(err)
		}
	}
	if p.publishes != 1 || c.Pending() != 2 {
		t.Fatalf("sent %d with Receive Maximum 1; pending %d", p.publishes, c.Pending())
	}
	p.in = mqtt.AppendPuback(p.in, mqtt.V5, p.lastPublish.ID, 0)
	if err := c.Poll(t0); err != nil {
		t.Fatal(err)
	}
	if p.publishes != 2 || string(p.lastPublish.Payload) != "b" {
		t.Fatalf("after the ack: %d publishes, last %q", p.publishes, p.lastPublish.Payload)
	}
	if err := c.Poll(t0); err != nil || c.Pending() != 0 {
		t.Fatalf("Poll %v, pending %d", err, c.Pending())
	}
}

// MQTT 3.1.1: an unacknowledged message is resent with DUP and the same
// packet identifier on the same connection after AckTimeout.
func TestRetransmitOnAckTimeout311(t *testing.T) {
	c, p := connect(t, mqtt.Config{ClientID: "d", AckTimeout: 5 * time.Second, KeepAlive: time.Hour})
	p.dropPubacks = 1
	if err := c.Publish([]byte("t"), []byte("m"), mqtt.QoS1, false); err != nil {
		t.Fatal(err)
	}
	id := p.lastPublish.ID
	if err := c.Poll(t0 + 4*time.Second); err != nil || p.publishes != 1 {
		t.Fatalf("before AckTimeout: %v, %d publishes", err, p.publishes)
	}
	if err := c.Poll(t0 + 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if p.publishes != 2 || p.dups != 1 || !p.lastPublish.Dup() || p.lastPublish.ID != id {
		t.Fatalf("retransmission: %d publishes, %d with DUP, id %d (want %d)", p.publishes, p.dups, p.lastPublish.ID, id)
	}
	if err := c.Poll(t0 + 6*time.Second); err != nil || c.Pending() != 0 || c.Stats().Resent != 1 {
		t.Fatalf("Poll %v, pending %d, stats %+v", err, c.Pending(), c.Stats())
	}
}

// MQTT 5 forbids resending on the same connection: AckTimeout ends it,
// and the next Connect resends with DUP.
func TestAckTimeoutReconnectResends5(t *testing.T) {
	cfg := mqtt.Config{Version: mqtt.V5, ClientID: "d", AckTimeout: 5 * time.Second, KeepAlive: time.Hour, SessionExpiry: 60}
	c, p := connect(t, cfg)
	p.dropPubacks = 1
	if err := c.Publish([]byte("t"), []byte("m"), mqtt.QoS1, false); err != nil {
		t.Fatal(err)
	}
	id := p.lastPublish.ID
	if err := c.Poll(t0 + 5*time.Second); !errors.Is(err, mqtt.ErrAckTimeout) || c.Connected() {
		t.Fatalf("Poll = %v, want ErrAckTimeout", err)
	}
	if p.publishes != 1 {
		t.Fatalf("resent on the same connection (%d publishes)", p.publishes)
	}
	if !errors.Is(c.Poll(t0+(6*time.Second)), mqtt.ErrAckTimeout) || !errors.Is(c.Err(), mqtt.ErrAckTimeout) {
		t.Fatalf("Poll after the failure must keep reporting it: %v", c.Err())
	}
	p2 := newPeer(mqtt.V5)
	p2.connack = b(0x20, 3, 1, 0, 0) // session present
	if err := c.Connect(p2, t0+(7*time.Second)); err != nil {
		t.Fatal(err)
	}
	if p2.publishes != 1 || !p2.lastPublish.Dup() || p2.lastPublish.ID != id || string(p2.lastPublish.Payload) != "m" {
		t.Fatalf("after reconnect: %d publishes, dup %v, id %d (want %d)", p2.publishes, p2.lastPublish.Dup(), p2.lastPublish.ID, id)
	}
	if err := c.Poll(t0 + 8*time.Second); err != nil || c.Pending() != 0 {
		t.Fatalf("Poll %v, pending %d", err, c.Pending())
	}
}

// QoS 1 messages published while disconnected wait in the in-flight slots
// (first send: no DUP); QoS 0 ones are refused.
func TestOfflineQueue(t *testing.T) {
	c, err := mqtt.New(mqtt.Config{ClientID: "d", MaxInflight: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Publish([]byte("t"), []byte("0"), mqtt.QoS0, false); !errors.Is(err, mqtt.ErrNotConnected) {
		t.Fatalf("QoS 0 offline: %v", err)
	}
	for i, want := range []error{nil, nil, mqtt.ErrInflightFull} {
		if err := c.Publish([]byte("t"), []byte{'1' + byte(i)}, mqtt.QoS1, false); err != want {
			t.Fatalf("QoS 1 offline %d: %v, want %v", i, err, want)
		}
	}
	p := newPeer(mqtt.V311)
	var order []string
	p.onPublish = func(pk *mqtt.Packet) { order = append(order, string(pk.Payload)) }
	if err := c.Connect(p, t0); err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, ",") != "1,2" || p.dups != 0 {
		t.Fatalf("sent %v after connect (%d with DUP), want 1,2 without DUP", order, p.dups)
	}
	if err := c.Poll(t0); err != nil || c.Pending() != 0 {
		t.Fatalf("Poll %v, pending %d", err, c.Pending())
	}
}

func TestKeepAlive(t *testing.T) {
	at := func(s int) time.Duration { return t0 + time.Duration(s)*time.Second }
	c, p := connect(t, mqtt.Config{ClientID: "d", KeepAlive: 10 * time.Second})
	if err := c.Poll(at(9)); err != nil || p.pings != 0 {
		t.Fatalf("ping before KeepAlive: %v, %d", err, p.pings)
	}
	if err := c.Poll(at(10)); err != nil || p.pings != 1 {
		t.Fatalf("no ping at KeepAlive: %v, %d", err, p.pings)
	}
	if err := c.Poll(at(11)); err != nil || c.Stats().Pongs != 1 {
		t.Fatalf("PINGRESP not processed: %v, %+v", err, c.Stats())
	}
	// Received traffic does not postpone the ping: the broker must hear
	// from the client within KeepAlive.
	p.publish("t", "x", 0, 0)
	if err := c.Poll(at(15)); err != nil || p.pings != 1 {
		t.Fatalf("at 15 s: %v, %d pings", err, p.pings)
	}
	p.noPingresp = true
	if err := c.Poll(at(20)); err != nil || p.pings != 2 {
		t.Fatalf("no ping 10 s after the last one: %v, %d", err, p.pings)
	}
	if err := c.Poll(at(29)); err != nil {
		t.Fatalf("before PingTimeout: %v", err)
	}
	if err := c.Poll(at(30)); !errors.Is(err, mqtt.ErrPingTimeout) || c.Connected() {
		t.Fatalf("missing PINGRESP: %v", err)
	}
}

// A client that keeps sending but hears nothing pings too (a half-open
// connection shows up as ErrPingTimeout, not as silence).
func TestKeepAliveWhileSending(t *testing.T) {
	c, p := connect(t, mqtt.Config{ClientID: "d", KeepAlive: 10 * time.Second})
	for _, s := range []int{3, 6, 9} {
		if err := c.Poll(t0 + time.Duration(s)*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := c.Publish([]byte("t"), nil, mqtt.QoS0, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Poll(t0 + 10*time.Second); err != nil || p.pings != 1 {
		t.Fatalf("no ping after 10 s without inbound traffic: %v, %d pings", err, p.pings)
	}
}

func TestServerKeepAlive5(t *testing.T) {
	c, err := mqtt.New(mqtt.Config{Version: mqtt.V5, ClientID: "d", KeepAlive: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	p := newPeer(mqtt.V5)
	p.connack = b(0x20, 6, 0, 0, 3, 0x13, 0, 5) // Server Keep Alive 5 s
	if err := c.Connect(p, t0); err != nil {
		t.Fatal(err)
	}
	if err := c.Poll(t0 + 5*time.Second); err != nil || p.pings != 1 {
		t.Fatalf("Server Keep Alive not applied: %v, %d pings", err, p.pings)
	}
}

func TestInbound(t *testing.T) {
	for _, ver := range versions {
		t.Run(ver.name, func(t *testing.T) {
			var cmd, set, other received
			c, p := connect(t, mqtt.Config{Version: ver.v, ClientID: "d", OnMessage: &other,
				Subscriptions: []mqtt.Subscription{{Topic: "cmd/#", QoS: 1, Handler: &cmd}, {Topic: "$share/g/set/+", QoS: 1, Handler: &set}}})
			p.publish("cmd/a", "x", 1, 5)
			p.publish("set/temp", "21", 0, 0)
			p.publish("cmd", "y", 1, 6)
			p.publish("stale/topic", "z", 1, 7) // from an old subscription of a resumed session
			if err := c.Poll(t0); err != nil {
				t.Fatal(err)
			}
			if strings.Join(cmd.msgs, "|") != "cmd/a x|cmd y" || strings.Join(set.msgs, "|") != "set/temp 21" ||
				strings.Join(other.msgs, "|") != "stale/topic z" {
				t.Fatalf("cmd %q, set %q, other %q", cmd.msgs, set.msgs, other.msgs)
			}
			if got := p.pubackIDs; len(got) != 3 || got[0] != 5 || got[1] != 6 || got[2] != 7 {
				t.Fatalf("PUBACKs for %v, want [5 6 7]", got)
			}
			cmd.fail = true
			p.publish("cmd/b", "refused", 1, 8)
			if err := c.Poll(t0); err != nil {
				t.Fatal(err)
			}
			if len(p.pubackIDs) != 3 || c.Stats().Refused != 1 || c.Stats().Received != 5 {
				t.Fatalf("a refused message was acknowledged: %v, %+v", p.pubackIDs, c.Stats())
			}
		})
	}
}

func TestUnroutedIsAcked(t *testing.T) {
	c, p := connect(t, mqtt.Config{ClientID: "d", Subscriptions: []mqtt.Subscription{{Topic: "a", QoS: 1, Handler: &received{}}}})
	p.publish("b", "x", 1, 3)
	if err := c.Poll(t0); err != nil {
		t.Fatal(err)
	}
	if c.Stats().Unrouted != 1 || len(p.pubackIDs) != 1 {
		t.Fatalf("stats %+v, acks %v", c.Stats(), p.pubackIDs)
	}
}

// Packets split across reads (down to one byte per Read) and packets
// larger than MaxPacket (skipped, acknowledged, counted) leave the stream
// in sync.
func TestPartialReadsAndOversize(t *testing.T) {
	for _, chunk := range []int{1, 3, 7, 0} {
		var h received
		cfg := mqtt.Config{ClientID: "d", MaxPacket: 64, Subscriptions: []mqtt.Subscription{{Topic: "#", QoS: 1, Handler: &h}}}
		c, err := mqtt.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		p := newPeer(mqtt.V311)
		p.maxIn = chunk
		if err := c.Connect(p, t0); err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		p.publish("a", "first", 1, 1)
		p.publish("big", strings.Repeat("x", 300), 1, 2)
		p.publish("b", strings.Repeat("y", 50), 0, 0)
		p.publish("big0", strings.Repeat("z", 100), 0, 0)
		p.publish("c", "last", 1, 3)
		for i := 0; i < 2000 && len(p.in) > 0; i++ { // one read per Poll when a read does not fill rx
			if err := c.Poll(t0); err != nil {
				t.Fatalf("chunk %d: %v", chunk, err)
			}
		}
		if err := c.Poll(t0); err != nil {
			t.Fatal(err)
		}
		want := "a first|b " + strings.Repeat("y", 50) + "|c last"
		if got := strings.Join(h.msgs, "|"); got != want {
			t.Fatalf("chunk %d: got %q, stats %+v, %d bytes unread", chunk, got, c.Stats(), len(p.in))
		}
		if st := c.Stats(); st.Oversize != 2 || st.Received != 5 || len(p.pubackIDs) != 3 || p.pubackIDs[1] != 2 {
			t.Fatalf("chunk %d: stats %+v, acks %v", chunk, st, p.pubackIDs)
		}
	}
}

// A hostile or broken peer makes Poll return an error and end the
// connection; it never panics.
func TestHostilePeer(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    mqtt.Version
		in   []byte
		err  error
	}{
		{"remaining length of 5 bytes", mqtt.V311, b(0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F), mqtt.ErrMalformed},
		{"huge non-publish packet", mqtt.V311, b(0x90, 0xFF, 0xFF, 0xFF, 0x7F, bytes.Repeat([]byte{1}, 300)), mqtt.ErrTooLarge},
		{"qos 3", mqtt.V311, b(0x36, 5, 0, 1, "t", 0, 1), mqtt.ErrMalformed},
		{"qos 2 publish", mqtt.V311, b(0x34, 5, 0, 1, "t", 0, 1), mqtt.ErrProtocol},
		{"pubrel", mqtt.V311, b(0x62, 2, 0, 1), mqtt.ErrProtocol},
		{"wildcard topic", mqtt.V311, b(0x30, 3, 0, 1, "+"), mqtt.ErrMalformed},
		{"second connack", mqtt.V311, b(0x20, 2, 0, 0), mqtt.ErrProtocol},
		{"connect", mqtt.V311, b(0x10, 0), mqtt.ErrProtocol},
		{"topic alias", mqtt.V5, b(0x30, 7, 0, 1, "t", 3, 0x23, 0, 1), mqtt.ErrProtocol},
		{"bad property", mqtt.V5, b(0x40, 5, 0, 1, 0, 1, 0xFF), mqtt.ErrMalformed},
		{"server disconnect", mqtt.V5, b(0xE0, 1, 0x8E), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, p := connect(t, mqtt.Config{Version: tc.v, ClientID: "d", MaxPacket: 64})
			p.send(tc.in...)
			err := c.Poll(t0)
			var de *mqtt.DisconnectError
			if tc.err == nil && !errors.As(err, &de) || tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("Poll = %v, want %v", err, tc.err)
			}
			if c.Connected() || c.Poll(t0) == nil {
				t.Fatal("connection still up after a protocol failure")
			}
		})
	}
}

func TestFirstPacketNotConnack(t *testing.T) {
	c, err := mqtt.New(mqtt.Config{ClientID: "d"})
	if err != nil {
		t.Fatal(err)
	}
	p := newPeer(mqtt.V311)
	p.connack = b(0xD0, 0)
	if err := c.Connect(p, t0); !errors.Is(err, mqtt.ErrProtocol) {
		t.Fatalf("Connect = %v, want ErrProtocol", err)
	}
}

func TestWriteErrorEndsConnection(t *testing.T) {
	c, p := connect(t, mqtt.Config{ClientID: "d"})
	broken := errors.New("link down")
	p.writeErr = broken
	var ioe *mqtt.IOError
	if err := c.Publish([]byte("t"), nil, mqtt.QoS0, false); !errors.As(err, &ioe) || !errors.Is(err, broken) {
		t.Fatalf("QoS 0 publish on a broken link: %v", err)
	}
	if err := c.Publish([]byte("t"), []byte("kept"), mqtt.QoS1, false); err != nil || c.Pending() != 1 {
		t.Fatalf("QoS 1 publish must keep the message: %v, pending %d", err, c.Pending())
	}
	p2 := newPeer(mqtt.V311)
	if err := c.Connect(p2, t0); err != nil || p2.publishes != 1 || string(p2.lastPublish.Payload) != "kept" {
		t.Fatalf("reconnect: %v, %d publishes", err, p2.publishes)
	}
}

func TestPublishChecks(t *testing.T) {
	c, _ := connect(t, mqtt.Config{ClientID: "d", MaxPacket: 32})
	for _, tc := range []struct {
		topic, payload string
		qos            mqtt.QoS
		want           error
	}{
		{"", "x", 0, mqtt.ErrTopic},
		{"a/+", "x", 0, mqtt.ErrTopic},
		{"a/#", "x", 1, mqtt.ErrTopic},
		{"a", "x", 2, mqtt.ErrQoS},
		{"a", strings.Repeat("x", 40), 0, mqtt.ErrTooLarge},
		{"a", strings.Repeat("x", 27), 0, nil}, // header 1 + length 1 + topic 2+1 + 27 = 32 bytes: fits exactly
		{"a", strings.Repeat("x", 28), 0, mqtt.ErrTooLarge},
		{"a", strings.Repeat("x", 25), 1, nil}, // + packet id 2
		{"a", strings.Repeat("x", 26), 1, mqtt.ErrTooLarge},
	} {
		if err := c.Publish([]byte(tc.topic), []byte(tc.payload), tc.qos, false); err != tc.want {
			t.Errorf("Publish(%q, %d bytes, QoS %d) = %v, want %v", tc.topic, len(tc.payload), tc.qos, err, tc.want)
		}
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	_, err := mqtt.New(mqtt.Config{Version: 3, Password: "p", MaxPacket: 8,
		Will:          &mqtt.Will{Topic: "a/#", QoS: 2},
		Subscriptions: []mqtt.Subscription{{Topic: "a/#/b"}, {Topic: "ok", QoS: 2}}})
	for _, want := range []string{"Version", "MaxPacket", "Will QoS", "Will topic", `"a/#/b"`, `"ok": QoS`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New error %v does not mention %q", err, want)
		}
	}
	_, err = mqtt.New(mqtt.Config{Password: "p"})
	for _, want := range []string{"CleanStart with an empty ClientID", "Password only with a Username"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New error %v does not mention %q", err, want)
		}
	}
	_, err = mqtt.New(mqtt.Config{ClientID: strings.Repeat("c", 100), MaxPacket: 64})
	if err == nil || !strings.Contains(err.Error(), "CONNECT packet") {
		t.Errorf("New accepted a CONNECT larger than MaxPacket: %v", err)
	}
}

// Steady state allocates nothing per message: QoS 1 and QoS 0 publishes,
// their acknowledgements, an inbound QoS 1 message with its PUBACK, and a
// keep-alive ping, under Go and TinyGo.
func TestZeroAllocsPerMessage(t *testing.T) {
	for _, ver := range versions {
		t.Run(ver.name, func(t *testing.T) {
			var got int
			h := mqtt.HandlerFunc(func(m *mqtt.Message) error { got += len(m.Payload); return nil })
			c, p := connect(t, mqtt.Config{Version: ver.v, ClientID: "d", KeepAlive: 10 * time.Second,
				Subscriptions: []mqtt.Subscription{{Topic: "cmd/+", QoS: 1, Handler: h}}})
			// Go's runtime fills its cache for an interface type assertion
			// (the transport's timeout error) at a random moment, with one
			// allocation; a transport that returns (0, nil) when empty
			// keeps the count deterministic.
			p.emptyErr = nil
			topic, payload := []byte("sensors/d-1/temp"), []byte(`{"temp":21.5}`)
			now := t0
			const runs = 500
			allocs := alloctest.PerRun(runs, func() {
				p.pubackIDs = p.pubackIDs[:0]
				if err := c.Publish(topic, payload, mqtt.QoS1, false); err != nil {
					t.Fatal(err)
				}
				if err := c.Publish(topic, payload, mqtt.QoS0, false); err != nil {
					t.Fatal(err)
				}
				p.publish("cmd/set", "22", 1, 7)
				if err := c.Poll(now); err != nil { // PUBACKs in and out, the inbound message
					t.Fatal(err)
				}
				now = now + 10*time.Second
				if err := c.Poll(now); err != nil { // idle for KeepAlive: PINGREQ
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Fatalf("%v allocations per message round", allocs)
			}
			if st := c.Stats(); st.Acked != runs+1 || st.Received != runs+1 || st.Pings < runs || c.Pending() != 0 || got != 2*(runs+1) {
				t.Fatalf("the loop did not do the work: %+v, pending %d, handled %d bytes", st, c.Pending(), got)
			}
		})
	}
}

// deadlineConn is a peer with read deadlines (like a net.Conn): it counts
// the reads and deadlines Poll uses.
type deadlineConn struct {
	*peer
	reads, deadlines int
}

func (d *deadlineConn) SetReadDeadline(time.Time) error { d.deadlines++; return nil }

func (d *deadlineConn) Read(b []byte) (int, error) {
	d.reads++
	return d.peer.Read(b)
}

// On a transport with deadlines, Poll waits (PollWait) at most once: after
// a read that did not fill the buffer it stops instead of waiting again.
// Reading until a timeout made a QoS 1 round trip over loopback TCP cost
// a full PollWait (1 ms: 769 msg/s instead of ~25,000 with one message in
// flight, BenchmarkMosquittoPublish).
func TestPollWaitsOnce(t *testing.T) {
	c, err := mqtt.New(mqtt.Config{ClientID: "d", MaxPacket: 64})
	if err != nil {
		t.Fatal(err)
	}
	dc := &deadlineConn{peer: newPeer(mqtt.V311)}
	if err := c.Connect(dc, t0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		queue func()
		reads int
	}{
		{"idle", func() {}, 1},
		{"one PUBACK", func() { dc.in = mqtt.AppendPuback(dc.in, mqtt.V311, 1, 0) }, 1},
		// 100 bytes do not fit in the 64-byte buffer: read again at once.
		{"more than the buffer", func() {
			for i := 0; i < 25; i++ {
				dc.in = mqtt.AppendPuback(dc.in, mqtt.V311, uint16(100+i), 0)
			}
		}, 2},
	} {
		tc.queue()
		dc.reads, dc.deadlines = 0, 0
		if err := c.Poll(t0); err != nil {
			t.Fatal(err)
		}
		if dc.reads != tc.reads || dc.deadlines != tc.reads || len(dc.in) != 0 {
			t.Errorf("%s: %d reads, %d deadlines, %d bytes left; want %d reads", tc.name, dc.reads, dc.deadlines, len(dc.in), tc.reads)
		}
	}
}

// MQTT 5 properties of an inbound message reach the handler (here a W3C
// traceparent in a user property).
func TestInboundProperties5(t *testing.T) {
	var got string
	h := mqtt.HandlerFunc(func(m *mqtt.Message) error {
		if _, kv, ok := m.Property(mqtt.PropUserProperty); ok {
			got = string(kv)
		}
		return nil
	})
	c, p := connect(t, mqtt.Config{Version: mqtt.V5, ClientID: "d", Subscriptions: []mqtt.Subscription{{Topic: "t", QoS: 1, Handler: h}}})
	prop := b(0x26, 0, 11, "traceparent", 0, 3, "00-")
	p.send(b(0x32, 5+1+len(prop)+2, 0, 1, "t", 0, 4, len(prop), prop, "hi")...)
	if err := c.Poll(t0); err != nil {
		t.Fatal(err)
	}
	if want := string(b(0, 11, "traceparent", 0, 3, "00-")); got != want {
		t.Fatalf("user property %q, want %q", got, want)
	}
}

//go:build !tinygo

package mqtt_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/device/mqtt"
	"github.com/aimdb-dev/aimdb-flow/tests/mqtttest"
)

// The host side of the device client's tests: a net.Conn is the
// io.ReadWriter (the adapter a board's network driver stands in for), and
// the peer is a real mosquitto, driven and observed with mosquitto_sub and
// mosquitto_pub, sometimes through a proxy that watches (and drops)
// packets.

// testStart anchors clock, the monotonic clock the tests pass to the
// client.
var testStart = time.Now()

func clock() time.Duration { return time.Since(testStart) }

// dial opens the transport: a TCP connection (Go sets TCP_NODELAY).
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func connectTo(t *testing.T, addr string, cfg mqtt.Config) (*mqtt.Client, net.Conn) {
	t.Helper()
	c, err := mqtt.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conn := dial(t, addr)
	if err := c.Connect(conn, clock()); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return c, conn
}

// pump polls the client on the wall clock until cond holds.
func pump(t *testing.T, c *mqtt.Client, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if err := c.Poll(clock()); err != nil {
			t.Fatalf("%s: Poll: %v", what, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func cliVersion(v mqtt.Version) string {
	if v == mqtt.V5 {
		return "mqttv5"
	}
	return "mqttv311"
}

// subscriber is a mosquitto_sub process; its messages arrive as
// "topic payload" lines.
type subscriber struct {
	msgs chan string
}

func startSub(t *testing.T, b *mqtttest.Broker, v mqtt.Version, topic string, qos int) *subscriber {
	t.Helper()
	if _, err := exec.LookPath("mosquitto_sub"); err != nil {
		t.Skip("mosquitto_sub not installed (apt-get install -y mosquitto-clients)")
	}
	// stdbuf -oL: mosquitto_sub's debug lines (the SUBACK we wait for) are
	// block-buffered on a pipe otherwise. stdbuf execs mosquitto_sub, so
	// cmd.Process is mosquitto_sub itself.
	cmd := exec.Command("stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", strconv.Itoa(b.Port()), "-V", cliVersion(v),
		"-q", strconv.Itoa(qos), "-t", topic, "-v", "-d")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // by PID: the process this test started
		_ = cmd.Wait()
	})
	s := &subscriber{msgs: make(chan string, 1000)}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		subscribed := false
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "Client "):
				if !subscribed && strings.Contains(line, "received SUBACK") {
					subscribed = true
					close(ready)
				}
			case strings.HasPrefix(line, "Subscribed "):
			default:
				s.msgs <- line
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("mosquitto_sub did not subscribe")
	}
	return s
}

func (s *subscriber) next(t *testing.T) string {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("mosquitto_sub received nothing")
	}
	return ""
}

func mosquittoPub(t *testing.T, b *mqtttest.Broker, v mqtt.Version, topic, msg string, qos int) {
	t.Helper()
	out, err := exec.Command("mosquitto_pub", "-h", "127.0.0.1", "-p", strconv.Itoa(b.Port()), "-V", cliVersion(v),
		"-q", strconv.Itoa(qos), "-t", topic, "-m", msg).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, out)
	}
}

func TestMosquittoPublish(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	for _, ver := range versions {
		for _, qos := range []mqtt.QoS{mqtt.QoS0, mqtt.QoS1} {
			t.Run(ver.name+"/qos"+strconv.Itoa(int(qos)), func(t *testing.T) {
				topic := "alerts/" + ver.name + "/" + strconv.Itoa(int(qos))
				sub := startSub(t, b, ver.v, topic, 1)
				c, _ := connectTo(t, b.Addr(), mqtt.Config{Version: ver.v, ClientID: "dev-pub-" + ver.name, CleanStart: true, MaxInflight: 4})
				const n = 50
				for i := 0; i < n; i++ {
					payload := []byte(`{"seq":` + strconv.Itoa(i) + `}`)
					for {
						err := c.Publish([]byte(topic), payload, qos, false)
						if err == nil {
							break
						}
						if err != mqtt.ErrInflightFull {
							t.Fatal(err)
						}
						if err := c.Poll(clock()); err != nil {
							t.Fatal(err)
						}
					}
				}
				pump(t, c, "PUBACKs", func() bool { return c.Pending() == 0 })
				for i := 0; i < n; i++ {
					if got, want := sub.next(t), topic+` {"seq":`+strconv.Itoa(i)+`}`; got != want {
						t.Fatalf("message %d: got %q, want %q", i, got, want)
					}
				}
				st := c.Stats()
				if st.Published != n || qos == mqtt.QoS1 && st.Acked != n || st.Resent != 0 {
					t.Fatalf("stats %+v", st)
				}
				if err := c.Disconnect(); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

func TestMosquittoSubscribe(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	for _, ver := range versions {
		t.Run(ver.name, func(t *testing.T) {
			var set, cmd received
			c, _ := connectTo(t, b.Addr(), mqtt.Config{Version: ver.v, ClientID: "dev-sub-" + ver.name, CleanStart: true,
				Subscriptions: []mqtt.Subscription{
					{Topic: "devices/d-1/setpoint", QoS: mqtt.QoS1, Handler: &set},
					{Topic: "devices/d-1/cmd/+", QoS: mqtt.QoS0, Handler: &cmd},
				}})
			mosquittoPub(t, b, ver.v, "devices/d-1/setpoint", `{"target":21.5}`, 1)
			mosquittoPub(t, b, ver.v, "devices/d-1/cmd/reboot", `now`, 0)
			pump(t, c, "both messages", func() bool { return len(set.msgs) == 1 && len(cmd.msgs) == 1 })
			if set.msgs[0] != `devices/d-1/setpoint {"target":21.5}` || cmd.msgs[0] != "devices/d-1/cmd/reboot now" {
				t.Fatalf("setpoint %q, cmd %q", set.msgs, cmd.msgs)
			}
		})
	}
}

// Inbound at-least-once: a message the handler refuses is not acknowledged
// and mosquitto delivers it again (DUP) when the session resumes; one the
// handler took is acknowledged and never comes back.
func TestMosquittoRedeliversUnacknowledged(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	for _, ver := range versions {
		t.Run(ver.name, func(t *testing.T) {
			h := &received{fail: true}
			var dups int
			counting := mqtt.HandlerFunc(func(m *mqtt.Message) error {
				if m.Dup {
					dups++
				}
				return h.HandleMessage(m)
			})
			topic := "devices/" + ver.name + "/setpoint"
			cfg := mqtt.Config{Version: ver.v, ClientID: "dev-redeliver-" + ver.name, SessionExpiry: 300,
				Subscriptions: []mqtt.Subscription{{Topic: topic, QoS: mqtt.QoS1, Handler: counting}}}
			c, conn := connectTo(t, b.Addr(), cfg)
			mosquittoPub(t, b, ver.v, topic, "first", 1)
			pump(t, c, "the refused delivery", func() bool { return c.Stats().Refused == 1 })

			reconnect := func() {
				t.Helper()
				if err := c.Disconnect(); err != nil {
					t.Fatal(err)
				}
				conn.Close()
				conn = dial(t, b.Addr())
				if err := c.Connect(conn, clock()); err != nil {
					t.Fatal(err)
				}
			}
			h.fail = false
			reconnect()
			pump(t, c, "the redelivery", func() bool { return len(h.msgs) == 1 })
			if h.msgs[0] != topic+" first" || dups != 1 {
				t.Fatalf("redelivered %q, %d with DUP", h.msgs, dups)
			}
			reconnect()
			mosquittoPub(t, b, ver.v, topic, "marker", 1)
			pump(t, c, "the marker", func() bool { return len(h.msgs) == 2 })
			if h.msgs[1] != topic+" marker" {
				t.Fatalf("an acknowledged message came back: %q", h.msgs)
			}
		})
	}
}

// proxy sits between the device client and mosquitto: it records the
// packets the client sends and can drop PUBACKs on their way back.
type proxy struct {
	ln     net.Listener
	target string
	v      mqtt.Version

	mu      sync.Mutex
	drop    int // broker PUBACKs still to drop
	dropped int
	up      []seen // client -> broker
	down    []mqtt.Type
	conns   []net.Conn
}

type seen struct {
	typ     mqtt.Type
	id      uint16
	dup     bool
	payload string
}

func startProxy(t *testing.T, target string, v mqtt.Version) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, v: v}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			bk, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, bk)
			p.mu.Unlock()
			go p.pipe(c, bk, true)
			go p.pipe(bk, c, false)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) pipe(src, dst net.Conn, up bool) {
	defer src.Close()
	defer dst.Close()
	var buf []byte
	tmp := make([]byte, 4096)
	for {
		n, err := src.Read(tmp)
		buf = append(buf, tmp[:n]...)
		for {
			l, perr := mqtt.PacketLen(buf)
			if perr != nil {
				return
			}
			if l == 0 || l > len(buf) {
				break
			}
			if p.observe(buf[:l], up) {
				if _, err := dst.Write(buf[:l]); err != nil {
					return
				}
			}
			buf = buf[l:]
		}
		if err != nil {
			return
		}
	}
}

// observe records pkt and reports whether to forward it.
func (p *proxy) observe(pkt []byte, up bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	typ := mqtt.Type(pkt[0] >> 4)
	if !up {
		if typ == mqtt.TypePuback && p.drop > 0 {
			p.drop--
			p.dropped++
			return false
		}
		p.down = append(p.down, typ)
		return true
	}
	s := seen{typ: typ}
	if typ == mqtt.TypePublish {
		var d mqtt.Packet
		if err := d.Decode(p.v, pkt); err == nil {
			s.id, s.dup, s.payload = d.ID, d.Dup(), string(d.Payload)
		}
	}
	p.up = append(p.up, s)
	return true
}

func (p *proxy) sent(typ mqtt.Type) []seen {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []seen
	for _, s := range p.up {
		if s.typ == typ {
			out = append(out, s)
		}
	}
	return out
}

func (p *proxy) received(typ mqtt.Type) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, d := range p.down {
		if d == typ {
			n++
		}
	}
	return n
}

// QoS 1 retransmission, proven on the wire: the proxy drops the first
// PUBACK. MQTT 3.1.1 resends with DUP on the same connection after
// AckTimeout; MQTT 5 reports ErrAckTimeout, and the next Connect resends
// with DUP. The subscriber gets the message (at least once) either way.
func TestMosquittoRetransmitsWhenPubackIsLost(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	for _, ver := range versions {
		t.Run(ver.name, func(t *testing.T) {
			topic := "alerts/retransmit/" + ver.name
			sub := startSub(t, b, ver.v, topic, 1)
			px := startProxy(t, b.Addr(), ver.v)
			px.mu.Lock()
			px.drop = 1
			px.mu.Unlock()
			cfg := mqtt.Config{Version: ver.v, ClientID: "dev-retx-" + ver.name, AckTimeout: 200 * time.Millisecond, SessionExpiry: 60}
			c, conn := connectTo(t, px.addr(), cfg)
			if err := c.Publish([]byte(topic), []byte("m1"), mqtt.QoS1, false); err != nil {
				t.Fatal(err)
			}
			if ver.v == mqtt.V5 {
				deadline := time.Now().Add(10 * time.Second)
				var err error
				for err == nil && time.Now().Before(deadline) {
					err = c.Poll(clock())
				}
				if !errors.Is(err, mqtt.ErrAckTimeout) {
					t.Fatalf("MQTT 5 Poll = %v, want ErrAckTimeout", err)
				}
				if n := len(px.sent(mqtt.TypePublish)); n != 1 {
					t.Fatalf("MQTT 5 resent on the same connection (%d publishes)", n)
				}
				conn.Close()
				if err := c.Connect(dial(t, px.addr()), clock()); err != nil {
					t.Fatal(err)
				}
			}
			pump(t, c, "the PUBACK of the retransmission", func() bool { return c.Pending() == 0 })
			pubs := px.sent(mqtt.TypePublish)
			if len(pubs) != 2 || pubs[0].dup || !pubs[1].dup || pubs[0].id != pubs[1].id || pubs[1].payload != "m1" {
				t.Fatalf("publishes on the wire: %+v (want the same id twice, DUP on the second)", pubs)
			}
			px.mu.Lock()
			dropped := px.dropped
			px.mu.Unlock()
			if dropped != 1 || c.Stats().Resent != 1 || c.Stats().Acked != 1 {
				t.Fatalf("dropped %d, stats %+v", dropped, c.Stats())
			}
			if got := sub.next(t); got != topic+" m1" {
				t.Fatalf("subscriber got %q", got)
			}
		})
	}
}

// Keep-alive on the wire: with KeepAlive 1 s on the client's clock (here
// advanced by a second after each PINGRESP, so the test takes
// milliseconds), the proxy sees PINGREQs and mosquitto answers each.
func TestMosquittoKeepAlivePings(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	for _, ver := range versions {
		t.Run(ver.name, func(t *testing.T) {
			px := startProxy(t, b.Addr(), ver.v)
			c, _ := connectTo(t, px.addr(), mqtt.Config{Version: ver.v, ClientID: "dev-ping-" + ver.name, CleanStart: true, KeepAlive: time.Second})
			now := clock()
			deadline := time.Now().Add(10 * time.Second)
			for c.Stats().Pongs < 3 {
				pongs := c.Stats().Pongs
				if err := c.Poll(now); err != nil {
					t.Fatal(err)
				}
				if c.Stats().Pongs > pongs {
					now = now + time.Second
				}
				if time.Now().After(deadline) {
					t.Fatalf("stats %+v", c.Stats())
				}
				if c.Stats().Pings == 0 {
					now = now + time.Second
				}
			}
			if n := len(px.sent(mqtt.TypePingreq)); n != 3 || px.received(mqtt.TypePingresp) != 3 {
				t.Fatalf("on the wire: %d PINGREQ, %d PINGRESP", n, px.received(mqtt.TypePingresp))
			}
		})
	}
}

// Username/password against mosquitto's password file; a wrong password
// is a ConnectError with the broker's code.
func TestMosquittoCredentials(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{Users: map[string]string{"dev": "s3cret"}})
	for _, tc := range []struct {
		name string
		v    mqtt.Version
		pass string
		code byte
	}{
		{"3.1.1 ok", mqtt.V311, "s3cret", 0},
		{"3.1.1 wrong", mqtt.V311, "nope", 5},
		{"5 ok", mqtt.V5, "s3cret", 0},
		{"5 wrong", mqtt.V5, "nope", 0x87},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := mqtt.New(mqtt.Config{Version: tc.v, ClientID: "dev-auth", CleanStart: true, Username: "dev", Password: tc.pass})
			if err != nil {
				t.Fatal(err)
			}
			err = c.Connect(dial(t, b.Addr()), clock())
			var ce *mqtt.ConnectError
			switch {
			case tc.code == 0 && err != nil:
				t.Fatal(err)
			case tc.code != 0 && (!errors.As(err, &ce) || ce.Code != tc.code):
				t.Fatalf("Connect = %v, want code %#x", err, tc.code)
			}
		})
	}
}

// The will goes out when the transport dies without DISCONNECT.
func TestMosquittoWill(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	for _, ver := range versions {
		t.Run(ver.name, func(t *testing.T) {
			topic := "devices/" + ver.name + "/status"
			sub := startSub(t, b, ver.v, topic, 1)
			_, conn := connectTo(t, b.Addr(), mqtt.Config{Version: ver.v, ClientID: "dev-will-" + ver.name, CleanStart: true,
				Will: &mqtt.Will{Topic: topic, Payload: []byte("offline"), QoS: mqtt.QoS1}})
			conn.Close()
			if got := sub.next(t); got != topic+" offline" {
				t.Fatalf("subscriber got %q", got)
			}
		})
	}
}

// A peer over real TCP that answers CONNECT, then sends garbage or closes
// the connection: Poll returns an error (never panics) and the client is
// down until the next Connect.
func TestTCPPeerFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after []byte // sent after CONNACK; nil closes the connection
		want  error
	}{
		{"closes", nil, mqtt.ErrClosed},
		{"garbage", []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, mqtt.ErrMalformed},
		{"pubrec", []byte{0x50, 2, 0, 1}, mqtt.ErrProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				defer conn.Close()
				var hdr [2]byte
				if _, err := io.ReadFull(conn, hdr[:]); err != nil {
					return
				}
				rest := make([]byte, hdr[1])
				if _, err := io.ReadFull(conn, rest); err != nil {
					return
				}
				conn.Write([]byte{0x20, 2, 0, 0})
				if tc.after != nil {
					conn.Write(tc.after)
					io.Copy(io.Discard, conn) // until the client gives up
				}
			}()
			c, _ := connectTo(t, ln.Addr().String(), mqtt.Config{ClientID: "d"})
			deadline := time.Now().Add(10 * time.Second)
			for err == nil && time.Now().Before(deadline) {
				err = c.Poll(clock())
			}
			if !errors.Is(err, tc.want) || c.Connected() {
				t.Fatalf("Poll = %v, want %v", err, tc.want)
			}
		})
	}
}

// Allocations per QoS 1 round trip over a real TCP connection, logged for
// the docs: the client allocates nothing (TestZeroAllocsPerMessage); any
// that show here are Go's net package's (a read that hits its deadline
// returns a newly allocated *net.OpError).
func TestMosquittoAllocsOverTCP(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	c, _ := connectTo(t, b.Addr(), mqtt.Config{ClientID: "dev-allocs", CleanStart: true})
	topic, payload := []byte("alerts/allocs"), []byte(`{"temp":26.5}`)
	allocs := testing.AllocsPerRun(200, func() {
		if err := c.Publish(topic, payload, mqtt.QoS1, false); err != nil {
			t.Fatal(err)
		}
		for c.Pending() > 0 {
			if err := c.Poll(clock()); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Logf("%.2f allocations per QoS 1 publish + PUBACK over net.Conn", allocs)
}

// BenchmarkMosquittoPublish publishes 100-byte messages to mosquitto over
// loopback TCP: QoS 0, and QoS 1 until acknowledged with windows of 1 and
// 16 in-flight messages (go test -run X -bench Mosquitto ./device/mqtt).
func BenchmarkMosquittoPublish(b *testing.B) {
	br := mqtttest.Start(b, mqtttest.Options{})
	payload := make([]byte, 100)
	for _, bc := range []struct {
		name   string
		qos    mqtt.QoS
		window int
	}{{"qos0", mqtt.QoS0, 1}, {"qos1-window1", mqtt.QoS1, 1}, {"qos1-window16", mqtt.QoS1, 16}} {
		b.Run(bc.name, func(b *testing.B) {
			c, err := mqtt.New(mqtt.Config{ClientID: "dev-bench", CleanStart: true, MaxInflight: bc.window})
			if err != nil {
				b.Fatal(err)
			}
			conn, err := net.Dial("tcp", br.Addr())
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			if err := c.Connect(conn, clock()); err != nil {
				b.Fatal(err)
			}
			topic := []byte("bench/" + bc.name)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for {
					err := c.Publish(topic, payload, bc.qos, false)
					if err == nil {
						break
					}
					if err != mqtt.ErrInflightFull {
						b.Fatal(err)
					}
					if err := c.Poll(clock()); err != nil {
						b.Fatal(err)
					}
				}
			}
			for c.Pending() > 0 {
				if err := c.Poll(clock()); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
			c.Disconnect()
		})
	}
}

package knx

import (
	"net"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/knx/knxnet"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// fakeGateway is a minimal in-process KNXnet/IP server on loopback that
// accepts one tunnel and then sends what the test tells it to. It stands
// in for a misbehaving gateway (knxd never sends such frames).
type fakeGateway struct {
	conn   *net.UDPConn
	client *net.UDPAddr
	ready  chan struct{}
}

func startFakeGateway(t *testing.T) *fakeGateway {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGateway{conn: c, ready: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			f, err := knxnet.Decode(buf[:n])
			if err != nil {
				continue
			}
			switch f.Service {
			case knxnet.ConnectRequest:
				g.client = from
				_, _ = c.WriteToUDP(knxnet.Frame{Service: knxnet.ConnectResponse, Channel: 9, Address: 0x1105}.Encode(nil), from)
				close(g.ready)
			case knxnet.ConnectionStateRequest:
				_, _ = c.WriteToUDP(knxnet.Frame{Service: knxnet.ConnectionStateResponse, Channel: 9}.Encode(nil), from)
			case knxnet.DisconnectRequest:
				_, _ = c.WriteToUDP(knxnet.Frame{Service: knxnet.DisconnectResponse, Channel: 9}.Encode(nil), from)
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return g
}

func (g *fakeGateway) send(t *testing.T, b []byte) {
	t.Helper()
	if _, err := g.conn.WriteToUDP(b, g.client); err != nil {
		t.Fatal(err)
	}
}

// TestHostileFramesAreCounted: truncated datagrams, wrong lengths,
// unknown service types, bad cEMI frames and out-of-sequence requests are
// counted by reason; the tunnel stays up and the next good telegram is
// dispatched.
func TestHostileFramesAreCounted(t *testing.T) {
	g := startFakeGateway(t)
	cfg := testConfig(t, "knx://"+g.conn.LocalAddr().String())
	col := newCollector()
	c := serve(t, New(cfg), []pipeline.Subscription{sub(t, pipeline.Inbound, "1/2/3", nil)}, col)
	<-g.ready

	good := func(seq uint8) []byte {
		l := knxnet.LData{Code: knxnet.LDataInd, Source: 0x1101, Dest: 0x0a03, Group: true, APCI: knxnet.GroupValueWrite, Short: true, Data: []byte{1}}
		b, _ := l.Encode(nil)
		return knxnet.Frame{Service: knxnet.TunnellingRequest, Channel: 9, Seq: seq, CEMI: b}.Encode(nil)
	}
	hostile := [][]byte{
		{},                                   // truncated
		{0x06, 0x10, 0x04},                   // truncated
		{0x06, 0x10, 0x04, 0x20, 0x00, 0x30}, // wrong length
		{0x06, 0x10, 0x09, 0x99, 0x00, 0x06}, // unknown service type
		{0x07, 0x10, 0x04, 0x20, 0x00, 0x06}, // bad header
		knxnet.Frame{Service: knxnet.TunnellingRequest, Channel: 4, Seq: 0, CEMI: []byte{0x29, 0}}.Encode(nil),       // wrong channel
		knxnet.Frame{Service: knxnet.TunnellingRequest, Channel: 9, Seq: 5, CEMI: []byte{0x29, 0}}.Encode(nil),       // out of sequence
		knxnet.Frame{Service: knxnet.TunnellingRequest, Channel: 9, Seq: 0, CEMI: []byte{0x29, 0, 0xbc}}.Encode(nil), // bad cEMI (acknowledged: seq 0 used)
	}
	for _, b := range hostile {
		g.send(t, b)
	}
	g.send(t, good(1))
	envs := col.wait(t, 1)
	if envs[0].Payload[0] != 1 || envs[0].Topic != "1/2/3" {
		t.Fatalf("dispatched %+v", envs[0])
	}
	if err := c.Ready(); err != nil {
		t.Fatalf("not ready after hostile frames: %v", err)
	}
	want := map[string]uint64{
		string(knxnet.ReasonTruncated): 2, string(knxnet.ReasonBadLength): 1, string(knxnet.ReasonUnknownService): 1,
		string(knxnet.ReasonBadHeader): 1, string(knxnet.ReasonWrongChannel): 1, string(knxnet.ReasonSequence): 1,
		string(knxnet.ReasonBadCEMI): 1,
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := c.Stats().Rejected
		same := len(got) == len(want)
		for k, v := range want {
			same = same && got[k] == v
		}
		if same {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rejected %v, want %v", got, want)
		}
		time.Sleep(time.Millisecond) // polling a condition, bounded
	}
}

package knxnet

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// step is one input to a Tunnel and what it must answer.
type step struct {
	at   time.Duration // since t0
	do   func(tn *Tunnel, now time.Time)
	out  []string // services sent, with seq for tunnelling ("TUNNELLING_ACK 0")
	evs  []string // events: kind, and the error's text or a detail
	name string
}

func recv(f Frame) func(*Tunnel, time.Time) {
	return func(tn *Tunnel, now time.Time) { tn.Handle(now, f.Encode(nil)) }
}

func recvBytes(b []byte) func(*Tunnel, time.Time) {
	return func(tn *Tunnel, now time.Time) { tn.Handle(now, b) }
}

func tick(tn *Tunnel, now time.Time) { tn.Tick(now) }

func send(dest GroupAddress, tag uint64) func(*Tunnel, time.Time) {
	return func(tn *Tunnel, now time.Time) {
		if err := tn.Send(now, LData{Dest: dest, APCI: GroupValueWrite, Short: true, Data: []byte{1}}, tag); err != nil {
			panic(err)
		}
	}
}

func cemi(l LData) []byte {
	b, err := l.Encode(nil)
	if err != nil {
		panic(err)
	}
	return b
}

var (
	connected = step{do: recv(Frame{Service: ConnectResponse, Channel: 3, Data: local, Address: 0x1105}), evs: []string{"connected 3 1.1.5"}}
	ind       = func(seq uint8, dest GroupAddress) Frame {
		return Frame{Service: TunnellingRequest, Channel: 3, Seq: seq,
			CEMI: cemi(LData{Code: LDataInd, Source: 0x1101, Dest: dest, Group: true, APCI: GroupValueWrite, Short: true, Data: []byte{1}})}
	}
	con = func(seq uint8, dest GroupAddress, fail bool) Frame {
		return Frame{Service: TunnellingRequest, Channel: 3, Seq: seq,
			CEMI: cemi(LData{Code: LDataCon, Dest: dest, Group: true, APCI: GroupValueWrite, Short: true, Data: []byte{1}, ConfirmFail: fail})}
	}
	ack = func(seq uint8, st Status) Frame {
		return Frame{Service: TunnellingAck, Channel: 3, Seq: seq, Status: st}
	}
)

func describe(t *testing.T, out [][]byte, evs []Event) (o, e []string) {
	for _, b := range out {
		f, err := Decode(b)
		if err != nil {
			t.Fatalf("the tunnel sent a datagram it cannot decode: % x: %v", b, err)
		}
		s := f.Service.String()
		if f.Service == TunnellingRequest || f.Service == TunnellingAck {
			s += fmt.Sprintf(" %d", f.Seq)
		}
		o = append(o, s)
	}
	for _, ev := range evs {
		s := ev.Kind.String()
		switch ev.Kind {
		case EventConnected:
			s += fmt.Sprintf(" %d %s", ev.Channel, ev.Address)
		case EventIndication:
			s += " " + ev.Frame.Dest.String()
		case EventSent:
			s += fmt.Sprintf(" %d", ev.Tag)
		}
		if ev.Err != nil {
			s += ": " + ev.Err.Error()
		}
		e = append(e, s)
	}
	return o, e
}

func run(t *testing.T, cfg TunnelConfig, steps []step) {
	t.Helper()
	tn := NewTunnel(cfg)
	for i, st := range steps {
		now := t0.Add(st.at)
		st.do(tn, now)
		out, evs := tn.Output()
		o, e := describe(t, out, evs)
		if !slices.Equal(o, st.out) {
			t.Errorf("step %d %s: sent %q, want %q", i, st.name, o, st.out)
		}
		if len(e) != len(st.evs) {
			t.Errorf("step %d %s: events %q, want %q", i, st.name, e, st.evs)
			continue
		}
		for j := range e {
			if !strings.HasPrefix(e[j], st.evs[j]) {
				t.Errorf("step %d %s: event %q, want %q", i, st.name, e[j], st.evs[j])
			}
		}
	}
}

func connect(at time.Duration) step {
	return step{at: at, do: func(tn *Tunnel, now time.Time) { tn.Connect(now) }, out: []string{"CONNECT_REQUEST"}, name: "connect"}
}

func TestTunnel(t *testing.T) {
	cfg := TunnelConfig{Control: local, Data: local}
	cases := []struct {
		name  string
		steps []step
	}{
		{"send, ack, confirmation; sequence advances", []step{
			connect(0), connected,
			{do: send(0x0a03, 1), out: []string{"TUNNELLING_REQUEST 0"}},
			{do: recv(ack(0, StatusOK))},
			{do: recv(con(0, 0x0a03, false)), out: []string{"TUNNELLING_ACK 0"}, evs: []string{"sent 1"}},
			{do: send(0x0a04, 2), out: []string{"TUNNELLING_REQUEST 1"}},
			{do: send(0x0a05, 3)}, // waits for the ACK of 1
			{do: recv(ack(1, StatusOK)), out: []string{"TUNNELLING_REQUEST 2"}},
			{do: recv(ack(2, StatusOK))},
			{do: recv(con(1, 0x0a05, false)), out: []string{"TUNNELLING_ACK 1"}, evs: []string{"sent 3"}},
			{do: recv(con(2, 0x0a04, true)), out: []string{"TUNNELLING_ACK 2"}, evs: []string{"sent 2: the gateway could not send"}},
		}},
		{"one retry, then the tunnel is lost", []step{
			connect(0), connected,
			{do: send(0x0a03, 1), out: []string{"TUNNELLING_REQUEST 0"}},
			{at: 999 * time.Millisecond, do: tick},
			{at: time.Second, do: tick, out: []string{"TUNNELLING_REQUEST 0"}, name: "retry, same sequence"},
			{at: 2 * time.Second, do: tick, out: []string{"DISCONNECT_REQUEST"},
				evs: []string{"sent 1: no TUNNELLING_ACK", "closed: no TUNNELLING_ACK for sequence 0 after one retry"}},
		}},
		{"the retry is acknowledged", []step{
			connect(0), connected,
			{do: send(0x0a03, 1), out: []string{"TUNNELLING_REQUEST 0"}},
			{at: time.Second, do: tick, out: []string{"TUNNELLING_REQUEST 0"}},
			{at: 1500 * time.Millisecond, do: recv(ack(0, StatusOK))},
			{at: 1600 * time.Millisecond, do: recv(con(0, 0x0a03, false)), out: []string{"TUNNELLING_ACK 0"}, evs: []string{"sent 1"}},
		}},
		{"ack with an error status fails the telegram", []step{
			connect(0), connected,
			{do: send(0x0a03, 1), out: []string{"TUNNELLING_REQUEST 0"}},
			{do: recv(ack(0, StatusTunnellingLayer)), evs: []string{"sent 1: gateway refused the telegram: E_TUNNELLING_LAYER"}},
		}},
		{"ack for another sequence is rejected", []step{
			connect(0), connected,
			{do: send(0x0a03, 1), out: []string{"TUNNELLING_REQUEST 0"}},
			{do: recv(ack(5, StatusOK)), evs: []string{"rejected: TUNNELLING_ACK for sequence 5, waiting for 0"}},
		}},
		{"no confirmation in time", []step{
			connect(0), connected,
			{do: send(0x0a03, 1), out: []string{"TUNNELLING_REQUEST 0"}},
			{do: recv(ack(0, StatusOK))},
			{at: 3 * time.Second, do: tick, evs: []string{"sent 1: no L_Data.con within 3s"}},
		}},
		{"indications in sequence, repeat acknowledged once more, gaps dropped", []step{
			connect(0), connected,
			{do: recv(ind(0, 0x0a03)), out: []string{"TUNNELLING_ACK 0"}, evs: []string{"indication 1/2/3"}},
			{do: recv(ind(0, 0x0a03)), out: []string{"TUNNELLING_ACK 0"}, evs: []string{"rejected: repeated TUNNELLING_REQUEST 0"}},
			{do: recv(ind(1, 0x0a04)), out: []string{"TUNNELLING_ACK 1"}, evs: []string{"indication 1/2/4"}},
			{do: recv(ind(7, 0x0a04)), evs: []string{"rejected: TUNNELLING_REQUEST 7, expected 2"}},
			{do: recv(ind(2, 0x0a05)), out: []string{"TUNNELLING_ACK 2"}, evs: []string{"indication 1/2/5"}},
		}},
		{"heartbeats", []step{
			connect(0), connected,
			{at: 59 * time.Second, do: tick},
			{at: 60 * time.Second, do: tick, out: []string{"CONNECTIONSTATE_REQUEST"}},
			{at: 61 * time.Second, do: recv(Frame{Service: ConnectionStateResponse, Channel: 3})},
			{at: 120 * time.Second, do: tick},
			{at: 121 * time.Second, do: tick, out: []string{"CONNECTIONSTATE_REQUEST"}},
			{at: 131 * time.Second, do: tick, out: []string{"CONNECTIONSTATE_REQUEST"}, name: "second try"},
			{at: 141 * time.Second, do: tick, out: []string{"CONNECTIONSTATE_REQUEST"}, name: "third try"},
			{at: 151 * time.Second, do: tick, out: []string{"DISCONNECT_REQUEST"}, evs: []string{"closed: no CONNECTIONSTATE_RESPONSE to 3 heartbeats"}},
		}},
		{"heartbeat refused: the gateway forgot the channel (restart)", []step{
			connect(0), connected,
			{at: 60 * time.Second, do: tick, out: []string{"CONNECTIONSTATE_REQUEST"}},
			{at: 60 * time.Second, do: recv(Frame{Service: ConnectionStateResponse, Channel: 3, Status: StatusConnectionID}),
				out: []string{"DISCONNECT_REQUEST"}, evs: []string{"closed: heartbeat refused: E_CONNECTION_ID"}},
		}},
		{"gateway disconnects", []step{
			connect(0), connected,
			{do: send(0x0a03, 1), out: []string{"TUNNELLING_REQUEST 0"}},
			{do: recv(Frame{Service: DisconnectRequest, Channel: 3}), out: []string{"DISCONNECT_RESPONSE"},
				evs: []string{"sent 1: the gateway closed", "closed: the gateway closed the tunnel"}},
		}},
		{"client closes", []step{
			connect(0), connected,
			{do: func(tn *Tunnel, now time.Time) { tn.Close(now) }, out: []string{"DISCONNECT_REQUEST"}},
			{do: recv(Frame{Service: DisconnectResponse, Channel: 3}), evs: []string{"closed"}},
		}},
		{"close without a response ends after the ACK timeout", []step{
			connect(0), connected,
			{do: func(tn *Tunnel, now time.Time) { tn.Close(now) }, out: []string{"DISCONNECT_REQUEST"}},
			{at: time.Second, do: tick, evs: []string{"closed"}},
		}},
		{"connect refused", []step{
			connect(0),
			{do: recv(Frame{Service: ConnectResponse, Status: StatusNoMoreConnections}), evs: []string{"closed: connect refused: E_NO_MORE_CONNECTIONS"}},
		}},
		{"connect timeout", []step{
			connect(0),
			{at: 10 * time.Second, do: tick, evs: []string{"closed: no CONNECT_RESPONSE within 10s"}},
		}},
		{"hostile input while connected is rejected, the tunnel goes on", []step{
			connect(0), connected,
			{do: recv(ind(0, 0x0a03).withChannel(9)), evs: []string{"rejected: TUNNELLING_REQUEST for channel 9"}},
			{do: recvBytes(unhex("06 10 0420 00ff")), evs: []string{"rejected: TUNNELLING_REQUEST: total length 255"}},
			{do: recvBytes(unhex("06 10 0999 0006")), evs: []string{"rejected: service 0x0999"}},
			{do: recv(Frame{Service: TunnellingRequest, Channel: 3, Seq: 0, CEMI: unhex("29 00 bc")}),
				out: []string{"TUNNELLING_ACK 0"}, evs: []string{"rejected: cEMI L_Data of 1 bytes"}},
			{do: recv(Frame{Service: ConnectResponse, Channel: 4}), evs: []string{"rejected: CONNECT_RESPONSE while not connecting"}},
			{do: recv(ind(1, 0x0a03)), out: []string{"TUNNELLING_ACK 1"}, evs: []string{"indication 1/2/3"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { run(t, cfg, tc.steps) })
	}
}

func (f Frame) withChannel(c uint8) Frame { f.Channel = c; return f }

func TestTunnelSendRefusals(t *testing.T) {
	tn := NewTunnel(TunnelConfig{MaxQueue: 2})
	if err := tn.Send(t0, LData{Dest: 1, APCI: GroupValueWrite, Short: true, Data: []byte{1}}, 1); err != ErrNotConnected {
		t.Fatalf("Send before connect: %v", err)
	}
	tn.Connect(t0)
	tn.Handle(t0, Frame{Service: ConnectResponse, Channel: 1, Data: local}.Encode(nil))
	for i := range 2 {
		if err := tn.Send(t0, LData{Dest: 1, APCI: GroupValueWrite, Short: true, Data: []byte{1}}, uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tn.Send(t0, LData{Dest: 1, APCI: GroupValueWrite, Short: true, Data: []byte{1}}, 3); err != ErrQueueFull {
		t.Fatalf("Send over MaxQueue: %v", err)
	}
}

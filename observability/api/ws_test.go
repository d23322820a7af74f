package api_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/aimdb-dev/aimdb-flow/observability/api"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
	"github.com/aimdb-dev/aimdb-flow/tests/nodepeer"
)

// wsConn is a test client of the WebSocket endpoint.
type wsConn struct {
	t *testing.T
	c *websocket.Conn
}

// dialWS opens base/ws/pattern, offering the token as the bearer
// subprotocol when set; it returns the handshake's status on failure.
func dialWS(t *testing.T, in *instance, path, token string, hdr http.Header) (*wsConn, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	protos := []string{api.WSProtocol}
	if token != "" {
		protos = append(protos, "bearer."+token)
	}
	url := "ws" + strings.TrimPrefix(in.base, "http") + path
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: protos, HTTPHeader: hdr})
	if err != nil {
		if resp == nil {
			t.Fatalf("dial %s: %v", url, err)
		}
		return nil, resp.StatusCode
	}
	if c.Subprotocol() != api.WSProtocol {
		t.Fatalf("subprotocol %q, want %q (the token must not be echoed)", c.Subprotocol(), api.WSProtocol)
	}
	t.Cleanup(func() { c.CloseNow() })
	return &wsConn{t: t, c: c}, 0
}

func (w *wsConn) read() api.WSMessage {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := w.c.Read(ctx)
	if err != nil {
		w.t.Fatalf("read: %v", err)
	}
	var m api.WSMessage
	if err := json.Unmarshal(b, &m); err != nil {
		w.t.Fatalf("message %s: %v", b, err)
	}
	return m
}

// readType reads until a message of type typ (values keep flowing).
func (w *wsConn) readType(typ string) api.WSMessage {
	w.t.Helper()
	for i := 0; i < 10000; i++ {
		if m := w.read(); m.Type == typ {
			return m
		}
	}
	w.t.Fatalf("no %s message", typ)
	return api.WSMessage{}
}

func (w *wsConn) send(m api.WSMessage) {
	w.t.Helper()
	b, _ := json.Marshal(m)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, b); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

// A client of /ws/PATTERN gets a hello naming the matched records, then
// live values of those records only.
func TestWSStreamsMatchingRecords(t *testing.T) {
	in := start(t, testFlow, api.Options{})
	w, _ := dialWS(t, in, "/ws/sensor.*", "", nil)
	hello := w.read()
	if hello.Type != "hello" || strings.Join(hello.Records, ",") != "sensor.temp,sensor.hum" {
		t.Fatalf("hello %+v, want sensor.temp and sensor.hum", hello)
	}
	seen := map[string]bool{}
	var last uint64
	for len(seen) < 2 {
		m := w.readType("value")
		if m.Seq <= last {
			t.Fatalf("seq %d after %d", m.Seq, last)
		}
		last = m.Seq
		if !strings.HasPrefix(m.Value.Record, "sensor.") || len(m.Value.Value) == 0 {
			t.Fatalf("value %+v", m.Value)
		}
		seen[m.Value.Record] = true
	}
}

// A new client first gets the latest value of each watched record.
func TestWSSendsLatestValueFirst(t *testing.T) {
	in := start(t, testFlow, api.Options{Token: "tok"})
	c := in.client("tok")
	ctx := context.Background()
	if _, err := c.Set(ctx, "setpoint", json.RawMessage(`{"target":21.5}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "applied has a value", func() bool { _, ok := in.r.Latest("applied"); return ok })
	w, _ := dialWS(t, in, "/ws/applied", "tok", nil)
	if m := w.read(); m.Type != "hello" {
		t.Fatalf("first message %+v", m)
	}
	m := w.read()
	if m.Type != "value" || m.Value.Record != "applied" || !strings.Contains(string(m.Value.Value), `"target":21.5`) {
		t.Fatalf("second message %+v, want the latest value of applied", m)
	}
}

// Clients set settable records over the connection, with the token;
// everything else is refused with a reason and the connection stays up.
func TestWSSet(t *testing.T) {
	in := start(t, testFlow, api.Options{Token: "tok"})
	w, _ := dialWS(t, in, "/ws/setpoint?records=applied", "tok", nil)
	w.readType("hello")
	w.send(api.WSMessage{Type: "set", Record: "setpoint", Data: json.RawMessage(`{"target":19}`)})
	// The ack, and the value the pipeline derived from it on the watched
	// record, in either order.
	acked, applied := false, false
	for !acked || !applied {
		switch m := w.read(); m.Type {
		case "ack":
			if m.Record != "setpoint" {
				t.Fatalf("ack %+v", m)
			}
			acked = true
		case "value":
			applied = applied || m.Value.Record == "applied" && strings.Contains(string(m.Value.Value), `"target":19`)
		case "error":
			t.Fatalf("set refused: %+v", m.Error)
		}
	}
	for _, tc := range []struct {
		msg  api.WSMessage
		code string
	}{
		{api.WSMessage{Type: "set", Record: "applied", Data: json.RawMessage(`1`)}, "not_settable"},
		{api.WSMessage{Type: "set", Record: "sensor.temp.raw", Data: json.RawMessage(`1`)}, "not_found"}, // not watched here
		{api.WSMessage{Type: "set", Record: "setpoint", Data: json.RawMessage(`{oops`)}, "bad_request"},
		{api.WSMessage{Type: "delete", Record: "setpoint"}, "bad_request"},
	} {
		w.send(tc.msg)
		if e := w.readType("error"); e.Error == nil || e.Error.Code != tc.code {
			t.Errorf("%+v: answer %+v, want %s", tc.msg, e, tc.code)
		}
	}
	var stats api.WSStats
	code, body, _ := do(t, "GET", in.base+"/api/v1/ws", "tok", "")
	if code != 200 || json.Unmarshal([]byte(body), &stats) != nil || stats.Sets != 1 || stats.Refused != 4 || stats.Clients != 1 {
		t.Fatalf("ws stats %d %s", code, body)
	}
}

// Without a token nobody sets anything over the connection; with a token
// configured the handshake needs it; pages of other origins are refused.
func TestWSAuthAndOrigin(t *testing.T) {
	open := start(t, testFlow, api.Options{})
	w, _ := dialWS(t, open, "/ws/setpoint", "", nil)
	w.readType("hello")
	w.send(api.WSMessage{Type: "set", Record: "setpoint", Data: json.RawMessage(`1`)})
	if e := w.readType("error"); e.Error.Code != "set_needs_token" {
		t.Fatalf("set without a configured token: %+v", e)
	}

	in := start(t, testFlow, api.Options{Token: "tok", WSOrigins: []string{"dash.example.com"}})
	if _, status := dialWS(t, in, "/ws/setpoint", "", nil); status != http.StatusUnauthorized {
		t.Fatalf("no token: status %d, want 401", status)
	}
	if _, status := dialWS(t, in, "/ws/setpoint", "wrong", nil); status != http.StatusUnauthorized {
		t.Fatalf("wrong token: status %d, want 401", status)
	}
	if _, status := dialWS(t, in, "/ws/setpoint", "tok", http.Header{"Origin": {"http://evil.example.org"}}); status != http.StatusForbidden {
		t.Fatalf("foreign origin: status %d, want 403", status)
	}
	ok, _ := dialWS(t, in, "/ws/setpoint", "tok", http.Header{"Origin": {"http://dash.example.com"}})
	ok.readType("hello")
	if _, status := dialWS(t, in, "/ws/nothing.*", "tok", nil); status != http.StatusNotFound {
		t.Fatalf("pattern matching nothing: status %d, want 404", status)
	}
}

// With WSDisconnectSlow, a client that stops reading is closed once it
// loses a value, counted, and the graph is not held up.
func TestWSDisconnectsSlowClient(t *testing.T) {
	in := start(t, testFlow, api.Options{Token: "tok", WSDisconnectSlow: true, WriteTimeout: time.Second})
	dialer := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	hc := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(in.base, "http")+"/ws/setpoint?buffer=4",
		&websocket.DialOptions{HTTPClient: hc, Subprotocols: []string{api.WSProtocol, "bearer.tok"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if _, b, err := c.Read(ctx); err != nil || !strings.Contains(string(b), `"hello"`) {
		t.Fatalf("hello: %s %v", b, err)
	}
	// The client reads nothing more. 2000 values of 8 KiB: far more than
	// the socket buffers hold.
	payload := []byte(`{"pad":"` + strings.Repeat("x", 8<<10) + `"}`)
	v, err := codec.LazyJSON{}.Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2000; i++ {
		if err := in.r.Set(ctx, "setpoint", pipeline.Envelope{Value: v, Payload: payload}); err != nil {
			t.Fatalf("set %d: %v (the slow client holds up the graph)", i, err)
		}
	}
	var stats api.WSStats
	eventually(t, "the slow client is disconnected", func() bool {
		_, body, _ := do(t, "GET", in.base+"/api/v1/ws", "tok", "")
		return json.Unmarshal([]byte(body), &stats) == nil && stats.SlowDisconnected == 1 && stats.Clients == 0
	})
	eventually(t, "its watch is closed", func() bool {
		_, body, _ := do(t, "GET", in.base+"/api/v1/watchers", "tok", "")
		return strings.TrimSpace(body) == "[]"
	})
}

// An independent client (the npm ws library) authenticates with the
// bearer subprotocol, gets the hello, the latest value and live values,
// and sets a record.
func TestWSWithNodeClient(t *testing.T) {
	in := start(t, testFlow, api.Options{Token: "tok"})
	if _, err := in.client("tok").Set(context.Background(), "setpoint", json.RawMessage(`{"target":20}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "applied has a value", func() bool { _, ok := in.r.Latest("applied"); return ok })
	url := "ws" + strings.TrimPrefix(in.base, "http") + "/ws/applied?records=setpoint"
	// hello, the latest values of setpoint and applied, then (in any
	// order) the ack of the set and the new values of both records.
	out, err := nodepeer.Command(t, "testdata/wsclient.js", url, "tok", "6", `{"type":"set","record":"setpoint","data":{"target":23}}`).Output()
	if err != nil {
		t.Fatalf("node client: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 7 || lines[0] != `{"protocol":"aimdb-flow.v1"}` {
		t.Fatalf("node client printed:\n%s", out)
	}
	types := map[string]int{}
	var applied []string
	for _, l := range lines[1:] {
		var m api.WSMessage
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("message %s: %v", l, err)
		}
		types[m.Type]++
		if m.Type == "value" && m.Value.Record == "applied" {
			applied = append(applied, string(m.Value.Value))
		}
	}
	if types["hello"] != 1 || types["ack"] != 1 || len(applied) != 2 || !strings.Contains(applied[0], `"target":20`) || !strings.Contains(applied[1], `"target":23`) {
		t.Fatalf("messages %v, applied %v: want hello, the latest value (target 20) first, the ack", types, applied)
	}
	out, err = nodepeer.Command(t, "testdata/wsclient.js", url, "-", "1").Output()
	if err != nil || strings.TrimSpace(string(out)) != `{"status":401}` {
		t.Fatalf("without the token: %s %v", out, err)
	}
}

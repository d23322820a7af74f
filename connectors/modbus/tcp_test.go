package modbus_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/modbus"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// boilerPresets are the pymodbus peer's registers for the source tests:
// a float32 21.5 at input 0-1, int16 -2 at holding 10, uint32 65538
// word-swapped at holding 11-12, "pump" at holding 20-21, coils 3 and 5
// on, discrete input 1 on.
var boilerPresets = []string{
	"ir:0:16812,0", // 0x41AC 0x0000
	"hr:10:65534,2,1",
	"hr:20:28789,28016", // "pu" "mp"
	"co:3:1,0,1",
	"di:1:1",
}

var boilerFields = pipeline.Params{
	"field.temp":    "input 0 float32",
	"field.delta":   "holding 10 int16",
	"field.total":   "holding 11 uint32 words low",
	"field.name":    "holding 20 string 2",
	"field.running": "coil 3",
	"field.spare":   "coil 4",
	"field.valve":   "coil 5",
	"field.door":    "discrete 1",
	"field.tenths":  "holding 10 int16 scale 0.1",
}

// TestPollPymodbus polls every table of a real pymodbus server and gets
// one record, a JSON object of the fields in table and address order.
func TestPollPymodbus(t *testing.T) {
	peer := startTCPPeer(t, boilerPresets...)
	b := builder(t, peer.url(), nil)
	p := pipeline.Params{"interval": "20ms"}
	for k, v := range boilerFields {
		if k != "field.tenths" {
			p[k] = v
		}
	}
	c, rec := serve(t, b, "boiler", p)
	want := `{"running":true,"spare":false,"valve":true,"door":true,"delta":-2,"total":65538,"name":"pump","temp":21.5}`
	if !rec.waitPayload(15*time.Second, want) {
		t.Fatalf("no record %s; got %q", want, rec.last())
	}
	// emit change (the default): later polls of the same values dispatch
	// nothing.
	conn := c.(*modbus.Conn)
	if !waitFor(15*time.Second, func() bool { return conn.Stats().Unchanged >= 3 }) {
		t.Fatalf("stats %+v", conn.Stats())
	}
	if n := len(rec.all()); n != 1 {
		t.Fatalf("%d records of unchanged values, want 1", n)
	}
	if e := rec.all()[0]; e.Topic != "boiler" {
		t.Fatalf("topic %q, want the link address", e.Topic)
	}
}

// TestWriteAndReadBack writes a record through a to link (FC 5, 6, 15,
// 16) and reads it back through a from link on the same peer.
func TestWriteAndReadBack(t *testing.T) {
	peer := startTCPPeer(t)
	b := builder(t, peer.url(), pipeline.Params{"unit": "1"})
	fields := pipeline.Params{
		"field.sp":    "holding 0 float32",
		"field.mode":  "holding 2",
		"field.label": "holding 3 string 3",
		"field.on":    "coil 0",
		"field.fan":   "coil 1",
		"field.lamp":  "coil 7",
	}
	out := build(t, b)
	wopts := linkOpts(t, b, pipeline.Outbound, "setpoints", fields)
	in := pipeline.Params{"interval": "20ms"}
	for k, v := range fields {
		in[k] = v
	}
	_, rec := serve(t, b, "setpoints", in)
	for _, tc := range []struct{ send, want string }{
		{`{"sp":42.5,"mode":3,"label":"eco","on":true,"fan":true,"lamp":true}`, `{"on":true,"fan":true,"lamp":true,"sp":42.5,"mode":3,"label":"eco"}`},
		// A record with some of the fields writes those only (FC 5 and 6).
		{`{"mode":7,"fan":false}`, `{"on":true,"fan":false,"lamp":true,"sp":42.5,"mode":7,"label":"eco"}`},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := out.Publish(ctx, "setpoints", wopts, &pipeline.Envelope{Payload: []byte(tc.send)})
		cancel()
		if err != nil {
			t.Fatalf("Publish %s: %v", tc.send, err)
		}
		if !rec.waitPayload(15*time.Second, tc.want) {
			t.Fatalf("after %s: no record %s; last %q", tc.send, tc.want, rec.last())
		}
	}
}

// TestPublishPermanent: a record the map cannot take, or an address the
// device refuses (exception 2), is a permanent error (dead-lettered);
// the connector writes the next good record.
func TestPublishPermanent(t *testing.T) {
	peer := startTCPPeer(t)
	b := builder(t, peer.url(), nil)
	c := build(t, b)
	opts := linkOpts(t, b, pipeline.Outbound, "sp", pipeline.Params{"field.sp": "holding 0 int16", "field.on": "coil 0"})
	far := linkOpts(t, b, pipeline.Outbound, "far", pipeline.Params{"field.x": "holding 500"}) // the peer has 200 registers
	for _, tc := range []struct {
		opts    any
		payload string
		want    string
	}{
		{opts, `{"sp":"hot"}`, "want a number for int16 holding 0, got a string"},
		{opts, `{"sp":40000}`, "out of the int16 range"},
		{opts, `{"on":1}`, "want true or false"},
		{opts, `{"other":1}`, "the record has none of the link's fields (on, sp)"},
		{opts, `[1,2]`, "want a JSON object"},
		{far, `{"x":1}`, "illegal data address"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := c.Publish(ctx, "sp", tc.opts, &pipeline.Envelope{Payload: []byte(tc.payload)})
		cancel()
		if !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("Publish %s: %v, want a permanent error containing %q", tc.payload, err, tc.want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Publish(ctx, "sp", opts, &pipeline.Envelope{Payload: []byte(`{"sp":-5}`)}); err != nil {
		t.Fatalf("a good record after bad ones: %v", err)
	}
	if st := c.(*modbus.Conn).Stats(); st.Exceptions != 1 || st.Writes != 1 {
		t.Fatalf("stats %+v, want 1 exception and 1 write", st)
	}
}

// TestPollException: a poll the device answers with an exception is
// counted and reported, dispatches nothing, and other links go on.
func TestPollException(t *testing.T) {
	peer := startTCPPeer(t, "hr:0:7")
	b := builder(t, peer.url(), nil)
	opts := func(p pipeline.Params) any { return linkOpts(t, b, pipeline.Inbound, "x", p) }
	subs := []pipeline.Subscription{
		{Filter: "bad", Options: opts(pipeline.Params{"field.x": "holding 300", "interval": "10ms"})},
		{Filter: "good", Options: opts(pipeline.Params{"field.x": "holding 0", "interval": "10ms", "emit": "every"})},
	}
	c, err := b.Build(context.Background(), pipeline.BuildEnv{Inbound: subs})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.(pipeline.Source).Serve(ctx, subs, rec) }()
	conn := c.(*modbus.Conn)
	ok := waitFor(15*time.Second, func() bool { return conn.Stats().Exceptions >= 3 && len(rec.all()) >= 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	_ = c.Close(context.Background())
	st := conn.Stats()
	if !ok {
		t.Fatalf("stats %+v, records %d", st, len(rec.all()))
	}
	for _, e := range rec.all() {
		if e.Topic != "good" || string(e.Payload) != `{"x":7}` {
			t.Fatalf("dispatched %s %s", e.Topic, e.Payload)
		}
	}
	if !strings.Contains(st.LastError, "exception") || !strings.Contains(st.LastError, "illegal data address") {
		t.Fatalf("last error %q", st.LastError)
	}
	if st.Timeouts+st.Transport+st.Malformed != 0 {
		t.Fatalf("an exception is not a connection failure: %+v", st)
	}
}

// TestPeerRestart: the pymodbus server is killed mid-stream and started
// again; readiness follows, polling and writing resume.
func TestPeerRestart(t *testing.T) {
	peer := startTCPPeer(t, "hr:0:1")
	b := builder(t, peer.url(), pipeline.Params{"reconnect_min": "10ms", "reconnect_max": "100ms", "timeout": "500ms"})
	c, rec := serve(t, b, "r", pipeline.Params{"field.x": "holding 0", "interval": "20ms"})
	r := c.(pipeline.Readiness)
	if !rec.waitPayload(15*time.Second, `{"x":1}`) {
		t.Fatalf("no first record; got %q", rec.last())
	}
	if err := r.Ready(); err != nil {
		t.Fatalf("not ready while polling: %v", err)
	}
	peer.stop()
	if !waitFor(15*time.Second, func() bool { return r.Ready() != nil }) {
		t.Fatal("still ready with the peer gone")
	}
	t.Logf("during the outage: %v", r.Ready())
	peer.args = append(peer.args, "--set", "hr:0:2")
	peer.start()
	if !rec.waitPayload(20*time.Second, `{"x":2}`) {
		t.Fatalf("no record after the restart; got %q", rec.last())
	}
	if err := r.Ready(); err != nil {
		t.Fatalf("not ready after the restart: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wopts := linkOpts(t, b, pipeline.Outbound, "r", pipeline.Params{"field.x": "holding 0"})
	if err := c.Publish(ctx, "r", wopts, &pipeline.Envelope{Payload: []byte(`{"x":3}`)}); err != nil {
		t.Fatalf("Publish after the restart: %v", err)
	}
	if !rec.waitPayload(15*time.Second, `{"x":3}`) {
		t.Fatalf("the write after the restart did not land; got %q", rec.last())
	}
}

// TestPublishHonoursContext: with the peer paused (SIGSTOP), Publish
// returns by its context's deadline with an error wrapping it; after the
// peer resumes, publishing works again.
func TestPublishHonoursContext(t *testing.T) {
	peer := startTCPPeer(t)
	b := builder(t, peer.url(), pipeline.Params{"timeout": "5s", "reconnect_min": "10ms", "reconnect_max": "50ms"})
	c := build(t, b)
	opts := linkOpts(t, b, pipeline.Outbound, "x", pipeline.Params{"field.x": "holding 0"})
	pub := func(d time.Duration, v string) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		return c.Publish(ctx, "x", opts, &pipeline.Envelope{Payload: []byte(`{"x":` + v + `}`)})
	}
	if err := pub(10*time.Second, "1"); err != nil {
		t.Fatal(err)
	}
	resume := peer.pause()
	err := pub(200*time.Millisecond, "2")
	resume()
	if !errors.Is(err, context.DeadlineExceeded) || pipeline.IsPermanent(err) {
		t.Fatalf("Publish to a paused peer: %v, want a transient error wrapping the deadline", err)
	}
	if !waitFor(20*time.Second, func() bool { return pub(2*time.Second, "3") == nil }) {
		t.Fatalf("no Publish after the peer resumed: %v", pub(2*time.Second, "3"))
	}
}

// TestDuplicateLinkNames: two from links with one address would feed
// each other's records; Serve refuses them with the reason.
func TestDuplicateLinkNames(t *testing.T) {
	b := builder(t, "modbus://127.0.0.1:1", nil)
	o := func(spec string) any { return linkOpts(t, b, pipeline.Inbound, "m", pipeline.Params{"field.x": spec}) }
	subs := []pipeline.Subscription{{Filter: "m", Record: "a", Options: o("holding 0")}, {Filter: "m", Record: "b", Options: o("coil 0")}}
	c, err := b.Build(context.Background(), pipeline.BuildEnv{Inbound: subs})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	err = c.(pipeline.Source).Serve(context.Background(), subs, newRecorder())
	if err == nil || !strings.Contains(err.Error(), `records a and b both read modbus link "m"`) {
		t.Fatalf("Serve: %v", err)
	}
}

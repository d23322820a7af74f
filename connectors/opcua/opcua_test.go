package opcua

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// recorder is a Dispatcher and Rejecter that keeps what it got.
type recorder struct {
	mu      sync.Mutex
	got     map[string][]string // payloads by topic
	rej     []string            // reasons
	changed chan struct{}
}

func newRecorder() *recorder {
	return &recorder{got: map[string][]string{}, changed: make(chan struct{})}
}

func (r *recorder) note(f func()) {
	r.mu.Lock()
	f()
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder) Dispatch(_ context.Context, env *pipeline.Envelope) error {
	r.note(func() { r.got[env.Topic] = append(r.got[env.Topic], string(env.Payload)) })
	return nil
}

func (r *recorder) Reject(_ context.Context, env *pipeline.Envelope, reason error) error {
	r.note(func() { r.rej = append(r.rej, reason.Error()) })
	return nil
}

// waitFor polls cond (under r.mu) on every change, for up to 20s.
func (r *recorder) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		r.mu.Lock()
		ok, ch := cond(), r.changed
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("timed out waiting for %s; got %v, rejected %v", what, r.got, r.rej)
		}
	}
}

// serve builds a connector for subs against srv and serves them until
// the test ends.
func serve(t *testing.T, srv *server, subs []pipeline.Subscription, r *recorder) *Conn {
	t.Helper()
	b := New(Config{Endpoint: srv.url(), Backoff: pipeline.Backoff{Min: 10 * time.Millisecond, Max: 200 * time.Millisecond}})
	c, err := b.Build(context.Background(), pipeline.BuildEnv{Name: "opcua", Inbound: subs})
	if err != nil {
		t.Fatal(err)
	}
	conn := c.(*Conn)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- conn.Serve(ctx, subs, r) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		_ = conn.Close(context.Background())
	})
	waitReady(t, conn)
	return conn
}

func waitReady(t *testing.T, c *Conn) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for c.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", c.Ready())
		}
		time.Sleep(10 * time.Millisecond) // polling an observable condition
	}
}

func publish(t *testing.T, c *Conn, dest string, opts any, payload string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Publish(ctx, dest, opts, &pipeline.Envelope{Payload: []byte(payload)})
}

func sub(addr string, in In) pipeline.Subscription {
	return pipeline.Subscription{Filter: addr, Options: in}
}

// TestWriteAndSubscribe: writes convert to the node's type (Double, and
// Int32 through a browse path), data changes carry value, type, status
// and both timestamps.
func TestWriteAndSubscribe(t *testing.T) {
	srv := startServer(t)
	r := newRecorder()
	temp, count := "ns=2;s=Machine/Temp", "/2:Machine/2:Count"
	c := serve(t, srv, []pipeline.Subscription{sub(temp, In{SkipInitial: true}), sub(count, In{SkipInitial: true})}, r)
	if err := publish(t, c, temp, nil, `{"value": 21.5, "unit": "C"}`); err != nil {
		t.Fatal(err)
	}
	if err := publish(t, c, count, nil, `42`); err != nil {
		t.Fatal(err)
	}
	srv.waitWrite("Machine/Count=42")
	r.waitFor(t, "both changes", func() bool { return len(r.got[temp]) > 0 && len(r.got[count]) > 0 })
	tests := []struct {
		topic, node, typ string
		value            any
	}{
		{temp, "ns=2;s=Machine/Temp", "Double", 21.5},
		{count, "ns=2;s=Machine/Count", "Int32", 42.0},
	}
	for _, tc := range tests {
		var ch change
		if err := json.Unmarshal([]byte(r.got[tc.topic][0]), &ch); err != nil {
			t.Fatal(err)
		}
		if ch.Node != tc.node || ch.Type != tc.typ || ch.Value != tc.value || ch.Status != "Good" ||
			ch.SourceTimestamp == "" || ch.ServerTimestamp == "" {
			t.Errorf("%s: got %+v", tc.topic, ch)
		}
	}
}

// TestHostileValues: a write the node's type cannot take is Permanent
// (dead-lettered by the runner); a Bad status and a huge string are
// rejected with their reason; the stream goes on afterwards.
func TestHostileValues(t *testing.T) {
	srv := startServer(t)
	r := newRecorder()
	temp, name := "ns=2;s=Machine/Temp", "ns=2;s=Machine/Name"
	c := serve(t, srv, []pipeline.Subscription{
		sub(temp, In{SkipInitial: true}),
		sub(name, In{SkipInitial: true, ValueOnly: true, MaxValue: 1024}),
	}, r)
	for _, tc := range []struct{ dest, payload, want string }{
		{temp, `"hot"`, "node is Double, value is a string"},
		{temp, `not json`, "payload is not JSON"},
		{"ns=2;s=Machine/Count", `1e12`, "not a whole number in the range of Int32"},
		{"ns=2;s=Machine/Nope", `1`, "StatusBadNodeIDUnknown"},
	} {
		err := publish(t, c, tc.dest, nil, tc.payload)
		if err == nil || !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("publish %s to %s: %v, want a permanent error mentioning %q", tc.payload, tc.dest, err, tc.want)
		}
	}
	srv.set("Machine/Temp", "Double", 99, "BadSensorFailure")
	r.waitFor(t, "the bad status rejected", func() bool { return len(r.rej) > 0 })
	if want := "data change with status BadSensorFailure (0x808C0000)"; !strings.Contains(r.rej[0], want) {
		t.Errorf("reason %q does not name the status", r.rej[0])
	}
	if err := publish(t, c, name, nil, `"`+strings.Repeat("x", 4096)+`"`); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, "the huge string rejected", func() bool { return len(r.rej) > 1 })
	if !strings.Contains(r.rej[1], "exceeds max_value") {
		t.Errorf("reason %q", r.rej[1])
	}
	if err := publish(t, c, name, nil, `"still here"`); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, "a good value after the bad ones", func() bool { return len(r.got[name]) > 0 })
	if got := r.got[name]; got[0] != "still here" || len(r.got[temp]) != 0 {
		t.Errorf("dispatched %v", r.got)
	}
}

// TestMethodCall calls Machine/Reset with an Int32 argument.
func TestMethodCall(t *testing.T) {
	srv := startServer(t)
	c := serve(t, srv, []pipeline.Subscription{sub("ns=2;s=Machine/On", In{})}, newRecorder())
	if err := publish(t, c, "ns=2;s=Machine", Out{Method: "ns=2;s=Machine/Reset"}, `[41]`); err != nil {
		t.Fatal(err)
	}
	err := publish(t, c, "ns=2;s=Machine", Out{Method: "ns=2;s=Machine/Reset"}, `["x"]`)
	if !pipeline.IsPermanent(err) {
		t.Errorf("wrong argument type: %v, want a permanent error", err)
	}
}

// TestServerRestartMidStream kills the server while values flow: the
// connector is not ready during the outage, reconnects, re-creates its
// subscription and delivers what is written after the restart.
func TestServerRestartMidStream(t *testing.T) {
	srv := startServer(t)
	r := newRecorder()
	name := "ns=2;s=Machine/Name"
	c := serve(t, srv, []pipeline.Subscription{sub(name, In{ValueOnly: true, SkipInitial: true})}, r)
	for _, v := range []string{"a", "b"} {
		if err := publish(t, c, name, nil, `"`+v+`"`); err != nil {
			t.Fatal(err)
		}
	}
	r.waitFor(t, "a and b", func() bool { return len(r.got[name]) == 2 })
	srv.stop()
	deadline := time.Now().Add(20 * time.Second)
	for c.Ready() == nil {
		if time.Now().After(deadline) {
			t.Fatal("still ready with the server down")
		}
		time.Sleep(10 * time.Millisecond) // polling an observable condition
	}
	if err := publish(t, c, name, nil, `"lost"`); err == nil {
		t.Error("publish with the server down succeeded")
	}
	srv.restart()
	waitReady(t, c)
	if err := publish(t, c, name, nil, `"c"`); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, "c after the restart", func() bool { return len(r.got[name]) == 3 })
	if got := strings.Join(r.got[name], ","); got != "a,b,c" {
		t.Errorf("got %s, want a,b,c", got)
	}
}

package ws

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// recorder is a pipeline.Dispatcher that keeps what it is given.
type recorder struct {
	mu      sync.Mutex
	envs    []pipeline.Envelope
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) Dispatch(_ context.Context, env *pipeline.Envelope) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.envs = append(r.envs, *env)
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

// waitFor waits until some dispatched payload contains want, and returns
// how many did.
func (r *recorder) waitFor(t *testing.T, want string, n int) []pipeline.Envelope {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		var got []pipeline.Envelope
		for _, e := range r.envs {
			if strings.Contains(string(e.Payload), want) {
				got = append(got, e)
			}
		}
		changed := r.changed
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%d dispatched messages contain %q, want %d", len(got), want, n)
		}
	}
}

var fastBackoff = pipeline.Backoff{Min: time.Millisecond, Max: 20 * time.Millisecond}

// serve builds c for subs and runs Serve until the test ends.
func serve(t *testing.T, cfg Config, subs []pipeline.Subscription) (*Conn, *recorder) {
	t.Helper()
	cfg.Backoff = fastBackoff
	conn, err := New(cfg).Build(context.Background(), pipeline.BuildEnv{Name: "hub", Inbound: subs})
	if err != nil {
		t.Fatal(err)
	}
	c := conn.(*Conn)
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx, subs, rec) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c, rec
}

// waitReady waits until c is ready (or fails with its last reason).
func waitReady(t *testing.T, c *Conn, ready bool) error {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Ready()
		if (err == nil) == ready {
			return err
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ready() = %v after 10s, want ready=%v", err, ready)
		}
		time.Sleep(5 * time.Millisecond) // readiness has no change notification
	}
}

// waitReason waits until c reports not ready with a reason containing
// want.
func waitReason(t *testing.T, c *Conn, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Ready()
		if err != nil && strings.Contains(err.Error(), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ready() = %v after 10s, want a reason with %q", err, want)
		}
		time.Sleep(5 * time.Millisecond) // readiness has no change notification
	}
}

// The subscribe message of each inbound link is sent after every connect:
// a hub restarted mid-stream gets it again and the stream resumes.
func TestSubscribeIsResentAfterReconnect(t *testing.T) {
	h := startHub(t)
	sub := `{"subscribe":"ticker"}`
	c, rec := serve(t, Config{URL: h.url()}, []pipeline.Subscription{{Filter: "ticker", Options: In{Subscribe: sub}}})
	h.waitReceived("/ticker", 1)
	got := rec.waitFor(t, `"subscribed":"ticker"`, 1)
	if got[0].Topic != "ticker" || got[0].Ack != nil {
		t.Fatalf("dispatched %+v: want topic ticker and no ack", got[0])
	}
	h.stop()
	waitReason(t, c, "dial")
	h.restart()
	waitReady(t, c, true)
	if msgs := h.waitReceived("/ticker", 2); msgs[1] != sub {
		t.Fatalf("after the restart the hub got %q, want the subscribe message again", msgs[1])
	}
	rec.waitFor(t, `"subscribed":"ticker"`, 2)
}

// A token is sent as a bearer header; without it the hub refuses the
// handshake and readiness says so.
func TestTokenIsSentAsBearer(t *testing.T) {
	h := startHub(t, "WS_TOKEN=s3cret")
	c, _ := serve(t, Config{URL: h.url()}, []pipeline.Subscription{{Filter: "a"}})
	waitReason(t, c, "401")
	c2, _ := serve(t, Config{URL: h.url(), Token: kit.NewSecret("s3cret")}, []pipeline.Subscription{{Filter: "a"}})
	waitReady(t, c2, true)
}

// A message over max_message ends the connection (status 1009), is
// counted and reported; the connector redials.
func TestOversizedMessageIsRefused(t *testing.T) {
	h := startHub(t, "BIG=70000")
	c, rec := serve(t, Config{URL: h.url(), MaxMessage: 65536}, []pipeline.Subscription{{Filter: "big"}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, over := c.Stats(); over >= 2 { // refused, redialled, refused again
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("oversized messages: %v", c.Ready())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.Ready(); err != nil && !strings.Contains(err.Error(), "max_message") {
		t.Fatalf("Ready() = %v, want the max_message reason", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.envs) != 0 {
		t.Fatalf("%d oversized messages dispatched", len(rec.envs))
	}
}

// Outbound links send text by default and binary with `message binary`.
func TestPublishMessageTypes(t *testing.T) {
	h := startHub(t)
	conn, err := New(Config{URL: h.url(), Backoff: fastBackoff}).Build(context.Background(), pipeline.BuildEnv{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		opts   any
		binary bool
	}{{nil, false}, {Out{}, false}, {Out{Binary: true}, true}} {
		if err := conn.Publish(ctx, "out", tc.opts, &pipeline.Envelope{Payload: []byte("hi")}); err != nil {
			t.Fatal(err)
		}
	}
	h.waitReceived("/out", 3)
	h.mu.Lock()
	defer h.mu.Unlock()
	var kinds []bool
	for _, m := range h.got {
		if m.Path == "/out" {
			kinds = append(kinds, m.Binary)
		}
	}
	if kinds[0] || kinds[1] || !kinds[2] {
		t.Fatalf("binary flags %v, want [false false true]", kinds)
	}
}

// While the connection is down a publish fails at once with the reason,
// not at its deadline.
func TestPublishFailsFastWhileDown(t *testing.T) {
	h := startHub(t)
	url := h.url()
	h.stop()
	conn, err := New(Config{URL: url, Backoff: pipeline.Backoff{Min: time.Hour, Max: time.Hour}}).Build(context.Background(), pipeline.BuildEnv{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	var last error
	for i := 0; i < 2; i++ { // the first waits for the first dial, the second is in the backoff
		last = conn.Publish(ctx, "out", nil, &pipeline.Envelope{Payload: []byte("x")})
	}
	if last == nil || errors.Is(last, context.DeadlineExceeded) || !strings.Contains(last.Error(), "dial") {
		t.Fatalf("publish while down: %v, want the dial failure", last)
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		endpoint string
		params   pipeline.Params
		want     string // error substring, "" for none
	}{
		{"ws://127.0.0.1:1", nil, ""},
		{"wss://h:1/base", pipeline.Params{"ca_file": "x.pem", "ping_interval": "0"}, ""},
		{"http://h:1", nil, "want ws://host:port"},
		{"ws://", nil, "no host"},
		{"ws://h:1", pipeline.Params{"ping_intervall": "1s"}, `did you mean "ping_interval"`},
		{"ws://h:1", pipeline.Params{"max_message": "lots"}, "max_message"},
		{"ws://h:1", pipeline.Params{"insecure": "true"}, "wss://"},
	}
	for _, tc := range tests {
		_, err := ParseConfig(tc.endpoint, tc.params)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("ParseConfig(%q, %v) = %v, want %q", tc.endpoint, tc.params, err, tc.want)
		}
	}
	cfg, err := ParseConfig("ws://h:1", pipeline.Params{"token": "abc", "header_X-Test": "1", "max_message": "64KiB"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Token.Value() != "abc" || cfg.Header.Get("X-Test") != "1" || cfg.MaxMessage != 64<<10 {
		t.Fatalf("config %+v", cfg)
	}
	if linkURL("ws://h:1/v1/", "ticker") != "ws://h:1/v1/ticker" || linkURL("ws://h:1", "") != "ws://h:1" {
		t.Fatal("linkURL")
	}
}

// Options given in Go are checked as DSL settings are: the type must fit
// the direction, and the address the same rules.
func TestValidateLinkOptions(t *testing.T) {
	b := New(Config{URL: "ws://h:1"})
	tests := []struct {
		dir  pipeline.Direction
		addr string
		opts any
		want string
	}{
		{pipeline.Inbound, "a", In{Subscribe: "x"}, ""},
		{pipeline.Inbound, "a", nil, ""},
		{pipeline.Outbound, "a", &Out{Binary: true}, ""},
		{pipeline.Inbound, "a", Out{}, "want ws.In"},
		{pipeline.Outbound, "a", In{}, "want ws.Out"},
		{pipeline.Outbound, "/a", Out{}, "leading slash"},
	}
	for _, tc := range tests {
		err := b.ValidateLinkOptions(tc.dir, tc.addr, tc.opts)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("ValidateLinkOptions(%v, %q, %#v) = %v, want %q", tc.dir, tc.addr, tc.opts, err, tc.want)
		}
	}
}

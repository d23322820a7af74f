package httpconn

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

func hot(m map[string]any) bool { t, _ := m["temp"].(float64); return t > 25 }

func publishMem(t *testing.T, bus *mem.Bus, topic, payload string, headers ...pipeline.Header) {
	t.Helper()
	e := pipeline.Envelope{Payload: []byte(payload), Headers: headers}
	if err := bus.Publish(context.Background(), topic, &e); err != nil {
		t.Fatal(err)
	}
}

// mem source -> filter -> webhook: method, URL template, static, key and
// envelope headers all reach a real HTTP server.
func TestSinkEndToEnd(t *testing.T) {
	srv := newHookServer(t, nil)
	bus := mem.NewBus()
	hooks := mustBuilder(t, srv.URL+"/base?src=edge", Config{
		Header:    http.Header{"X-Api-Key": {"s3cret"}},
		KeyHeader: "X-Record-Key",
	})
	g := pipeline.New().Connector("", mem.New(bus)).Connector("hooks", hooks)
	g.Record("temp").From("mem://sensors/+/temp", codec.JSON{})
	g.Pipeline("alerts").From("temp").Via(stages.FilterValue(hot)).
		To("hooks://v1/alerts/{device}", codec.JSON{},
			pipeline.Key(func(env *pipeline.Envelope) ([]byte, error) { return []byte("k-1"), nil }),
			pipeline.WithParams(pipeline.Params{"method": "put", "header_X_Kind": "alert"}))
	start(t, g)

	publishMem(t, bus, "sensors/a/temp", `{"device":"d 1","temp":30}`, pipeline.Header{Key: "traceparent", Value: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
	publishMem(t, bus, "sensors/a/temp", `{"device":"d-2","temp":10}`)
	publishMem(t, bus, "sensors/a/temp", `{"device":"d-3","temp":40}`)

	h := srv.next(t)
	if h.Method != http.MethodPut || h.Path != "/base/v1/alerts/d%201" || h.Query != "src=edge" {
		t.Fatalf("request = %s %s?%s", h.Method, h.Path, h.Query)
	}
	for k, want := range map[string]string{"X-Api-Key": "s3cret", "X-Kind": "alert", "X-Record-Key": "k-1",
		"Content-Type": "application/json", "Traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"} {
		if got := h.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(h.Body), &v); err != nil || v["device"] != "d 1" {
		t.Fatalf("body %q: %v", h.Body, err)
	}
	if h := srv.next(t); h.Path != "/base/v1/alerts/d-3" {
		t.Fatalf("second request path %s (the cold reading must be filtered)", h.Path)
	}
}

// 503 twice, then 200: the record is delivered on the third attempt and
// nothing is dead-lettered. Retry-After: 0 is honoured (no long wait).
func TestSinkRetries5xxThenSucceeds(t *testing.T) {
	srv := newHookServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		switch n {
		case 1:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			w.WriteHeader(http.StatusBadGateway)
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	bus := mem.NewBus()
	hooks := mustBuilder(t, srv.URL, Config{Backoff: fastRetry, Retries: 3})
	g := pipeline.New().Connector("", mem.New(bus)).Connector("hooks", hooks)
	g.Record("in").From("mem://in", codec.JSON{})
	g.Pipeline("p").From("in").To("hooks://sink", codec.JSON{})
	g.DeadLetterTo("mem://dlq", codec.Raw{})
	dlq, cancelD := bus.Subscribe("dlq", 10)
	defer cancelD()
	rn := start(t, g)

	publishMem(t, bus, "in", `{"n":1}`)
	for i := 0; i < 3; i++ {
		if h := srv.next(t); h.Body != `{"n":1}` {
			t.Fatalf("attempt %d body %q", i+1, h.Body)
		}
	}
	waitFor(t, "publish counted", func() bool { return rn.r.Stats().Links[`p|hooks://sink`].Messages == 1 })
	rn.stop(t)
	if n := srv.count(); n != 3 {
		t.Fatalf("server saw %d requests, want 3", n)
	}
	if st := hooks.Stats(); st.Sent != 1 || st.Retries != 2 || st.Failed != 0 || st.InFlight != 0 {
		t.Fatalf("stats %+v", st)
	}
	select {
	case d := <-dlq:
		t.Fatalf("unexpected dead letter: %s", d.Payload)
	default:
	}
}

// A 4xx is final: one attempt, and the dead letter names the status and
// the response body excerpt next to the original payload. Retries that
// never succeed end in a dead letter too, saying how many attempts ran.
func TestSinkFailuresDeadLettered(t *testing.T) {
	cases := []struct {
		name     string
		code     int
		body     string
		attempts int
		want     []string
	}{
		{"4xx final", http.StatusUnprocessableEntity, `{"error": "unknown   device"}`, 1,
			[]string{"422 Unprocessable Entity", `unknown device`}},
		{"5xx exhausted", http.StatusInternalServerError, "database down", 3,
			[]string{"500 Internal Server Error", "database down", "after 3 attempts"}},
		{"301 not followed", http.StatusMovedPermanently, "", 1, []string{"301 Moved Permanently"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newHookServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				if tc.code == http.StatusMovedPermanently {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tc.code)
				_, _ = w.Write([]byte(tc.body))
			})
			bus := mem.NewBus()
			g := pipeline.New().Connector("", mem.New(bus)).
				Connector("hooks", mustBuilder(t, srv.URL, Config{Backoff: fastRetry, Retries: 2}))
			g.Record("in").From("mem://in", codec.JSON{})
			g.Pipeline("p").From("in").To("hooks://v1/{device}", codec.JSON{})
			g.DeadLetterTo("mem://dlq", codec.Raw{})
			dlq, cancelD := bus.Subscribe("dlq", 10)
			defer cancelD()
			start(t, g)

			publishMem(t, bus, "in", `{"device":"d-9"}`)
			d := recvEnv(t, dlq)
			var dl pipeline.DeadLetter
			if err := json.Unmarshal(d.Payload, &dl); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(dl.Error, w) {
					t.Errorf("dead-letter error %q lacks %q", dl.Error, w)
				}
			}
			if dl.Pipeline != "p" || dl.Payload != `{"device":"d-9"}` || !strings.Contains(dl.Stage, "publish") {
				t.Errorf("dead letter provenance: %+v", dl)
			}
			if n := srv.count(); n != tc.attempts {
				t.Errorf("server saw %d requests, want %d", n, tc.attempts)
			}
		})
	}
}

// Several pipelines share one connector with max_concurrency 2: the server
// never sees more than 2 requests at once, and with the server holding two
// requests the other publishers wait at the connector's bound.
func TestSinkConcurrencyBound(t *testing.T) {
	var inflight, peak atomic.Int32
	gate := make(chan struct{})
	srv := newHookServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		n := inflight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-gate
		inflight.Add(-1)
		w.WriteHeader(http.StatusOK)
	})
	bus := mem.NewBus()
	hooks := mustBuilder(t, srv.URL, Config{MaxConcurrency: 2})
	g := pipeline.New().Connector("", mem.New(bus)).Connector("hooks", hooks)
	g.Record("in").From("mem://in", codec.JSON{})
	const pipes = 4
	for i := 0; i < pipes; i++ {
		g.Pipeline("p"+string(rune('0'+i))).From("in").To("hooks://x", codec.JSON{})
	}
	rn := start(t, g)
	release := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release) // runs first: unblocks the server if the test fails
	publishMem(t, bus, "in", `{"n":1}`)
	publishMem(t, bus, "in", `{"n":2}`)

	hooks.mu.Lock()
	c := hooks.built
	hooks.mu.Unlock()
	waitFor(t, "2 requests at the server and the other publishers waiting", func() bool {
		return inflight.Load() == 2 && c.waiting.Load() == pipes-2
	})
	release()
	waitFor(t, "all 8 requests served", func() bool { return srv.count() == 2*pipes })
	rn.stop(t)
	if p := peak.Load(); p != 2 {
		t.Fatalf("peak concurrency at the server = %d, want 2", p)
	}
}

// Publish returns by its context's deadline even while retrying; a
// connection the server drops without answering is retried, and the final
// error names that failure next to the deadline.
func TestPublishDirect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close() // drop every connection without a response
		}
	}()
	b := mustBuilder(t, "http://"+ln.Addr().String(), Config{Backoff: pipeline.Backoff{Min: 20 * time.Millisecond, Max: 20 * time.Millisecond}, Retries: 1000})
	cn, err := b.Build(context.Background(), pipeline.BuildEnv{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer cn.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = cn.Publish(ctx, "x", nil, &pipeline.Envelope{Payload: []byte("{}")})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "EOF") && !strings.Contains(msg, "reset") && !strings.Contains(msg, "closed") {
		t.Errorf("err %q should name the connection failure", err)
	}
	if n := accepted.Load(); n < 2 {
		t.Errorf("server accepted %d connections, want retries", n)
	}
}

func TestTargetURL(t *testing.T) {
	b := mustBuilder(t, "https://user:pw@api.example.com/base/?v=1", Config{})
	cn, err := b.Build(context.Background(), pipeline.BuildEnv{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	c := cn.(*conn)
	cases := []struct{ dest, want, err string }{
		{"", "https://api.example.com/base/?v=1", ""},
		{"v1/alerts/d-1", "https://api.example.com/base/v1/alerts/d-1?v=1", ""},
		{"/v1/a b?x=ü#y", "https://api.example.com/base/v1/a%20b?v=1&x=%C3%BC%23y", ""},
		{"v1/100%/x%41", "https://api.example.com/base/v1/100%25/x%41?v=1", ""},
		{"v1/../admin", "", "dot path segments"},
		{"v1/%2e%2E/admin", "", "dot path segments"},
	}
	if got := safeURL(mustURL(t, "https://u:p@h/x?token=abc&v=1")); got != "https://h/x?token=xxxxx&v=xxxxx" {
		t.Errorf("safeURL = %s", got)
	}
	for _, tc := range cases {
		u, err := c.target(tc.dest)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("target(%q) err = %v, want %q", tc.dest, err, tc.err)
			}
			continue
		}
		if err != nil || u.String() != tc.want {
			t.Errorf("target(%q) = %v, %v; want %s", tc.dest, u, err, tc.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                              -1,
		"3":                             3 * time.Second,
		"-1":                            -1,
		"soon":                          -1,
		"Thu, 01 Jan 2026 00:00:10 GMT": 10 * time.Second,
		"Wed, 31 Dec 2025 00:00:10 GMT": 0,
	}
	for in, want := range cases {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

// A 429 with Retry-After waits that long (capped by max_retry_after)
// instead of the backoff, then succeeds.
func TestSink429HonoursRetryAfter(t *testing.T) {
	var first time.Time
	var mu sync.Mutex
	var gap time.Duration
	srv := newHookServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if n == 1 {
			first = time.Now()
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		gap = time.Since(first)
		w.WriteHeader(http.StatusOK)
	})
	// The backoff alone would retry after ~1ms; Retry-After (1s, capped at
	// 300ms) must win, so the second attempt comes at least 300ms later.
	b := mustBuilder(t, srv.URL, Config{Backoff: fastRetry, MaxRetryAfter: 300 * time.Millisecond})
	cn, err := b.Build(context.Background(), pipeline.BuildEnv{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer cn.Close(context.Background())
	if err := cn.Publish(context.Background(), "", nil, &pipeline.Envelope{Payload: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if srv.count() != 2 || gap < 300*time.Millisecond {
		t.Fatalf("requests %d, gap %v: want 2 requests at least 300ms apart", srv.count(), gap)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

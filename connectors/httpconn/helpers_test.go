package httpconn

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// hit is one request a test server received.
type hit struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   string
}

// hookServer is a real HTTP server recording every request; respond picks
// the answer for the n-th request (1-based).
type hookServer struct {
	*httptest.Server
	mu      sync.Mutex
	hits    []hit
	arrived chan hit
	respond func(n int, w http.ResponseWriter, r *http.Request)
}

func newHookServer(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *hookServer {
	t.Helper()
	s := &hookServer{arrived: make(chan hit, 1000), respond: respond}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h := hit{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: string(b)}
		s.mu.Lock()
		s.hits = append(s.hits, h)
		n := len(s.hits)
		s.mu.Unlock()
		s.arrived <- h
		if s.respond != nil {
			s.respond(n, w, r)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *hookServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.hits)
}

func (s *hookServer) next(t *testing.T) hit {
	t.Helper()
	select {
	case h := <-s.arrived:
		return h
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a request at the test server")
	}
	return hit{}
}

// running is a runner started in the background.
type running struct {
	r      *pipeline.Runner
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, g *pipeline.Graph) *running {
	t.Helper()
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{Logger: testLogger(t), DrainTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rn := &running{r: r, cancel: cancel, done: make(chan error, 1)}
	go func() { rn.done <- r.Run(ctx) }()
	t.Cleanup(func() { rn.stop(t) })
	waitFor(t, "runner ready", func() bool { return r.Ready() == nil })
	return rn
}

// stop cancels the run and checks that it ended cleanly.
func (rn *running) stop(t *testing.T) {
	t.Helper()
	if rn.cancel == nil {
		return
	}
	rn.cancel()
	rn.cancel = nil
	select {
	case err := <-rn.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func recvEnv(t *testing.T, ch <-chan pipeline.Envelope) pipeline.Envelope {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a message")
	}
	return pipeline.Envelope{}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func mustBuilder(t *testing.T, endpoint string, cfg Config) *Builder {
	t.Helper()
	b, err := New(endpoint, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fastRetry makes retries quick in tests.
var fastRetry = pipeline.Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond}

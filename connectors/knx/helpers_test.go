package knx

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/knx/internal/knxdtest"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// TestMain runs the package's tests in a private network namespace with
// only loopback, where knxd can run (see knxdtest).
func TestMain(m *testing.M) { os.Exit(knxdtest.Main(m)) }

// collector is a pipeline.Dispatcher that keeps what it is handed.
type collector struct {
	mu       sync.Mutex
	envs     []pipeline.Envelope
	rejected []rejection
	ch       chan struct{}
}

// rejection is a message the connector handed to Reject.
type rejection struct {
	env    pipeline.Envelope
	reason error
}

// Reject implements pipeline.Rejecter, as the runner's dispatcher does.
func (c *collector) Reject(_ context.Context, env *pipeline.Envelope, reason error) error {
	c.mu.Lock()
	c.rejected = append(c.rejected, rejection{env: *env, reason: reason})
	c.mu.Unlock()
	env.Ack.Done()
	select {
	case c.ch <- struct{}{}:
	default:
	}
	return nil
}

func newCollector() *collector { return &collector{ch: make(chan struct{}, 1)} }

func (c *collector) Dispatch(_ context.Context, env *pipeline.Envelope) error {
	c.mu.Lock()
	e := *env
	e.Headers = append(pipeline.Headers(nil), env.Headers...)
	c.envs = append(c.envs, e)
	c.mu.Unlock()
	env.Ack.Done()
	select {
	case c.ch <- struct{}{}:
	default:
	}
	return nil
}

// waitRejected returns once n messages were rejected, or fails t.
func (c *collector) waitRejected(t *testing.T, n int) []rejection {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		if len(c.rejected) >= n {
			out := append([]rejection(nil), c.rejected...)
			c.mu.Unlock()
			return out
		}
		c.mu.Unlock()
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("%d messages rejected, want %d", len(c.rejected), n)
		}
	}
}

// wait returns once n envelopes were dispatched, or fails t.
func (c *collector) wait(t *testing.T, n int) []pipeline.Envelope {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		if len(c.envs) >= n {
			out := append([]pipeline.Envelope(nil), c.envs...)
			c.mu.Unlock()
			return out
		}
		c.mu.Unlock()
		select {
		case <-c.ch:
		case <-deadline:
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Fatalf("dispatched %d envelopes, want %d", len(c.envs), n)
		}
	}
}

// serve builds a connector for ep with the inbound links and serves them
// until the test ends; it returns once the tunnel is ready.
func serve(t *testing.T, b *Builder, subs []pipeline.Subscription, d pipeline.Dispatcher) *Conn {
	t.Helper()
	pc, err := b.Build(context.Background(), pipeline.BuildEnv{Name: "knx", Inbound: subs})
	if err != nil {
		t.Fatal(err)
	}
	c := pc.(*Conn)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx, subs, d) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		if err := c.Close(cctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	waitReady(t, c, true)
	return c
}

// waitReady waits until c's readiness is want.
func waitReady(t *testing.T, c *Conn, want bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for (c.Ready() == nil) != want {
		if time.Now().After(deadline) {
			t.Fatalf("readiness did not become %v: %v", want, c.Ready())
		}
		time.Sleep(2 * time.Millisecond) // polling a condition, bounded
	}
}

// testConfig is a Config for a knxd of the test with short timers.
func testConfig(t *testing.T, endpoint string) Config {
	t.Helper()
	cfg, err := ParseConfig(endpoint, pipeline.Params{
		"heartbeat": "200ms", "heartbeat_timeout": "200ms", "connect_timeout": "1s",
		"ack_timeout": "200ms", "reconnect_min": "10ms", "reconnect_max": "200ms",
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func sub(t *testing.T, dir pipeline.Direction, addr string, p pipeline.Params) pipeline.Subscription {
	t.Helper()
	o, err := parseLinkOptions(dir, addr, p)
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.Subscription{Filter: addr, Options: o, Record: "r"}
}

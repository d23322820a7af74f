package grpcconn

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// recorder is a dispatcher that acks at once and counts what it got.
type recorder struct {
	mu sync.Mutex
	n  int
}

func (r *recorder) Dispatch(_ context.Context, env *pipeline.Envelope) error {
	r.mu.Lock()
	r.n++
	r.mu.Unlock()
	env.Ack.Done()
	return nil
}

func (r *recorder) count() int { r.mu.Lock(); defer r.mu.Unlock(); return r.n }

// TestRoundRobinFailover gives a client two server addresses: records
// reach one of them; when that one stops, the stream reopens on the
// other (round_robin skips the dead address) and publishing goes on.
func TestRoundRobinFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var srvs [2]*server
	var recs [2]*recorder
	var addrs []string
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := range srvs {
		cfg := Config{Mode: Server, Addrs: []string{"127.0.0.1:0"}}
		cfg.defaults()
		s, err := newServer(cfg, []pipeline.Subscription{{Filter: "t"}}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		srvs[i], recs[i] = s, &recorder{}
		addrs = append(addrs, s.Addr().String())
		sctx, scancel := context.WithCancel(ctx)
		defer scancel()
		wg.Go(func() { _ = s.Serve(sctx, nil, recs[i]) })
		defer s.Close(context.Background())
	}
	for _, s := range srvs {
		for s.Ready() != nil {
			time.Sleep(time.Millisecond) // readiness has no notification
		}
	}
	cfg := Config{Addrs: addrs, Backoff: pipeline.Backoff{Min: time.Millisecond, Max: 20 * time.Millisecond}}
	cfg.defaults()
	c, err := newClient(cfg, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	publish := func(i int) {
		t.Helper()
		for {
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			err := c.Publish(pctx, "t", nil, &pipeline.Envelope{Payload: fmt.Appendf(nil, "%d", i)})
			pcancel()
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("record %d: %v", i, err)
			}
		}
	}
	for i := range 10 {
		publish(i)
	}
	first := 0
	if recs[1].count() > recs[0].count() {
		first = 1
	}
	if recs[first].count() < 10 {
		t.Fatalf("counts %d/%d, want 10 on one stream", recs[0].count(), recs[1].count())
	}
	srvs[first].srv.Stop()
	for i := 10; i < 20; i++ {
		publish(i)
	}
	if got := recs[1-first].count(); got < 10 {
		t.Fatalf("the other server got %d records after the first stopped, want 10", got)
	}
}

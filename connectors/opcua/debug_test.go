package opcua

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

type recDisp struct {
	mu  sync.Mutex
	got []string
	rej []string
}

func (r *recDisp) Dispatch(_ context.Context, env *pipeline.Envelope) error {
	r.mu.Lock()
	r.got = append(r.got, string(env.Payload))
	r.mu.Unlock()
	return nil
}

func (r *recDisp) Reject(_ context.Context, env *pipeline.Envelope, reason error) error {
	r.mu.Lock()
	r.rej = append(r.rej, reason.Error())
	r.mu.Unlock()
	return nil
}

func TestDebug(t *testing.T) {
	srv := startServer(t)
	b := New(Config{Endpoint: srv.url()})
	c, err := b.Build(context.Background(), pipeline.BuildEnv{Name: "opcua", Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	conn := c.(*Conn)
	ctx, cancel := context.WithCancel(context.Background())
	d := &recDisp{}
	done := make(chan error)
	go func() {
		done <- conn.Serve(ctx, []pipeline.Subscription{{Filter: "ns=2;s=Topic/t1", Options: In{ValueOnly: true, QueueSize: 1000}}}, d)
	}()
	for conn.Ready() != nil {
		time.Sleep(10 * time.Millisecond)
	}
	for i := 0; i < 10; i++ {
		err := conn.Publish(ctx, "ns=2;s=Topic/t1", nil, &pipeline.Envelope{Payload: []byte(fmt.Sprint(`"m`, i, `"`))})
		t.Log(i, err)
	}
	time.Sleep(2 * time.Second)
	d.mu.Lock()
	t.Log(d.got, d.rej)
	d.mu.Unlock()
	cancel()
	<-done
	t.Log(conn.Close(context.Background()))
}

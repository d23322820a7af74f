package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// runMem runs r until the returned stop, which cancels the run and returns
// Run's error; it waits until r is ready first.
func runMem(t *testing.T, r *pipeline.Runner) (ctx context.Context, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitReady(t, r)
	return ctx, func() error { cancel(); return <-done }
}

// publishMem publishes each payload to topic on bus.
func publishMem(t *testing.T, ctx context.Context, bus *mem.Bus, topic string, payloads ...string) {
	t.Helper()
	for _, p := range payloads {
		e := pipeline.Envelope{Payload: []byte(p)}
		if err := bus.Publish(ctx, topic, &e); err != nil {
			t.Fatal(err)
		}
	}
}

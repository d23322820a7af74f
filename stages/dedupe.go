package stages

import (
	"context"
	"sync"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

type dedupe struct {
	key  pipeline.KeyFunc
	mu   sync.Mutex
	seen map[string]struct{}
	ring []string
	next int
}

// Dedupe drops an envelope whose key was seen among the last n distinct
// keys. It is safe for parallel pipelines. A key error is a stage error.
func Dedupe(key pipeline.KeyFunc, n int) pipeline.Processor {
	if n <= 0 {
		n = 1024
	}
	return &dedupe{key: key, seen: make(map[string]struct{}, n), ring: make([]string, n)}
}

func (*dedupe) Kind() string { return "dedupe" }

// PreservesValue implements pipeline.ValuePreserver.
func (*dedupe) PreservesValue() bool { return true }

func (d *dedupe) Process(ctx context.Context, env *pipeline.Envelope, next pipeline.Emit) error {
	k, err := d.key(env)
	if err != nil {
		return err
	}
	d.mu.Lock()
	if _, dup := d.seen[string(k)]; dup {
		d.mu.Unlock()
		return nil
	}
	ks := string(k)
	if old := d.ring[d.next]; old != "" {
		delete(d.seen, old)
	}
	d.ring[d.next] = ks
	d.next = (d.next + 1) % len(d.ring)
	d.seen[ks] = struct{}{}
	d.mu.Unlock()
	return next(ctx, env)
}

// Package mem is an in-process publish/subscribe connector: links are
// topics on a Bus (MQTT wildcards honoured), delivery is synchronous, so a
// slow subscriber slows the publisher (backpressure, nothing dropped).
// Several graphs can share one Bus to chain pipelines in one process, and
// tests observe a Bus with Subscribe.
package mem

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/topic"
)

// Bus is an in-process topic bus.
type Bus struct {
	mu   sync.RWMutex
	subs []*sub
}

type sub struct {
	match   func(topic string) bool
	deliver func(ctx context.Context, env *pipeline.Envelope) error
}

// NewBus returns an empty bus.
func NewBus() *Bus { return &Bus{} }

// Publish delivers a copy of env to every subscriber whose filter matches
// topicName, one after another, and returns the first error.
func (b *Bus) Publish(ctx context.Context, topicName string, env *pipeline.Envelope) error {
	b.mu.RLock()
	subs := b.subs
	b.mu.RUnlock()
	var errs []error
	for _, s := range subs {
		if !s.match(topicName) {
			continue
		}
		e := pipeline.Envelope{Payload: env.Payload, Topic: topicName, Key: env.Key, Headers: env.Headers, Time: env.Time}
		if err := s.deliver(ctx, &e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (b *Bus) add(s *sub) func() {
	b.mu.Lock()
	// Copy on write so Publish can iterate without the lock.
	b.subs = append(append([]*sub(nil), b.subs...), s)
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		out := make([]*sub, 0, len(b.subs))
		for _, x := range b.subs {
			if x != s {
				out = append(out, x)
			}
		}
		b.subs = out
	}
}

// Subscribe returns a channel receiving a copy of every message published
// to a topic matching filter, and a function that unsubscribes. Delivery
// blocks when the channel (of capacity size) is full.
func (b *Bus) Subscribe(filter string, size int) (<-chan pipeline.Envelope, func()) {
	ch := make(chan pipeline.Envelope, size)
	cancel := b.add(&sub{match: func(t string) bool { return topic.Match(filter, t) }, deliver: func(ctx context.Context, env *pipeline.Envelope) error {
		select {
		case ch <- *env:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}})
	return ch, cancel
}

// Connector builds mem connectors on a bus.
type Connector struct{ bus *Bus }

// New returns a builder for a mem connector on bus (a new private bus when
// bus is nil).
func New(bus *Bus) *Connector {
	if bus == nil {
		bus = NewBus()
	}
	return &Connector{bus: bus}
}

// Factory is the pipeline.Factory of the "mem" scheme: each declaration
// gets a private bus. A mem connector takes no settings.
func Factory(_ string, p pipeline.Params) (pipeline.Builder, error) {
	if err := kit.Read(p).Err(); err != nil {
		return nil, err
	}
	return New(nil), nil
}

// Bus returns the connector's bus.
func (c *Connector) Bus() *Bus { return c.bus }

// Scheme implements pipeline.Builder.
func (*Connector) Scheme() string { return "mem" }

// Caps implements pipeline.CapsDeclarer: topics with wildcards; envelopes
// pass in process, so keys and headers travel.
func (*Connector) Caps() pipeline.Caps {
	return pipeline.Caps{Inbound: true, Outbound: true, Topics: true, Key: true, Headers: true}
}

// Build implements pipeline.Builder.
func (c *Connector) Build(_ context.Context, env pipeline.BuildEnv) (pipeline.Connector, error) {
	cn := &conn{bus: c.bus}
	cn.waiting.Store(len(env.Inbound) > 0)
	return cn, nil
}

type conn struct {
	bus     *Bus
	serving atomic.Bool
	waiting atomic.Bool
}

// Ready implements pipeline.Readiness: a connector with inbound links is
// ready once it is subscribed on the bus.
func (c *conn) Ready() error {
	if c.waiting.Load() && !c.serving.Load() {
		return errors.New("not subscribed yet")
	}
	return nil
}

func (c *conn) Publish(ctx context.Context, dest string, _ any, env *pipeline.Envelope) error {
	return c.bus.Publish(ctx, dest, env)
}

func (c *conn) Close(context.Context) error { return nil }

// Serve implements pipeline.Source.
func (c *conn) Serve(ctx context.Context, subs []pipeline.Subscription, d pipeline.Dispatcher) error {
	// One bus subscription for all filters: a message matching several
	// filters is dispatched once, and the dispatcher routes it to every
	// matching record.
	filters := make([]string, 0, len(subs))
	for _, s := range subs {
		f, _ := topic.Filter(s.Filter)
		filters = append(filters, f)
	}
	cancel := c.bus.add(&sub{
		match: func(t string) bool {
			for _, f := range filters {
				if topic.Match(f, t) {
					return true
				}
			}
			return false
		},
		deliver: func(dctx context.Context, env *pipeline.Envelope) error {
			if ctx.Err() != nil { // the source is stopping
				return ctx.Err()
			}
			return d.Dispatch(dctx, env)
		},
	})
	defer cancel()
	c.serving.Store(true)
	defer c.serving.Store(false)
	<-ctx.Done()
	return nil
}

package conntest_test

// --- example connector ---

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/connectors/conntest"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Loopback is a minimal connector: a message published to a topic is
// dispatched, synchronously, by every connector of the same Loopback that
// serves the topic. Publish therefore returns once every serving
// dispatcher took the message, and a full buffer downstream slows the
// publisher (backpressure). There are no acks: the message is in memory.
type Loopback struct {
	mu   sync.Mutex
	subs map[string][]pipeline.Dispatcher // copy on write
}

// NewLoopback returns a Loopback builder.
func NewLoopback() *Loopback { return &Loopback{subs: map[string][]pipeline.Dispatcher{}} }

// Scheme implements pipeline.Builder.
func (*Loopback) Scheme() string { return "loopback" }

// ParseLinkOptions implements pipeline.LinkOptionParser: a link is a
// topic, and takes no settings.
func (*Loopback) ParseLinkOptions(_ pipeline.Direction, addr string, p pipeline.Params) (any, error) {
	if addr == "" {
		return nil, errors.New("loopback link needs a topic: loopback://TOPIC")
	}
	if len(p) > 0 {
		return nil, fmt.Errorf("loopback links take no settings (got %s)", strings.Join(slices.Sorted(maps.Keys(p)), ", "))
	}
	return nil, nil
}

// Build implements pipeline.Builder. It does no I/O.
func (l *Loopback) Build(_ context.Context, env pipeline.BuildEnv) (pipeline.Connector, error) {
	return &loopConn{l: l, inbound: len(env.Inbound) > 0}, nil
}

func (l *Loopback) set(topic string, f func([]pipeline.Dispatcher) []pipeline.Dispatcher) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.subs[topic] = f(slices.Clone(l.subs[topic]))
}

type loopConn struct {
	l       *Loopback
	inbound bool
	serving atomic.Bool
}

// Ready implements pipeline.Readiness: with inbound links the connector
// is ready once Serve has subscribed.
func (c *loopConn) Ready() error {
	if c.inbound && !c.serving.Load() {
		return errors.New("loopback: not serving yet")
	}
	return nil
}

// Publish implements pipeline.Connector. It honours ctx through Dispatch,
// which returns ctx.Err() when a full buffer outlasts it.
func (c *loopConn) Publish(ctx context.Context, dest string, _ any, env *pipeline.Envelope) error {
	c.l.mu.Lock()
	subs := c.l.subs[dest]
	c.l.mu.Unlock()
	for _, d := range subs {
		e := pipeline.Envelope{Payload: env.Payload, Key: env.Key, Headers: env.Headers, Topic: dest, Time: env.Time}
		if err := d.Dispatch(ctx, &e); err != nil {
			return fmt.Errorf("loopback: publish to %s: %w", dest, err)
		}
	}
	return nil
}

// Close implements pipeline.Connector: nothing is buffered.
func (c *loopConn) Close(context.Context) error { return nil }

// Serve implements pipeline.Source: it subscribes every link, reports
// ready, and unsubscribes when ctx ends.
func (c *loopConn) Serve(ctx context.Context, subs []pipeline.Subscription, d pipeline.Dispatcher) error {
	for _, s := range subs {
		c.l.set(s.Filter, func(ds []pipeline.Dispatcher) []pipeline.Dispatcher { return append(ds, d) })
	}
	c.serving.Store(true)
	<-ctx.Done()
	c.serving.Store(false)
	for _, s := range subs {
		c.l.set(s.Filter, func(ds []pipeline.Dispatcher) []pipeline.Dispatcher {
			return slices.DeleteFunc(ds, func(x pipeline.Dispatcher) bool { return x == d })
		})
	}
	return nil
}

// loopbackFeatures is what the Loopback does, and why not the rest.
var loopbackFeatures = conntest.Features{
	NoAck:        "delivery is synchronous and in memory: no ack handle",
	NoRedelivery: "no ack handle, nothing to redeliver",
	NoOutage:     "an in-process connector has no peer to take down",
	NotFinite:    "topics are live: Serve runs until cancelled",
	BadLinks: []conntest.BadLink{
		{Name: "setting", Dir: pipeline.Inbound, Address: "t", Params: pipeline.Params{"qos": "1"}, Want: "take no settings"},
		{Name: "no topic", Dir: pipeline.Outbound, Address: "", Want: "needs a topic"},
	},
}

// newLoopbackPeer gives each subtest a fresh Loopback.
func newLoopbackPeer(t *testing.T) conntest.Peer {
	return conntest.Peer{Builder: NewLoopback(), Topic: "readings"}
}

// --- end of example connector ---

// A connector's test runs the suite with the connector's Features and a
// function returning a fresh Peer per subtest:
//
//	func TestConformance(t *testing.T) {
//		conntest.Run(t, loopbackFeatures, newLoopbackPeer)
//	}
//
// Plan shows what such a run checks and what the Features excuse.
func Example() {
	for _, c := range conntest.Plan(loopbackFeatures) {
		if c.Skip == "" {
			fmt.Printf("%s: checked\n", c.Name)
		} else {
			fmt.Printf("%s: skipped (%s)\n", c.Name, c.Skip)
		}
	}
	// Output:
	// RoundTrip: checked
	// AckAfterAllShares: skipped (Features.NoAck: delivery is synchronous and in memory: no ack handle)
	// NackRedelivers: skipped (Features.NoAck: delivery is synchronous and in memory: no ack handle)
	// PublishHonoursContext: checked
	// ConcurrentPublish: checked
	// AsyncPublishAcksOnce: checked
	// CloseFlushes: checked
	// CloseLeaksNoGoroutine: checked
	// ReadinessDuringOutage: skipped (Features.NoOutage: an in-process connector has no peer to take down)
	// FiniteSourceEnds: skipped (Features.NotFinite: topics are live: Serve runs until cancelled)
	// BadLinkSettings: checked
}

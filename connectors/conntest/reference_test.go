package conntest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/conntest"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// The reference connector is a small in-process broker that implements
// every optional part of the contract (acks and redelivery, async publish,
// readiness across outages, a finite mode). TestReference runs the suite
// on it; TestReferenceMutations breaks it one way at a time
// (CONNTEST_BREAK) and checks that the subtest guarding that behaviour
// fails, so every subtest is known to be able to fail.

// breakEnv selects a mutation of the reference connector.
const breakEnv = "CONNTEST_BREAK"

// mutation is read once: the value of CONNTEST_BREAK in this process.
var mutation = os.Getenv(breakEnv)

type refMsg struct {
	payload, key []byte
	headers      pipeline.Headers
}

// refBroker is the peer: topic logs, live subscriptions, an ack count per
// topic, and two fault switches (paused: publishes wait; down: publishes
// wait, subscriptions are dropped and readiness fails).
type refBroker struct {
	mu        sync.Mutex
	paused    bool
	down      bool
	moved     chan struct{} // closed and replaced whenever paused or down change
	logs      map[string][]refMsg
	subs      map[string][]*refInbox
	acked     map[string]int
	published int
}

func newRefBroker() *refBroker {
	return &refBroker{moved: make(chan struct{}), logs: map[string][]refMsg{}, subs: map[string][]*refInbox{}, acked: map[string]int{}}
}

func (b *refBroker) set(paused, down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.paused, b.down = paused, down
	if down {
		for _, ins := range b.subs {
			for _, in := range ins {
				in.drop()
			}
		}
		b.subs = map[string][]*refInbox{}
	}
	close(b.moved)
	b.moved = make(chan struct{})
}

func (b *refBroker) isDown() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.down
}

// waitUp waits until the broker takes publishes.
func (b *refBroker) waitUp(ctx context.Context) error {
	for {
		b.mu.Lock()
		up, moved := !b.paused && !b.down, b.moved
		b.mu.Unlock()
		if up {
			return nil
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *refBroker) publish(ctx context.Context, topic string, m refMsg) error {
	wctx := ctx
	if mutation == "ignorectx" {
		wctx = context.Background()
	}
	if err := b.waitUp(wctx); err != nil {
		return fmt.Errorf("ref: publish to %s: %w", topic, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.published++
	if mutation == "drop10" && b.published%10 == 0 {
		return nil
	}
	b.logs[topic] = append(b.logs[topic], m)
	for _, in := range b.subs[topic] {
		in.push(m)
	}
	return nil
}

func (b *refBroker) subscribe(topic string) *refInbox {
	b.mu.Lock()
	defer b.mu.Unlock()
	in := &refInbox{signal: make(chan struct{}, 1)}
	b.subs[topic] = append(b.subs[topic], in)
	return in
}

func (b *refBroker) unsubscribe(topic string, in *refInbox) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs[topic] = slices.DeleteFunc(b.subs[topic], func(x *refInbox) bool { return x == in })
}

func (b *refBroker) ack(topic string) {
	b.mu.Lock()
	b.acked[topic]++
	b.mu.Unlock()
}

func (b *refBroker) ackedCount(topic string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.acked[topic]
}

func (b *refBroker) log(topic string) []refMsg {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.logs[topic])
}

// refInbox is one subscription's queue.
type refInbox struct {
	mu      sync.Mutex
	q       []refMsg
	dropped bool
	signal  chan struct{}
}

func (in *refInbox) push(m refMsg) {
	in.mu.Lock()
	if !in.dropped {
		in.q = append(in.q, m)
	}
	in.mu.Unlock()
	select {
	case in.signal <- struct{}{}:
	default:
	}
}

func (in *refInbox) isDropped() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.dropped
}

func (in *refInbox) drop() {
	in.mu.Lock()
	in.dropped = true
	in.mu.Unlock()
	select {
	case in.signal <- struct{}{}:
	default:
	}
}

// pop returns the next message; ok is false when ctx ended or the
// subscription was dropped (dropped tells which).
func (in *refInbox) pop(ctx context.Context) (m refMsg, ok, dropped bool) {
	for {
		in.mu.Lock()
		switch {
		case in.dropped:
			in.mu.Unlock()
			return m, false, true
		case len(in.q) > 0:
			m, in.q = in.q[0], in.q[1:]
			in.mu.Unlock()
			return m, true, false
		}
		in.mu.Unlock()
		select {
		case <-in.signal:
		case <-ctx.Done():
			return m, false, false
		}
	}
}

// refOptions are the typed link options.
type refOptions struct{ finite bool }

type refBuilder struct{ b *refBroker }

func (*refBuilder) Scheme() string { return "ref" }

func (*refBuilder) ParseLinkOptions(dir pipeline.Direction, addr string, p pipeline.Params) (any, error) {
	var o refOptions
	var errs []error
	if addr == "" {
		errs = append(errs, errors.New("ref link needs a topic"))
	}
	for k, v := range p {
		switch {
		case k == "finite" && dir == pipeline.Inbound:
			f, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("finite: %w", err))
			}
			o.finite = f
		case mutation == "acceptbad":
		default:
			errs = append(errs, fmt.Errorf("unknown %s setting %q", dir, k))
		}
	}
	return o, errors.Join(errs...)
}

func (rb *refBuilder) Build(_ context.Context, env pipeline.BuildEnv) (pipeline.Connector, error) {
	c := &refConn{b: rb.b, wantIn: len(env.Inbound) > 0, async: make(chan asyncItem, 1024),
		closing: make(chan struct{}), workerDone: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	go c.worker()
	if mutation == "leak" {
		go func() { <-make(chan struct{}) }()
	}
	return c, nil
}

type asyncItem struct {
	dest string
	m    refMsg
	ack  *pipeline.Ack
}

type refConn struct {
	b              *refBroker
	wantIn         bool
	inbox          atomic.Pointer[refInbox] // the live subscription (one link per Serve in the suite)
	everSubscribed atomic.Bool
	ctx            context.Context // until Close
	cancel         context.CancelFunc
	async          chan asyncItem
	closing        chan struct{}
	closeOnce      sync.Once
	workerDone     chan struct{}
	scratch        refMsg // used by the "shared" mutation only
}

var (
	_ pipeline.Connector      = (*refConn)(nil)
	_ pipeline.AsyncPublisher = (*refConn)(nil)
	_ pipeline.Source         = (*refConn)(nil)
	_ pipeline.FiniteSource   = (*refConn)(nil)
	_ pipeline.Readiness      = (*refConn)(nil)
)

func copyMsg(env *pipeline.Envelope) refMsg {
	return refMsg{payload: bytes.Clone(env.Payload), key: bytes.Clone(env.Key), headers: slices.Clone(env.Headers)}
}

func (c *refConn) Ready() error {
	if mutation == "alwaysready" && c.everSubscribed.Load() {
		return nil // ready once, ready for ever (the bug)
	}
	if c.b.isDown() {
		return errors.New("ref broker down")
	}
	if in := c.inbox.Load(); c.wantIn && (in == nil || in.isDropped()) {
		return errors.New("not subscribed")
	}
	return nil
}

func (c *refConn) Publish(ctx context.Context, dest string, _ any, env *pipeline.Envelope) error {
	m := copyMsg(env)
	if mutation == "shared" {
		// A scratch buffer shared by concurrent publishes (the bug).
		c.scratch = m
		runtime.Gosched()
		m = c.scratch
	}
	return c.b.publish(ctx, dest, m)
}

func (c *refConn) PublishAsync(ctx context.Context, dest string, _ any, env *pipeline.Envelope) error {
	m := copyMsg(env)
	if mutation == "nocopy" {
		m.payload = env.Payload
	}
	select {
	case c.async <- asyncItem{dest: dest, m: m, ack: env.Ack}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closing:
		return errors.New("ref: closed")
	}
}

// worker publishes async hand-offs in batches after a short linger (or at
// Close), finishing each ack with the outcome.
func (c *refConn) worker() {
	defer close(c.workerDone)
	var batch []asyncItem
	var linger <-chan time.Time
	flush := func() {
		for _, it := range batch {
			err := c.b.publish(c.ctx, it.dest, it.m)
			it.ack.Finish(err)
			if mutation == "asynctwice" {
				it.ack.Finish(err)
			}
		}
		batch, linger = nil, nil
	}
	for {
		select {
		case it := <-c.async:
			batch = append(batch, it)
			if linger == nil {
				linger = time.After(250 * time.Millisecond) // long enough that Close always finds a batch waiting
			}
		case <-linger:
			flush()
		case <-c.closing:
			if mutation == "closenoflush" {
				return
			}
			for {
				select {
				case it := <-c.async:
					batch = append(batch, it)
					continue
				default:
				}
				break
			}
			flush()
			return
		}
	}
}

func (c *refConn) Close(ctx context.Context) error {
	c.closeOnce.Do(func() { close(c.closing) })
	defer c.cancel()
	select {
	case <-c.workerDone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ref: close: %w", ctx.Err())
	}
}

func (c *refConn) Finite(subs []pipeline.Subscription) bool {
	for _, s := range subs {
		if o, _ := s.Options.(refOptions); !o.finite {
			return false
		}
	}
	return true
}

func (c *refConn) Serve(ctx context.Context, subs []pipeline.Subscription, d pipeline.Dispatcher) error {
	var wg sync.WaitGroup
	for _, s := range subs {
		wg.Go(func() {
			if o, _ := s.Options.(refOptions); o.finite {
				c.serveLog(ctx, s.Filter, d)
				return
			}
			c.serveLive(ctx, s.Filter, d)
		})
	}
	wg.Wait()
	return nil
}

// dispatch hands one message to d with an ack that counts at the broker
// and, when nacked, redelivers through redeliver.
func (c *refConn) dispatch(ctx context.Context, topic string, m refMsg, d pipeline.Dispatcher, redeliver func(refMsg)) error {
	env := pipeline.Envelope{Payload: m.payload, Key: m.key, Headers: m.headers, Topic: topic, Time: time.Now(), Partition: -1}
	env.Ack = pipeline.NewAck(func(err error) {
		switch {
		case err == nil && mutation != "ackearly":
			c.b.ack(topic)
		case err != nil && mutation != "noredeliver" && redeliver != nil:
			redeliver(m)
		}
	})
	err := d.Dispatch(ctx, &env)
	if mutation == "ackearly" {
		c.b.ack(topic)
	}
	return err
}

func (c *refConn) serveLog(ctx context.Context, topic string, d pipeline.Dispatcher) {
	for _, m := range c.b.log(topic) {
		if c.dispatch(ctx, topic, m, d, nil) != nil {
			return
		}
	}
	if mutation == "notfinite" {
		<-ctx.Done()
	}
}

func (c *refConn) serveLive(ctx context.Context, topic string, d pipeline.Dispatcher) {
	for {
		if c.b.waitUp(ctx) != nil {
			return
		}
		in := c.b.subscribe(topic)
		c.inbox.Store(in)
		c.everSubscribed.Store(true)
		for {
			m, ok, dropped := in.pop(ctx)
			if dropped {
				if mutation == "noresubscribe" {
					<-ctx.Done()
					return
				}
				break
			}
			if !ok {
				c.b.unsubscribe(topic, in)
				return
			}
			if c.dispatch(ctx, topic, m, d, in.push) != nil && ctx.Err() != nil {
				c.b.unsubscribe(topic, in)
				return
			}
		}
	}
}

// referenceBadLinks are link settings the reference connector rejects.
var referenceBadLinks = []conntest.BadLink{
	{Name: "unknown inbound", Dir: pipeline.Inbound, Address: "t", Params: pipeline.Params{"qos": "1"}, Want: `unknown inbound setting "qos"`},
	{Name: "finite outbound", Dir: pipeline.Outbound, Address: "t", Params: pipeline.Params{"finite": "true"}, Want: `unknown outbound setting "finite"`},
	{Name: "finite not a bool", Dir: pipeline.Inbound, Address: "t", Params: pipeline.Params{"finite": "often"}, Want: "finite: "},
	{Name: "no topic", Dir: pipeline.Inbound, Address: "", Want: "needs a topic"},
}

// referenceVariants are the two ways the suite runs on the reference
// connector: live (acks, redelivery, async, outages) and stored (a finite
// source reading the topic's log).
var referenceVariants = []struct {
	name     string
	features conntest.Features
	params   pipeline.Params
}{
	{"live", conntest.Features{
		NotFinite: "the live variant serves until cancelled",
		Timeout:   3 * time.Second,
		BadLinks:  referenceBadLinks,
	}, nil},
	{"stored", conntest.Features{
		Stored:       true,
		NoRedelivery: "the finite variant reads the log once",
		NoOutage:     "covered by the live variant",
		Timeout:      3 * time.Second,
		BadLinks:     referenceBadLinks,
	}, pipeline.Params{"finite": "true"}},
}

func TestReference(t *testing.T) {
	for _, v := range referenceVariants {
		t.Run(v.name, func(t *testing.T) {
			conntest.Run(t, v.features, func(t *testing.T) conntest.Peer {
				b := newRefBroker()
				const topic = "ref/topic"
				return conntest.Peer{
					Builder:  &refBuilder{b: b},
					Topic:    topic,
					InParams: v.params,
					Acked:    func(context.Context) (int, error) { return b.ackedCount(topic), nil },
					Block: func(*testing.T) func() {
						b.set(true, false)
						return func() { b.set(false, false) }
					},
					Outage: func(*testing.T) func() {
						b.set(false, true)
						return func() { b.set(false, false) }
					},
				}
			})
		})
	}
}

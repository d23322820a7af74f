// Package conntest is the conformance suite every connector's tests run
// against the connector's real peer (a broker, the file system, an HTTP
// server), in the spirit of watermill's pub/sub tests.
//
// A connector's test calls Run with the connector's Features and a function
// that returns a fresh Peer for each subtest: a Builder for the connector
// under test, a link address nobody else uses, and optional hooks into the
// peer (stop and restart it, stall it, read its view of acknowledgements).
// The suite builds the connector as the runner would, publishes through
// Connector.Publish (and PublishAsync), serves through Source.Serve with a
// dispatcher of its own that records every message and holds or releases
// the ack shares, and checks the contract of pipeline.Connector:
//
//   - RoundTrip: what Publish sends is what Serve dispatches (payload, key,
//     headers, topic), each message once, in publish order per topic or per
//     key as Features.Order promises.
//   - AckAfterAllShares: the source acknowledges a message to its peer only
//     after the dispatcher released every share of its ack.
//   - NackRedelivers: a nacked message is delivered again.
//   - PublishHonoursContext: a cancelled or expiring context makes a
//     blocked Publish return promptly with an error wrapping ctx.Err(), and
//     the connector still publishes afterwards.
//   - ConcurrentPublish: publishers on several goroutines at once; every
//     record arrives exactly once (run the tests with -race).
//   - AsyncPublishAcksOnce: pipeline.AsyncPublisher finishes every record's
//     ack share exactly once, with success, and copies the envelope before
//     returning (and the bytes it points to, unless Features.KeepsBytes).
//   - CloseFlushes: records handed to Publish or PublishAsync before Close
//     reach the peer, and every async ack is finished when Close returns.
//   - CloseLeaksNoGoroutine: after Serve returned and Close, no goroutine
//     the connector started is left; nor, after its Close, any goroutine a
//     publishing instance started while its peer still serves.
//   - ReadinessDuringOutage: pipeline.Readiness reports not-ready while the
//     peer is down and ready after it came back, and messages flow again.
//   - FiniteSourceEnds: a pipeline.FiniteSource's Serve returns by itself
//     after dispatching the last message.
//   - BadLinkSettings: the graph rejects every bad link setting listed in
//     Features.BadLinks at load, with an error naming the problem.
//
// The zero Features asks for the whole contract. A connector that cannot
// meet part of it says so with a reason (Features.NoAck = "QoS 0 has no
// acknowledgement"), and the subtest is skipped with that reason, so every
// exemption is written down next to the connector's test.
//
// The suite is itself tested: a reference connector broken one way at a
// time (dropping a record, acking early, ignoring ctx, finishing an async
// ack twice, not flushing on Close, leaking a goroutine, staying ready in
// an outage, ...) must fail the subtest that guards the behaviour.
//
// The suite waits with bounded polls and channel signals, never with
// sleeps; the only fixed delay is Features.Quiet, the window in which it
// checks that something does not happen (an early acknowledgement).
package conntest

import (
	"context"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Order is the delivery order a connector promises.
type Order uint8

// Orders, strictest first.
const (
	// OrderPerTopic: messages published one after another to a topic are
	// dispatched in that order (the default).
	OrderPerTopic Order = iota
	// OrderPerKey: messages with the same key keep their order (Kafka
	// partitions); messages with different keys may interleave.
	OrderPerKey
	// Unordered: no order is promised; the suite checks only that every
	// message arrives.
	Unordered
)

func (o Order) String() string {
	switch o {
	case OrderPerTopic:
		return "per topic"
	case OrderPerKey:
		return "per key"
	default:
		return "unordered"
	}
}

// Features tells the suite what the connector does. The zero value asks for
// the whole contract; each No* (or Not*) field, when non-empty, switches a
// check off and is the reason shown by t.Skip.
type Features struct {
	// NoPublish: the connector has no outbound side (a generator).
	NoPublish string
	// NoServe: the connector has no inbound side (a sink only).
	NoServe string
	// NoKey: env.Key does not survive a round trip.
	NoKey string
	// NoHeaders: env.Headers do not survive a round trip.
	NoHeaders string
	// NoAck: the source sets no ack handle (fire-and-forget delivery).
	NoAck string
	// NoRedelivery: a nacked message is not delivered again.
	NoRedelivery string
	// NoBlocking: Publish never waits for anything the suite can stall
	// (it appends to a local buffer), so the context checks do not apply.
	NoBlocking string
	// NoOutage: the peer cannot be taken down (an in-process bus).
	NoOutage string
	// NotFinite: Serve runs until its context ends.
	NotFinite string
	// NoLinkSettings: the connector has no link setting that can be wrong.
	NoLinkSettings string

	// Order is the order promised for messages of one topic.
	Order Order
	// KeepsBytes: PublishAsync keeps references to env.Payload and env.Key
	// until the record is confirmed instead of copying them, as
	// pipeline.AsyncPublisher allows (the bytes in an envelope are never
	// written). AsyncPublishAcksOnce and CloseFlushes then give each
	// message bytes of its own and overwrite only the reused envelope and
	// its headers; otherwise they overwrite the payload and key buffers
	// too, to prove the connector copied them.
	KeepsBytes bool
	// Stored: the inbound side reads what was published before Serve
	// started (a file). The suite then publishes through one connector
	// instance, closes it, and serves the link from a second instance.
	// Otherwise the link is live: the suite serves first, waits until the
	// connector is ready (it must implement pipeline.Readiness), and
	// publishes through the same instance, as the runner does.
	Stored bool
	// BadLinks are link settings the graph must reject at load.
	BadLinks []BadLink

	// Records is the number of messages per subtest (default 40).
	Records int
	// Publishers is the number of goroutines of ConcurrentPublish (default
	// 4, each publishing Records messages).
	Publishers int
	// Timeout bounds every wait for something that must happen (default
	// 10s).
	Timeout time.Duration
	// Quiet is how long the suite watches for something that must not
	// happen, such as an acknowledgement before the last share was
	// released (default 100ms). Raise it above any flush interval of the
	// acknowledgement (a commit interval).
	Quiet time.Duration
	// Grace is how late after its context ended Publish may return
	// (default 1s).
	Grace time.Duration
	// IgnoreGoroutines are substrings of goroutine stacks that
	// CloseLeaksNoGoroutine does not count: goroutines of the peer itself
	// (an in-process broker) that start during a subtest.
	IgnoreGoroutines []string
}

// BadLink is a link setting the graph must reject when it is loaded.
type BadLink struct {
	// Name labels the case in failure messages.
	Name string
	// Dir says whether the link is inbound (from) or outbound (to).
	Dir pipeline.Direction
	// Address is the link address (after "scheme://").
	Address string
	// Params are the link's settings.
	Params pipeline.Params
	// Want is a substring the load error must contain, so that the error
	// names what is wrong.
	Want string
}

// Peer is one subtest's view of the connector and its peer. The function
// passed to Run returns a fresh Peer for every subtest.
type Peer struct {
	// Builder builds the connector under test. The suite builds it once,
	// or twice (a publishing and a serving instance) in Stored mode and in
	// CloseFlushes, so Build must work more than once.
	Builder pipeline.Builder
	// Topic is the inbound link address (the subscription filter), and the
	// topic every dispatched envelope must carry. Use a fresh one per Peer
	// when the peer outlives it (a shared broker).
	Topic string
	// Dest is the outbound destination Publish is called with; empty
	// means Topic.
	Dest string
	// InParams and OutParams are the settings of the inbound and outbound
	// link, parsed through the Builder's pipeline.LinkOptionParser.
	InParams, OutParams pipeline.Params
	// Expect lists, for a source that makes its own data (Features.NoPublish),
	// the messages Serve dispatches, in order.
	Expect []Message
	// Acked, when set, reports how many messages of Topic the peer has seen
	// acknowledged by the connector's source (Kafka: the group's committed
	// offset). Without it the suite observes the acknowledgement through
	// Publish, which must then wait for it (an HTTP webhook into an ingest
	// server that answers after the ack).
	Acked func(ctx context.Context) (int, error)
	// Block, when set, makes the peer stop confirming publishes until the
	// returned function is called (stop the broker). Without it the suite
	// stalls its own dispatcher, which blocks Publish only when Publish
	// waits for the inbound side.
	Block func(t *testing.T) (unblock func())
	// Outage, when set, takes the peer down (stop the broker) until the
	// returned function brings it back. Needed unless Features.NoOutage.
	Outage func(t *testing.T) (restore func())
}

// Message is a message as the suite publishes or expects it.
type Message struct {
	Payload []byte
	Key     []byte
	Headers pipeline.Headers
}

func (f Features) withDefaults() Features {
	if f.Records <= 0 {
		f.Records = 40
	}
	if f.Publishers <= 0 {
		f.Publishers = 4
	}
	if f.Timeout <= 0 {
		f.Timeout = 10 * time.Second
	}
	if f.Quiet <= 0 {
		f.Quiet = 100 * time.Millisecond
	}
	if f.Grace <= 0 {
		f.Grace = time.Second
	}
	return f
}

// Check is one subtest of the suite as Plan reports it.
type Check struct {
	// Name is the subtest's name (RoundTrip, AckAfterAllShares, ...).
	Name string
	// Skip is the reason the Features give for skipping it, or empty.
	Skip string
}

// Plan lists the suite's subtests in the order Run runs them, with the
// reason the Features give for skipping each. Run may skip more: a
// subtest for an optional interface (pipeline.AsyncPublisher,
// pipeline.Readiness) the built connector does not implement.
func Plan(f Features) []Check {
	out := make([]Check, len(subtests))
	for i, st := range subtests {
		out[i] = Check{Name: st.name, Skip: st.skip(f)}
	}
	return out
}

// Run runs the conformance suite: one subtest per property, each with a
// fresh Peer from newPeer. Subtests run one after another (the goroutine
// check needs a quiet process); a subtest the Features switch off is
// skipped with its reason.
func Run(t *testing.T, f Features, newPeer func(t *testing.T) Peer) {
	t.Helper()
	f = f.withDefaults()
	for _, st := range subtests {
		t.Run(st.name, func(t *testing.T) {
			if reason := st.skip(f); reason != "" {
				t.Skip(reason)
			}
			h := newHarness(t, f, newPeer(t))
			st.run(h)
		})
	}
}

package mqtt_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/conntest"
	"github.com/aimdb-dev/aimdb-flow/connectors/mqtt"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/tests/mqtttest"
)

// TestConformance runs the connector conformance suite against a real
// mosquitto, started once: each subtest gets a fresh topic and a fresh
// connector (random client ids, so no two share a session), publishing and
// subscribing at QoS 1. It runs twice: with async_publish true
// (pipeline.AsyncPublisher) and with async_publish false.
//
// The broker is the peer: Block and Outage stop it and start it again
// (without persistence, so the connector must re-subscribe on the new
// broker). A nack leaves the message unacknowledged and drops the
// connection; the broker resends it to the resumed session, which is the
// redelivery. The acknowledgements the suite observes are the connector's
// own count of PUBACKs sent (Stats.Acked).
//
// Note: on this branch synchronous publish is the connector's default
// (async_publish false); the suite runs both.
func TestConformance(t *testing.T) {
	broker := mqtttest.Start(t, mqtttest.Options{})
	outage := func(*testing.T) func() {
		broker.Stop()
		return broker.Restart
	}
	const defaultAckInterval = 2 * time.Millisecond // mqtt.Config.AckInterval's default
	features := conntest.Features{
		NoKey:     "MQTT has no key",
		NotFinite: "MQTT subscriptions are live: Serve runs until cancelled",
		Order:     conntest.OrderPerTopic,
		// Well above the connector's ack_interval (2ms), the delay after
		// which ready acknowledgements are written.
		Quiet: 100 * defaultAckInterval,
		BadLinks: []conntest.BadLink{
			{Name: "qos 3", Dir: pipeline.Inbound, Address: "conntest/bad", Params: pipeline.Params{"qos": "3"},
				Want: `qos "3": want a whole number from 0 to 2`},
			{Name: "unknown inbound setting", Dir: pipeline.Inbound, Address: "conntest/bad", Params: pipeline.Params{"retain": "true"},
				Want: "retain: unknown inbound link setting (known: qos, no_local, share, group, retain_as_published)"},
			{Name: "shared subscription without a group", Dir: pipeline.Inbound, Address: "$share//t",
				Want: `shared subscription "$share//t": want $share/GROUP/filter`},
			{Name: "retain not a boolean", Dir: pipeline.Outbound, Address: "conntest/bad", Params: pipeline.Params{"retain": "maybe"},
				Want: `retain "maybe": want true or false`},
		},
	}
	var topics atomic.Int64 // one fresh topic per Peer, over both runs
	for _, mode := range []struct {
		name  string
		async bool
	}{{"async", true}, {"sync", false}} {
		t.Run(mode.name, func(t *testing.T) {
			f := features
			if mode.async {
				// Up to max_inflight (32) publishes are in flight at once
				// on as many workers, so records of one topic may leave
				// out of order (documented; max_inflight 1 keeps it).
				f.Order = conntest.Unordered
			}
			conntest.Run(t, f, func(t *testing.T) conntest.Peer {
				b, err := mqtt.New(mqtt.Config{URL: broker.URL(), AsyncPublish: mode.async})
				if err != nil {
					t.Fatal(err)
				}
				kb := &keepBuilder{Builder: b}
				return conntest.Peer{
					Builder:   kb,
					Topic:     "conntest/" + strconv.FormatInt(topics.Add(1), 10),
					InParams:  pipeline.Params{"qos": "1"},
					OutParams: pipeline.Params{"qos": "1"},
					Acked:     kb.acked,
					// The restarted broker has no sessions: a message
					// published before the connector subscribed again
					// would reach no subscriber. Unblocking therefore
					// waits, as the runner's readiness would, until the
					// connector is subscribed again.
					Block: func(t *testing.T) func() {
						broker.Stop()
						return func() {
							broker.Restart()
							kb.waitReady(t, 10*time.Second)
						}
					},
					Outage: outage,
				}
			})
		})
	}
}

// keepBuilder is an mqtt.Builder that keeps every connector it built, so
// that the suite can read how many inbound messages they acknowledged to
// the broker.
type keepBuilder struct {
	*mqtt.Builder
	mu    sync.Mutex
	built []*mqtt.Conn
}

// Build implements pipeline.Builder.
func (b *keepBuilder) Build(ctx context.Context, env pipeline.BuildEnv) (pipeline.Connector, error) {
	c, err := b.Builder.Build(ctx, env)
	if err != nil {
		return nil, err
	}
	var conn *mqtt.Conn
	switch c := c.(type) {
	case *mqtt.Conn:
		conn = c
	case mqtt.AsyncConn:
		conn = c.Conn
	}
	b.mu.Lock()
	b.built = append(b.built, conn)
	b.mu.Unlock()
	return c, nil
}

// waitReady waits until every connector built is ready (connected and
// subscribed).
func (b *keepBuilder) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	b.mu.Lock()
	built := append([]*mqtt.Conn(nil), b.built...)
	b.mu.Unlock()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for _, c := range built {
		for c.Ready() != nil {
			select {
			case <-tick.C:
			case <-deadline.C:
				t.Fatalf("connector not ready %v after the broker restarted: %v", timeout, c.Ready())
			}
		}
	}
}

// acked is Peer.Acked: the PUBACKs the built connectors sent.
func (b *keepBuilder) acked(context.Context) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, c := range b.built {
		n += int(c.Stats().Acked)
	}
	return n, nil
}

package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/conntest"
	"github.com/aimdb-dev/aimdb-flow/connectors/kafka"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/tests/kafkatest"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// conformancePartitions is the partition count of each subtest's topic:
// several, so that the suite checks order per key, not per topic.
const conformancePartitions = 3

// kafkaBadLinks are link settings the graph must reject at load.
var kafkaBadLinks = []conntest.BadLink{
	{Name: "acks maybe", Dir: pipeline.Outbound, Address: "out", Params: pipeline.Params{"acks": "maybe"},
		Want: `acks "maybe": want all, one or none`},
	{Name: "unknown setting", Dir: pipeline.Outbound, Address: "out", Params: pipeline.Params{"partition": "-2"},
		Want: "partition: unknown outbound link setting"},
	{Name: "bad duration", Dir: pipeline.Inbound, Address: "in", Params: pipeline.Params{"max_wait": "5"},
		Want: `max_wait "5": a duration needs a unit`},
	{Name: "negative batch size", Dir: pipeline.Outbound, Address: "out", Params: pipeline.Params{"batch_size": "-2"},
		Want: `batch_size "-2": want a whole number of at least 0`},
	{Name: "min_bytes above max_bytes", Dir: pipeline.Inbound, Address: "in", Params: pipeline.Params{"min_bytes": "2MiB", "max_bytes": "1MiB"},
		Want: `min_bytes "2MiB": is above max_bytes (1MiB)`},
	{Name: "outbound setting inbound", Dir: pipeline.Inbound, Address: "in", Params: pipeline.Params{"acks": "all"},
		Want: "acks: unknown inbound link setting"},
	{Name: "bad topic", Dir: pipeline.Inbound, Address: "a/b", Want: `topic "a/b": invalid character '/'`},
}

// TestConformance runs the connector conformance suite against an
// in-process kfake cluster over the real Kafka wire protocol. Each subtest
// gets a fresh topic (3 partitions) and consumer group; one connector
// instance serves the topic and publishes to it, as the runner does.
//
//   - Acked is the group's committed offsets on the topic, read from the
//     cluster (OffsetFetch), summed over the partitions: a fresh topic
//     starts at offset 0, so it counts the records committed.
//   - Block holds every produce request in kfake (SleepControl) until
//     unblocked, so a Publish cannot be confirmed.
//   - Outage stops the cluster and restarts it on the same ports with its
//     data (kafkatest Persist).
func TestConformance(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Persist: true})
	var n atomic.Int32
	conntest.Run(t, conntest.Features{
		Order:      conntest.OrderPerKey,
		KeepsBytes: true, // the producer keeps Payload and Key until the broker confirmed (pipeline.AsyncPublisher allows it)
		NotFinite:  "a consumer group member serves until cancelled",
		BadLinks:   kafkaBadLinks,
		// Above the commit interval (100ms), so an early commit shows.
		Quiet:   400 * time.Millisecond,
		Timeout: 30 * time.Second,
		// The cluster's own connection handlers outlive a subtest's
		// connector briefly.
		IgnoreGoroutines: []string{"franz-go/pkg/kfake"},
	}, func(t *testing.T) conntest.Peer {
		id := n.Add(1)
		topic, group := fmt.Sprintf("conntest-%d", id), fmt.Sprintf("conntest-g%d", id)
		cl.CreateTopic(t, topic, conformancePartitions)
		b := builder(t, cl, group, func(c *kafka.Config) {
			c.PublishTimeout = 20 * time.Second
			// A linger longer than the suite takes to hand off a batch
			// and close: CloseFlushes then sees records still in the
			// writer, which Close must flush.
			c.Writer.Linger = 50 * time.Millisecond
		})
		return conntest.Peer{
			Builder: b,
			Topic:   topic,
			Acked: func(ctx context.Context) (int, error) {
				offs, err := cl.Committed(ctx, group, topic)
				if err != nil {
					return 0, err
				}
				sum := 0
				for _, o := range offs {
					sum += int(o)
				}
				return sum, nil
			},
			Block:  func(t *testing.T) func() { return blockProduce(cl) },
			Outage: func(t *testing.T) func() { cl.Stop(); return cl.Restart },
		}
	})
}

// blockProduce makes the cluster hold every produce request until the
// returned function is called; then they are handled as usual.
func blockProduce(cl *kafkatest.Cluster) func() {
	release := make(chan struct{})
	var once sync.Once
	k := cl.Kfake()
	k.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		k.KeepControl()
		select {
		case <-release:
		default:
			k.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	return func() { once.Do(func() { close(release) }) }
}

// offsetDispatcher hands every record's offset to got and settles its
// ack with settle's verdict (nil: acknowledged).
type offsetDispatcher struct {
	got    chan int64
	settle func(offset int64) error
}

func (d offsetDispatcher) Dispatch(ctx context.Context, env *pipeline.Envelope) error {
	env.Ack.Finish(d.settle(env.Offset))
	select {
	case d.got <- env.Offset:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestNackNotCommittedRedeliveredAfterRestart: the redelivery the
// conformance suite checks (NackRedelivers) happens inside one connector,
// which rewinds the partition. This checks the other half of the
// contract: a record that was nacked is not committed, so a member that
// joins the group after the first one left (a restarted process) gets it
// again. The first member acknowledges offset 0, nacks offset 1 every
// time and acknowledges the rest; after it closed, the group's committed
// offset is 1 and a new member starts with offset 1.
func TestNackNotCommittedRedeliveredAfterRestart(t *testing.T) {
	const topic, group = "nack-restart", "nack-restart-g"
	cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{topic: 1}})
	produceN(t, cl, topic, 0, 5)
	b := builder(t, cl, group)
	sub := pipeline.Subscription{Filter: topic, Record: "in"}

	serve := func(settle func(int64) error) (chan int64, func()) {
		c, err := b.Build(context.Background(), pipeline.BuildEnv{Name: "kafka", Logger: testLogger(), Inbound: []pipeline.Subscription{sub}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		d := offsetDispatcher{got: make(chan int64), settle: settle}
		done := make(chan error, 1)
		go func() { done <- c.(pipeline.Source).Serve(ctx, []pipeline.Subscription{sub}, d) }()
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Serve: %v", err)
				}
				cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer ccancel()
				if err := c.Close(cctx); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
		}
		t.Cleanup(stop)
		return d.got, stop
	}
	next := func(got chan int64) int64 {
		t.Helper()
		select {
		case o := <-got:
			return o
		case <-time.After(20 * time.Second):
			t.Fatal("no record delivered within 20s")
		}
		return -1
	}

	got, stop := serve(func(o int64) error {
		if o == 1 {
			return errors.New("sink refused")
		}
		return nil
	})
	// Wait until offset 1 was nacked and redelivered (rewound) twice.
	for nacks := 0; nacks < 3; {
		if next(got) == 1 {
			nacks++
		}
	}
	// Drain deliveries while closing: Serve must be able to stop.
	stopped := make(chan struct{})
	go func() {
		for {
			select {
			case <-got:
			case <-stopped:
				return
			}
		}
	}()
	stop()
	close(stopped)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := cl.Committed(ctx, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	if offs[0] != 1 {
		t.Fatalf("committed offset %d after the first member left, want 1 (offset 1 was nacked)", offs[0])
	}

	got2, stop2 := serve(func(int64) error { return nil })
	if o := next(got2); o != 1 {
		t.Fatalf("the restarted member started at offset %d, want the nacked offset 1", o)
	}
	for want := int64(2); want < 5; want++ {
		if o := next(got2); o != want {
			t.Fatalf("then offset %d, want %d", o, want)
		}
	}
	stop2()
	waitCommittedToEnd(t, cl, group, topic)
}

package reliability

import (
	"context"
	"fmt"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kafka"
	"github.com/aimdb-dev/aimdb-flow/connectors/mqtt"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
	"github.com/aimdb-dev/aimdb-flow/tests/kafkatest"
	"github.com/aimdb-dev/aimdb-flow/tests/mqtttest"
)

// faultPlan sizes a fault test: the default run does the real thing (10
// broker restarts); -short trims it.
func faultPlan() (restarts, n int) {
	if testing.Short() {
		return 3, 300
	}
	return 10, 1200
}

// passes is the relay's filter: every fifth record is filtered out (and
// acked at the source without reaching the sink).
func passes(seq int) bool { return seq%5 != 0 }

func seqFilter() pipeline.Processor {
	return stages.FilterValue(func(m map[string]any) bool {
		f, _ := m["seq"].(float64)
		return passes(int(f))
	})
}

func mqttBuilder(t testing.TB, url string, p pipeline.Params) pipeline.Builder {
	t.Helper()
	b, err := mqtt.Factory(url, p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// produceSeq publishes {"seq":i} for i in [0,n) to topic, each retried
// until the broker acknowledges it, and counts the acknowledged ones.
// It returns when all are acknowledged or ctx ends.
func produceSeq(ctx context.Context, c *mqttClient, topic string, n int, acked *atomic.Int64) error {
	for i := 0; i < n; i++ {
		p := []byte(fmt.Sprintf(`{"seq":%d,"pad":"0123456789abcdef"}`, i))
		for !c.tryPublish(ctx, 2*time.Second, topic, p) {
			if ctx.Err() != nil {
				return fmt.Errorf("message %d never acknowledged by the broker: %w", i, ctx.Err())
			}
		}
		acked.Store(int64(i + 1))
	}
	return nil
}

// outage is one broker restart driven by the test while the stream flows.
type outage struct {
	stop, restart func()
	name          string
	sinkOnly      bool // the pipeline only publishes to this broker
}

// injectFaults waits for the producer to pass each of `restarts` evenly
// spaced points, then stops the broker, waits until the runner reports
// not-ready, restarts it and waits until the runner is ready again. It
// returns the time spent not ready.
func injectFaults(t *testing.T, run *running, produced *atomic.Int64, n int, outages []outage) {
	t.Helper()
	for k, o := range outages {
		point := int64((k + 1) * n / (len(outages) + 1))
		waitFor(t, 60*time.Second, fmt.Sprintf("producer at %d before outage %d", point, k+1),
			func() bool { return produced.Load() >= point })
		o.stop()
		// A connector notices a broker it only publishes to when a
		// publish fails, which can take a while after a rejection
		// backoff: allow more time for that than for a subscription.
		limit := 20 * time.Second
		if o.sinkOnly {
			limit = 60 * time.Second
		}
		waitFor(t, limit, fmt.Sprintf("not ready while %s is down (outage %d)", o.name, k+1),
			func() bool { return run.r.Ready() != nil })
		run.alive(t)
		o.restart()
		waitFor(t, 30*time.Second, fmt.Sprintf("ready again after %s restart (outage %d)", o.name, k+1),
			func() bool { return run.r.Ready() == nil })
		run.alive(t)
	}
}

// checkDelivery asserts that every sequence number the producer had
// acknowledged, and every one the pipeline acked to its source, reached
// the far end when it passes the filter, and that filtered ones never did.
func checkDelivery(t *testing.T, n int, src *probe, far *counts) {
	t.Helper()
	var lost, ackedLost []int
	for i := 0; i < n; i++ {
		got := far.get(i)
		if !passes(i) {
			if got > 0 {
				t.Errorf("seq %d was filtered out but arrived %d times", i, got)
			}
			continue
		}
		if got == 0 {
			lost = append(lost, i)
			if src.acked.get(i) > 0 {
				ackedLost = append(ackedLost, i)
			}
		}
	}
	// Every source-acked seq is in [0,n) (the probe only sees this stream).
	for seq := range src.acked.snapshot() {
		if seq < 0 || seq >= n {
			t.Errorf("source acked an unknown seq %d", seq)
		}
	}
	if len(ackedLost) > 0 {
		t.Errorf("%d records acked to the source never arrived: %v", len(ackedLost), head(ackedLost))
	}
	if len(lost) > 0 {
		t.Fatalf("%d producer-acknowledged records lost: %v", len(lost), head(lost))
	}
	if a := src.acked.distinct(); a != n {
		t.Errorf("source acked %d distinct records, want all %d", a, n)
	}
}

func head(xs []int) []int {
	sort.Ints(xs)
	if len(xs) > 20 {
		return xs[:20]
	}
	return xs
}

// TestMQTTRelaySurvivesBrokerRestarts streams QoS 1 messages through
// MQTT -> filter -> MQTT while mosquitto is stopped and restarted 10 times
// (SIGTERM: mosquitto persists its sessions; the same runner throughout).
// The runner reports not-ready during each outage and ready after it.
// Every message the broker acknowledged to the producer, and every message
// the pipeline acknowledged to its source, arrives at the far end (0
// acked-but-lost); duplicates (at-least-once redelivery) are reported.
func TestMQTTRelaySurvivesBrokerRestarts(t *testing.T) {
	restarts, n := faultPlan()
	br := mqtttest.Start(t, mqtttest.Options{Persistence: true})
	src := newProbe(mqttBuilder(t, br.URL(), pipeline.Params{
		"client_id": "rel-relay", "session_expiry": "600s", "reconnect_min": "50ms", "reconnect_max": "300ms",
		"publish_timeout": "60s", "connect_timeout": "2s"}))
	g := pipeline.New().Connector("mqtt", src)
	g.Record("in").From("mqtt://rel/in/#", codec.JSON{})
	g.Pipeline("relay").From("in").Via(seqFilter()).To("mqtt://rel/out/{seq}", codec.JSON{})

	far := newCounts()
	sub := newMQTTClient(t, br.URL(), clientOpts{ID: "rel-far", Subscribe: []string{"rel/out/#"}, Persistent: true})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	go sub.collect(ctx, far)

	run := start(t, g, pipeline.RunOptions{DrainTimeout: 20 * time.Second})
	waitFor(t, 15*time.Second, "runner ready", func() bool { return run.r.Ready() == nil })
	pub := newMQTTClient(t, br.URL(), clientOpts{ID: "rel-producer", Persistent: true})

	var produced atomic.Int64
	perr := make(chan error, 1)
	go func() { perr <- produceSeq(ctx, pub, "rel/in/x", n, &produced) }()
	var outages []outage
	for range restarts {
		outages = append(outages, outage{name: "mosquitto", stop: br.Stop, restart: br.Restart})
	}
	injectFaults(t, run, &produced, n, outages)
	if err := <-perr; err != nil {
		t.Fatal(err)
	}
	want := 0
	for i := 0; i < n; i++ {
		if passes(i) {
			want++
		}
	}
	waitFor(t, 60*time.Second, fmt.Sprintf("%d records at the far end", want), func() bool { return far.distinct() >= want })
	if err := run.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	checkDelivery(t, n, src, far)
	st := run.r.Stats()
	t.Logf("%d restarts, %d records: source acked %d distinct (%d redelivered, %d nacks), far end got %d distinct, %d duplicates; dead letters %d",
		restarts, n, src.acked.distinct(), src.acked.duplicates(), sumCounts(src.nacked), far.distinct(), far.duplicates(), st.DeadLetters)
}

func sumCounts(c *counts) int {
	s := 0
	for _, v := range c.snapshot() {
		s += v
	}
	return s
}

func kafkaBuilder(t testing.TB, cl *kafkatest.Cluster, group string) pipeline.Builder {
	t.Helper()
	b, err := kafka.New(kafka.Config{
		Brokers: cl.Addrs(), Group: group,
		CommitInterval: 100 * time.Millisecond, SessionTimeout: 2 * time.Second, RebalanceTimeout: 3 * time.Second,
		HeartbeatInterval: 200 * time.Millisecond, RevokeTimeout: 2 * time.Second,
		Writer:         kafka.WriterOptions{Linger: 2 * time.Millisecond},
		PublishTimeout: 60 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMQTTToKafkaSurvivesBrokerRestarts streams QoS 1 messages through
// MQTT -> filter -> Kafka (kfake) while mosquitto is restarted 10 times
// and, at every third of those outages, the Kafka cluster is stopped and
// restarted too (kfake with its data kept). Nothing the producer or the
// source acknowledged is missing from the Kafka topic.
func TestMQTTToKafkaSurvivesBrokerRestarts(t *testing.T) {
	restarts, n := faultPlan()
	br := mqtttest.Start(t, mqtttest.Options{Persistence: true})
	cl := kafkatest.Start(t, kafkatest.Options{Persist: true, Topics: map[string]int{"rel-out": 3}})
	src := newProbe(mqttBuilder(t, br.URL(), pipeline.Params{
		"client_id": "rel-bridge", "session_expiry": "600s", "reconnect_min": "50ms", "reconnect_max": "300ms",
		"connect_timeout": "2s"}))
	g := pipeline.New().Connector("mqtt", src).Connector("kafka", kafkaBuilder(t, cl, ""))
	g.Record("in").From("mqtt://bridge/in/#", codec.JSON{})
	g.Pipeline("bridge").From("in").Via(seqFilter()).To("kafka://rel-out", codec.JSON{})

	run := start(t, g, pipeline.RunOptions{DrainTimeout: 20 * time.Second})
	waitFor(t, 20*time.Second, "runner ready", func() bool { return run.r.Ready() == nil })
	pub := newMQTTClient(t, br.URL(), clientOpts{ID: "bridge-producer", Persistent: true})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	var produced atomic.Int64
	perr := make(chan error, 1)
	go func() { perr <- produceSeq(ctx, pub, "bridge/in/x", n, &produced) }()
	var outages []outage
	for k := range restarts {
		outages = append(outages, outage{name: "mosquitto", stop: br.Stop, restart: br.Restart})
		if k%3 == 1 {
			outages = append(outages, outage{name: "kafka", stop: cl.Stop, restart: cl.Restart, sinkOnly: true})
		}
	}
	injectFaults(t, run, &produced, n, outages)
	if err := <-perr; err != nil {
		t.Fatal(err)
	}
	want := 0
	for i := 0; i < n; i++ {
		if passes(i) {
			want++
		}
	}
	// The source acks only after Kafka confirmed: once every record is
	// acked at the source, the topic holds them all.
	waitFor(t, 60*time.Second, "every record acked at the source", func() bool { return src.acked.distinct() >= n })
	if err := run.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	msgs, err := cl.ReadAll("rel-out", 0, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	far := newCounts()
	for _, m := range msgs {
		far.add(seqOf(m.Value))
	}
	checkDelivery(t, n, src, far)
	t.Logf("%d outages (%d mosquitto), %d records: source acked %d distinct (%d nacks), Kafka holds %d distinct of %d expected, %d duplicates",
		len(outages), restarts, n, src.acked.distinct(), sumCounts(src.nacked), far.distinct(), want, far.duplicates())
	if r := src.reasons(); len(r) > 0 {
		t.Logf("rejections at the source: %v", r)
	}
}

// TestKafkaToMQTTSurvivesClusterRestarts consumes a Kafka topic in a
// consumer group through a filter into MQTT while the Kafka cluster (kfake,
// data kept) is stopped and restarted, and mosquitto once as well. The
// runner reports not-ready while the cluster is down; every record
// produced reaches the MQTT far end, and the group's commits reach the end
// of every partition.
func TestKafkaToMQTTSurvivesClusterRestarts(t *testing.T) {
	restarts, n := faultPlan()
	restarts = max(2, restarts/2)
	br := mqtttest.Start(t, mqtttest.Options{Persistence: true})
	cl := kafkatest.Start(t, kafkatest.Options{Persist: true, Topics: map[string]int{"rel-in": 3}})
	src := newProbe(kafkaBuilder(t, cl, "rel-group"))
	g := pipeline.New().Connector("kafka", src).Connector("mqtt", mqttBuilder(t, br.URL(), pipeline.Params{
		"client_id": "rel-k2m", "reconnect_min": "50ms", "reconnect_max": "300ms", "publish_timeout": "60s", "connect_timeout": "2s"}))
	g.Record("in").From("kafka://rel-in", codec.JSON{})
	g.Pipeline("fanout").From("in").Via(seqFilter()).To("mqtt://k2m/out/{seq}", codec.JSON{})

	far := newCounts()
	sub := newMQTTClient(t, br.URL(), clientOpts{ID: "k2m-far", Subscribe: []string{"k2m/out/#"}, Persistent: true})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	go sub.collect(ctx, far)

	run := start(t, g, pipeline.RunOptions{DrainTimeout: 20 * time.Second})
	waitFor(t, 30*time.Second, "runner ready", func() bool { return run.r.Ready() == nil })

	// Produce in batches between outages (the harness's producer needs
	// the cluster up), then restart the cluster while the pipeline is
	// still working through them.
	batch := n / (restarts + 1)
	var produced atomic.Int64
	produceBatch := func(from, to int) {
		var msgs []kafkaMsg
		for i := from; i < to; i++ {
			msgs = append(msgs, kafkaMsg{key: fmt.Sprint("k", i%7), value: fmt.Sprintf(`{"seq":%d}`, i)})
		}
		produceKafka(t, cl, "rel-in", msgs)
		produced.Store(int64(to))
	}
	for k := 0; k <= restarts; k++ {
		to := (k + 1) * batch
		if k == restarts {
			to = n
		}
		produceBatch(k*batch, to)
		if k == restarts {
			break
		}
		o := outage{name: "kafka", stop: cl.Stop, restart: cl.Restart}
		if k == restarts/2 {
			o = outage{name: "mosquitto", stop: br.Stop, restart: br.Restart, sinkOnly: true}
		}
		injectFaults(t, run, &produced, 0, []outage{o})
	}
	want := 0
	for i := 0; i < n; i++ {
		if passes(i) {
			want++
		}
	}
	waitFor(t, 60*time.Second, fmt.Sprintf("%d records at the far end", want), func() bool { return far.distinct() >= want })
	waitFor(t, 30*time.Second, "commits at the end of every partition", func() bool {
		lag, err := cl.Lag(context.Background(), "rel-group", "rel-in")
		if err != nil {
			return false
		}
		for _, l := range lag {
			if l != 0 {
				return false
			}
		}
		return true
	})
	if err := run.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	checkDelivery(t, n, src, far)
	t.Logf("%d outages, %d records: source acked %d distinct, far end got %d distinct, %d duplicates",
		restarts, n, src.acked.distinct(), far.distinct(), far.duplicates())
}

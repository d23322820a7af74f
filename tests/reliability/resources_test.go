package reliability

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
	"github.com/aimdb-dev/aimdb-flow/tests/kafkatest"
	"github.com/aimdb-dev/aimdb-flow/tests/mqtttest"
)

// TestNoLeakMQTTRunnerLifecycle runs a full MQTT -> filter -> MQTT runner
// through a broker restart (reconnect, re-subscribe), relays records and
// stops it, then checks that every goroutine started since the snapshot
// (connector clients, pingers, ack flushers, offline queue, pipelines,
// publishers; the test's own clients and broker are stopped first) has
// ended.
func TestNoLeakMQTTRunnerLifecycle(t *testing.T) {
	br := mqtttest.Start(t, mqtttest.Options{Persistence: true})
	snapshot := goleak.IgnoreCurrent()

	g := pipeline.New().Connector("mqtt", mqttBuilder(t, br.URL(), pipeline.Params{
		"client_id": "leak-relay", "session_expiry": "600", "reconnect_min": "50ms", "reconnect_max": "300ms"}))
	g.Record("in").From("mqtt://leak/in/#", codec.JSON{})
	g.Pipeline("relay").From("in").Via(seqFilter()).To("mqtt://leak/out/{seq}", codec.JSON{})
	run := start(t, g, pipeline.RunOptions{})
	waitFor(t, 15*time.Second, "ready", func() bool { return run.r.Ready() == nil })
	br.Stop()
	waitFor(t, 15*time.Second, "not ready", func() bool { return run.r.Ready() != nil })
	br.Restart()
	waitFor(t, 20*time.Second, "ready again", func() bool { return run.r.Ready() == nil })

	far := newCounts()
	sub := newMQTTClient(t, br.URL(), clientOpts{ID: "leak-far", Subscribe: []string{"leak/out/#"}})
	pub := newMQTTClient(t, br.URL(), clientOpts{ID: "leak-producer"})
	ctx, cancel := context.WithCancel(context.Background())
	collected := make(chan struct{})
	go func() { sub.collect(ctx, far); close(collected) }()
	for i := 1; i <= 40; i++ {
		pub.publish("leak/in/x", []byte(fmt.Sprintf(`{"seq":%d}`, i)))
	}
	waitFor(t, 20*time.Second, "32 records relayed", func() bool { return far.distinct() >= 32 })
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-collected
	sub.close()
	pub.close()
	br.Stop() // the restarted process's wait and log-copy goroutines
	goleak.VerifyNone(t, snapshot)
}

// TestNoLeakKafkaRunnerLifecycle does the same for a Kafka consumer group
// -> Kafka producer runner (group join, fetchers, committer, async
// producer), with no harness client in use between the snapshot and the
// check.
func TestNoLeakKafkaRunnerLifecycle(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"leak-in": 2, "leak-out": 2}})
	var msgs []kafkaMsg
	for i := range 50 {
		msgs = append(msgs, kafkaMsg{key: fmt.Sprint(i % 3), value: fmt.Sprintf(`{"seq":%d}`, i)})
	}
	produceKafka(t, cl, "leak-in", msgs)
	snapshot := goleak.IgnoreCurrent()

	src := newProbe(kafkaBuilder(t, cl, "leak-group"))
	g := pipeline.New().Connector("kafka", src)
	g.Record("in").From("kafka://leak-in", codec.JSON{})
	g.Pipeline("copy").From("in").To("kafka://leak-out", codec.JSON{})
	run := start(t, g, pipeline.RunOptions{})
	waitFor(t, 30*time.Second, "50 records acked at the source", func() bool { return src.acked.distinct() >= 50 })
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	// kfake serves every request of a connection with a fresh read
	// goroutine, so the harness's own idle connection (made before the
	// snapshot) shows new server-side goroutines whenever its metadata
	// refresh fires. A leaked connector connection would still show its
	// client side (kafka-go conn.run, connPool.discover).
	goleak.VerifyNone(t, snapshot, goleak.IgnoreAnyFunction("github.com/twmb/franz-go/pkg/kfake.(*clientConn).read.func1"))
}

// soakDuration is 60s by default (part of the normal `go test` run, so
// `make test` runs it), RELIABILITY_SOAK=2m for longer; -short skips it.
func soakDuration(t *testing.T) time.Duration {
	if s := os.Getenv("RELIABILITY_SOAK"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("RELIABILITY_SOAK: %v", err)
		}
		return d
	}
	if testing.Short() {
		t.Skip("soak skipped with -short")
	}
	return 60 * time.Second
}

type sample struct {
	heap       uint64
	goroutines int
}

func median[T int | uint64](xs []T) T {
	s := append([]T(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// TestSoakFlatResources relays a paced QoS 1 stream (MQTT -> filter ->
// MQTT through mosquitto, 400 msg/s) for the soak duration while sampling
// the live heap (after a GC) and the goroutine count once a second. The
// medians of the last third must not exceed those of the first third by
// more than 50% + 4 MiB (heap) and 10 (goroutines), and every message
// must arrive.
func TestSoakFlatResources(t *testing.T) {
	dur := soakDuration(t)
	const rate = 400
	br := mqtttest.Start(t, mqtttest.Options{})
	far := newCounts()
	sub := newMQTTClient(t, br.URL(), clientOpts{ID: "soak-far", Subscribe: []string{"soak/out/#"}})
	pub := newMQTTClient(t, br.URL(), clientOpts{ID: "soak-producer"})
	g := pipeline.New().Connector("mqtt", mqttBuilder(t, br.URL(), pipeline.Params{"client_id": "soak-relay"}))
	g.Record("in").From("mqtt://soak/in/#", codec.JSON{})
	g.Pipeline("relay").From("in").Via(seqFilter()).To("mqtt://soak/out/{seq}", codec.JSON{})
	run := start(t, g, pipeline.RunOptions{})
	waitFor(t, 15*time.Second, "ready", func() bool { return run.r.Ready() == nil })

	ctx, cancel := context.WithTimeout(context.Background(), dur+60*time.Second)
	defer cancel()
	collected := make(chan struct{})
	go func() { sub.collect(ctx, far); close(collected) }()
	defer func() { cancel(); <-collected }()

	var sent atomic.Int64
	pctx, pcancel := context.WithTimeout(ctx, dur)
	defer pcancel()
	pdone := make(chan error, 1)
	go func() {
		tick := time.NewTicker(time.Second / rate)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-pctx.Done():
				pdone <- nil
				return
			case <-tick.C:
			}
			if !pub.tryPublish(ctx, 10*time.Second, "soak/in/x", []byte(fmt.Sprintf(`{"seq":%d,"temp":21.5,"device":"d-1"}`, i))) {
				pdone <- fmt.Errorf("message %d not acknowledged", i)
				return
			}
			sent.Store(int64(i + 1))
		}
	}()
	var samples []sample
	every := time.NewTicker(time.Second)
	defer every.Stop()
	for sampling := true; sampling; {
		select {
		case <-pctx.Done():
			sampling = false
		case <-every.C:
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			samples = append(samples, sample{heap: ms.HeapAlloc, goroutines: runtime.NumGoroutine()})
		}
	}
	if err := <-pdone; err != nil {
		t.Fatal(err)
	}
	n := int(sent.Load())
	want := 0
	for i := 0; i < n; i++ {
		if passes(i) {
			want++
		}
	}
	waitFor(t, 60*time.Second, fmt.Sprintf("%d relayed records", want), func() bool { return far.distinct() >= want })
	run.alive(t)
	if len(samples) < 9 {
		t.Fatalf("only %d samples", len(samples))
	}
	third := len(samples) / 3
	var h1, h3 []uint64
	var g1, g3 []int
	for _, s := range samples[:third] {
		h1, g1 = append(h1, s.heap), append(g1, s.goroutines)
	}
	for _, s := range samples[len(samples)-third:] {
		h3, g3 = append(h3, s.heap), append(g3, s.goroutines)
	}
	mh1, mh3, mg1, mg3 := median(h1), median(h3), median(g1), median(g3)
	t.Logf("soak %v at %d msg/s: %d sent, %d relayed, %d duplicates; heap median %.1f -> %.1f MiB, goroutines %d -> %d",
		dur, rate, n, far.distinct(), far.duplicates(), float64(mh1)/(1<<20), float64(mh3)/(1<<20), mg1, mg3)
	if mh3 > mh1+mh1/2+4<<20 {
		t.Errorf("heap grew: median %d -> %d bytes", mh1, mh3)
	}
	if mg3 > mg1+10 {
		t.Errorf("goroutines grew: median %d -> %d", mg1, mg3)
	}
	for i := 0; i < n; i++ {
		if passes(i) && far.get(i) == 0 {
			t.Fatalf("seq %d lost", i)
		}
	}
}

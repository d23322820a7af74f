package reliability

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
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
		"client_id": "leak-relay", "session_expiry": "600s", "reconnect_min": "50ms", "reconnect_max": "300ms"}))
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

// Soak bounds: the live heap may grow by at most soakBytesPerMsg per
// relayed message (least-squares slope over the samples after warm-up,
// and end minus warm-up point) plus soakHeapSlack for noise (buffers in
// flight, runtime metadata); goroutines return to the count before the
// runner started.
const (
	soakBytesPerMsg = 16
	soakHeapSlack   = 256 << 10
)

// soakLeak returns RELIABILITY_SOAK_LEAK (bytes retained per message by a
// stage added to the soak's pipeline, 0 when unset): a self-check that the
// soak's bound catches a leak of that size.
func soakLeak(t *testing.T) int {
	s := os.Getenv("RELIABILITY_SOAK_LEAK")
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		t.Fatalf("RELIABILITY_SOAK_LEAK=%q: want a byte count", s)
	}
	return n
}

type sample struct {
	relayed    int64 // messages at the far end when the sample was taken
	heap       uint64
	goroutines int
}

// liveHeap returns HeapAlloc after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// slope is the least-squares slope of heap over relayed messages.
func slope(ss []sample) float64 {
	var sx, sy, sxx, sxy float64
	n := float64(len(ss))
	for _, s := range ss {
		x, y := float64(s.relayed), float64(s.heap)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

// seqTally counts ids in a slice allocated up front, so that the test's own
// bookkeeping does not grow the heap it measures.
type seqTally struct {
	mu       sync.Mutex
	n        []uint32
	distinct atomic.Int64
	overflow atomic.Int64 // ids outside the slice (or unparsable)
}

func newSeqTally(max int) *seqTally { return &seqTally{n: make([]uint32, max)} }

func (s *seqTally) add(seq int) {
	if seq < 0 || seq >= len(s.n) {
		s.overflow.Add(1)
		return
	}
	s.mu.Lock()
	s.n[seq]++
	first := s.n[seq] == 1
	s.mu.Unlock()
	if first {
		s.distinct.Add(1)
	}
}

func (s *seqTally) get(seq int) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[seq]
}

// TestSoakFlatResources relays a paced QoS 1 stream (MQTT -> filter ->
// MQTT through mosquitto, 400 msg/s) for the soak duration, sampling the
// live heap (after a GC) and the goroutine count once a second against
// the number of messages relayed. After a warm-up (the first fifth), the
// heap's growth per relayed message (the least-squares slope of the
// samples, and the last sample minus the first) must stay within
// soakBytesPerMsg (plus soakHeapSlack for the end-point comparison), the
// goroutine count must not climb, every message must arrive, and once the
// runner stopped the goroutine count returns to what it was before the
// runner started.
func TestSoakFlatResources(t *testing.T) {
	dur := soakDuration(t)
	leak := soakLeak(t)
	const rate = 400
	br := mqtttest.Start(t, mqtttest.Options{})
	maxN := int(dur.Seconds()*rate) + 2*rate
	far := newSeqTally(maxN)
	sub := newMQTTClient(t, br.URL(), clientOpts{ID: "soak-far", Subscribe: []string{"soak/out/#"}})
	pub := newMQTTClient(t, br.URL(), clientOpts{ID: "soak-producer"})
	// RELIABILITY_SOAK_LEAK: what the leaking stage keeps, in a slice
	// allocated up front so that each message retains exactly its bytes.
	var retained [][]byte
	if leak > 0 {
		retained = make([][]byte, 0, maxN)
	}
	g := pipeline.New().Connector("mqtt", mqttBuilder(t, br.URL(), pipeline.Params{"client_id": "soak-relay"}))
	g.Record("in").From("mqtt://soak/in/#", codec.JSON{})
	p := g.Pipeline("relay").From("in").Via(seqFilter())
	if leak > 0 {
		p = p.Via(pipeline.ProcessorFunc{Name: "leak", Fn: func(ctx context.Context, env *pipeline.Envelope, next pipeline.Emit) error {
			retained = append(retained, make([]byte, leak))
			return next(ctx, env)
		}})
	}
	p.To("mqtt://soak/out/{seq}", codec.JSON{})

	ctx, cancel := context.WithTimeout(context.Background(), dur+60*time.Second)
	defer cancel()
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for {
			select {
			case m := <-sub.ch:
				far.add(seqOf(m.Payload))
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() { cancel(); <-collected }()
	baseGoroutines := runtime.NumGoroutine()
	run := start(t, g, pipeline.RunOptions{})
	waitFor(t, 15*time.Second, "ready", func() bool { return run.r.Ready() == nil })

	var sent atomic.Int64
	pctx, pcancel := context.WithTimeout(ctx, dur)
	defer pcancel()
	pdone := make(chan error, 1)
	go func() {
		tick := time.NewTicker(time.Second / rate)
		defer tick.Stop()
		for i := 0; i < maxN; i++ {
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
		pdone <- nil
	}()
	warmup := time.Now().Add(dur / 5)
	var samples []sample
	every := time.NewTicker(time.Second)
	defer every.Stop()
	for sampling := true; sampling; {
		select {
		case <-pctx.Done():
			sampling = false
		case now := <-every.C:
			if now.Before(warmup) {
				continue
			}
			h := liveHeap()
			samples = append(samples, sample{relayed: far.distinct.Load(), heap: h, goroutines: runtime.NumGoroutine()})
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
	waitFor(t, 60*time.Second, fmt.Sprintf("%d relayed records", want), func() bool { return far.distinct.Load() >= int64(want) })
	run.alive(t)
	if len(samples) < 8 {
		t.Fatalf("only %d samples after warm-up", len(samples))
	}
	first, last := samples[0], samples[len(samples)-1]
	msgs := last.relayed - first.relayed
	if msgs <= 0 {
		t.Fatalf("nothing relayed between the first and the last sample: %+v %+v", first, last)
	}
	sl := slope(samples)
	growth := int64(last.heap) - int64(first.heap)
	maxG := 0
	for _, s := range samples {
		maxG = max(maxG, s.goroutines)
	}
	t.Logf("soak %v at %d msg/s: %d sent, %d relayed, %d duplicates; after warm-up: heap %.2f -> %.2f MiB over %d messages (%.1f B/msg end to end, slope %.1f B/msg), goroutines %d -> %d (max %d, %d before the runner)",
		dur, rate, n, far.distinct.Load(), func() int64 {
			var d int64
			for i := 0; i < n; i++ {
				if c := far.get(i); c > 1 {
					d += int64(c - 1)
				}
			}
			return d
		}(), float64(first.heap)/(1<<20), float64(last.heap)/(1<<20), msgs, float64(growth)/float64(msgs), sl,
		first.goroutines, last.goroutines, maxG, baseGoroutines)
	if sl > soakBytesPerMsg {
		t.Errorf("heap grows %.1f bytes per relayed message (least-squares slope over %d samples), bound %d", sl, len(samples), soakBytesPerMsg)
	}
	if growth > soakBytesPerMsg*msgs+soakHeapSlack {
		t.Errorf("heap grew %d bytes over %d messages (%.1f B/msg), bound %d B/msg + %d", growth, msgs, float64(growth)/float64(msgs), soakBytesPerMsg, soakHeapSlack)
	}
	if last.goroutines > first.goroutines+5 {
		t.Errorf("goroutines grew during the soak: %d -> %d", first.goroutines, last.goroutines)
	}
	if o := far.overflow.Load(); o != 0 {
		t.Errorf("%d messages with an unexpected id", o)
	}
	for i := 0; i < n; i++ {
		if passes(i) && far.get(i) == 0 {
			t.Fatalf("seq %d lost", i)
		}
	}
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseGoroutines && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > baseGoroutines {
		t.Errorf("%d goroutines 10s after the runner stopped, %d before it started", g, baseGoroutines)
	}
	runtime.KeepAlive(retained)
}

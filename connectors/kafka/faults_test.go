package kafka_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kafka"
	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
	"github.com/aimdb-dev/aimdb-flow/tests/kafkatest"
	kafkago "github.com/segmentio/kafka-go"
)

func seqOf(t *testing.T, payload []byte) int {
	t.Helper()
	var v struct {
		Seq *int `json:"seq"`
	}
	if err := json.Unmarshal(payload, &v); err != nil || v.Seq == nil {
		t.Errorf("payload %q has no seq: %v", payload, err)
		return -1
	}
	return *v.Seq
}

type delivery struct {
	seq    int
	part   int32
	offset int64
}

// TestCrashRedeliversUncommittedTail kills a consumer mid-stream (its
// network is cut, so it can neither commit nor leave the group), then
// starts a new member of the same group: every record reaches the sink,
// and the only duplicates are the records at or after the offsets the
// dead member had committed.
func TestCrashRedeliversUncommittedTail(t *testing.T) {
	const total = 1200
	cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"crash": 3}})
	produceN(t, cl, "crash", 0, 900)

	pipelineFor := func(b *kafka.Builder, tap func(env *pipeline.Envelope)) *pipeline.Graph {
		g := pipeline.New().Connector("kafka", b).Connector("mem", mem.New(nil))
		g.Record("in").From("kafka://crash", codec.Raw{})
		g.Pipeline("p").From("in").Via(stages.Tap(tap)).To("mem://sink", codec.Raw{})
		return g
	}

	// Run 1: stops at the 300th record until the network is cut.
	cut := kafkatest.NewNetCutter()
	var run1 []delivery
	var n1 atomic.Int64
	reached, release := make(chan struct{}), make(chan struct{})
	b1 := builder(t, cl, "crash", func(c *kafka.Config) { c.Dial = cut.Dial })
	r1 := start(t, pipelineFor(b1, func(env *pipeline.Envelope) {
		run1 = append(run1, delivery{seqOf(t, env.Payload), env.Partition, env.Offset})
		if n1.Add(1) == 300 {
			close(reached)
			<-release
		}
	}), 500*time.Millisecond)
	select {
	case <-reached:
	case <-time.After(20 * time.Second):
		t.Fatal("run 1 never reached 300 records")
	}
	// Wait until the member committed something (the watermark below the
	// stuck record 300), then crash.
	waitFor(t, "a commit before the crash", 10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := cl.Committed(ctx, "crash", "crash")
		return err == nil && len(c) > 0
	})
	cut.Cut()
	close(release)
	_ = r1.stop(t, true) // commits fail: the network is gone

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	committed, err := cl.Committed(ctx, "crash", "crash")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("run 1 processed %d records; committed offsets %v", len(run1), committed)
	if len(committed) == 0 {
		t.Fatal("run 1 committed nothing before the crash (commit interval 100ms)")
	}

	// More records arrive while no member is alive.
	produceN(t, cl, "crash", 900, total-900)

	// Run 2: a new member of the same group.
	var mu sync.Mutex
	var run2 []delivery
	all := newSeen()
	for _, d := range run1 {
		all.add(strconv.Itoa(d.seq))
	}
	b2 := builder(t, cl, "crash")
	r2 := start(t, pipelineFor(b2, func(env *pipeline.Envelope) {
		d := delivery{seqOf(t, env.Payload), env.Partition, env.Offset}
		mu.Lock()
		run2 = append(run2, d)
		mu.Unlock()
		all.add(strconv.Itoa(d.seq))
	}), 5*time.Second)
	waitFor(t, "every record at least once", 30*time.Second, func() bool { return all.distinct() == total })
	waitCommittedToEnd(t, cl, "crash", "crash")
	r2.stop(t, false)

	// Run 2 resumed exactly at the committed offsets: nothing below them
	// came again (duplicates only from the uncommitted tail), everything at
	// or after them did.
	mu.Lock()
	defer mu.Unlock()
	seen2 := map[string]int{}
	for _, d := range run2 {
		if d.offset < committed[int(d.part)] {
			t.Errorf("run 2 redelivered partition %d offset %d below the commit %d", d.part, d.offset, committed[int(d.part)])
		}
		seen2[fmt.Sprint(d.part, "/", d.offset)]++
	}
	tail := 0
	for _, d := range run1 {
		if d.offset >= committed[int(d.part)] {
			tail++
			if k := fmt.Sprint(d.part, "/", d.offset); seen2[k] == 0 {
				t.Errorf("record %s of run 1's uncommitted tail was not redelivered by run 2", k)
			}
		}
	}
	t.Logf("uncommitted tail redelivered: %d records", tail)
}

type assignments struct {
	mu  sync.Mutex
	cur map[int][]int // instance -> partitions
}

func (a *assignments) hooks(i int) func(*kafka.Config) {
	return func(c *kafka.Config) {
		c.OnAssign = func(m map[string][]int) {
			a.mu.Lock()
			a.cur[i] = append([]int(nil), m["scale"]...)
			a.mu.Unlock()
		}
		c.OnRevoke = func(map[string][]int) {
			a.mu.Lock()
			delete(a.cur, i)
			a.mu.Unlock()
		}
	}
}

// balanced reports whether the given instances together own every
// partition of 0..n-1 exactly once, each owning n/len(instances).
func (a *assignments) balanced(n int, instances ...int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	owned := map[int]bool{}
	for _, i := range instances {
		ps := a.cur[i]
		if len(ps) != n/len(instances) {
			return false
		}
		for _, p := range ps {
			if owned[p] {
				return false
			}
			owned[p] = true
		}
	}
	return len(owned) == n && len(a.cur) == len(instances)
}

func (a *assignments) owner(p int) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, ps := range a.cur {
		for _, q := range ps {
			if q == p {
				return i
			}
		}
	}
	return -1
}

// TestScaleOut runs three pipeline instances in one group on a
// six-partition topic: they split the partitions, each processes only its
// own; when one stops, its partitions move to the others and nothing is
// lost.
func TestScaleOut(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"scale": 6}})
	asg := &assignments{cur: map[int][]int{}}
	all := newSeen()
	var mu sync.Mutex
	byInstance := map[int]map[int32]int{} // instance -> partition -> records
	runs := make([]*running, 3)
	for i := range runs {
		i := i
		byInstance[i] = map[int32]int{}
		b := builder(t, cl, "scale", asg.hooks(i))
		g := pipeline.New().Connector("kafka", b).Connector("mem", mem.New(nil))
		g.Record("in").From("kafka://scale", codec.Raw{})
		g.Pipeline("p").From("in").Via(stages.Tap(func(env *pipeline.Envelope) {
			mu.Lock()
			byInstance[i][env.Partition]++
			mu.Unlock()
			all.add(strconv.Itoa(seqOf(t, env.Payload)))
		})).To("mem://sink", codec.Raw{})
		runs[i] = start(t, g, 5*time.Second)
	}
	waitFor(t, "3 instances x 2 partitions", 30*time.Second, func() bool { return asg.balanced(6, 0, 1, 2) })
	owners := map[int]int{}
	for p := 0; p < 6; p++ {
		owners[p] = asg.owner(p)
	}
	produceN(t, cl, "scale", 0, 600)
	waitFor(t, "600 records", 20*time.Second, func() bool { return all.distinct() == 600 })
	mu.Lock()
	for i, parts := range byInstance {
		if len(parts) == 0 {
			t.Errorf("instance %d processed nothing", i)
		}
		for p := range parts {
			if owners[int(p)] != i {
				t.Errorf("instance %d processed partition %d owned by instance %d", i, p, owners[int(p)])
			}
		}
	}
	for i := range byInstance {
		byInstance[i] = map[int32]int{}
	}
	mu.Unlock()

	runs[2].stop(t, false)
	waitFor(t, "2 instances x 3 partitions", 30*time.Second, func() bool { return asg.balanced(6, 0, 1) })
	produceN(t, cl, "scale", 600, 600)
	waitFor(t, "1200 records", 20*time.Second, func() bool { return all.distinct() == 1200 })
	mu.Lock()
	moved := 0
	for p, o := range owners {
		if o != 2 {
			continue
		}
		if n := byInstance[0][int32(p)] + byInstance[1][int32(p)]; n > 0 {
			moved++
		}
	}
	if byInstance[2] != nil && len(byInstance[2]) > 0 {
		t.Errorf("stopped instance processed %v", byInstance[2])
	}
	mu.Unlock()
	if moved != 2 {
		t.Errorf("%d of the stopped instance's 2 partitions were taken over", moved)
	}
	waitCommittedToEnd(t, cl, "scale", "scale")
}

// TestBadPayloadsDeadLettered sends undecodable records and records a
// stage rejects: they go to the dead-letter topic with provenance, the
// rest to the output, and the commits reach the end (nothing is stuck).
func TestBadPayloadsDeadLettered(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"dl-in": 2, "dl-out": 1, "dlq": 1}})
	var msgs []kafkago.Message
	for i := 0; i < 20; i++ {
		switch i % 5 {
		case 1:
			msgs = append(msgs, kafkatest.Msg("k", "not json "+strconv.Itoa(i)))
		case 3:
			msgs = append(msgs, kafkatest.Msg("k", fmt.Sprintf(`{"seq":%d,"temp":"hot"}`, i)))
		default:
			msgs = append(msgs, kafkatest.Msg("k", fmt.Sprintf(`{"seq":%d,"temp":%d}`, i, i)))
		}
	}
	cl.Produce(t, "dl-in", msgs...)
	g := pipeline.New().Connector("kafka", builder(t, cl, "dl"))
	g.Record("in").From("kafka://dl-in", codec.JSON{})
	g.Pipeline("p").From("in").Via(stages.MapValue(func(m map[string]any) (map[string]any, error) {
		if _, ok := m["temp"].(float64); !ok {
			return nil, errors.New("temp is not a number")
		}
		return m, nil
	})).To("kafka://dl-out", codec.JSON{})
	g.DeadLetterTo("kafka://dlq", codec.Raw{})
	run := start(t, g, 5*time.Second)

	out := cl.Consume(t, "dl-out", 12, 20*time.Second)
	dlq := cl.Consume(t, "dlq", 8, 20*time.Second)
	if len(out) != 12 || len(dlq) != 8 {
		t.Fatalf("out %d dlq %d, want 12 and 8", len(out), len(dlq))
	}
	stagesSeen := map[string]int{}
	for _, m := range dlq {
		var d pipeline.DeadLetter
		if err := json.Unmarshal(m.Value, &d); err != nil {
			t.Fatalf("dead letter %q: %v", m.Value, err)
		}
		stagesSeen[d.Stage]++
		if d.Topic != "dl-in" || d.Error == "" || d.Payload == "" {
			t.Errorf("dead letter lacks provenance: %+v", d)
		}
		if d.Stage == "decode" && !strings.HasPrefix(d.Payload, "not json") {
			t.Errorf("decode dead letter carries %q", d.Payload)
		}
	}
	if stagesSeen["decode"] != 4 || len(stagesSeen) != 2 {
		t.Errorf("dead letters by stage %v, want 4 decode and 4 from the map stage", stagesSeen)
	}
	waitCommittedToEnd(t, cl, "dl", "dl-in")
	run.stop(t, false)
}

// flaky is a sink connector that rejects chosen records a number of times.
type flaky struct {
	mu    sync.Mutex
	fails map[int]int // seq -> remaining failures
	got   []int
}

func (f *flaky) Scheme() string { return "flaky" }
func (f *flaky) Build(context.Context, pipeline.BuildEnv) (pipeline.Connector, error) {
	return f, nil
}
func (f *flaky) Close(context.Context) error { return nil }
func (f *flaky) Publish(_ context.Context, _ string, _ any, env *pipeline.Envelope) error {
	var v struct{ Seq int }
	_ = json.Unmarshal(env.Payload, &v)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails[v.Seq] > 0 {
		f.fails[v.Seq]--
		return errors.New("sink unavailable")
	}
	f.got = append(f.got, v.Seq)
	return nil
}

func (f *flaky) delivered() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.got...)
}

// TestNackRedelivers makes a sink reject one record twice with no
// dead-letter destination: the record is nacked, the partition is rewound
// and the record is delivered again, in order, and the watermark never
// commits past it while it is failing.
func TestNackRedelivers(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"nack": 1}})
	var msgs []kafkago.Message
	for i := 0; i < 40; i++ {
		msgs = append(msgs, kafkatest.Msg("k", fmt.Sprintf(`{"seq":%d}`, i)))
	}
	cl.Produce(t, "nack", msgs...)
	sink := &flaky{fails: map[int]int{10: 2}}
	g := pipeline.New().Connector("kafka", builder(t, cl, "nack")).Connector("flaky", sink)
	g.Record("in").From("kafka://nack", codec.JSON{})
	g.Pipeline("p").From("in").To("flaky://x", codec.JSON{})
	run := start(t, g, 5*time.Second)

	waitFor(t, "all 40 records delivered", 20*time.Second, func() bool {
		got := sink.delivered()
		return len(got) > 0 && got[len(got)-1] == 39 && contains(got, 10)
	})
	got := sink.delivered()
	// Delivered: 0..9 once; then, after the rewind, 10..39 in order (records
	// after 10 that were delivered before the rewind come again).
	for i := 0; i < 10; i++ {
		if got[i] != i {
			t.Fatalf("delivery %d = %d, want %d (got %v)", i, got[i], i, got)
		}
	}
	last := -1
	idx10 := -1
	for i, s := range got {
		if s == 10 {
			idx10 = i
		}
	}
	for _, s := range got[idx10:] {
		if s <= last {
			t.Fatalf("after redelivery, %d follows %d (got %v)", s, last, got)
		}
		last = s
	}
	if len(got[idx10:]) != 30 {
		t.Fatalf("after redelivery %d records, want 30 (got %v)", len(got[idx10:]), got)
	}
	waitCommittedToEnd(t, cl, "nack", "nack")
	run.stop(t, false)
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// TestBrokerDownAtStart starts a pipeline while the cluster is down: the
// runner keeps running and reports not-ready, and once the cluster is
// back it joins and processes records.
func TestBrokerDownAtStart(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Persist: true, Topics: map[string]int{"late": 1, "late-out": 1}})
	cl.Stop()
	g := pipeline.New().Connector("kafka", builder(t, cl, "late"))
	g.Record("in").From("kafka://late", codec.Raw{})
	g.Pipeline("p").From("in").To("kafka://late-out", codec.Raw{})
	run := start(t, g, 5*time.Second)
	waitFor(t, "runner running", 5*time.Second, func() bool { return run.r.Ready() != nil && !strings.Contains(run.r.Ready().Error(), "not running") })
	for i := 0; i < 3; i++ {
		if err := run.r.Ready(); err == nil {
			t.Fatal("ready while the cluster is down")
		}
		select {
		case err := <-run.done:
			t.Fatalf("runner stopped while the cluster is down: %v", err)
		case <-time.After(300 * time.Millisecond):
		}
	}
	cl.Restart()
	run.waitReady(t)
	cl.Produce(t, "late", kafkatest.Msg("a", "1"), kafkatest.Msg("b", "2"))
	out := cl.Consume(t, "late-out", 2, 20*time.Second)
	if len(out) != 2 {
		t.Fatalf("late-out has %d records", len(out))
	}
	run.stop(t, false)
}

// TestProducerOnlyReadiness: a connector with only outbound links reports
// not-ready while no broker answers and ready once one does.
func TestProducerOnlyReadiness(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Persist: true, Topics: map[string]int{"po": 1}})
	cl.Stop()
	b := builder(t, cl, "")
	c, err := b.Build(context.Background(), pipeline.BuildEnv{Name: "kafka", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	rd := c.(pipeline.Readiness)
	if rd.Ready() == nil {
		t.Fatal("ready with the cluster down")
	}
	cl.Restart()
	waitFor(t, "producer ready", 15*time.Second, func() bool { return rd.Ready() == nil })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	env := pipeline.Envelope{Payload: []byte("x"), Key: []byte("k"), Headers: pipeline.Headers{{Key: "h", Value: "v"}}}
	if err := c.Publish(ctx, "po", nil, &env); err != nil {
		t.Fatal(err)
	}
	// A missing topic fails at once with the broker's answer (so the
	// runner dead-letters it) instead of retrying until the deadline.
	if err := c.Publish(ctx, "missing-topic", nil, &env); !errors.Is(err, kafkago.UnknownTopicOrPartition) {
		t.Fatalf("publish to a missing topic: %v, want UnknownTopicOrPartition", err)
	}
	got := cl.Consume(t, "po", 1, 10*time.Second)
	if string(got[0].Value) != "x" || string(got[0].Key) != "k" || string(got[0].Headers[0].Value) != "v" {
		t.Fatalf("got %+v", got[0])
	}
	// With nothing being produced, readiness still follows the cluster:
	// the connector checks it in the background.
	cl.Stop()
	waitFor(t, "idle producer not ready while the cluster is down", 20*time.Second, func() bool { return rd.Ready() != nil })
	cl.Restart()
	waitFor(t, "idle producer ready again", 20*time.Second, func() bool { return rd.Ready() == nil })
}

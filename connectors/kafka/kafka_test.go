package kafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kafka"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
	"github.com/aimdb-dev/aimdb-flow/tests/kafkatest"
	kafkago "github.com/segmentio/kafka-go"
)

func testLogger() *slog.Logger {
	lvl := slog.LevelWarn
	if os.Getenv("KAFKA_TEST_DEBUG") != "" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

// fastGroup makes group membership changes quick for tests.
func fastGroup(cfg *kafka.Config) {
	cfg.CommitInterval = 100 * time.Millisecond
	cfg.SessionTimeout = 2 * time.Second
	cfg.RebalanceTimeout = 3 * time.Second
	cfg.HeartbeatInterval = 200 * time.Millisecond
	cfg.RevokeTimeout = 2 * time.Second
	cfg.Writer.Linger = 2 * time.Millisecond
}

func builder(t *testing.T, cl *kafkatest.Cluster, group string, mut ...func(*kafka.Config)) *kafka.Builder {
	t.Helper()
	cfg := kafka.Config{Brokers: cl.Addrs(), Group: group}
	fastGroup(&cfg)
	for _, m := range mut {
		m(&cfg)
	}
	b, err := kafka.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type running struct {
	r      *pipeline.Runner
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, g *pipeline.Graph, drain time.Duration) *running {
	t.Helper()
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{Logger: testLogger(), DrainTimeout: drain})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &running{r: r, cancel: cancel, done: make(chan error, 1)}
	go func() { run.done <- r.Run(ctx) }()
	t.Cleanup(func() { run.stop(t, false) })
	return run
}

// stop cancels the runner and waits for Run to return; it reports Run's
// error, failing the test on it unless tolerate is set.
func (run *running) stop(t *testing.T, tolerate bool) error {
	t.Helper()
	if run.done == nil {
		return nil
	}
	run.cancel()
	var err error
	select {
	case err = <-run.done:
	case <-time.After(30 * time.Second):
		t.Fatal("runner did not stop")
	}
	run.done = nil
	if err != nil && !tolerate {
		t.Fatalf("run: %v", err)
	}
	return err
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (run *running) waitReady(t *testing.T) {
	t.Helper()
	waitFor(t, "runner ready", 15*time.Second, func() bool { return run.r.Ready() == nil })
}

// seen collects records delivered to a sink, by "partition/offset" of the
// inbound record.
type seen struct {
	mu    sync.Mutex
	count map[string]int
	n     int
}

func newSeen() *seen { return &seen{count: map[string]int{}} }

func (s *seen) add(k string) {
	s.mu.Lock()
	s.count[k]++
	s.n++
	s.mu.Unlock()
}

func (s *seen) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.count)
}

func (s *seen) snapshot() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.count))
	for k, v := range s.count {
		out[k] = v
	}
	return out
}

func produceN(t *testing.T, cl *kafkatest.Cluster, topic string, from, n int) {
	t.Helper()
	msgs := make([]kafkago.Message, n)
	for i := range msgs {
		seq := from + i
		msgs[i] = kafkatest.Msg("k"+strconv.Itoa(seq%17), fmt.Sprintf(`{"seq":%d}`, seq))
	}
	cl.Produce(t, topic, msgs...)
}

func TestRoundTripKeysHeaders(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"in": 3, "out": 3}})
	var msgs []kafkago.Message
	for i := 0; i < 30; i++ {
		msgs = append(msgs, kafkatest.Msg("dev-"+strconv.Itoa(i%4), fmt.Sprintf(`{"seq":%d,"temp":%d}`, i, 20+i%10), "trace", "t-"+strconv.Itoa(i)))
	}
	cl.Produce(t, "in", msgs...)

	type meta struct {
		part   int32
		offset int64
		key    string
		ts     time.Time
	}
	var mu sync.Mutex
	var metas []meta
	g := pipeline.New().Connector("kafka", builder(t, cl, "rt"))
	g.Record("readings").From("kafka://in", codec.JSON{})
	g.Pipeline("hot").From("readings").
		Via(stages.Tap(func(env *pipeline.Envelope) {
			mu.Lock()
			metas = append(metas, meta{env.Partition, env.Offset, string(env.Key), env.Time})
			mu.Unlock()
		}), stages.FilterValue(func(m map[string]any) bool { return m["temp"].(float64) >= 25 })).
		To("kafka://out", codec.JSON{}, pipeline.WithParams(pipeline.Params{"acks": "all", "compression": "snappy"}))
	run := start(t, g, 5*time.Second)

	out := cl.Consume(t, "out", 15, 20*time.Second)
	if len(out) != 15 {
		t.Fatalf("out has %d records, want 15", len(out))
	}
	lastSeq := map[string]float64{}
	for _, m := range out {
		var v map[string]any
		if err := json.Unmarshal(m.Value, &v); err != nil {
			t.Fatal(err)
		}
		seq := v["seq"].(float64)
		if want := "dev-" + strconv.Itoa(int(seq)%4); string(m.Key) != want {
			t.Errorf("seq %v: key %q, want %q", seq, m.Key, want)
		}
		if len(m.Headers) != 1 || m.Headers[0].Key != "trace" || string(m.Headers[0].Value) != "t-"+strconv.Itoa(int(seq)) {
			t.Errorf("seq %v: headers %+v", seq, m.Headers)
		}
		if prev, ok := lastSeq[string(m.Key)]; ok && seq <= prev {
			t.Errorf("key %s: seq %v after %v (order per key broken)", m.Key, seq, prev)
		}
		lastSeq[string(m.Key)] = seq
	}
	mu.Lock()
	if len(metas) != 30 {
		t.Errorf("pipeline saw %d records, want 30", len(metas))
	}
	for _, m := range metas {
		if m.part < 0 || m.part > 2 || m.offset < 0 || m.key == "" || time.Since(m.ts) > time.Minute {
			t.Errorf("bad metadata %+v", m)
		}
	}
	mu.Unlock()
	// Everything was acknowledged, so the committed offsets reach the end.
	waitCommittedToEnd(t, cl, "rt", "in")
	run.stop(t, false)
}

func waitCommittedToEnd(t *testing.T, cl *kafkatest.Cluster, group, topic string) {
	t.Helper()
	waitFor(t, "commits to reach the end of "+topic, 15*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		lag, err := cl.Lag(ctx, group, topic)
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
}

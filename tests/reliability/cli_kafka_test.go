package reliability

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/aimdb-dev/aimdb-flow/tests/kafkatest"
)

const kafkaRelayFlow = `# Kafka relay used by the shutdown tests (consumer group, watermark
# commits). Small producer batches and a bounded number of unconfirmed
# records keep what one run can take from the input well below its size
# while the test holds the output's produce requests.
connector kafka "kafka://${KAFKA_BROKERS}" group "sd-group" client_id "sd"
    commit_interval 100ms session_timeout 2s heartbeat_interval 200ms rebalance_timeout 3s
    batch_size 20 max_in_flight 64

record in {
  from "kafka://sd-in" decode json
  buffer queue 256
}

pipeline relay {
  from in
  filter ` + "`seq >= 0`" + `
  to "kafka://sd-out" encode json
}
`

// produceGate holds produce requests to one topic inside kfake: it answers
// them normally until limit records went through, then parks every later
// one (kfake.SleepControl: other connections, fetches and commits go on)
// until release. It is how the Kafka shutdown tests pause the sink with the
// source still flowing.
type produceGate struct {
	topic   string
	limit   int64
	release chan struct{}
	open    func() // closes release once (also at cleanup)

	mu       sync.Mutex
	passed   int64 // records in produce requests answered normally before release
	held     int64 // records in parked requests
	released bool
}

func newProduceGate(t *testing.T, cl *kafkatest.Cluster, topic string, limit int) *produceGate {
	g := &produceGate{topic: topic, limit: int64(limit), release: make(chan struct{})}
	g.open = sync.OnceFunc(func() {
		g.mu.Lock()
		g.released = true
		g.mu.Unlock()
		close(g.release)
	})
	t.Cleanup(g.open) // before the cluster stops (cleanups run last-in first-out)
	k := cl.Kfake()
	k.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		k.KeepControl()
		pr, ok := req.(*kmsg.ProduceRequest)
		if !ok {
			return nil, nil, false
		}
		n := recordsFor(pr, g.topic)
		if n == 0 {
			return nil, nil, false
		}
		g.mu.Lock()
		if g.released || g.passed < g.limit {
			if !g.released {
				g.passed += n
			}
			g.mu.Unlock()
			return nil, nil, false
		}
		g.held += n
		g.mu.Unlock()
		k.SleepControl(func() { <-g.release })
		return nil, nil, false // handled normally once released
	})
	return g
}

// state returns the records answered before the gate closed and those
// parked since.
func (g *produceGate) state() (passed, held int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.passed, g.held
}

// recordsFor counts the records of a produce request bound for topic.
func recordsFor(req *kmsg.ProduceRequest, topic string) int64 {
	var n int64
	for _, t := range req.Topics {
		if t.Topic != topic {
			continue
		}
		for _, p := range t.Partitions {
			for b := p.Records; len(b) > 12; {
				var rb kmsg.RecordBatch
				if err := rb.ReadFrom(b); err != nil {
					break
				}
				n += int64(rb.NumRecords)
				l := 12 + int(rb.Length)
				if l <= 12 || l > len(b) {
					break
				}
				b = b[l:]
			}
		}
	}
	return n
}

// committedTotal sums the group's committed offsets (0 on error).
func committedTotal(cl *kafkatest.Cluster, group, topic string) (map[int]int64, int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := cl.Committed(ctx, group, topic)
	if err != nil {
		return nil, 0
	}
	var sum int64
	for _, o := range c {
		sum += o
	}
	return c, sum
}

// checkCommittedInOutput reads the output topic and fails if a record
// below the group's committed offsets is missing from it: a commit must
// never run ahead of what reached the sink. It returns the committed
// total and the output's counts.
func checkCommittedInOutput(t *testing.T, cl *kafkatest.Cluster, in []inRecord, when string) (int64, *counts) {
	t.Helper()
	committed, sum := committedTotal(cl, "sd-group", "sd-in")
	out, err := cl.ReadAll("sd-out", 0, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := newCounts()
	for _, m := range out {
		got.add(seqOf(m.Value))
	}
	for _, m := range in {
		if m.offset < committed[m.partition] && got.get(m.seq) == 0 {
			t.Fatalf("%s: partition %d offset %d (seq %d) is committed (%v) but not in the output", when, m.partition, m.offset, m.seq, committed)
		}
	}
	return sum, got
}

// inRecord is an input record's position and id.
type inRecord struct {
	partition int
	offset    int64
	seq       int
}

// watermarks returns, per input partition, the offset of the first record
// missing from got: how far the group may commit.
func watermarks(in []inRecord, got *counts) map[int]int64 {
	byPart := map[int][]inRecord{}
	for _, m := range in {
		byPart[m.partition] = append(byPart[m.partition], m)
	}
	w := map[int]int64{}
	for p, ms := range byPart {
		sort.Slice(ms, func(i, j int) bool { return ms[i].offset < ms[j].offset })
		w[p] = ms[0].offset
		for _, m := range ms {
			if got.get(m.seq) == 0 {
				break
			}
			w[p] = m.offset + 1
		}
	}
	return w
}

// kafkaShutdown is the outcome of kafkaShutdownScenario.
type kafkaShutdown struct {
	exit       int
	atSignal   cliStats
	committed1 int64 // committed after the first run
	dups       int
}

// kafkaShutdownScenario relays n records from a 2-partition topic through
// `aimdb-flow run`:
//
//  1. the output's produce requests are answered for the first n/5
//     records, then held (produceGate): the relay keeps consuming until
//     at least minBacklog records are inside the pipeline, and the group
//     commits what was produced (some, not all: mid-stream);
//  2. the process gets sig while the output is held (for SIGTERM the test
//     waits until the signal was handled and checks the backlog is still
//     inside); for SIGKILL the commits are checked against the output
//     before the held requests are answered;
//  3. the first run must end with its commits strictly short of the end
//     of the input and never ahead of the output;
//  4. a second run of the group completes the input; every record must be
//     in the output.
func kafkaShutdownScenario(t *testing.T, sig syscall.Signal, n int) kafkaShutdown {
	cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"sd-in": 2, "sd-out": 2}})
	var msgs []kafkaMsg
	for i := 0; i < n; i++ {
		msgs = append(msgs, kafkaMsg{key: fmt.Sprint("k", i%5), value: fmt.Sprintf(`{"seq":%d}`, i)})
	}
	produceKafka(t, cl, "sd-in", msgs)
	raw, err := cl.ReadAll("sd-in", n, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var in []inRecord
	for _, m := range raw {
		in = append(in, inRecord{partition: m.Partition, offset: m.Offset, seq: seqOf(m.Value)})
	}
	gate := newProduceGate(t, cl, "sd-out", n/5)
	flow := writeFlow(t, "kafka-relay.flow", kafkaRelayFlow)
	env := []string{"KAFKA_BROKERS=" + strings.Join(cl.Addrs(), ",")}
	var res kafkaShutdown

	run1 := startCLI(t, env, "--log-level", "info", "--drain-timeout", "20s", flow)
	waitFor(t, 60*time.Second, fmt.Sprintf("output held and a backlog of %d records in the pipeline", minBacklog), func() bool {
		select {
		case <-run1.done:
			t.Fatalf("first run exited early: %v", run1.err)
		default:
		}
		_, held := gate.state()
		return held > 0 && run1.stats().Backlog() >= minBacklog
	})
	passed, _ := gate.state()
	// The commits catch up with what was produced: per input partition,
	// the longest prefix of records that are in the output.
	_, got := checkCommittedInOutput(t, cl, in, "first run, output held")
	want := watermarks(in, got)
	waitFor(t, 30*time.Second, fmt.Sprintf("commits at the produced watermarks %v (%d records produced)", want, passed), func() bool {
		c, _ := committedTotal(cl, "sd-group", "sd-in")
		for p, w := range want {
			if c[p] < w {
				return false
			}
		}
		return true
	})
	if sum, _ := checkCommittedInOutput(t, cl, in, "first run, output held"); sum == 0 {
		t.Fatalf("first run committed nothing before the signal (watermarks %v)", want)
	}
	res.atSignal = run1.signalWithBacklog(sig, minBacklog)
	if sig == syscall.SIGTERM {
		gate.open()
	}
	res.exit = run1.wait(sig, 30*time.Second)
	res.committed1, _ = checkCommittedInOutput(t, cl, in, "after the first run")
	gate.open()
	if res.committed1 == 0 || res.committed1 >= int64(n) {
		t.Fatalf("first run committed %d of %d records: the stop did not land mid-stream", res.committed1, n)
	}
	if sig == syscall.SIGTERM && res.committed1 < int64(res.atSignal.Accepted) {
		t.Fatalf("first run accepted %d records but committed only %d after a clean stop: the drain lost its backlog", res.atSignal.Accepted, res.committed1)
	}
	t.Logf("first run: exit %d, %d produced before the output was held, backlog %d at the signal (%+v), committed %d of %d",
		res.exit, passed, res.atSignal.Backlog(), res.atSignal, res.committed1, n)

	run2 := startCLI(t, env, "--drain-timeout", "20s", flow)
	deadline := time.Now().Add(90 * time.Second)
	for {
		if _, s := committedTotal(cl, "sd-group", "sd-in"); s >= int64(n) {
			break
		}
		if time.Now().After(deadline) {
			_, s := committedTotal(cl, "sd-group", "sd-in")
			t.Fatalf("second run committed %d of %d within 90s", s, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c := run2.signal(syscall.SIGTERM, 30*time.Second); c != 0 {
		t.Fatalf("second run exit code %d", c)
	}
	_, got = checkCommittedInOutput(t, cl, in, "after the second run")
	var missing []int
	for i := 0; i < n; i++ {
		if got.get(i) == 0 {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d records missing from the output, first %v", len(missing), n, missing[:min(len(missing), 10)])
	}
	res.dups = got.duplicates()
	t.Logf("after the second run: %d distinct of %d, %d duplicates", got.distinct(), n, res.dups)
	return res
}

// TestSIGTERMKafkaGroupCommitsAndExitsZero: SIGTERM to a Kafka-group relay
// while at least minBacklog records are inside the pipeline (its output
// held): exit 0, every record the pipeline had accepted is produced and
// committed, the commits stop short of the end of the input and never run
// ahead of the output, and the second run of the group delivers the rest
// with no duplicate (the first run committed exactly what it had
// forwarded).
func TestSIGTERMKafkaGroupCommitsAndExitsZero(t *testing.T) {
	res := kafkaShutdownScenario(t, syscall.SIGTERM, 1500)
	if res.exit != 0 {
		t.Fatalf("exit code %d after SIGTERM", res.exit)
	}
	if res.dups != 0 {
		t.Fatalf("%d duplicates after a clean shutdown", res.dups)
	}
}

// TestSIGKILLKafkaGroupRedeliversUncommittedTail: SIGKILL instead, with
// the backlog inside: what was committed is in the output, the commits
// stop short of the end, and the next member of the group receives the
// uncommitted tail again (every record in the output; duplicates allowed,
// at-least-once, and reported).
func TestSIGKILLKafkaGroupRedeliversUncommittedTail(t *testing.T) {
	res := kafkaShutdownScenario(t, syscall.SIGKILL, 1500)
	if res.exit != -1 {
		t.Fatalf("exit code %d, want -1 (killed)", res.exit)
	}
	if res.committed1 >= int64(res.atSignal.Accepted) {
		t.Fatalf("first run committed %d with %d accepted: no uncommitted tail at the kill", res.committed1, res.atSignal.Accepted)
	}
	t.Logf("at-least-once after SIGKILL: uncommitted tail of %d accepted records redelivered, %d duplicates",
		int64(res.atSignal.Accepted)-res.committed1, res.dups)
}

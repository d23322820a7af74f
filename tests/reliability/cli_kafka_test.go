package reliability

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/tests/kafkatest"
)

const kafkaRelayFlow = `# Kafka relay used by the shutdown tests (consumer group, watermark commits).
connector kafka "kafka://${KAFKA_BROKERS}" group "sd-group" client_id "sd"
    commit_interval 100ms session_timeout 2s heartbeat_interval 200ms rebalance_timeout 3s

record in {
  from "kafka://sd-in" decode json
  buffer queue 256
}

pipeline relay {
  from in
  throttle ${RATE} per 1s
  to "kafka://sd-out" encode json
}
`

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

// kafkaShutdownScenario relays n records from a 2-partition topic through
// `aimdb-flow run` (throttled, so a backlog is in flight), signals the
// process a third of the way through, checks that every input record below
// the committed offsets at that moment is in the output topic (nothing
// committed is lost), then lets a second run of the same group finish and
// checks that every record arrived.
func kafkaShutdownScenario(t *testing.T, sig syscall.Signal, n int) (exit int, dups int) {
	cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"sd-in": 2, "sd-out": 2}})
	var msgs []kafkaMsg
	for i := 0; i < n; i++ {
		msgs = append(msgs, kafkaMsg{key: fmt.Sprint("k", i%5), value: fmt.Sprintf(`{"seq":%d}`, i)})
	}
	produceKafka(t, cl, "sd-in", msgs)
	in, err := cl.ReadAll("sd-in", n, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	flow := writeFlow(t, "kafka-relay.flow", kafkaRelayFlow)
	env := []string{"KAFKA_BROKERS=" + strings.Join(cl.Addrs(), ","), "RATE=400"}

	run1 := startCLI(t, env, "--drain-timeout", "20s", flow)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, sum := committedTotal(cl, "sd-group", "sd-in"); sum >= int64(n/3) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("first run did not commit a third of the input within 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	exit = run1.signal(sig, 30*time.Second)
	committed, sum := committedTotal(cl, "sd-group", "sd-in")
	// SIGTERM drains whatever was fetched (possibly the whole input);
	// SIGKILL must have come in mid-stream for the test to mean anything.
	if sum == 0 || (sig == syscall.SIGKILL && sum >= int64(n)) {
		t.Fatalf("committed %d of %d after the first run", sum, n)
	}
	out, err := cl.ReadAll("sd-out", 0, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := newCounts()
	for _, m := range out {
		got.add(seqOf(m.Value))
	}
	for _, m := range in {
		if m.Offset < committed[m.Partition] && got.get(seqOf(m.Value)) == 0 {
			t.Fatalf("partition %d offset %d (seq %d) was committed but is not in the output", m.Partition, m.Offset, seqOf(m.Value))
		}
	}
	t.Logf("first run: exit %d, committed %d of %d, %d records out", exit, sum, n, len(out))

	run2 := startCLI(t, env, "--drain-timeout", "20s", flow)
	deadline = time.Now().Add(90 * time.Second)
	for {
		if _, s := committedTotal(cl, "sd-group", "sd-in"); s >= int64(n) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("second run did not commit everything within 90s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c := run2.signal(syscall.SIGTERM, 30*time.Second); c != 0 {
		t.Fatalf("second run exit code %d", c)
	}
	out, err = cl.ReadAll("sd-out", 0, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got = newCounts()
	for _, m := range out {
		got.add(seqOf(m.Value))
	}
	for i := 0; i < n; i++ {
		if got.get(i) == 0 {
			t.Fatalf("seq %d lost", i)
		}
	}
	t.Logf("after the second run: %d distinct of %d, %d duplicates", got.distinct(), n, got.duplicates())
	return exit, got.duplicates()
}

// TestSIGTERMKafkaGroupCommitsAndExitsZero: SIGTERM to a Kafka-group relay
// under load: exit 0, every committed offset's record is in the output,
// and the second run of the group delivers the rest with no duplicate
// (the first run committed exactly what it had forwarded).
func TestSIGTERMKafkaGroupCommitsAndExitsZero(t *testing.T) {
	n := 1500
	if testing.Short() {
		n = 600
	}
	exit, dups := kafkaShutdownScenario(t, syscall.SIGTERM, n)
	if exit != 0 {
		t.Fatalf("exit code %d after SIGTERM", exit)
	}
	if dups != 0 {
		t.Fatalf("%d duplicates after a clean shutdown", dups)
	}
}

// TestSIGKILLKafkaGroupRedeliversUncommittedTail: SIGKILL instead: what
// was committed is in the output, and the next member of the group
// receives the uncommitted tail again (at-least-once).
func TestSIGKILLKafkaGroupRedeliversUncommittedTail(t *testing.T) {
	n := 1500
	if testing.Short() {
		n = 600
	}
	exit, dups := kafkaShutdownScenario(t, syscall.SIGKILL, n)
	if exit != -1 {
		t.Fatalf("exit code %d, want -1 (killed)", exit)
	}
	t.Logf("at-least-once after SIGKILL: %d duplicates", dups)
}

package kafka_test

import (
	"fmt"
	"strconv"
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
)

// TestRebalanceAbandonsStuckRecords: member A is stuck on a record when
// member B joins. A's revoked partitions get RevokeTimeout to finish, then
// A commits what finished and abandons the stuck record; its late ack is
// ignored, the record is delivered again by the partition's next owner,
// and the commits reach the end with nothing lost.
func TestRebalanceAbandonsStuckRecords(t *testing.T) {
	const total = 200
	cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"rb": 2}})
	produceN(t, cl, "rb", 0, total)

	var mu sync.Mutex
	deliveries := map[string]int{} // partition/offset -> times delivered
	all := newSeen()
	var revokedA, assignedB atomic.Bool
	reached, release := make(chan struct{}), make(chan struct{})
	var stuck string
	var n atomic.Int64

	graph := func(b *kafka.Builder, gate bool) *pipeline.Graph {
		g := pipeline.New().Connector("kafka", b).Connector("mem", mem.New(nil))
		g.Record("in").From("kafka://rb", codec.Raw{})
		g.Pipeline("p").From("in").Via(stages.Tap(func(env *pipeline.Envelope) {
			k := fmt.Sprint(env.Partition, "/", env.Offset)
			mu.Lock()
			deliveries[k]++
			mu.Unlock()
			all.add(strconv.Itoa(seqOf(t, env.Payload)))
			if gate && n.Add(1) == 50 {
				stuck = k
				close(reached)
				<-release
			}
		})).To("mem://sink", codec.Raw{})
		return g
	}
	short := func(c *kafka.Config) { c.RevokeTimeout = 300 * time.Millisecond }
	a := builder(t, cl, "rb", short, func(c *kafka.Config) {
		c.OnRevoke = func(map[string][]int) { revokedA.Store(true) }
	})
	runA := start(t, graph(a, true), 5*time.Second)
	select {
	case <-reached:
	case <-time.After(20 * time.Second):
		t.Fatal("member A never reached its 50th record")
	}
	b := builder(t, cl, "rb", short, func(c *kafka.Config) {
		c.OnAssign = func(m map[string][]int) {
			if len(m["rb"]) > 0 {
				assignedB.Store(true)
			}
		}
	})
	runB := start(t, graph(b, false), 5*time.Second)
	waitFor(t, "A to give up its partitions and B to get some", 20*time.Second, func() bool { return revokedA.Load() && assignedB.Load() })
	close(release)
	waitFor(t, "every record", 30*time.Second, func() bool { return all.distinct() == total })
	waitCommittedToEnd(t, cl, "rb", "rb")
	mu.Lock()
	if deliveries[stuck] < 2 {
		t.Errorf("stuck record %s delivered %d times; want it redelivered after being abandoned", stuck, deliveries[stuck])
	}
	mu.Unlock()
	runB.stop(t, false)
	runA.stop(t, false)
}

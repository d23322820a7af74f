package kafka_test

import (
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
	"github.com/aimdb-dev/aimdb-flow/tests/kafkatest"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAsyncProduceErrorRedelivers: the broker rejects a produce request of
// the pipeline's output (a non-retriable error, reported through the
// writer's completion callback after PublishAsync returned). The failure
// reaches the source's ack as a nack, the input partition is rewound, the
// records are produced again, and the commits reach the end only once
// every record is in the output topic.
func TestAsyncProduceErrorRedelivers(t *testing.T) {
	const total = 50
	cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"pe-in": 1, "pe-out": 1}})
	produceN(t, cl, "pe-in", 0, total)

	rejected := rejectFirstProduce(cl, "pe-out")

	var mu sync.Mutex
	delivered := map[int64]int{}
	g := pipeline.New().Connector("kafka", builder(t, cl, "pe"))
	g.Record("in").From("kafka://pe-in", codec.Raw{})
	g.Pipeline("p").From("in").Via(stages.Tap(func(env *pipeline.Envelope) {
		mu.Lock()
		delivered[env.Offset]++
		mu.Unlock()
	})).To("kafka://pe-out", codec.Raw{})
	run := start(t, g, 5*time.Second)

	waitCommittedToEnd(t, cl, "pe", "pe-in")
	if rejected.Load() != 1 {
		t.Fatalf("the broker rejected %d produce requests, want 1", rejected.Load())
	}
	out, err := cl.ReadAll("pe-out", 0, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]bool{}
	for _, m := range out {
		got[seqOf(t, m.Value)] = true
	}
	for i := 0; i < total; i++ {
		if !got[i] {
			t.Errorf("record %d missing from the output", i)
		}
	}
	mu.Lock()
	again := 0
	for _, n := range delivered {
		if n > 1 {
			again++
		}
	}
	mu.Unlock()
	if again == 0 {
		t.Error("no record was redelivered after the rejected produce")
	}
	t.Logf("%d records redelivered after the rejected produce; output has %d records for %d inputs", again, len(out), total)
	run.stop(t, false)
}

// TestAsyncProduceRejectionDeadLettered: with a dead-letter destination, a
// record the broker finally rejects after the asynchronous hand-off goes
// to the dead-letter topic with provenance and is acknowledged, so the
// input is not redelivered and every other record still reaches the
// output.
func TestAsyncProduceRejectionDeadLettered(t *testing.T) {
	const total = 30
	cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"pd-in": 1, "pd-out": 1, "pd-dlq": 1}})
	produceN(t, cl, "pd-in", 0, total)

	rejectFirstProduce(cl, "pd-out")

	var mu sync.Mutex
	delivered := map[int64]int{}
	g := pipeline.New().Connector("kafka", builder(t, cl, "pd"))
	g.Record("in").From("kafka://pd-in", codec.Raw{})
	g.Pipeline("p").From("in").Via(stages.Tap(func(env *pipeline.Envelope) {
		mu.Lock()
		delivered[env.Offset]++
		mu.Unlock()
	})).To("kafka://pd-out", codec.Raw{})
	g.DeadLetterTo("kafka://pd-dlq", codec.Raw{})
	run := start(t, g, 5*time.Second)

	waitCommittedToEnd(t, cl, "pd", "pd-in")
	dlq, err := cl.ReadAll("pd-dlq", 0, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cl.ReadAll("pd-out", 0, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(dlq) == 0 {
		t.Fatal("the rejected records were not dead-lettered")
	}
	// The connector reports the rejection as pipeline.Permanent on the
	// record's ack share; the runner dead-letters it with its provenance.
	for _, m := range dlq {
		var d pipeline.DeadLetter
		if err := json.Unmarshal(m.Value, &d); err != nil {
			t.Fatalf("dead letter %s: %v", m.Value, err)
		}
		if d.Pipeline != "p" || d.Record != "in" || d.Link != "kafka://pd-out" || d.Topic != "pd-out" ||
			!strings.Contains(d.Error, "Policy Violation") || !strings.HasPrefix(d.Payload, `{"seq":`) {
			t.Fatalf("dead letter %s: want pipeline p, record in, link kafka://pd-out, topic pd-out, the broker's error and the original payload", m.Value)
		}
	}
	if len(out)+len(dlq) != total {
		t.Fatalf("output %d + dead letters %d, want %d records accounted for", len(out), len(dlq), total)
	}
	mu.Lock()
	for off, n := range delivered {
		if n > 1 {
			t.Errorf("offset %d delivered %d times: a dead-lettered record must not be redelivered", off, n)
		}
	}
	mu.Unlock()
	run.stop(t, false)
}

// rejectFirstProduce makes the cluster answer the first produce request to
// topic with a non-retriable PolicyViolation error on every partition, the
// way a broker reports a rejection only after the client handed the
// records off. It returns the number of requests rejected so far.
func rejectFirstProduce(cl *kafkatest.Cluster, topic string) *atomic.Int32 {
	var rejected atomic.Int32
	cl.Kfake().ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		req := kreq.(*kmsg.ProduceRequest)
		if len(req.Topics) == 0 || req.Topics[0].Topic != topic || rejected.Load() > 0 {
			return nil, nil, false
		}
		rejected.Add(1)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.PolicyViolation.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	return &rejected
}

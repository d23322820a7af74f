package kafka_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kafka"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
	"github.com/aimdb-dev/aimdb-flow/tests/kafkatest"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The producer collects the records handed to PublishAsync and gives
// them to its kafka-go writer in one WriteMessages call when the runner
// flushes (pipeline.Flusher) or the batch is full. These tests drive the
// connector directly (as the runner does) or through a pipeline, against
// kfake.

// producerConn builds a producer-only connector on cl. It is closed at
// cleanup.
func producerConn(t *testing.T, cl *kafkatest.Cluster, mut ...func(*kafka.Config)) pipeline.Connector {
	t.Helper()
	c, err := builder(t, cl, "", mut...).Build(context.Background(), pipeline.BuildEnv{Name: "kafka", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}

// ackLog records the outcome of each record's ack, by index.
type ackLog struct {
	mu   sync.Mutex
	errs map[int]error
	n    atomic.Int64
	done chan struct{} // receives once per settled ack
}

func newAckLog() *ackLog { return &ackLog{errs: map[int]error{}, done: make(chan struct{}, 1024)} }

// ack returns an ack for record i holding one share: the connector's.
func (l *ackLog) ack(i int) *pipeline.Ack {
	return pipeline.NewAck(func(err error) {
		l.mu.Lock()
		l.errs[i] = err
		l.mu.Unlock()
		l.n.Add(1)
		l.done <- struct{}{}
	})
}

func (l *ackLog) settled() int { return int(l.n.Load()) }

// wait blocks until n acks settled and returns their outcomes.
func (l *ackLog) wait(t *testing.T, n int) map[int]error {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for l.settled() < n {
		select {
		case <-l.done:
		case <-timeout:
			t.Fatalf("%d of %d acks settled", l.settled(), n)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[int]error, len(l.errs))
	for k, v := range l.errs {
		out[k] = v
	}
	return out
}

// holdFirstProduce holds the first produce request to topic at the
// broker until release is called (at cleanup at the latest); held is
// closed when that request arrived. Later requests pass.
func holdFirstProduce(t *testing.T, cl *kafkatest.Cluster, topic string) (held <-chan struct{}, release func()) {
	t.Helper()
	h, rel := make(chan struct{}), make(chan struct{})
	var seen atomic.Bool
	kf := cl.Kfake()
	kf.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		req := kreq.(*kmsg.ProduceRequest)
		if len(req.Topics) == 0 || req.Topics[0].Topic != topic || !seen.CompareAndSwap(false, true) {
			return nil, nil, false
		}
		close(h)
		kf.SleepControl(func() { <-rel })
		return nil, nil, false // now handle it normally
	})
	var once sync.Once
	release = func() { once.Do(func() { close(rel) }) }
	t.Cleanup(release)
	return h, release
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func seqPayload(i int) []byte { return []byte(`{"seq":` + strconv.Itoa(i) + `}`) }

// prime publishes one record to topic (seq -1), so the connector knows
// the topic and batches the records that follow (the first record to a
// topic is handed off alone).
func prime(t *testing.T, c pipeline.Connector, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Publish(ctx, topic, nil, &pipeline.Envelope{Payload: seqPayload(-1)}); err != nil {
		t.Fatalf("prime %s: %v", topic, err)
	}
}

// consumeAfterPrime reads the n records after prime's from topic.
func consumeAfterPrime(t *testing.T, cl *kafkatest.Cluster, topic string, n int) []kafkago.Message {
	t.Helper()
	out := cl.Consume(t, topic, n+1, 10*time.Second)
	if !bytes.Equal(out[0].Value, seqPayload(-1)) {
		t.Fatalf("%s starts with %s, want the priming record", topic, out[0].Value)
	}
	return out[1:]
}

// TestBatchHeldUntilFlushAckedAfterConfirmation: once its caller flushes,
// the connector holds the records handed to PublishAsync until the next
// Flush; their acks settle only when the broker confirmed them, not at the
// hand-off. The envelope is reused between calls, as the runner does.
func TestBatchHeldUntilFlushAckedAfterConfirmation(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"bc": 1}})
	c := producerConn(t, cl)
	ctx := context.Background()
	fl := c.(pipeline.Flusher)
	_ = fl.Flush(ctx) // the caller flushes: records may be held back from now on
	prime(t, c, "bc")
	held, release := holdFirstProduce(t, cl, "bc")

	log := newAckLog()
	var env pipeline.Envelope
	const n = 5
	for i := 0; i < n; i++ {
		env = pipeline.Envelope{Payload: seqPayload(i), Key: []byte("k" + strconv.Itoa(i)), Time: time.Now(),
			Headers: pipeline.Headers{{Key: "h", Value: "v" + strconv.Itoa(i)}, {Key: "empty", Value: ""}, {Key: "t", Value: "x"}},
			Ack:     log.ack(i)}
		if err := c.(pipeline.AsyncPublisher).PublishAsync(ctx, "bc", nil, &env); err != nil {
			t.Fatal(err)
		}
	}
	if p := kafka.Pending(c); p != n {
		t.Fatalf("%d records pending before Flush, want %d", p, n)
	}
	if err := fl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if p := kafka.Pending(c); p != 0 {
		t.Fatalf("%d records pending after Flush", p)
	}
	waitClosed(t, held, "the produce request")
	if s := log.settled(); s != 0 {
		t.Fatalf("%d acks settled while the broker holds the produce request", s)
	}
	release()
	for i, err := range log.wait(t, n) {
		if err != nil {
			t.Errorf("record %d: ack %v", i, err)
		}
	}
	out := consumeAfterPrime(t, cl, "bc", n)
	for i, m := range out {
		if !bytes.Equal(m.Value, seqPayload(i)) || string(m.Key) != "k"+strconv.Itoa(i) {
			t.Errorf("record %d: %s key %s", i, m.Value, m.Key)
		}
		if len(m.Headers) != 3 || string(m.Headers[0].Value) != "v"+strconv.Itoa(i) || m.Headers[1].Key != "empty" ||
			len(m.Headers[1].Value) != 0 || string(m.Headers[2].Value) != "x" {
			t.Errorf("record %d: headers %+v", i, m.Headers)
		}
	}
}

// rejections are records kafka-go's WriteMessages refuses by themselves,
// failing the whole call: too large for the writer, or to a topic the
// cluster does not know.
var rejections = []struct {
	name    string
	dest    string
	payload []byte
	is      func(error) bool
}{
	{"record too large", "br", bytes.Repeat([]byte("x"), 2<<20),
		func(err error) bool { return errors.As(err, new(kafkago.MessageTooLargeError)) }},
	{"unknown topic", "br-missing-topic", []byte(`{"seq":4}`),
		func(err error) bool { return errors.Is(err, kafkago.UnknownTopicOrPartition) }},
}

// checkOutput checks that topic br holds seq 0..n-1 except bad, in order.
func checkOutput(t *testing.T, cl *kafkatest.Cluster, n, bad int) {
	t.Helper()
	out := cl.Consume(t, "br", n-1, 10*time.Second)
	want := 0
	for _, m := range out {
		if want == bad {
			want++
		}
		if !bytes.Equal(m.Value, seqPayload(want)) {
			t.Errorf("output %s, want seq %d", m.Value, want)
		}
		want++
	}
}

// TestBatchRejectionReturned: a record WriteMessages would refuse is
// handed off alone, so PublishAsync returns the rejection (the runner
// then dead-letters the record with the pipeline's destination, as
// without batching) and the records pending before and after it are
// produced in order. Publish returns it too. The connector dead-letters
// nothing itself.
func TestBatchRejectionReturned(t *testing.T) {
	for _, tc := range rejections {
		t.Run(tc.name, func(t *testing.T) {
			cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"br": 1}})
			c := producerConn(t, cl)
			ctx := context.Background()
			fl := c.(pipeline.Flusher)
			_ = fl.Flush(ctx)
			log := newAckLog()
			const n, bad = 9, 4
			// Record 0 is the first to br: it goes alone and makes the
			// topic known.
			for i := 0; i < n; i++ {
				dest, payload := "br", seqPayload(i)
				if i == bad {
					dest, payload = tc.dest, tc.payload
				}
				env := pipeline.Envelope{Payload: payload, Key: []byte("k" + strconv.Itoa(i)), Ack: log.ack(i)}
				err := c.(pipeline.AsyncPublisher).PublishAsync(ctx, dest, nil, &env)
				if i == bad {
					if !tc.is(err) {
						t.Fatalf("PublishAsync of the bad record: %v, want the rejection", err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				if i == bad+1 && kafka.Pending(c) != 1 {
					t.Fatalf("%d pending after the record following the bad one: the records before it were not handed off first", kafka.Pending(c))
				}
			}
			if p := kafka.Pending(c); p != n-1-bad {
				t.Fatalf("%d pending, want the %d records after the bad one", p, n-1-bad)
			}
			_ = fl.Flush(ctx)
			errs := log.wait(t, n-1)
			for i, err := range errs {
				if err != nil {
					t.Errorf("record %d: ack %v", i, err)
				}
			}
			if _, ok := errs[bad]; ok {
				t.Error("the connector settled the ack of the record whose hand-off failed")
			}
			checkOutput(t, cl, n, bad)

			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			env := pipeline.Envelope{Payload: tc.payload, Key: []byte("sync")}
			if err := c.Publish(pctx, tc.dest, nil, &env); !tc.is(err) {
				t.Errorf("Publish: %v, want the rejection", err)
			}
		})
	}
}

// TestBatchRejectionReportsOnlyThatRecord: when a record the writer
// refuses is inside a batch (provoked with BatchEverything), the batch's
// WriteMessages call fails as a whole; the connector hands the batch's
// records off one by one, finishes only the refused record's ack share
// with a permanent error (pipeline.Permanent, for the runner to
// dead-letter), dead-letters nothing itself, and every other record is
// produced in order and acknowledged.
func TestBatchRejectionReportsOnlyThatRecord(t *testing.T) {
	for _, tc := range rejections {
		t.Run(tc.name, func(t *testing.T) {
			cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"br": 1}})
			c := producerConn(t, cl)
			kafka.BatchEverything(c)
			ctx := context.Background()
			fl := c.(pipeline.Flusher)
			_ = fl.Flush(ctx)
			log := newAckLog()
			const n, bad = 9, 4
			for i := 0; i < n; i++ {
				dest, payload := "br", seqPayload(i)
				if i == bad {
					dest, payload = tc.dest, tc.payload
				}
				env := pipeline.Envelope{Payload: payload, Key: []byte("k" + strconv.Itoa(i)), Ack: log.ack(i)}
				if err := c.(pipeline.AsyncPublisher).PublishAsync(ctx, dest, nil, &env); err != nil {
					t.Fatal(err)
				}
			}
			if p := kafka.Pending(c); p != n {
				t.Fatalf("%d pending, want the %d records in one batch", p, n)
			}
			_ = fl.Flush(ctx)
			for i, err := range log.wait(t, n) {
				switch {
				case i == bad && (!pipeline.IsPermanent(err) || !tc.is(err)):
					t.Errorf("record %d: ack %v, want a permanent error wrapping the rejection", i, err)
				case i != bad && err != nil:
					t.Errorf("record %d: ack %v, want acknowledged", i, err)
				}
			}
			checkOutput(t, cl, n, bad)
		})
	}
}

// TestBatchCloseHandsOffPending: records still pending when the connector
// closes are produced and acknowledged before Close returns.
func TestBatchCloseHandsOffPending(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"bcl": 1}})
	c := producerConn(t, cl)
	ctx := context.Background()
	_ = c.(pipeline.Flusher).Flush(ctx)
	prime(t, c, "bcl")
	log := newAckLog()
	const n = 10
	for i := 0; i < n; i++ {
		env := pipeline.Envelope{Payload: seqPayload(i), Ack: log.ack(i)}
		if err := c.(pipeline.AsyncPublisher).PublishAsync(ctx, "bcl", nil, &env); err != nil {
			t.Fatal(err)
		}
	}
	if p := kafka.Pending(c); p != n {
		t.Fatalf("%d pending, want %d", p, n)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Close(cctx); err != nil {
		t.Fatal(err)
	}
	if s := log.settled(); s != n {
		t.Fatalf("%d of %d acks settled when Close returned", s, n)
	}
	for i, err := range log.wait(t, n) {
		if err != nil {
			t.Errorf("record %d: ack %v", i, err)
		}
	}
	for i, m := range consumeAfterPrime(t, cl, "bcl", n) {
		if !bytes.Equal(m.Value, seqPayload(i)) {
			t.Errorf("output %d is %s", i, m.Value)
		}
	}
	env := pipeline.Envelope{Payload: seqPayload(n), Ack: log.ack(n)}
	if err := c.(pipeline.AsyncPublisher).PublishAsync(ctx, "bcl", nil, &env); err == nil {
		t.Fatal("PublishAsync after Close succeeded")
	}
}

// TestBatchInFlightCap: with MaxInFlight 4, records held in a pending
// batch count against the limit. The fifth PublishAsync hands the four
// pending records off and waits; while the broker holds their produce
// request, no further PublishAsync returns.
func TestBatchInFlightCap(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"bif": 1}})
	const limit, n = 4, 10
	c := producerConn(t, cl, func(cfg *kafka.Config) { cfg.MaxInFlight = limit })
	ctx := context.Background()
	_ = c.(pipeline.Flusher).Flush(ctx)
	prime(t, c, "bif")
	held, release := holdFirstProduce(t, cl, "bif")
	log := newAckLog()
	var returned atomic.Int64
	pubErr := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			env := pipeline.Envelope{Payload: seqPayload(i), Ack: log.ack(i)}
			if err := c.(pipeline.AsyncPublisher).PublishAsync(ctx, "bif", nil, &env); err != nil {
				pubErr <- err
				return
			}
			returned.Add(1)
		}
		pubErr <- nil
	}()
	waitClosed(t, held, "the first produce request")
	if r := returned.Load(); r != limit {
		t.Fatalf("%d PublishAsync calls returned while %d records are unconfirmed, want %d", r, limit, limit)
	}
	if p := kafka.Pending(c); p != 0 {
		t.Fatalf("%d records pending while the publisher waits for a slot", p)
	}
	release()
	select {
	case err := <-pubErr:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("publisher did not finish")
	}
	_ = c.(pipeline.Flusher).Flush(ctx)
	for i, err := range log.wait(t, n) {
		if err != nil {
			t.Errorf("record %d: ack %v", i, err)
		}
	}
	out := consumeAfterPrime(t, cl, "bif", n)
	for i, m := range out {
		if !bytes.Equal(m.Value, seqPayload(i)) {
			t.Errorf("output %d is %s", i, m.Value)
		}
	}
}

// TestBatchFlushOnIdle: through a pipeline (Kafka in, Kafka out), a burst
// and then a single record with nothing after it both reach the output
// topic: the runner flushes the producer when its input runs dry.
func TestBatchFlushOnIdle(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"fi-in": 1, "fi-out": 1}})
	g := pipeline.New().Connector("kafka", builder(t, cl, "fi"))
	g.Record("in").From("kafka://fi-in", codec.Raw{})
	g.Pipeline("p").From("in").To("kafka://fi-out", codec.Raw{})
	run := start(t, g, 5*time.Second)

	produceN(t, cl, "fi-in", 0, 200)
	cl.Consume(t, "fi-out", 200, 20*time.Second)
	produceN(t, cl, "fi-in", 200, 1)
	out := cl.Consume(t, "fi-out", 201, 20*time.Second)
	for i, m := range out {
		if got := seqOf(t, m.Value); got != i {
			t.Fatalf("output %d has seq %d", i, got)
		}
	}
	waitCommittedToEnd(t, cl, "fi", "fi-in")
	run.stop(t, false)
}

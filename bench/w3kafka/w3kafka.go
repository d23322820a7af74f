// Package w3kafka is workload W3: records are consumed from a Kafka topic,
// filtered (JSON decode, temp > 25.0) and produced to another topic with
// at-least-once commits, run two ways against the same input:
//
//   - Baseline: a hand-written kafka-go loop: a consumer-group Reader
//     (FetchMessage), batches of up to 1000 fetched records, a synchronous
//     Writer (acks=all) for the records that pass, then CommitMessages for
//     the batch (committed asynchronously every second by the reader).
//   - Pipeline: the same work as an aimdb-flow graph (kafka source ->
//     record -> filter -> kafka sink), with the connector's watermark
//     commits every second.
//
// Both forward the original bytes of a passing record, decode with the
// same codec and use the same producer settings (acks=all, batches of up
// to 1000, 5 ms linger), so the ratio measures the framework. A run ends
// when the group's committed offsets reach the end of every input
// partition: everything was processed, produced and committed.
package w3kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	aimkafka "github.com/aimdb-dev/aimdb-flow/connectors/kafka"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
	kafkago "github.com/segmentio/kafka-go"
)

// Input is the input topic.
const Input = "w3-in"

// Partitions of the input topic.
const Partitions = 3

// Job describes one measured run.
type Job struct {
	Brokers []string
	Group   string // a fresh group per run, so each run reads everything
	Output  string // a fresh output topic per run
	Records int    // records in the input topic
	Expect  int    // records that pass the filter
}

// Result is what a run measured.
type Result struct {
	// Work is the time from start until the output topic held every
	// passing record (sampled every 50 ms): the processing throughput.
	Work time.Duration
	// Wall is the time from start until every input offset was committed
	// (quantized by the 1 s commit interval of both variants).
	Wall time.Duration
	// CommitLag is the time from the last output record landing in the
	// output topic until the commits covered every input record.
	CommitLag time.Duration
	// LagRecords is the number of input records not yet committed when
	// the output was complete (sampled every 50 ms): how far commits trail
	// the work done.
	LagRecords int64
	// Out is the number of records in the output topic.
	Out int64
}

var dec = codec.JSON{}

// Pass is W3's filter on a payload.
func Pass(payload []byte) bool {
	v, err := dec.Decode(payload)
	if err != nil {
		return false
	}
	m, _ := v.(map[string]any)
	t, _ := m["temp"].(float64)
	return t > 25.0
}

// Generate creates the input topic and produces n records (seeded, so
// every run sees the same data); it returns how many pass the filter.
func Generate(ctx context.Context, brokers []string, n int) (int, error) {
	if err := CreateTopic(ctx, brokers, Input, Partitions); err != nil {
		return 0, err
	}
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Topic: Input, Balancer: &kafkago.Hash{},
		RequiredAcks: kafkago.RequireAll, BatchSize: 1000, BatchTimeout: 5 * time.Millisecond, Transport: &kafkago.Transport{}}
	defer w.Close()
	rng := rand.New(rand.NewPCG(3, 3))
	pass := 0
	batch := make([]kafkago.Message, 0, 1000)
	for i := 0; i < n; i++ {
		dev := "d-" + strconv.Itoa(rng.IntN(64))
		temp := float64(rng.IntN(4000)) / 100
		if temp > 25 {
			pass++
		}
		batch = append(batch, kafkago.Message{Key: []byte(dev),
			Value: []byte(`{"device":"` + dev + `","temp":` + strconv.FormatFloat(temp, 'f', 2, 64) + `,"seq":` + strconv.Itoa(i) + `}`)})
		if len(batch) == cap(batch) || i == n-1 {
			if err := w.WriteMessages(ctx, batch...); err != nil {
				return 0, fmt.Errorf("generate: %w", err)
			}
			batch = batch[:0]
		}
	}
	return pass, nil
}

// CreateTopic creates a topic.
func CreateTopic(ctx context.Context, brokers []string, name string, partitions int) error {
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Transport: &kafkago.Transport{}}
	resp, err := c.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{
		{Topic: name, NumPartitions: partitions, ReplicationFactor: 1}}})
	if err != nil {
		return err
	}
	return resp.Errors[name]
}

// Baseline runs the hand-written loop until done.
func Baseline(ctx context.Context, job Job) (Result, error) {
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: job.Brokers, GroupID: job.Group, Topic: Input,
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 500 * time.Millisecond, CommitInterval: time.Second,
		StartOffset: kafkago.FirstOffset, HeartbeatInterval: time.Second, SessionTimeout: 10 * time.Second})
	w := &kafkago.Writer{Addr: kafkago.TCP(job.Brokers...), Topic: job.Output, Balancer: kafkago.Murmur2Balancer{Consistent: true},
		RequiredAcks: kafkago.RequireAll, BatchSize: 1000, BatchTimeout: 5 * time.Millisecond, Transport: &kafkago.Transport{}}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fetched := make(chan kafkago.Message, 1000)
	loopErr := make(chan error, 1)
	go func() {
		defer close(fetched)
		for {
			m, err := r.FetchMessage(rctx)
			if err != nil {
				return
			}
			select {
			case fetched <- m:
			case <-rctx.Done():
				return
			}
		}
	}()
	go func() {
		batch := make([]kafkago.Message, 0, 1000)
		out := make([]kafkago.Message, 0, 1000)
		for m := range fetched {
			batch = append(batch[:0], m)
		drain:
			for len(batch) < cap(batch) {
				select {
				case m, ok := <-fetched:
					if !ok {
						break drain
					}
					batch = append(batch, m)
				default:
					break drain
				}
			}
			out = out[:0]
			for _, m := range batch {
				if Pass(m.Value) {
					out = append(out, kafkago.Message{Key: m.Key, Value: m.Value, Headers: m.Headers})
				}
			}
			if len(out) > 0 {
				if err := w.WriteMessages(rctx, out...); err != nil {
					loopErr <- err
					return
				}
			}
			if err := r.CommitMessages(rctx, batch...); err != nil {
				loopErr <- err
				return
			}
		}
	}()
	res, err := waitDone(ctx, job, loopErr)
	cancel()
	w.Close()
	r.Close() // flushes the last commits
	return res, err
}

// Pipeline runs the aimdb-flow graph until done.
func Pipeline(ctx context.Context, job Job) (Result, error) {
	b, err := aimkafka.New(aimkafka.Config{Brokers: job.Brokers, Group: job.Group, CommitInterval: time.Second,
		HeartbeatInterval: time.Second, SessionTimeout: 10 * time.Second,
		Writer: aimkafka.WriterOptions{Acks: aimkafka.AcksAll, BatchSize: 1000, Linger: 5 * time.Millisecond}})
	if err != nil {
		return Result{}, err
	}
	g := pipeline.New().Connector("kafka", b)
	g.Record("in").From("kafka://"+Input, codec.Raw{})
	g.Pipeline("w3").From("in").
		Via(stages.Filter(func(env *pipeline.Envelope) (bool, error) { return Pass(env.Payload), nil })).
		To("kafka://"+job.Output, codec.Raw{})
	runner, err := pipeline.NewRunner(g, pipeline.RunOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return Result{}, err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() {
		if err := runner.Run(rctx); err != nil {
			runErr <- err
		}
		close(runErr)
	}()
	res, err := waitDone(ctx, job, runErr)
	cancel()
	if e := <-runErr; e != nil && err == nil {
		err = e
	}
	return res, err
}

// waitDone polls the output topic and the group's commits until every
// input offset is committed.
func waitDone(ctx context.Context, job Job, failed <-chan error) (Result, error) {
	start := time.Now()
	c := &kafkago.Client{Addr: kafkago.TCP(job.Brokers...), Transport: &kafkago.Transport{}}
	ends, err := endOffsets(ctx, c, Input)
	if err != nil {
		return Result{}, err
	}
	var total int64
	for _, e := range ends {
		total += e
	}
	res := Result{LagRecords: -1}
	var outDone time.Time
	var lastOut int64
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(10 * time.Minute)
	for {
		select {
		case err, ok := <-failed:
			if ok && err != nil {
				return res, err
			}
			failed = nil
		case <-ctx.Done():
			return res, ctx.Err()
		case <-timeout:
			return res, errors.New("w3: timed out")
		case <-tick.C:
		}
		committed, err := committedSum(ctx, c, job.Group)
		if err != nil {
			continue
		}
		outEnds, err := endOffsets(ctx, c, job.Output)
		if err != nil {
			continue
		}
		var out int64
		for _, e := range outEnds {
			out += e
		}
		if out != lastOut {
			lastOut = out
			outDone = time.Now()
		}
		if out >= int64(job.Expect) && res.LagRecords < 0 {
			res.LagRecords = total - committed
			res.Work = time.Since(start)
		}
		if committed >= total {
			now := time.Now()
			res.Wall = now.Sub(start)
			res.Out = out
			if res.LagRecords < 0 {
				res.LagRecords = 0
				res.Work = res.Wall
			}
			if !outDone.IsZero() {
				res.CommitLag = now.Sub(outDone)
			}
			return res, nil
		}
	}
}

func endOffsets(ctx context.Context, c *kafkago.Client, topic string) (map[int]int64, error) {
	req := map[string][]kafkago.OffsetRequest{}
	for p := 0; p < Partitions; p++ {
		req[topic] = append(req[topic], kafkago.LastOffsetOf(p))
	}
	resp, err := c.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: req})
	if err != nil {
		return nil, err
	}
	out := map[int]int64{}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, po.Error
		}
		out[po.Partition] = po.LastOffset
	}
	return out, nil
}

func committedSum(ctx context.Context, c *kafkago.Client, group string) (int64, error) {
	parts := make([]int, Partitions)
	for i := range parts {
		parts[i] = i
	}
	resp, err := c.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{Input: parts}})
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, p := range resp.Topics[Input] {
		if p.CommittedOffset > 0 {
			sum += p.CommittedOffset
		}
	}
	return sum, nil
}

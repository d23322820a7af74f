// Package w3kafka is workload W3: records are consumed from a Kafka topic,
// filtered (temp > 25.0 on the JSON value) and produced to another topic
// with at-least-once commits, run four ways against the same input:
//
//   - Flow, the candidate: the workload as a .flow file writes it (w3.flow,
//     loaded through dsl.Load): decode json on the inbound link, the
//     expr-lang filter `temp > 25.0`, encode json on the outbound link,
//     with the Kafka connector's watermark commits.
//   - KafkaGo, the primary baseline: a hand-written kafka-go loop. A
//     consumer-group Reader (FetchMessage) feeds a loop that filters and
//     hands the passing records, in slices of up to 256, to an async Writer
//     (Async: true). The Writer's Completion callback maps each acknowledged
//     output message back to its input offset (carried in WriterData) and
//     finishes it in a per-partition watermark (Watermarks); filtered-out
//     records finish at once. Every CommitInterval a committer calls
//     CommitMessages with the watermarks, which cover only offsets that are,
//     with every earlier offset of their partition, filtered out or
//     acknowledged; the end of a run flushes the writer and commits once more.
//   - Franz, the practical limit: the same loop on franz-go (kgo). A
//     consumer group with BlockRebalanceOnPoll and AutoCommitMarks, async
//     Produce with a promise that finishes the input offset once its output
//     is acknowledged, the same watermarks, and MarkCommitOffsets plus
//     CommitMarkedOffsets every CommitInterval (and at the end).
//   - Pipeline, a reference: an aimdb-flow graph built with the Go API
//     (kafka source -> record -> filter -> kafka sink) on raw bytes, with
//     the loops' fastjson filter as a stage: the connector path alone.
//
// The loops and Pipeline forward the original key and value bytes of a
// passing record unmodified and run the same filter function (Filter: a
// reused fastjson parser); Flow forwards the key and re-encodes the
// decoded value, the work a .flow user's pipeline does. All four produce
// with acks=all and a 5 ms linger (kafka-go and the connector's kafka-go
// writer cap a batch at 1000 records; franz-go has no record cap and
// batches up to its default 1 MB) and commit every CommitInterval. A run
// ends when the group's committed offsets reach the end of every input
// partition; Verify then checks the output topic record by record (value
// bytes unchanged, or for Flow the same JSON fields and values).
package w3kafka

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	aimkafka "github.com/aimdb-dev/aimdb-flow/connectors/kafka"
	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
	kafkago "github.com/segmentio/kafka-go"
)

// Input is the input topic.
const Input = "w3-in"

// Partitions of the input topic.
const Partitions = 3

// Producer and commit settings shared by every variant.
const (
	// BatchSize is the most records in one produce batch.
	BatchSize = 1000
	// Linger is how long a produce batch waits to fill.
	Linger = 5 * time.Millisecond
	// CommitInterval is how often finished offsets are committed.
	CommitInterval = 100 * time.Millisecond
)

// Job describes one measured run.
type Job struct {
	Brokers []string
	Group   string // a fresh group per run, so each run reads everything
	Output  string // a fresh output topic per run
	Records int    // records in the input topic
	Expect  int    // records that pass the filter
	// Compare is how Verify matches output values to input values
	// (CompareJSON for Flow, which re-encodes them).
	Compare Compare
}

// Result is what a run measured.
type Result struct {
	// Work is the time from start until the output topic held every
	// passing record (sampled every 20 ms): the processing throughput.
	Work time.Duration
	// Wall is the time from start until every input offset was committed.
	Wall time.Duration
	// CommitLag is the time from the last output record landing in the
	// output topic until the commits covered every input record.
	CommitLag time.Duration
	// LagRecords is the number of input records not yet committed when
	// the output was complete (sampled every 20 ms): how far commits trail
	// the work done.
	LagRecords int64
	// Out is the number of records in the output topic.
	Out int64
}

// Filter is W3's filter: temp > 25.0 on the JSON value. It reuses one
// fastjson parser, so a Filter must not be used by two goroutines at once.
type Filter struct{ p fastjson.Parser }

// Pass reports whether a payload passes the filter (a payload that is
// not a JSON object with a numeric temp does not).
func (f *Filter) Pass(payload []byte) bool {
	v, err := f.p.ParseBytes(payload)
	if err != nil {
		return false
	}
	t := v.Get("temp")
	if t == nil || t.Type() != fastjson.TypeNumber {
		return false
	}
	return t.GetFloat64() > 25.0
}

// Rec is one generated input record.
type Rec struct {
	Key, Value []byte
	Pass       bool // temp > 25.0, decided when generating
}

// Records returns the n input records, the same on every call (seeded):
// record i carries "seq": i. Temperatures are drawn from 0.00 to 39.99;
// every 50th record (seq 7, 57, ...) sits on the boundary, temp 25.00,
// which the filter drops, so even a small input catches a filter that
// keeps it.
func Records(n int) []Rec {
	rng := rand.New(rand.NewPCG(3, 3))
	out := make([]Rec, n)
	for i := range out {
		dev := "d-" + strconv.Itoa(rng.IntN(64))
		temp := float64(rng.IntN(4000)) / 100
		if i%50 == 7 {
			temp = 25
		}
		out[i] = Rec{Key: []byte(dev), Pass: temp > 25,
			Value: []byte(`{"device":"` + dev + `","temp":` + strconv.FormatFloat(temp, 'f', 2, 64) + `,"seq":` + strconv.Itoa(i) + `}`)}
	}
	return out
}

// Generate creates the input topic and produces the n records of Records;
// it returns how many pass the filter.
func Generate(ctx context.Context, brokers []string, n int) (int, error) {
	if err := CreateTopic(ctx, brokers, Input, Partitions); err != nil {
		return 0, err
	}
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Topic: Input, Balancer: &kafkago.Hash{},
		RequiredAcks: kafkago.RequireAll, BatchSize: 1000, BatchTimeout: 5 * time.Millisecond, Transport: &kafkago.Transport{}}
	defer w.Close()
	pass := 0
	batch := make([]kafkago.Message, 0, 1000)
	recs := Records(n)
	for i, r := range recs {
		if r.Pass {
			pass++
		}
		batch = append(batch, kafkago.Message{Key: r.Key, Value: r.Value})
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

// DeleteTopic deletes a topic (the harness drops each run's output topic
// once verified, so the in-process cluster does not keep them all).
func DeleteTopic(ctx context.Context, brokers []string, name string) error {
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Transport: &kafkago.Transport{}}
	resp, err := c.DeleteTopics(ctx, &kafkago.DeleteTopicsRequest{Topics: []string{name}})
	if err != nil {
		return err
	}
	return resp.Errors[name]
}

// flowSource is w3.flow, the workload as a .flow file.
//
//go:embed w3.flow
var flowSource string

// FlowSource returns the .flow text the Flow variant loads.
func FlowSource() string { return flowSource }

// Flow runs the workload as a .flow file writes it: w3.flow, loaded with
// dsl.Load (brokers, group and topics filled in through ${...}), decodes
// every value as JSON on the inbound link, filters with the expr-lang
// expression `temp > 25.0` and encodes the passing records as JSON on the
// outbound link. The output values are re-encoded (field order and number
// formatting may differ from the input): verify them with CompareJSON.
func Flow(ctx context.Context, job Job) (Result, error) {
	vars := map[string]string{"W3_BROKERS": strings.Join(job.Brokers, ","), "W3_GROUP": job.Group,
		"W3_INPUT": Input, "W3_OUTPUT": job.Output}
	g, err := dsl.Load(dsl.Options{
		Getenv: func(name string) (string, bool) { v, ok := vars[name]; return v, ok },
		Logger: slog.New(slog.DiscardHandler),
	}, dsl.Source{Name: "w3.flow", Src: []byte(flowSource)})
	if err != nil {
		return Result{}, fmt.Errorf("w3.flow: %w", err)
	}
	return run(ctx, job, g)
}

// Pipeline runs the workload as an aimdb-flow graph built with the Go
// API, on raw bytes (codec.Raw) with the fastjson Filter as a stage: the
// connector path alone, without decoding and encoding.
func Pipeline(ctx context.Context, job Job) (Result, error) {
	b, err := aimkafka.New(aimkafka.Config{Brokers: job.Brokers, Group: job.Group, CommitInterval: CommitInterval,
		HeartbeatInterval: time.Second, SessionTimeout: 10 * time.Second,
		Writer: aimkafka.WriterOptions{Acks: aimkafka.AcksAll, BatchSize: BatchSize, Linger: Linger}})
	if err != nil {
		return Result{}, err
	}
	g := pipeline.New().Connector("kafka", b)
	g.Record("in").From("kafka://"+Input, codec.Raw{})
	var f Filter // the pipeline runs its stages on one goroutine
	g.Pipeline("w3").From("in").
		Via(stages.Filter(func(env *pipeline.Envelope) (bool, error) { return f.Pass(env.Payload), nil })).
		To("kafka://"+job.Output, codec.Raw{})
	return run(ctx, job, g)
}

// run runs graph g until the job is done.
func run(ctx context.Context, job Job, g *pipeline.Graph) (Result, error) {
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

// pollEvery is how often waitDone samples the output topic and the
// group's commits.
const pollEvery = 20 * time.Millisecond

// waitDone polls the output topic and the group's commits until every
// input partition's committed offset reaches its end.
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
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	timeout := time.After(10 * time.Minute)
	var committed map[int]int64
	stuck := func(err error) error {
		return fmt.Errorf("w3: %w with committed offsets %v of input ends %v, %d of %d records out", err, committed, ends, lastOut, job.Expect)
	}
	for {
		select {
		case err, ok := <-failed:
			if ok && err != nil {
				return res, err
			}
			failed = nil
		case <-ctx.Done():
			return res, stuck(ctx.Err())
		case <-timeout:
			return res, stuck(errors.New("timed out"))
		case <-tick.C:
		}
		cm, err := committedOffsets(ctx, c, job.Group)
		if err != nil {
			continue
		}
		committed = cm
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
		var sum int64
		complete := true
		for p, e := range ends {
			sum += max(committed[p], 0)
			if committed[p] < e {
				complete = false
			}
		}
		if out >= int64(job.Expect) && res.LagRecords < 0 {
			res.LagRecords = total - sum
			res.Work = time.Since(start)
		}
		if complete {
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
	if len(out) != Partitions {
		return nil, fmt.Errorf("w3: %s: offsets of %d partitions, want %d", topic, len(out), Partitions)
	}
	return out, nil
}

// committedOffsets returns the group's committed offset of every input
// partition (-1: none).
func committedOffsets(ctx context.Context, c *kafkago.Client, group string) (map[int]int64, error) {
	parts := make([]int, Partitions)
	for i := range parts {
		parts[i] = i
	}
	resp, err := c.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{Input: parts}})
	if err != nil {
		return nil, err
	}
	if resp.Error != nil {
		return nil, resp.Error
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[Input] {
		if p.Error != nil {
			return nil, p.Error
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out, nil
}

package w3kafka

import (
	"bytes"
	"context"
	"fmt"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fastjson"
)

// Check is what Verify found in a finished run's output topic.
type Check struct {
	// Out is the number of records in the output topic.
	Out int
	// Duplicates is how many of them repeat an earlier record
	// (at-least-once redelivery; 0 in a run without faults).
	Duplicates int
}

// Compare is how Verify matches an output record's value to the input
// record it came from.
type Compare int

const (
	// CompareBytes wants the input value's bytes, unchanged (the loops and
	// the raw Pipeline forward them).
	CompareBytes Compare = iota
	// CompareJSON wants a JSON object with the input's fields and values,
	// no more and no fewer; field order and number formatting may differ
	// (Flow decodes and re-encodes every value).
	CompareJSON
)

// Verify checks a finished run: the output topic holds every record of
// Records(job.Records) that passes the filter, with its original key and
// its original value (as job.Compare says), and nothing else (repeats are
// counted as duplicates), and the group's committed offset of every input
// partition is that partition's end.
func Verify(ctx context.Context, job Job) (Check, error) {
	c := &kafkago.Client{Addr: kafkago.TCP(job.Brokers...), Transport: &kafkago.Transport{}}
	ends, err := endOffsets(ctx, c, Input)
	if err != nil {
		return Check{}, err
	}
	committed, err := committedOffsets(ctx, c, job.Group)
	if err != nil {
		return Check{}, err
	}
	for p, e := range ends {
		if committed[p] != e {
			return Check{}, fmt.Errorf("w3 verify: group %s committed offset %d of %s/%d, want its end %d", job.Group, committed[p], Input, p, e)
		}
	}
	outEnds, err := endOffsets(ctx, c, job.Output)
	if err != nil {
		return Check{}, err
	}
	var total int64
	starts := map[int32]kgo.Offset{}
	for p, e := range outEnds {
		total += e
		starts[int32(p)] = kgo.NewOffset().At(0)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(job.Brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{job.Output: starts}))
	if err != nil {
		return Check{}, err
	}
	defer cl.Close()
	recs := Records(job.Records)
	seen := make([]bool, len(recs))
	var ck Check
	var pp, ip fastjson.Parser
	sameValue := func(in []byte, out *fastjson.Value, raw []byte) bool {
		if job.Compare != CompareJSON {
			return bytes.Equal(in, raw)
		}
		iv, err := ip.ParseBytes(in)
		return err == nil && jsonEqual(iv, out)
	}
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for int64(ck.Out) < total {
		fs := cl.PollFetches(rctx)
		if err := rctx.Err(); err != nil {
			return ck, fmt.Errorf("w3 verify: read %d of %d records of %s: %w", ck.Out, total, job.Output, err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("w3 verify: fetch %s/%d: %w", t, p, err) })
		if ferr != nil {
			return ck, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			ck.Out++
			if ferr != nil {
				return
			}
			v, err := pp.ParseBytes(r.Value)
			if err != nil {
				ferr = fmt.Errorf("w3 verify: %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
				return
			}
			seq := v.GetInt("seq")
			switch {
			case seq < 0 || seq >= len(recs) || !sameValue(recs[seq].Value, v, r.Value) || !bytes.Equal(recs[seq].Key, r.Key):
				ferr = fmt.Errorf("w3 verify: %s/%d@%d: record %q (key %q) was never in the input", r.Topic, r.Partition, r.Offset, r.Value, r.Key)
			case !recs[seq].Pass:
				ferr = fmt.Errorf("w3 verify: %s/%d@%d: record %q should have been filtered out", r.Topic, r.Partition, r.Offset, r.Value)
			case seen[seq]:
				ck.Duplicates++
			default:
				seen[seq] = true
			}
		})
		if ferr != nil {
			return ck, ferr
		}
	}
	missing, first := 0, -1
	for i, r := range recs {
		if r.Pass && !seen[i] {
			if first < 0 {
				first = i
			}
			missing++
		}
	}
	if missing > 0 {
		return ck, fmt.Errorf("w3 verify: %s lacks %d passing records (the first: seq %d)", job.Output, missing, first)
	}
	return ck, nil
}

// jsonEqual reports whether a and b are the same JSON value: objects with
// the same fields (in any order) holding equal values, arrays with equal
// elements in order, numbers equal as float64, equal strings, the same
// literal.
func jsonEqual(a, b *fastjson.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	switch a.Type() {
	case fastjson.TypeObject:
		ao, bo := a.GetObject(), b.GetObject()
		if ao.Len() != bo.Len() {
			return false
		}
		eq := true
		ao.Visit(func(k []byte, av *fastjson.Value) {
			if bv := bo.Get(string(k)); eq && (bv == nil || !jsonEqual(av, bv)) {
				eq = false
			}
		})
		return eq
	case fastjson.TypeArray:
		aa, ba := a.GetArray(), b.GetArray()
		if len(aa) != len(ba) {
			return false
		}
		for i := range aa {
			if !jsonEqual(aa[i], ba[i]) {
				return false
			}
		}
		return true
	case fastjson.TypeNumber:
		return a.GetFloat64() == b.GetFloat64()
	case fastjson.TypeString:
		return bytes.Equal(a.GetStringBytes(), b.GetStringBytes())
	default: // true, false, null: the type says it all
		return true
	}
}

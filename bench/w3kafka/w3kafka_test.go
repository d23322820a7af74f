package w3kafka_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/aimdb-dev/aimdb-flow/bench/w3kafka"
	"github.com/aimdb-dev/aimdb-flow/tests/kafkatest"
)

// TestSameWork runs the kafka-go loop, the franz-go loop, the Go-API
// pipeline and the .flow pipeline on the same input and verifies each: the
// output topic holds exactly the passing records (unmodified, or for the
// .flow pipeline with the same JSON fields and values), and the group
// committed every input offset.
func TestSameWork(t *testing.T) {
	variants := []struct {
		name    string
		run     func(context.Context, w3kafka.Job) (w3kafka.Result, error)
		compare w3kafka.Compare
	}{{"kafkago", w3kafka.KafkaGo, w3kafka.CompareBytes}, {"franz", w3kafka.Franz, w3kafka.CompareBytes},
		{"pipeline", w3kafka.Pipeline, w3kafka.CompareBytes}, {"flow", w3kafka.Flow, w3kafka.CompareJSON}}
	topics := map[string]int{}
	for _, v := range variants {
		topics["out-"+v.name] = w3kafka.Partitions
	}
	cl := kafkatest.Start(t, kafkatest.Options{Topics: topics})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const n = 3000
	pass, err := w3kafka.Generate(ctx, cl.Addrs(), n)
	if err != nil {
		t.Fatal(err)
	}
	if pass == 0 || pass == n {
		t.Fatalf("filter passes %d of %d: not a useful workload", pass, n)
	}
	for _, v := range variants {
		job := w3kafka.Job{Brokers: cl.Addrs(), Group: "g-" + v.name, Output: "out-" + v.name, Records: n, Expect: pass, Compare: v.compare}
		res, err := v.run(ctx, job)
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		if res.Out < int64(pass) {
			t.Fatalf("%s: %d records out, want at least %d", v.name, res.Out, pass)
		}
		if res.Work <= 0 || res.Wall < res.Work || res.LagRecords < 0 || res.LagRecords > n {
			t.Fatalf("%s: inconsistent timings %+v", v.name, res)
		}
		ck, err := w3kafka.Verify(ctx, job)
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		if ck.Out != pass || ck.Duplicates != 0 {
			t.Fatalf("%s: %d records out, %d duplicates; want %d, none (no faults in this run)", v.name, ck.Out, ck.Duplicates, pass)
		}
	}
}

// TestVerifyCatches feeds Verify output topics and commits that are wrong
// in one way each.
func TestVerifyCatches(t *testing.T) {
	const n = 300
	cases := []struct {
		name    string
		out     func(recs []w3kafka.Rec) []w3kafka.Rec // the output topic's records
		compare w3kafka.Compare
		behind  int64  // committed offset of partition 0 short of its end
		want    string // error substring ("": none)
		dups    int
	}{
		{name: "correct", out: passing},
		{name: "duplicate", out: func(r []w3kafka.Rec) []w3kafka.Rec { p := passing(r); return append(p, p[3]) }, dups: 1},
		{name: "missing record", out: func(r []w3kafka.Rec) []w3kafka.Rec { p := passing(r); return p[1:] }, want: "lacks 1 passing"},
		{name: "filtered record forwarded", out: func(r []w3kafka.Rec) []w3kafka.Rec {
			p := passing(r)
			for _, x := range r {
				if !x.Pass {
					return append(p, x)
				}
			}
			panic("no record fails the filter")
		}, want: "should have been filtered out"},
		{name: "value modified", out: func(r []w3kafka.Rec) []w3kafka.Rec {
			p := passing(r)
			p[0].Value = []byte(strings.Replace(string(p[0].Value), `"device"`, `"device" `, 1))
			return p
		}, want: "never in the input"},
		{name: "commit behind", out: passing, behind: 1, want: "committed offset"},
		{name: "bytes: re-encoded value", out: func(r []w3kafka.Rec) []w3kafka.Rec { return reencode(t, passing(r)) },
			want: "never in the input"},
		// CompareJSON (the .flow pipeline re-encodes values).
		{name: "json: re-encoded", out: func(r []w3kafka.Rec) []w3kafka.Rec { return reencode(t, passing(r)) },
			compare: w3kafka.CompareJSON},
		{name: "json: unchanged", out: passing, compare: w3kafka.CompareJSON},
		{name: "json: field dropped", out: func(r []w3kafka.Rec) []w3kafka.Rec {
			return editJSON(t, reencode(t, passing(r)), func(m map[string]any) { delete(m, "device") })
		}, compare: w3kafka.CompareJSON, want: "never in the input"},
		{name: "json: field added", out: func(r []w3kafka.Rec) []w3kafka.Rec {
			return editJSON(t, reencode(t, passing(r)), func(m map[string]any) { m["alert"] = true })
		}, compare: w3kafka.CompareJSON, want: "never in the input"},
		{name: "json: value changed", out: func(r []w3kafka.Rec) []w3kafka.Rec {
			return editJSON(t, reencode(t, passing(r)), func(m map[string]any) { m["temp"] = m["temp"].(float64) + 0.01 })
		}, compare: w3kafka.CompareJSON, want: "never in the input"},
		{name: "json: temp 25 forwarded", out: func(r []w3kafka.Rec) []w3kafka.Rec {
			p := reencode(t, passing(r))
			for _, x := range r {
				if strings.Contains(string(x.Value), `"temp":25.00,`) {
					return append(p, reencode(t, []w3kafka.Rec{x})...)
				}
			}
			panic("no record on the boundary")
		}, compare: w3kafka.CompareJSON, want: "should have been filtered out"},
	}
	topics := map[string]int{}
	for i := range cases {
		topics["verify-"+string(rune('a'+i))] = w3kafka.Partitions
	}
	cl := kafkatest.Start(t, kafkatest.Options{Topics: topics})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := w3kafka.Generate(ctx, cl.Addrs(), n); err != nil {
		t.Fatal(err)
	}
	c := &kafkago.Client{Addr: kafkago.TCP(cl.Addrs()...), Transport: &kafkago.Transport{}}
	ends := map[int]int64{}
	lo, err := c.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{
		w3kafka.Input: {kafkago.LastOffsetOf(0), kafkago.LastOffsetOf(1), kafkago.LastOffsetOf(2)}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, po := range lo.Topics[w3kafka.Input] {
		ends[po.Partition] = po.LastOffset
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			job := w3kafka.Job{Brokers: cl.Addrs(), Group: "vg-" + string(rune('a'+i)), Output: "verify-" + string(rune('a'+i)),
				Records: n, Compare: tc.compare}
			w := &kafkago.Writer{Addr: kafkago.TCP(cl.Addrs()...), Topic: job.Output, Balancer: &kafkago.Hash{}, Transport: &kafkago.Transport{}, BatchTimeout: time.Millisecond}
			var msgs []kafkago.Message
			for _, r := range tc.out(w3kafka.Records(n)) {
				msgs = append(msgs, kafkago.Message{Key: r.Key, Value: r.Value})
			}
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				t.Fatal(err)
			}
			w.Close()
			var commits []kafkago.OffsetCommit
			for p := 0; p < w3kafka.Partitions; p++ {
				off := ends[p]
				if p == 0 {
					off -= tc.behind
				}
				commits = append(commits, kafkago.OffsetCommit{Partition: p, Offset: off})
			}
			resp, err := c.OffsetCommit(ctx, &kafkago.OffsetCommitRequest{GroupID: job.Group, GenerationID: -1,
				Topics: map[string][]kafkago.OffsetCommit{w3kafka.Input: commits}})
			if err != nil {
				t.Fatal(err)
			}
			for _, pr := range resp.Topics[w3kafka.Input] {
				if pr.Error != nil {
					t.Fatalf("commit: %v", pr.Error)
				}
			}
			ck, err := w3kafka.Verify(ctx, job)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Verify: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Verify: error %v, want one containing %q", err, tc.want)
			case tc.want == "" && ck.Duplicates != tc.dups:
				t.Fatalf("Verify: %d duplicates, want %d", ck.Duplicates, tc.dups)
			}
		})
	}
}

// reencode returns recs with every value decoded and encoded again by
// encoding/json: fields in sorted order (device, seq, temp instead of
// device, temp, seq), numbers in shortest form (25.1, not 25.10).
func reencode(t *testing.T, recs []w3kafka.Rec) []w3kafka.Rec {
	return editJSON(t, recs, func(map[string]any) {})
}

// editJSON returns recs with every value decoded, changed by edit and
// encoded again.
func editJSON(t *testing.T, recs []w3kafka.Rec, edit func(map[string]any)) []w3kafka.Rec {
	t.Helper()
	out := make([]w3kafka.Rec, len(recs))
	for i, r := range recs {
		var m map[string]any
		if err := json.Unmarshal(r.Value, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = w3kafka.Rec{Key: r.Key, Value: b, Pass: r.Pass}
	}
	return out
}

func passing(recs []w3kafka.Rec) []w3kafka.Rec {
	var out []w3kafka.Rec
	for _, r := range recs {
		if r.Pass {
			out = append(out, r)
		}
	}
	return out
}

// TestFilter pins the filter on the shapes it meets.
func TestFilter(t *testing.T) {
	var f w3kafka.Filter
	for _, c := range []struct {
		in   string
		want bool
	}{
		{`{"device":"d-1","temp":25.01,"seq":1}`, true},
		{`{"device":"d-1","temp":25.00,"seq":1}`, false},
		{`{"device":"d-1","temp":3,"seq":1}`, false},
		{`{"device":"d-1","temp":"30","seq":1}`, false},
		{`{"device":"d-1","seq":1}`, false},
		{`not json`, false},
	} {
		if got := f.Pass([]byte(c.in)); got != c.want {
			t.Errorf("Pass(%s) = %v, want %v", c.in, got, c.want)
		}
	}
	// The filter agrees with the generator, which Verify trusts, and the
	// input holds records on the boundary (temp 25.00, dropped).
	boundary := 0
	for _, r := range w3kafka.Records(5000) {
		if strings.Contains(string(r.Value), `"temp":25.00,`) {
			boundary++
		}
		if f.Pass(r.Value) != r.Pass {
			t.Fatalf("Pass(%s) = %v, the generator says %v", r.Value, !r.Pass, r.Pass)
		}
	}
	if boundary < 50 {
		t.Fatalf("%d of 5000 records have temp 25.00, want at least 50", boundary)
	}
}

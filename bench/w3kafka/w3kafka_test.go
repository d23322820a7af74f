package w3kafka_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/bench/w3kafka"
	"github.com/aimdb-dev/aimdb-flow/tests/kafkatest"
)

// TestSameWork checks that the baseline loop and the pipeline produce the
// same records (the ones passing the filter), so W3 compares equal work.
func TestSameWork(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"out-b": w3kafka.Partitions, "out-p": w3kafka.Partitions}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 2000
	pass, err := w3kafka.Generate(ctx, cl.Addrs(), n)
	if err != nil {
		t.Fatal(err)
	}
	if pass == 0 || pass == n {
		t.Fatalf("filter passes %d of %d: not a useful workload", pass, n)
	}
	runs := []struct {
		out string
		run func(context.Context, w3kafka.Job) (w3kafka.Result, error)
	}{{"out-b", w3kafka.Baseline}, {"out-p", w3kafka.Pipeline}}
	var values [][]string
	for _, r := range runs {
		res, err := r.run(ctx, w3kafka.Job{Brokers: cl.Addrs(), Group: "g-" + r.out, Output: r.out, Records: n, Expect: pass})
		if err != nil {
			t.Fatalf("%s: %v", r.out, err)
		}
		if res.Out != int64(pass) {
			t.Fatalf("%s: %d records out, want %d", r.out, res.Out, pass)
		}
		msgs := cl.Consume(t, r.out, pass, 20*time.Second)
		var vs []string
		for _, m := range msgs {
			if !w3kafka.Pass(m.Value) {
				t.Fatalf("%s: record %s should have been filtered out", r.out, m.Value)
			}
			vs = append(vs, string(m.Key)+"|"+string(m.Value))
		}
		sort.Strings(vs)
		values = append(values, vs)
	}
	for i := range values[0] {
		if values[0][i] != values[1][i] {
			t.Fatalf("outputs differ at %d: %q vs %q", i, values[0][i], values[1][i])
		}
	}
}

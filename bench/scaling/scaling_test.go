package scaling

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/bench/w1"
)

// TestRunSameWorkPerPipeline checks that every pipeline does W1's work:
// each writes the records the strong hand-written loop writes (compared
// as records: the loop keeps the input's key order, the codec sorts).
func TestRunSameWorkPerPipeline(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	if err := w1.Generate(in, 2000); err != nil {
		t.Fatal(err)
	}
	want, err := w1.Baseline(in, filepath.Join(dir, "base.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 3} {
		out := t.TempDir()
		got, err := Run(context.Background(), in, out, n)
		if err != nil {
			t.Fatal(err)
		}
		if got != n*want {
			t.Errorf("%d pipelines wrote %d records, want %d", n, got, n*want)
		}
		for i := 0; i < n; i++ {
			got := filepath.Join(out, "out-"+strconv.Itoa(i)+".jsonl")
			if err := w1.SameRecords(got, filepath.Join(dir, "base.jsonl")); err != nil {
				t.Errorf("pipeline %d of %d: %v", i, n, err)
			}
		}
	}
}

func TestGraphRejectsZero(t *testing.T) {
	if _, err := Graph("in", "out", 0); err == nil {
		t.Fatal("Graph with 0 pipelines: no error")
	}
}

package scaling

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/bench/w1"
)

// TestRunSameWorkPerPipeline checks that every pipeline does W1's work:
// each writes exactly what the hand-written baseline writes.
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
	base, err := os.ReadFile(filepath.Join(dir, "base.jsonl"))
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
			b, err := os.ReadFile(filepath.Join(out, "out-"+string(rune('0'+i))+".jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != string(base) {
				t.Errorf("pipeline %d of %d: output differs from the baseline (%d vs %d bytes) %q", i, n, len(b), len(base), b[:min(200, len(b))])
			}
		}
	}
}

func TestGraphRejectsZero(t *testing.T) {
	if _, err := Graph("in", "out", 0); err == nil {
		t.Fatal("Graph with 0 pipelines: no error")
	}
}

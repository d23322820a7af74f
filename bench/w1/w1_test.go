package w1_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/bench/w1"
)

// TestSameOutput checks that the pipeline (serial and parallel) writes
// byte-for-byte what the baseline writes: the comparison is fair.
func TestSameOutput(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	if err := w1.Generate(in, 20000); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "base.jsonl")
	n, err := w1.Baseline(in, base)
	if err != nil || n == 0 {
		t.Fatalf("baseline: %d, %v", n, err)
	}
	want, _ := os.ReadFile(base)
	for _, workers := range []int{1, 2} {
		out := filepath.Join(dir, "pipe.jsonl")
		if _, err := w1.Pipeline(context.Background(), in, out, workers); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(out)
		if !bytes.Equal(got, want) {
			t.Fatalf("workers=%d: pipeline output differs from baseline (%d vs %d bytes)", workers, len(got), len(want))
		}
	}
}

func BenchmarkW1(b *testing.B) {
	dir := b.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	const n = 200000
	if err := w1.Generate(in, n); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "out.jsonl")
	b.Run("baseline", func(b *testing.B) {
		for b.Loop() {
			w1.Baseline(in, out)
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
	})
	for _, workers := range []int{1, 2} {
		b.Run("pipeline/workers="+string(rune('0'+workers)), func(b *testing.B) {
			for b.Loop() {
				if _, err := w1.Pipeline(context.Background(), in, out, workers); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

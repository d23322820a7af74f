package buffers_test

import (
	"context"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/bench/buffers"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
)

func BenchmarkHandOffSameGoroutine(b *testing.B) {
	for _, cfg := range buffers.Kinds {
		b.Run(cfg.String(), func(b *testing.B) {
			ctx := context.Background()
			buf := buffer.New[pipeline.Envelope](cfg)
			r := buf.Subscribe()
			e := pipeline.Envelope{Topic: "t"}
			b.ReportAllocs()
			for b.Loop() {
				buf.Push(ctx, e)
				r.Recv(ctx)
			}
		})
	}
}

func BenchmarkHandOffCrossGoroutine(b *testing.B) {
	for _, cfg := range buffers.Kinds {
		for _, readers := range []int{1, 4} {
			b.Run(cfg.String()+"/readers="+string(rune('0'+readers)), func(b *testing.B) {
				res := buffers.HandOff(cfg, readers, b.N)
				b.ReportMetric(float64(res.P50.Nanoseconds()), "p50-ns")
				b.ReportMetric(float64(res.P99.Nanoseconds()), "p99-ns")
			})
		}
	}
}

// TestSmoke keeps the harness code compiled and working (no timing asserted).
func TestSmoke(t *testing.T) {
	for _, cfg := range buffers.Kinds {
		res := buffers.HandOff(cfg, 2, 1000)
		if cfg.Kind.Lossless() && res.Received != 1000 {
			t.Fatalf("%s: received %d of 1000", cfg, res.Received)
		}
		if _, allocs := buffers.SameGoroutine(cfg, 100); allocs != 0 {
			t.Fatalf("%s: %.1f allocs per hand-off", cfg, allocs)
		}
	}
}

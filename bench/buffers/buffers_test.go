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

// BenchmarkHandOffCrossGoroutine reports, besides ns per pushed value,
// delivered values per second per reader, the drop fraction and
// allocations per delivered value (all goroutines).
func BenchmarkHandOffCrossGoroutine(b *testing.B) {
	for _, cfg := range buffers.Kinds {
		for _, readers := range []int{1, 4} {
			b.Run(cfg.String()+"/readers="+string(rune('0'+readers)), func(b *testing.B) {
				res := buffers.HandOff(cfg, readers, b.N)
				b.ReportMetric(res.DeliveredPerSec, "delivered/s/reader")
				b.ReportMetric(res.DropFraction, "drop-fraction")
				b.ReportMetric(res.AllocsPerDelivered, "allocs/delivered")
				b.ReportMetric(float64(res.P50.Nanoseconds()), "p50-ns")
				b.ReportMetric(float64(res.P99.Nanoseconds()), "p99-ns")
			})
		}
	}
}

// TestDeliveredAccounting: every pushed value is, for each reader, either
// delivered or counted by the buffer as dropped or lagged past; the queue
// delivers everything to every reader.
func TestDeliveredAccounting(t *testing.T) {
	const n = 20000
	for _, cfg := range buffers.Kinds {
		for _, readers := range []int{1, 4} {
			res := buffers.HandOff(cfg, readers, n)
			total := 0
			for i, d := range res.Delivered {
				total += d
				// Mailbox readers compete for the one slot: one of four
				// may get nothing.
				if (d == 0 && cfg.Kind != buffer.Mailbox) || d > n {
					t.Errorf("%s, %d readers: reader %d delivered %d of %d", cfg, readers, i, d, n)
				}
				if cfg.Kind.Lossless() && d != n {
					t.Errorf("%s: reader %d delivered %d of %d (lossless)", cfg, i, d, n)
				}
			}
			// Each value is owed to every reader, except in a mailbox,
			// where it is owed to one of them.
			owed := n * readers
			if cfg.Kind == buffer.Mailbox {
				owed = n
			}
			if got := uint64(total) + res.Dropped + res.Lagged; got != uint64(owed) {
				t.Errorf("%s, %d readers: delivered %d + dropped %d + lagged %d = %d, want %d",
					cfg, readers, total, res.Dropped, res.Lagged, got, owed)
			}
			if want := 1 - float64(total)/float64(owed); res.DropFraction < want-1e-9 || res.DropFraction > want+1e-9 {
				t.Errorf("%s: drop fraction %.4f, want %.4f", cfg, res.DropFraction, want)
			}
			if res.DeliveredPerSec <= 0 || res.DeliveredPerSec > res.PushedPerSec*1.0001 && !cfg.Kind.Lossless() {
				t.Errorf("%s: delivered %.0f/s per reader, pushed %.0f/s", cfg, res.DeliveredPerSec, res.PushedPerSec)
			}
		}
	}
}

// TestCrossGoroutineZeroAllocs: no buffer kind allocates per delivered
// value when writer and readers run on different goroutines.
func TestCrossGoroutineZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, cfg := range buffers.Kinds {
		for _, readers := range []int{1, 4} {
			if slope := buffers.AllocSlope(cfg, readers, 200000); slope > 0.01 {
				t.Errorf("%s, %d readers: %.3f allocations per delivered value, want 0", cfg, readers, slope)
			}
		}
	}
}

// TestSmoke keeps the same-goroutine measurement working (no timing
// asserted).
func TestSmoke(t *testing.T) {
	for _, cfg := range buffers.Kinds {
		if _, allocs := buffers.SameGoroutine(cfg, 100); allocs != 0 && !raceEnabled {
			t.Fatalf("%s: %.1f allocs per hand-off", cfg, allocs)
		}
	}
}

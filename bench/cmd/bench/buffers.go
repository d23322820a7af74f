package main

import (
	"context"
	"fmt"

	"github.com/aimdb-dev/aimdb-flow/bench/buffers"
)

// Buffer targets (DESIGN.md §9): 0 allocations per delivered value for
// every kind, across goroutines; the ring with one reader ≥ 5 M delivered
// values/s.
const (
	bufRingGoal   = 5e6
	bufAllocLimit = 0.01 // allocations per delivered value counted as 0
)

// runBuffers measures every buffer kind with 1 and 4 readers. The primary
// figure is values delivered per second per reader; pushes, the share of
// owed values a reader did not get, and allocations per delivered value
// stand beside it.
func runBuffers(ctx context.Context, cfg *config) ([]result, error) {
	n := cfg.pick(2_000_000, 200_000)
	var out []result
	for _, k := range buffers.Kinds {
		for _, readers := range []int{1, 4} {
			var delivered, pushed, drop, p50, p99 []float64
			for round := 0; round < cfg.rounds; round++ {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				res := buffers.HandOff(k, readers, n)
				delivered = append(delivered, res.DeliveredPerSec)
				pushed = append(pushed, res.PushedPerSec)
				drop = append(drop, res.DropFraction)
				p50 = append(p50, float64(res.P50.Nanoseconds()))
				p99 = append(p99, float64(res.P99.Nanoseconds()))
			}
			slope := buffers.AllocSlope(k, readers, n)
			ns, sameAllocs := buffers.SameGoroutine(k, n)
			zero := slope <= bufAllocLimit
			target := "0 allocs/delivered value"
			met := func(float64) bool { return zero }
			var goal float64
			if k.Kind == buffers.Kinds[0].Kind && readers == 1 {
				target = "≥5M delivered/s per reader, 0 allocs/delivered value"
				goal = bufRingGoal
				met = func(m float64) bool { return m >= bufRingGoal && zero }
			}
			r := summarize("buffer hand-off", fmt.Sprintf("%s, %d reader(s)", k, readers), "", "delivered values/s per reader",
				delivered, nil, target, met)
			r.Goal = goal
			r.Extra = map[string]float64{"pushed values/s": median(pushed), "dropped % of owed": 100 * median(drop),
				"allocs/delivered value": slope, "same-goroutine ns/op": ns, "same-goroutine allocs/op": sameAllocs}
			if median(p99) > 0 {
				r.Latency = map[string]float64{"p50": median(p50) / 1e3, "p99": median(p99) / 1e3}
				r.Note = "latency push→receive with the writer saturating the buffer"
			} else {
				r.Note = "no latency sample reached reader 0 (values collapsed)"
			}
			if !zero {
				r.Note = joinNote(r.Note, fmt.Sprintf("missed: %.3f allocs per delivered value", slope))
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// Package buffers measures the hand-off cost of every buffer kind: the
// same-goroutine push+receive cost (ns/op, allocs/op) and, across
// goroutines, what each reader was actually handed: delivered values per
// second per reader, the values it lost (overwritten, collapsed, lagged
// past), push-to-receive latency percentiles and allocations per delivered
// value, with 1 and 4 readers.
//
// Lossy kinds (ring, latest, mailbox) can be pushed into far faster than a
// reader takes values out; counting pushes would credit them with values
// no reader ever saw. Every rate here is of delivered values.
package buffers

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
)

// Kinds are the configurations benchmarked.
var Kinds = []buffer.Config{
	{Kind: buffer.Ring, Size: 1024},
	{Kind: buffer.Latest},
	{Kind: buffer.Mailbox},
	{Kind: buffer.Queue, Size: 1024},
}

// Result is one cross-goroutine run.
type Result struct {
	Kind    string
	Readers int
	Pushed  int     // values pushed by the writer
	Seconds float64 // from the first push until the last reader saw the close
	// PushedPerSec is values pushed per second (the writer's rate).
	PushedPerSec float64
	// Delivered holds, per reader, the values it received.
	Delivered []int
	// DeliveredPerSec is the mean over readers of values received per
	// second: the primary figure.
	DeliveredPerSec float64
	// DropFraction is the share of the values owed to the readers that
	// they did not get: each value is owed to every reader, except in a
	// mailbox, where readers compete and a value is owed to one (0 for the
	// lossless queue).
	DropFraction float64
	// Dropped and Lagged are the buffer's own counters (summed over
	// readers): sum(Delivered) + Dropped + Lagged equals Pushed × Readers
	// (a mailbox: Pushed).
	Dropped, Lagged uint64
	P50, P99        time.Duration // reader 0, sampled every 64th value
	// Allocs is the heap allocations during the run (writer and readers,
	// all goroutines); AllocsPerDelivered divides it by the values
	// delivered. For a lossy kind that delivers few values, fixed costs
	// (goroutine wake-ups, the runtime) dominate that ratio: AllocSlope
	// tells whether allocations grow with the values delivered.
	Allocs             uint64
	AllocsPerDelivered float64
}

// AllocSlope runs HandOff with n/4 and n values and returns the extra
// allocations per extra delivered value between the two: 0 when nothing
// is allocated per value, whatever the fixed costs of a run.
func AllocSlope(cfg buffer.Config, readers, n int) float64 {
	small := HandOff(cfg, readers, n/4)
	large := HandOff(cfg, readers, n)
	dv := float64(sum(large.Delivered) - sum(small.Delivered))
	if dv <= 0 {
		return 0
	}
	return max(0, float64(large.Allocs)-float64(small.Allocs)) / dv
}

func sum(xs []int) int {
	t := 0
	for _, x := range xs {
		t += x
	}
	return t
}

// HandOff pushes n values through a buffer of cfg with the given number of
// readers, each on its own goroutine, and measures what the readers got.
func HandOff(cfg buffer.Config, readers, n int) Result {
	ctx := context.Background()
	b := buffer.New[pipeline.Envelope](cfg)
	rs := make([]buffer.Reader[pipeline.Envelope], readers)
	for i := range rs {
		rs[i] = b.Subscribe()
	}
	lat := make([]time.Duration, 0, n/64+1)
	delivered := make([]int, readers)
	var wg sync.WaitGroup
	ready := make(chan struct{})
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ready
			got := 0
			// Declared once: errors.As(err, &lag) moves lag to the heap,
			// which would cost an allocation per lag if it were declared
			// in the loop.
			var lag *buffer.LagError
			for {
				env, err := r.Recv(ctx)
				if err != nil {
					if errors.As(err, &lag) {
						continue
					}
					break
				}
				got++
				if i == 0 && env.Offset%64 == 0 && !env.Time.IsZero() {
					lat = append(lat, time.Since(env.Time))
				}
			}
			delivered[i] = got
		}()
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := time.Now()
	close(ready)
	for i := 0; i < n; i++ {
		e := pipeline.Envelope{Offset: int64(i)}
		if i%64 == 0 {
			e.Time = time.Now()
		}
		b.Push(ctx, e)
	}
	pushEnd := time.Since(start)
	b.Close()
	wg.Wait()
	el := time.Since(start)
	runtime.ReadMemStats(&m1)
	st := b.Stats()
	slices.Sort(lat)
	res := Result{Kind: cfg.String(), Readers: readers, Pushed: n, Seconds: el.Seconds(),
		PushedPerSec: float64(n) / pushEnd.Seconds(), Delivered: delivered, Dropped: st.Dropped, Lagged: st.Lagged}
	total := sum(delivered)
	owed := n * readers
	if cfg.Kind == buffer.Mailbox {
		owed = n
	}
	res.DropFraction = 1 - float64(total)/float64(owed)
	res.DeliveredPerSec = float64(total) / float64(readers) / el.Seconds()
	res.Allocs = m1.Mallocs - m0.Mallocs
	if total > 0 {
		res.AllocsPerDelivered = float64(res.Allocs) / float64(total)
	}
	if len(lat) > 0 {
		res.P50 = lat[len(lat)/2]
		res.P99 = lat[len(lat)*99/100]
	}
	return res
}

// SameGoroutine measures push followed by receive on one goroutine: the
// pure cost of the data structure (ns per value, allocations per value).
func SameGoroutine(cfg buffer.Config, n int) (nsPerOp, allocsPerOp float64) {
	ctx := context.Background()
	b := buffer.New[pipeline.Envelope](cfg)
	r := b.Subscribe()
	e := pipeline.Envelope{Topic: "t"}
	start := time.Now()
	for i := 0; i < n; i++ {
		b.Push(ctx, e)
		r.Recv(ctx)
	}
	ns := float64(time.Since(start).Nanoseconds()) / float64(n)
	allocs := testingAllocs(func() { b.Push(ctx, e); r.Recv(ctx) })
	return ns, allocs
}

// Package buffers measures the hand-off cost of every buffer kind: the
// same-goroutine push+receive cost (ns/op, allocs/op) and the
// cross-goroutine throughput and latency percentiles with 1 and 4 readers.
package buffers

import (
	"context"
	"errors"
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
	Kind        string
	Readers     int
	Records     int
	Seconds     float64
	PerSec      float64 // values pushed per second
	Received    int     // values received by reader 0
	P50, P99    time.Duration
	AllocsPerOp float64
}

// HandOff runs n values through a buffer of cfg with the given number of
// readers, each on its own goroutine, and measures the writer's throughput
// and reader 0's push-to-receive latency (sampled every 64th value).
func HandOff(cfg buffer.Config, readers, n int) Result {
	ctx := context.Background()
	b := buffer.New[pipeline.Envelope](cfg)
	rs := make([]buffer.Reader[pipeline.Envelope], readers)
	for i := range rs {
		rs[i] = b.Subscribe()
	}
	lat := make([]time.Duration, 0, n/64+1)
	var received int
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				env, err := r.Recv(ctx)
				var lag *buffer.LagError
				if errors.As(err, &lag) {
					continue
				}
				if err != nil {
					return
				}
				if i == 0 {
					received++
					if env.Offset%64 == 0 {
						lat = append(lat, time.Since(env.Time))
					}
				}
			}
		}()
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		e := pipeline.Envelope{Offset: int64(i)}
		if i%64 == 0 {
			e.Time = time.Now()
		}
		b.Push(ctx, e)
	}
	b.Close()
	el := time.Since(start)
	wg.Wait()
	slices.Sort(lat)
	res := Result{Kind: cfg.String(), Readers: readers, Records: n, Seconds: el.Seconds(),
		PerSec: float64(n) / el.Seconds(), Received: received}
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

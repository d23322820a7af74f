package metrics

import (
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// HopTiming is a copy of one hop's latency histogram (see Latency).
type HopTiming struct {
	// Info is where the hop happens (shared with the runner: read only).
	Info *pipeline.HopInfo
	// Count is the number of hops measured (estimated under MeasureEvery).
	Count uint64
	// Sum is their total duration.
	Sum time.Duration
	// Buckets[i] counts the hops that took at most Buckets[i] seconds and
	// more than Buckets[i-1] (not cumulative); the last entry counts the
	// hops longer than the last bound.
	Buckets []uint64
}

// Timings returns a copy of every hop histogram recorded so far, in no
// particular order. It is safe to call while the graph runs.
func (l *Latency) Timings() []HopTiming {
	hs := l.snapshot()
	out := make([]HopTiming, 0, len(hs))
	for _, h := range hs {
		t := HopTiming{Info: h.info, Sum: time.Duration(h.sumNano.Load()), Buckets: make([]uint64, len(h.counts))}
		for i := range h.counts {
			t.Buckets[i] = h.counts[i].Load()
			t.Count += t.Buckets[i]
		}
		out = append(out, t)
	}
	return out
}

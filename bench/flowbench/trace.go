package flowbench

import (
	"context"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// hist is a lock-free log-linear latency histogram: 16 sub-buckets per
// power of two (relative error under 6.25%), nanoseconds up to ~2^43.
type hist struct {
	counts [44 * 16]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64
	max    atomic.Uint64
}

func bucketOf(ns uint64) int {
	if ns < 16 {
		return int(ns)
	}
	e := bits.Len64(ns) - 1 // >= 4
	i := (e-3)*16 + int((ns>>(e-4))&15)
	return min(i, 44*16-1)
}

// lowerBound is the smallest value of bucket i.
func lowerBound(i int) uint64 {
	if i < 16 {
		return uint64(i)
	}
	e := i/16 + 3
	return (16 + uint64(i%16)) << (e - 4)
}

func (h *hist) observe(d time.Duration) {
	if d < 0 {
		d = 0
	}
	ns := uint64(d)
	h.counts[bucketOf(ns)].Add(1)
	h.n.Add(1)
	h.sum.Add(ns)
	for {
		m := h.max.Load()
		if ns <= m || h.max.CompareAndSwap(m, ns) {
			return
		}
	}
}

func (h *hist) dist() Dist {
	n := h.n.Load()
	if n == 0 {
		return Dist{}
	}
	q := func(p float64) time.Duration {
		rank := max(uint64(math.Ceil(p*float64(n))), 1) // nearest rank
		var seen uint64
		for i := range h.counts {
			seen += h.counts[i].Load()
			if seen >= rank {
				lo, hi := lowerBound(i), lowerBound(i+1)
				return time.Duration((lo + hi) / 2)
			}
		}
		return time.Duration(h.max.Load())
	}
	d := Dist{Count: n, P50: q(0.5), P99: q(0.99), Max: time.Duration(h.max.Load()), Mean: time.Duration(h.sum.Load() / n)}
	d.P50, d.P99 = min(d.P50, d.Max), min(d.P99, d.Max)
	return d
}

// tracer measures stage and publish hops, and end-to-end latency at each
// publish (from the envelope's Time, set when the record was generated).
type tracer struct {
	hops sync.Map // hopKey -> *hist
	e2e  sync.Map // hopKey -> *hist
	pool sync.Pool
}

type hopKey struct {
	hop       pipeline.Hop
	owner, at string // pipeline (or record) and stage name (or link)
}

func newTracer() *tracer {
	t := &tracer{}
	t.pool.New = func() any { return &span{t: t} }
	return t
}

func keyOf(info *pipeline.HopInfo) hopKey {
	owner := info.Pipeline
	if owner == "" {
		owner = info.Record
	}
	at := info.Stage
	if info.Hop == pipeline.HopPublish || info.Hop == pipeline.HopEncode {
		at = info.Link
	}
	return hopKey{info.Hop, owner, at}
}

func (t *tracer) hist(m *sync.Map, k hopKey) *hist {
	if v, ok := m.Load(k); ok {
		return v.(*hist)
	}
	v, _ := m.LoadOrStore(k, new(hist))
	return v.(*hist)
}

type span struct {
	t     *tracer
	h     *hist
	start time.Time
}

func (s *span) End(error) {
	s.h.observe(time.Since(s.start))
	s.t.pool.Put(s)
}

// StartHop implements pipeline.Tracer.
func (t *tracer) StartHop(_ context.Context, env *pipeline.Envelope, info *pipeline.HopInfo) pipeline.Span {
	if info.Hop != pipeline.HopStage && info.Hop != pipeline.HopPublish {
		return nil
	}
	k := keyOf(info)
	now := time.Now()
	if info.Hop == pipeline.HopPublish && !env.Time.IsZero() {
		t.hist(&t.e2e, k).observe(now.Sub(env.Time))
	}
	s := t.pool.Get().(*span)
	s.h, s.start = t.hist(&t.hops, k), now
	return s
}

func (t *tracer) dist(hop pipeline.Hop, owner, at string) Dist {
	if v, ok := t.hops.Load(hopKey{hop, owner, at}); ok {
		return v.(*hist).dist()
	}
	return Dist{}
}

func (t *tracer) e2eDist(owner, link string) Dist {
	if v, ok := t.e2e.Load(hopKey{pipeline.HopPublish, owner, link}); ok {
		return v.(*hist).dist()
	}
	return Dist{}
}

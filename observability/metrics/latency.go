package metrics

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Buckets are the upper bounds (seconds) of the hop latency histograms:
// from a microsecond (a fused stage) to ten seconds (a publish waiting on
// a reconnecting broker).
var Buckets = []float64{1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1, 5, 10}

// histogram is a lock-free fixed-bucket histogram.
type histogram struct {
	info    *pipeline.HopInfo
	counts  []atomic.Uint64 // per bucket (not cumulative); last is +Inf
	sumNano atomic.Uint64
}

func newHistogram(info *pipeline.HopInfo) *histogram {
	return &histogram{info: info, counts: make([]atomic.Uint64, len(Buckets)+1)}
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(Buckets) && s > Buckets[i] {
		i++
	}
	h.counts[i].Add(1)
	if d > 0 {
		h.sumNano.Add(uint64(d))
	}
}

// Latency is a pipeline.Tracer that measures how long every hop of every
// record takes (receive, decode, each stage, encode, publish) into
// histograms exported as aimdb_flow_hop_duration_seconds. Install it as
// pipeline.RunOptions.Tracer; it forwards every hop to next (for example
// the OpenTelemetry tracer), so both can run together.
//
// A receive hop lasts until the message was routed into its records
// (including time blocked by a full queue: backpressure); a stage hop
// includes the fused stages after it, because they run inside it.
type Latency struct {
	next  pipeline.Tracer
	hists sync.Map // *pipeline.HopInfo -> *histogram
}

var (
	_ pipeline.Tracer      = (*Latency)(nil)
	_ pipeline.BatchTracer = (*Latency)(nil)
)

// NewLatency returns a latency recorder forwarding to next (may be nil).
func NewLatency(next pipeline.Tracer) *Latency { return &Latency{next: next} }

type latSpan struct {
	h     *histogram
	start time.Time
	inner pipeline.Span
}

func (s *latSpan) End(err error) {
	s.h.observe(time.Since(s.start))
	if s.inner != nil {
		s.inner.End(err)
	}
}

func (l *Latency) hist(info *pipeline.HopInfo) *histogram {
	if h, ok := l.hists.Load(info); ok {
		return h.(*histogram)
	}
	h, _ := l.hists.LoadOrStore(info, newHistogram(info))
	return h.(*histogram)
}

// StartHop implements pipeline.Tracer.
func (l *Latency) StartHop(ctx context.Context, env *pipeline.Envelope, info *pipeline.HopInfo) pipeline.Span {
	s := &latSpan{h: l.hist(info), start: time.Now()}
	if l.next != nil {
		s.inner = l.next.StartHop(ctx, env, info)
	}
	return s
}

// StartBatch implements pipeline.BatchTracer.
func (l *Latency) StartBatch(ctx context.Context, out *pipeline.Envelope, inputs []*pipeline.Envelope, info *pipeline.HopInfo) pipeline.Span {
	s := &latSpan{h: l.hist(info), start: time.Now()}
	if bt, ok := l.next.(pipeline.BatchTracer); ok {
		s.inner = bt.StartBatch(ctx, out, inputs, info)
	}
	return s
}

// snapshot returns the histograms, unordered.
func (l *Latency) snapshot() []*histogram {
	var out []*histogram
	l.hists.Range(func(_, v any) bool {
		out = append(out, v.(*histogram))
		return true
	})
	return out
}

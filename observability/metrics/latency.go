package metrics

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/aimdb-dev/aimdb-flow/observability/otelflow"
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
	seen    atomic.Uint64 // hops started, for 1-in-N measurement
	ex      exemplars     // latest sampled trace per bucket
}

func newHistogram(info *pipeline.HopInfo) *histogram {
	return &histogram{info: info, counts: make([]atomic.Uint64, len(Buckets)+1)}
}

// observe records d as weight observations (1-in-N measurement: each
// measured hop stands for N).
// A valid traceID (the hop ran under a sampled span) becomes the
// bucket's exemplar.
func (h *histogram) observe(d time.Duration, weight uint64, traceID trace.TraceID, end time.Time) {
	s := d.Seconds()
	i := 0
	for i < len(Buckets) && s > Buckets[i] {
		i++
	}
	h.counts[i].Add(weight)
	if d > 0 {
		h.sumNano.Add(uint64(d) * weight)
	}
	if traceID.IsValid() {
		h.ex.set(i, traceID, s, end)
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
	every uint64
	hists sync.Map // *pipeline.HopInfo -> *histogram
}

// LatencyOption configures a Latency recorder.
type LatencyOption func(*Latency)

// MeasureEvery measures one hop in n of each kind (default 1: every hop)
// and counts it n times, so _count and _sum stay estimates of the totals
// while the clock is read n times less often. Reading the clock twice per
// hop is most of the recorder's cost on a fast in-process pipeline.
func MeasureEvery(n int) LatencyOption {
	return func(l *Latency) {
		if n > 1 {
			l.every = uint64(n)
		}
	}
}

var (
	_ pipeline.Tracer = (*Latency)(nil)
)

// NewLatency returns a latency recorder forwarding to next (may be nil).
func NewLatency(next pipeline.Tracer, opts ...LatencyOption) *Latency {
	l := &Latency{next: next, every: 1}
	for _, o := range opts {
		o(l)
	}
	return l
}

type latSpan struct {
	h       *histogram
	start   time.Time
	weight  uint64
	inner   pipeline.Span
	traceID trace.TraceID // valid when the hop runs under a sampled span
}

func (s *latSpan) End(err error) {
	now := time.Now()
	s.h.observe(now.Sub(s.start), s.weight, s.traceID, now)
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
	h := l.hist(info)
	var inner pipeline.Span
	if l.next != nil {
		inner = l.next.StartHop(ctx, env, info)
	}
	if l.every > 1 && h.seen.Add(1)%l.every != 0 {
		return inner
	}
	ls := &latSpan{h: h, start: time.Now(), weight: l.every, inner: inner}
	if inner != nil {
		// The OpenTelemetry tracer leaves the hop's span context in
		// env.Trace: a sampled one becomes an exemplar.
		if sc := otelflow.SpanContext(env); sc.IsSampled() {
			ls.traceID = sc.TraceID()
		}
	}
	return ls
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

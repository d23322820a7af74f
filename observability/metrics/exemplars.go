package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// exemplar is the latest sampled observation of one histogram bucket.
type exemplar struct {
	traceID trace.TraceID
	value   float64 // seconds
	at      time.Time
}

// exemplars holds one exemplar per bucket. It is written only for hops
// measured under a sampled span, so the lock is never taken for records
// that are not traced.
type exemplars struct {
	mu      sync.Mutex
	buckets []exemplar // per bucket, last is +Inf; zero traceID: none
}

func (e *exemplars) set(bucket int, id trace.TraceID, v float64, at time.Time) {
	e.mu.Lock()
	if e.buckets == nil {
		e.buckets = make([]exemplar, len(Buckets)+1)
	}
	e.buckets[bucket] = exemplar{traceID: id, value: v, at: at}
	e.mu.Unlock()
}

// mergeInto keeps, per bucket, the latest of dst and e's exemplars.
func (e *exemplars) mergeInto(dst []exemplar) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, x := range e.buckets {
		if x.traceID.IsValid() && (!dst[i].traceID.IsValid() || x.at.After(dst[i].at)) {
			dst[i] = x
		}
	}
}

// withExemplars attaches the valid exemplars (trace_id label) to m.
func withExemplars(m prometheus.Metric, ex []exemplar) prometheus.Metric {
	var pe []prometheus.Exemplar
	for _, x := range ex {
		if x.traceID.IsValid() {
			pe = append(pe, prometheus.Exemplar{Value: x.value, Labels: prometheus.Labels{"trace_id": x.traceID.String()}, Timestamp: x.at})
		}
	}
	if len(pe) == 0 {
		return m
	}
	em, err := prometheus.NewMetricWithExemplars(m, pe...)
	if err != nil {
		return prometheus.NewInvalidMetric(m.Desc(), err)
	}
	return em
}

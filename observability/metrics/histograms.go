package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collectLatency converts the hop histograms of the Latency recorder into
// const histograms at scrape time. Histograms with the same labels
// (parallel workers each have their own HopInfo per stage) are merged.
func (c *collector) collectLatency(ch chan<- prometheus.Metric) {
	type merged struct {
		labels []string
		counts []uint64
		sum    uint64
		ex     []exemplar
	}
	byKey := map[[5]string]*merged{}
	for _, h := range c.lat.snapshot() {
		i := h.info
		k := [5]string{i.Hop.String(), i.Pipeline, i.Stage, i.Record, i.Link}
		m := byKey[k]
		if m == nil {
			m = &merged{labels: k[:], counts: make([]uint64, len(h.counts)), ex: make([]exemplar, len(h.counts))}
			byKey[k] = m
		}
		for j := range h.counts {
			m.counts[j] += h.counts[j].Load()
		}
		m.sum += h.sumNano.Load()
		h.ex.mergeInto(m.ex)
	}
	for _, m := range byKey {
		buckets := make(map[float64]uint64, len(Buckets))
		var cum uint64
		for j, b := range Buckets {
			cum += m.counts[j]
			buckets[b] = cum
		}
		// The count is the bucket total, so the histogram stays
		// consistent while observations land concurrently.
		cum += m.counts[len(Buckets)]
		h, err := prometheus.NewConstHistogram(c.d.hop, cum, float64(m.sum)/1e9, buckets, m.labels...)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.d.hop, err)
			continue
		}
		// Exemplars (trace ids of sampled hops) appear in OpenMetrics
		// output only.
		ch <- withExemplars(h, m.ex)
	}
}

package metrics_test

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// series is one flattened sample: metric name plus labels.
type series struct {
	name   string
	labels map[string]string
}

func (s series) key() string {
	ks := make([]string, 0, len(s.labels))
	for k := range s.labels {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	b.WriteString(s.name)
	for _, k := range ks {
		fmt.Fprintf(&b, ",%s=%s", k, s.labels[k])
	}
	return b.String()
}

// scrape is a parsed exposition, flattened into text-format series
// (histograms into _bucket{le}, _sum and _count).
type scrape struct {
	types    map[string]string
	samples  map[string]float64 // series key -> value
	order    []series
	families map[string]*dto.MetricFamily
}

// parseExposition parses the Prometheus text format with the reference
// parser (github.com/prometheus/common/expfmt), which rejects what
// Prometheus would: a family declared twice, duplicate series, malformed
// labels or values.
func parseExposition(t *testing.T, r io.Reader) *scrape {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return flatten(t, mfs)
}

func fmtLe(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func flatten(t *testing.T, mfs map[string]*dto.MetricFamily) *scrape {
	t.Helper()
	s := &scrape{types: map[string]string{}, samples: map[string]float64{}, families: mfs}
	names := make([]string, 0, len(mfs))
	for n := range mfs {
		names = append(names, n)
	}
	sort.Strings(names)
	add := func(name string, base map[string]string, extra string, ev string, v float64) {
		ser := series{name: name, labels: map[string]string{}}
		for k, val := range base {
			ser.labels[k] = val
		}
		if extra != "" {
			ser.labels[extra] = ev
		}
		k := ser.key()
		if _, dup := s.samples[k]; dup {
			t.Fatalf("duplicate series %s", k)
		}
		s.samples[k] = v
		s.order = append(s.order, ser)
	}
	for _, n := range names {
		mf := mfs[n]
		s.types[n] = strings.ToLower(mf.GetType().String())
		for _, m := range mf.GetMetric() {
			base := map[string]string{}
			for _, lp := range m.GetLabel() {
				base[lp.GetName()] = lp.GetValue()
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				add(n, base, "", "", m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add(n, base, "", "", m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				add(n, base, "", "", m.GetUntyped().GetValue())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				inf := false
				for _, b := range h.GetBucket() {
					inf = inf || math.IsInf(b.GetUpperBound(), 1)
					add(n+"_bucket", base, "le", fmtLe(b.GetUpperBound()), float64(b.GetCumulativeCount()))
				}
				if !inf {
					add(n+"_bucket", base, "le", "+Inf", float64(h.GetSampleCount()))
				}
				add(n+"_sum", base, "", "", h.GetSampleSum())
				add(n+"_count", base, "", "", float64(h.GetSampleCount()))
			case dto.MetricType_SUMMARY:
				sm := m.GetSummary()
				for _, q := range sm.GetQuantile() {
					add(n, base, "quantile", fmtLe(q.GetQuantile()), q.GetValue())
				}
				add(n+"_sum", base, "", "", sm.GetSampleSum())
				add(n+"_count", base, "", "", float64(sm.GetSampleCount()))
			}
		}
	}
	return s
}

// Package metrics exposes a running aimdb-flow graph to Prometheus and to
// health checks.
//
// Handler serves three endpoints:
//
//	/metrics  Prometheus exposition through
//	          github.com/prometheus/client_golang: the text format (0.0.4)
//	          by default, OpenMetrics when the scraper asks for it
//	          (Accept: application/openmetrics-text). The graph's metrics
//	          are built from Runner.Stats() and Runner.Connectors() by a
//	          collector at scrape time: nothing is counted twice and
//	          nothing costs anything between scrapes. The Go runtime
//	          (go_*) and process (process_*) collectors are served too.
//	/healthz  200 while the process serves HTTP (liveness)
//	/readyz   200 when the graph runs and every connector that can tell is
//	          connected, else 503 with the reason (readiness)
//
// Per-hop latency histograms come from a Latency recorder, which is a
// pipeline.Tracer: install it in RunOptions and pass it with WithLatency.
package metrics

import (
	"fmt"
	"io"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Source is what the metrics are read from; *pipeline.Runner implements it.
type Source interface {
	Stats() pipeline.Snapshot
	Connectors() []pipeline.ConnectorStatus
	Ready() error
	Running() bool
}

var _ Source = (*pipeline.Runner)(nil)

// Option configures Handler and Write.
type Option func(*config)

type config struct {
	latency *Latency
}

// WithLatency adds the hop latency histograms recorded by l.
func WithLatency(l *Latency) Option { return func(c *config) { c.latency = l } }

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		o(&c)
	}
	return c
}

// Registry returns a new registry (not the global default) holding the
// collector of r's metrics.
func Registry(r Source, opts ...Option) *prometheus.Registry {
	c := newConfig(opts)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newCollector(r, c.latency))
	return reg
}

// Handler returns the HTTP handler serving /metrics, /healthz and /readyz
// for r. Mount it at the root of the CLI's --http listener. Each handler
// has its own registry, with r's metrics and the Go runtime and process
// collectors.
func Handler(r Source, opts ...Option) http.Handler {
	reg := Registry(r, opts...)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	prom := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		ErrorHandling:     promhttp.ContinueOnError,
	})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", prom)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := r.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "not ready: "+err.Error()+"\n")
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	return mux
}

// Write writes every metric of r (not the Go runtime and process ones) in
// the Prometheus text format.
func Write(w io.Writer, r Source, opts ...Option) error {
	mfs, err := Registry(r, opts...).Gather()
	if err != nil {
		return fmt.Errorf("metrics: gather: %w", err)
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("metrics: encode %s: %w", mf.GetName(), err)
		}
	}
	return nil
}

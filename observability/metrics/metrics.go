// Package metrics exposes a running aimdb-flow graph to Prometheus and to
// health checks.
//
// Handler serves three endpoints:
//
//	/metrics  Prometheus text format (0.0.4), built from Runner.Stats() and
//	          Runner.Connectors() at scrape time: nothing is counted twice
//	          and nothing costs anything between scrapes
//	/healthz  200 while the process serves HTTP (liveness)
//	/readyz   200 when the graph runs and every connector that can tell is
//	          connected, else 503 with the reason (readiness)
//
// Per-hop latency histograms come from a Latency recorder, which is a
// pipeline.Tracer: install it in RunOptions and pass it with WithLatency.
//
// The exposition is written by hand (the format is small and stable), so
// the package adds no dependency.
package metrics

import (
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"

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

// Handler returns the HTTP handler serving /metrics, /healthz and /readyz
// for r. Mount it at the root of the CLI's --http listener.
func Handler(r Source, opts ...Option) http.Handler {
	var c config
	for _, o := range opts {
		o(&c)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_ = write(w, r, &c)
	})
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

// Write writes every metric of r in the Prometheus text format.
func Write(w io.Writer, r Source, opts ...Option) error {
	var c config
	for _, o := range opts {
		o(&c)
	}
	return write(w, r, &c)
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// mergesStage reports whether a stage kind turns several inputs into one
// output (its In minus Out is not a drop count).
func mergesStage(name string) bool {
	kind := name
	if i := strings.IndexByte(name, ':'); i >= 0 {
		kind = name[i+1:]
	}
	return strings.Contains(kind, "batch") || strings.Contains(kind, "window")
}

func write(w io.Writer, r Source, c *config) error {
	snap := r.Stats()
	e := newExpo(w)

	running := &family{name: "aimdb_flow_running", typ: "gauge", help: "1 while the graph runs (sources started, not stopping)."}
	running.add(boolf(r.Running()))
	ready := &family{name: "aimdb_flow_ready", typ: "gauge", help: "1 when the graph runs and every connector is connected (what /readyz reports)."}
	ready.add(boolf(r.Ready() == nil))
	connUp := &family{name: "aimdb_flow_connector_ready", typ: "gauge", help: "1 when the connector is connected (connectors that cannot tell report 1 while running)."}
	for _, cs := range r.Connectors() {
		connUp.add(boolf(cs.Ready == nil), label{"connector", cs.Name}, label{"scheme", cs.Scheme})
	}
	for _, f := range []*family{running, ready, connUp} {
		e.family(f)
	}

	recWrites := &family{name: "aimdb_flow_record_writes_total", typ: "counter", help: "Values written to the record."}
	bufDelivered := &family{name: "aimdb_flow_buffer_delivered_total", typ: "counter", help: "Values handed from the record's buffer to readers (summed over readers)."}
	bufDropped := &family{name: "aimdb_flow_buffer_dropped_total", typ: "counter", help: "Values lost by the buffer: overwritten mailbox values, collapsed latest values."}
	bufLagged := &family{name: "aimdb_flow_buffer_lagged_total", typ: "counter", help: "Values missed by lagging ring-buffer readers (summed over readers)."}
	bufOcc := &family{name: "aimdb_flow_buffer_occupancy", typ: "gauge", help: "Values held in the buffer and not yet read by the slowest reader."}
	bufCap := &family{name: "aimdb_flow_buffer_capacity", typ: "gauge", help: "Buffer capacity (1 for latest and mailbox)."}
	bufReaders := &family{name: "aimdb_flow_buffer_readers", typ: "gauge", help: "Readers of the record's buffer."}
	for name, rs := range snap.Records {
		l := []label{{"record", name}}
		recWrites.add(float64(rs.Writes), l...)
		bufDelivered.add(float64(rs.Buffer.Delivered), l...)
		bufDropped.add(float64(rs.Buffer.Dropped), l...)
		bufLagged.add(float64(rs.Buffer.Lagged), l...)
		bufOcc.add(float64(rs.Buffer.Occupancy), l...)
		capacity := rs.Buffer.Capacity
		if capacity == 0 {
			capacity = 1
		}
		bufCap.add(float64(capacity), label{"record", name}, label{"kind", rs.Buffer.Kind.String()})
		bufReaders.add(float64(rs.Buffer.Readers), l...)
	}
	for _, f := range []*family{recWrites, bufDelivered, bufDropped, bufLagged, bufOcc, bufCap, bufReaders} {
		e.family(f)
	}

	pIn := &family{name: "aimdb_flow_pipeline_in_total", typ: "counter", help: "Envelopes the pipeline read from its input record."}
	pOut := &family{name: "aimdb_flow_pipeline_out_total", typ: "counter", help: "Envelopes that reached the pipeline's outputs."}
	pErr := &family{name: "aimdb_flow_pipeline_errors_total", typ: "counter", help: "Envelopes that failed in a stage (dead-lettered)."}
	sIn := &family{name: "aimdb_flow_stage_in_total", typ: "counter", help: "Envelopes that entered the stage."}
	sOut := &family{name: "aimdb_flow_stage_out_total", typ: "counter", help: "Envelopes the stage emitted."}
	sErr := &family{name: "aimdb_flow_stage_errors_total", typ: "counter", help: "Envelopes the stage failed on (dead-lettered)."}
	sDrop := &family{name: "aimdb_flow_stage_dropped_total", typ: "counter", help: "Envelopes the stage dropped on purpose (filtered, deduplicated, throttled): in - out - errors; not reported for batch and window stages."}
	for name, ps := range snap.Pipelines {
		pl := label{"pipeline", name}
		pIn.add(float64(ps.In), pl)
		pOut.add(float64(ps.Out), pl)
		pErr.add(float64(ps.Errors), pl)
		for i, st := range ps.Stages {
			out := ps.Out
			if i+1 < len(ps.Stages) {
				out = ps.Stages[i+1].In
			}
			l := []label{pl, {"stage", st.Name}}
			sIn.add(float64(st.In), l...)
			sOut.add(float64(out), l...)
			sErr.add(float64(st.Errors), l...)
			if !mergesStage(st.Name) {
				drop := int64(st.In) - int64(out) - int64(st.Errors)
				sDrop.add(float64(max(drop, 0)), l...)
			}
		}
	}
	for _, f := range []*family{pIn, pOut, pErr, sIn, sOut, sErr, sDrop} {
		e.family(f)
	}

	lMsg := &family{name: "aimdb_flow_link_messages_total", typ: "counter", help: "Messages moved by the link: received (in) or published (out)."}
	lErr := &family{name: "aimdb_flow_link_errors_total", typ: "counter", help: "Link failures: decode errors (in), encode or publish failures (out)."}
	lDL := &family{name: "aimdb_flow_link_dead_lettered_total", typ: "counter", help: "Messages of the link sent to the dead-letter path."}
	for key, ls := range snap.Links {
		owner, _, _ := strings.Cut(key, "|")
		dir := "out"
		if ls.Direction == pipeline.Inbound {
			dir = "in"
		}
		l := []label{{"owner", owner}, {"link", ls.Link}, {"direction", dir}}
		lMsg.add(float64(ls.Messages), l...)
		lErr.add(float64(ls.Errors), l...)
		lDL.add(float64(ls.DeadLettered), l...)
	}
	unrouted := &family{name: "aimdb_flow_unrouted_total", typ: "counter", help: "Inbound messages that matched no record."}
	unrouted.add(float64(snap.Unrouted))
	dl := &family{name: "aimdb_flow_dead_letters_total", typ: "counter", help: "Dead letters produced (all causes)."}
	dl.add(float64(snap.DeadLetters))
	for _, f := range []*family{lMsg, lErr, lDL, unrouted, dl} {
		e.family(f)
	}

	if c.latency != nil {
		writeLatency(e, c.latency)
	}
	return e.flush()
}

func hopLabels(info *pipeline.HopInfo) []label {
	return []label{{"hop", info.Hop.String()}, {"pipeline", info.Pipeline}, {"stage", info.Stage},
		{"record", info.Record}, {"link", info.Link}}
}

func writeLatency(e *expo, l *Latency) {
	const name = "aimdb_flow_hop_duration_seconds"
	// Merge histograms with the same labels (parallel workers each have
	// their own HopInfo per stage).
	type merged struct {
		labels []label
		counts []uint64
		sum    uint64
	}
	byKey := map[string]*merged{}
	for _, h := range l.snapshot() {
		ls := hopLabels(h.info)
		k := labelKey(ls)
		m := byKey[k]
		if m == nil {
			m = &merged{labels: ls, counts: make([]uint64, len(h.counts))}
			byKey[k] = m
		}
		for i := range h.counts {
			m.counts[i] += h.counts[i].Load()
		}
		m.sum += h.sumNano.Load()
	}
	if len(byKey) == 0 {
		return
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	e.str("# HELP " + name + " Duration of each hop of a record (receive, decode, stage, encode, publish).\n")
	e.str("# TYPE " + name + " histogram\n")
	for _, k := range keys {
		m := byKey[k]
		var cum uint64
		for i, b := range Buckets {
			cum += m.counts[i]
			e.sample(name+"_bucket", append(m.labels[:len(m.labels):len(m.labels)], label{"le", strconv.FormatFloat(b, 'g', -1, 64)}), float64(cum))
		}
		cum += m.counts[len(Buckets)]
		// _count is the bucket total, so the histogram stays consistent
		// while observations land concurrently.
		e.sample(name+"_bucket", append(m.labels[:len(m.labels):len(m.labels)], label{"le", "+Inf"}), float64(cum))
		e.sample(name+"_sum", m.labels, float64(m.sum)/1e9)
		e.sample(name+"_count", m.labels, float64(cum))
	}
}

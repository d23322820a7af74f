package metrics

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// collector is a prometheus.Collector reading a Source (and optionally a
// Latency recorder) at scrape time: it emits const metrics, so nothing is
// paid per record and nothing is written to a registry on the hot path.
type collector struct {
	src Source
	lat *Latency
	d   descs
}

var _ prometheus.Collector = (*collector)(nil)

// descs are the metric descriptions, with the names, labels and HELP texts
// of the hand-written exposition this collector replaced.
type descs struct {
	running, ready, connReady                      *prometheus.Desc
	recWrites, bufDelivered, bufDropped, bufLagged *prometheus.Desc
	bufOcc, bufCap, bufReaders                     *prometheus.Desc
	pIn, pOut, pErr, sIn, sOut, sErr, sDrop        *prometheus.Desc
	lMsg, lErr, lDL, unrouted, deadLetters, hop    *prometheus.Desc
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

func newDescs() descs {
	rec := []string{"record"}
	pl := []string{"pipeline"}
	st := []string{"pipeline", "stage"}
	link := []string{"owner", "link", "direction"}
	return descs{
		running:      desc("aimdb_flow_running", "1 while the graph runs (sources started, not stopping)."),
		ready:        desc("aimdb_flow_ready", "1 when the graph runs and every connector is connected (what /readyz reports)."),
		connReady:    desc("aimdb_flow_connector_ready", "1 when the connector is connected (connectors that cannot tell report 1 while running).", "connector", "scheme"),
		recWrites:    desc("aimdb_flow_record_writes_total", "Values written to the record.", rec...),
		bufDelivered: desc("aimdb_flow_buffer_delivered_total", "Values handed from the record's buffer to readers (summed over readers).", rec...),
		bufDropped:   desc("aimdb_flow_buffer_dropped_total", "Values lost by the buffer: overwritten mailbox values, collapsed latest values.", rec...),
		bufLagged:    desc("aimdb_flow_buffer_lagged_total", "Values missed by lagging ring-buffer readers (summed over readers).", rec...),
		bufOcc:       desc("aimdb_flow_buffer_occupancy", "Values held in the buffer and not yet read by the slowest reader.", rec...),
		bufCap:       desc("aimdb_flow_buffer_capacity", "Buffer capacity (1 for latest and mailbox).", "record", "kind"),
		bufReaders:   desc("aimdb_flow_buffer_readers", "Readers of the record's buffer.", rec...),
		pIn:          desc("aimdb_flow_pipeline_in_total", "Envelopes the pipeline read from its input record.", pl...),
		pOut:         desc("aimdb_flow_pipeline_out_total", "Envelopes that reached the pipeline's outputs.", pl...),
		pErr:         desc("aimdb_flow_pipeline_errors_total", "Envelopes that failed in a stage (dead-lettered).", pl...),
		sIn:          desc("aimdb_flow_stage_in_total", "Envelopes that entered the stage.", st...),
		sOut:         desc("aimdb_flow_stage_out_total", "Envelopes the stage emitted.", st...),
		sErr:         desc("aimdb_flow_stage_errors_total", "Envelopes the stage failed on (dead-lettered).", st...),
		sDrop:        desc("aimdb_flow_stage_dropped_total", "Envelopes the stage dropped on purpose (filtered, deduplicated, throttled): in - out - errors; not reported for batch and window stages.", st...),
		lMsg:         desc("aimdb_flow_link_messages_total", "Messages moved by the link: received (in) or published (out).", link...),
		lErr:         desc("aimdb_flow_link_errors_total", "Link failures: decode errors (in), encode or publish failures (out).", link...),
		lDL:          desc("aimdb_flow_link_dead_lettered_total", "Messages of the link sent to the dead-letter path.", link...),
		unrouted:     desc("aimdb_flow_unrouted_total", "Inbound messages that matched no record."),
		deadLetters:  desc("aimdb_flow_dead_letters_total", "Dead letters produced (all causes)."),
		hop:          desc("aimdb_flow_hop_duration_seconds", "Duration of each hop of a record (receive, decode, stage, encode, publish).", "hop", "pipeline", "stage", "record", "link"),
	}
}

func newCollector(src Source, lat *Latency) *collector {
	return &collector{src: src, lat: lat, d: newDescs()}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	d := &c.d
	for _, x := range []*prometheus.Desc{d.running, d.ready, d.connReady, d.recWrites, d.bufDelivered,
		d.bufDropped, d.bufLagged, d.bufOcc, d.bufCap, d.bufReaders, d.pIn, d.pOut, d.pErr, d.sIn, d.sOut,
		d.sErr, d.sDrop, d.lMsg, d.lErr, d.lDL, d.unrouted, d.deadLetters} {
		ch <- x
	}
	if c.lat != nil {
		ch <- d.hop
	}
}

// emit sends one const metric; an invalid one (for example two series
// with the same labels) is reported by the registry, not panicked on.
func emit(ch chan<- prometheus.Metric, d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
	m, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		m = prometheus.NewInvalidMetric(d, err)
	}
	ch <- m
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

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	const (
		counter = prometheus.CounterValue
		gauge   = prometheus.GaugeValue
	)
	d := &c.d
	snap := c.src.Stats()
	emit(ch, d.running, gauge, boolf(c.src.Running()))
	emit(ch, d.ready, gauge, boolf(c.src.Ready() == nil))
	for _, cs := range c.src.Connectors() {
		emit(ch, d.connReady, gauge, boolf(cs.Ready == nil), cs.Name, cs.Scheme)
	}
	for name, rs := range snap.Records {
		emit(ch, d.recWrites, counter, float64(rs.Writes), name)
		emit(ch, d.bufDelivered, counter, float64(rs.Buffer.Delivered), name)
		emit(ch, d.bufDropped, counter, float64(rs.Buffer.Dropped), name)
		emit(ch, d.bufLagged, counter, float64(rs.Buffer.Lagged), name)
		emit(ch, d.bufOcc, gauge, float64(rs.Buffer.Occupancy), name)
		capacity := rs.Buffer.Capacity
		if capacity == 0 {
			capacity = 1
		}
		emit(ch, d.bufCap, gauge, float64(capacity), name, rs.Buffer.Kind.String())
		emit(ch, d.bufReaders, gauge, float64(rs.Buffer.Readers), name)
	}
	for name, ps := range snap.Pipelines {
		emit(ch, d.pIn, counter, float64(ps.In), name)
		emit(ch, d.pOut, counter, float64(ps.Out), name)
		emit(ch, d.pErr, counter, float64(ps.Errors), name)
		for i, st := range ps.Stages {
			out := ps.Out
			if i+1 < len(ps.Stages) {
				out = ps.Stages[i+1].In
			}
			emit(ch, d.sIn, counter, float64(st.In), name, st.Name)
			emit(ch, d.sOut, counter, float64(out), name, st.Name)
			emit(ch, d.sErr, counter, float64(st.Errors), name, st.Name)
			if !mergesStage(st.Name) {
				drop := int64(st.In) - int64(out) - int64(st.Errors)
				emit(ch, d.sDrop, counter, float64(max(drop, 0)), name, st.Name)
			}
		}
	}
	for key, ls := range snap.Links {
		owner, _, _ := strings.Cut(key, "|")
		dir := "out"
		if ls.Direction == pipeline.Inbound {
			dir = "in"
		}
		emit(ch, d.lMsg, counter, float64(ls.Messages), owner, ls.Link, dir)
		emit(ch, d.lErr, counter, float64(ls.Errors), owner, ls.Link, dir)
		emit(ch, d.lDL, counter, float64(ls.DeadLettered), owner, ls.Link, dir)
	}
	emit(ch, d.unrouted, counter, float64(snap.Unrouted))
	emit(ch, d.deadLetters, counter, float64(snap.DeadLetters))
	if c.lat != nil {
		c.collectLatency(ch)
	}
}

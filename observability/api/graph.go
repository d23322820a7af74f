package api

import (
	"cmp"
	"net/http"
	"slices"
	"time"

	"github.com/aimdb-dev/aimdb-flow/observability/metrics"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

func (s *Server) graph(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.buildGraph())
}

func (s *Server) timings(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Timings{Enabled: s.opts.Latency != nil, Hops: s.hopTimings()})
}

// buildGraph describes the running graph with its counters.
func (s *Server) buildGraph() Graph {
	g := s.r.Graph()
	snap := s.r.Stats()
	out := Graph{Running: s.r.Running(), Records: s.records(snap), Unrouted: snap.Unrouted, DeadLetters: snap.DeadLetters,
		Connectors: []Connector{}, Pipelines: []Pipeline{}, Links: []Link{}}
	if err := s.r.Ready(); err != nil {
		out.NotReady = err.Error()
	} else {
		out.Ready = true
	}
	if dl := g.DeadLetter(); dl != nil {
		out.DeadLetter = dl.Raw
	}
	for _, c := range s.r.Connectors() {
		ci := Connector{Name: c.Name, Scheme: c.Scheme, Endpoint: redactURL(s.opts.Endpoints[c.Name]), Ready: c.Ready == nil}
		if c.Ready != nil {
			ci.NotReady = c.Ready.Error()
		}
		out.Connectors = append(out.Connectors, ci)
	}
	stageTiming := map[[2]string]*Timing{}
	for _, t := range s.hopTimings() {
		if t.Hop == pipeline.HopStage.String() {
			stageTiming[[2]string{t.Pipeline, t.Stage}] = &t
		}
	}
	link := func(dir pipeline.Direction, rec, pipe string, l pipeline.Link, raw string) Link {
		ls := snap.Links[cmp.Or(rec, pipe)+"|"+raw]
		d := "out"
		if dir == pipeline.Inbound {
			d = "in"
		}
		return Link{Direction: d, Record: rec, Pipeline: pipe, Link: raw, Connector: l.Connector,
			Messages: ls.Messages, Errors: ls.Errors, DeadLettered: ls.DeadLettered}
	}
	for _, r := range g.Records() {
		for _, l := range r.Inbound {
			out.Links = append(out.Links, link(pipeline.Inbound, r.Name, "", l.Link, l.Raw))
		}
		for _, l := range r.Outbound {
			out.Links = append(out.Links, link(pipeline.Outbound, r.Name, "", l.Link, l.Raw))
		}
	}
	for _, p := range g.Pipelines() {
		ps := snap.Pipelines[p.Name]
		pi := Pipeline{Name: p.Name, From: p.Input, Into: p.IntoRecord, Parallel: p.Workers,
			In: ps.In, Out: ps.Out, Errors: ps.Errors, Stages: []Stage{}}
		if p.DeadLetter != nil {
			pi.DeadLetter = p.DeadLetter.Raw
		}
		for _, l := range p.Outputs {
			pi.To = append(pi.To, l.Raw)
			out.Links = append(out.Links, link(pipeline.Outbound, "", p.Name, l.Link, l.Raw))
		}
		for _, st := range ps.Stages {
			pi.Stages = append(pi.Stages, Stage{Name: st.Name, In: st.In, Errors: st.Errors, Timing: stageTiming[[2]string{p.Name, st.Name}]})
		}
		out.Pipelines = append(out.Pipelines, pi)
	}
	return out
}

// hopTimings summarizes the latency histograms, sorted by hop, pipeline,
// stage, record and link.
func (s *Server) hopTimings() []Timing {
	out := []Timing{}
	if s.opts.Latency == nil {
		return out
	}
	for _, h := range s.opts.Latency.Timings() {
		if h.Count == 0 {
			continue
		}
		i := h.Info
		t := Timing{Hop: i.Hop.String(), Pipeline: i.Pipeline, Stage: i.Stage, Record: i.Record, Link: i.Link, Connector: i.Connector,
			Count: h.Count, MeanSeconds: (h.Sum / time.Duration(h.Count)).Seconds(),
			P50Seconds: quantile(h, 0.5), P90Seconds: quantile(h, 0.9), P99Seconds: quantile(h, 0.99)}
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Timing) int {
		return cmp.Or(cmp.Compare(a.Hop, b.Hop), cmp.Compare(a.Pipeline, b.Pipeline), cmp.Compare(a.Stage, b.Stage),
			cmp.Compare(a.Record, b.Record), cmp.Compare(a.Link, b.Link), cmp.Compare(a.Connector, b.Connector))
	})
	return out
}

// quantile is the upper bound of the bucket holding quantile q (0 when it
// is in the overflow bucket).
func quantile(h metrics.HopTiming, q float64) float64 {
	want := uint64(q * float64(h.Count))
	if want == 0 {
		want = 1
	}
	var n uint64
	for i, c := range h.Buckets {
		n += c
		if n >= want {
			if i < len(metrics.Buckets) {
				return metrics.Buckets[i]
			}
			return 0
		}
	}
	return 0
}

// Package flowbench benchmarks a user's .flow pipeline files: it drives
// every inbound link with generated records, discards what the sinks
// publish, and reports per-source, per-stage and per-sink throughput and
// latency. It is what `aimdb-flow bench FILE.flow` runs.
//
// How the graph is driven:
//
//   - Every connector is swapped for an in-process one (no broker, no
//     files, no network). Link settings are still checked by the real
//     connector, so a wrong setting fails as it would in production.
//   - Each inbound link produces Options.Records records, at Options.Rate
//     per second (0: as fast as the pipeline takes them; a full queue
//     buffer blocks the generator, so the figure is the pipeline's
//     sustained rate). A gen:// link keeps its own template and seed; any
//     other link sends Options.Template (default: a sensor reading
//     {"device","temp","seq","ts"}, gen.DefaultTemplate). MQTT wildcards
//     in a link's filter are filled in ("sensors/+/temp" ->
//     "sensors/bench/temp").
//   - Publishes are counted and discarded, except that a connector that
//     publishes to a destination one of its own inbound links subscribes to
//     delivers it there, like a broker would (pipelines chained through an
//     in-process bus or an MQTT topic keep working); such a link is not
//     also fed by the generator.
//
// Latency is measured with a pipeline.Tracer: each stage hop (which, for
// fused stages, includes the stages after it in the same goroutine), each
// publish hop, and end to end, from the record's generation to its
// publish.
package flowbench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/gen"
	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/topic"
)

// Options configure a run.
type Options struct {
	// Records per inbound link (default 10000).
	Records int
	// Rate is records per second per inbound link; 0 means as fast as
	// the pipeline takes them.
	Rate float64
	// Template is the gen template for links that are not gen:// links
	// (default gen.DefaultTemplate).
	Template string
	// Getenv looks up ${NAME} in the files (default os.LookupEnv).
	Getenv func(name string) (string, bool)
	// Logger receives the pipelines' logs (default: discarded).
	Logger *slog.Logger
	// Timeout bounds the run (default 10 minutes).
	Timeout time.Duration
}

// Report is what a run measured.
type Report struct {
	Files    []string      `json:"files"`
	Records  int           `json:"records_per_source"`
	Rate     float64       `json:"rate,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	// TimedOut is set when Options.Timeout ended the run.
	TimedOut    bool         `json:"timed_out,omitempty"`
	Sources     []SourceStat `json:"sources"`
	Pipelines   []PipeStat   `json:"pipelines"`
	Sinks       []SinkStat   `json:"sinks"`
	DeadLetters uint64       `json:"dead_letters"`
	Unrouted    uint64       `json:"unrouted"`
	// Dropped counts values lossy buffers dropped or readers lagged past.
	Dropped uint64 `json:"dropped"`
}

// SourceStat is one inbound link.
type SourceStat struct {
	Record    string  `json:"record"`
	Link      string  `json:"link"`
	Generated uint64  `json:"generated"` // 0 for a loopback link
	Loopback  bool    `json:"loopback,omitempty"`
	Messages  uint64  `json:"messages"` // received by the record
	Errors    uint64  `json:"errors"`   // decode failures
	PerSec    float64 `json:"per_sec"`
}

// PipeStat is one pipeline with its stages.
type PipeStat struct {
	Name   string      `json:"name"`
	In     uint64      `json:"in"`
	Out    uint64      `json:"out"`
	Errors uint64      `json:"errors"`
	PerSec float64     `json:"per_sec"` // In per second
	Stages []StageStat `json:"stages"`
}

// StageStat is one stage: counts and the latency of its hop.
type StageStat struct {
	Name    string  `json:"name"`
	In      uint64  `json:"in"`
	Errors  uint64  `json:"errors"`
	PerSec  float64 `json:"per_sec"`
	Latency Dist    `json:"latency"`
}

// SinkStat is one outbound link: what reached it and how long records
// took from generation to publish.
type SinkStat struct {
	Owner    string  `json:"owner"` // pipeline or record writing to it
	Link     string  `json:"link"`
	Messages uint64  `json:"messages"`
	Errors   uint64  `json:"errors"`
	PerSec   float64 `json:"per_sec"`
	Publish  Dist    `json:"publish"`    // encode+publish hop
	EndToEnd Dist    `json:"end_to_end"` // generation -> publish
	Loopback bool    `json:"loopback,omitempty"`
}

// Dist summarizes a latency distribution.
type Dist struct {
	Count uint64        `json:"count"`
	P50   time.Duration `json:"p50_ns"`
	P99   time.Duration `json:"p99_ns"`
	Max   time.Duration `json:"max_ns"`
	Mean  time.Duration `json:"mean_ns"`
}

// Run loads the files as one graph, drives it and reports.
func Run(ctx context.Context, opts Options, files ...string) (*Report, error) {
	if opts.Records <= 0 {
		opts.Records = 10000
	}
	if opts.Rate < 0 {
		return nil, errors.New("flowbench: rate must not be negative")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	tmpl := opts.Template
	if tmpl == "" {
		tmpl = gen.DefaultTemplate
	}
	t, err := gen.ParseTemplate(tmpl)
	if err != nil {
		return nil, fmt.Errorf("flowbench: template: %w", err)
	}
	h := &harness{opts: opts, tmpl: t, loops: map[string][]string{}, tracer: newTracer()}
	lopts := dsl.Options{Getenv: opts.Getenv, Logger: opts.Logger,
		WrapConnector: func(name, _ string, b pipeline.Builder) pipeline.Builder {
			return &benchBuilder{h: h, name: name, orig: b}
		}}
	g, err := dsl.LoadFiles(lopts, files...)
	if err != nil {
		return nil, err
	}
	h.planLoops(g)
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{Logger: opts.Logger, Tracer: h.tracer, DrainTimeout: 30 * time.Second})
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	start := time.Now()
	runErr := r.Run(rctx)
	rep := &Report{Files: files, Records: opts.Records, Rate: opts.Rate, Duration: time.Since(start)}
	if runErr != nil {
		return nil, fmt.Errorf("flowbench: run: %w", runErr)
	}
	if rctx.Err() != nil && ctx.Err() == nil {
		rep.TimedOut = true
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.fill(rep, g, r.Stats())
	return rep, nil
}

// harness is one run's shared state.
type harness struct {
	opts   Options
	tmpl   *gen.Template
	tracer *tracer
	// loops maps a connector to the destinations it publishes to (with
	// template placeholders filled in), for loopback delivery.
	loops     map[string][]string
	loopConns map[string]bool
	inboundOf map[string][]string // connector -> inbound link addresses
	inflight  atomic.Int64        // generated or looped records not yet acknowledged
	feeding   atomic.Int64        // generators still running
	last      atomic.Int64        // unix nanos of the last publish
	generated sync.Map            // connector+"|"+filter -> *atomic.Uint64
}

// planLoops finds the connectors that publish to destinations their own
// inbound links subscribe to.
func (h *harness) planLoops(g *pipeline.Graph) {
	add := func(o *pipeline.OutLink) {
		if o == nil || o.Dest == nil {
			return
		}
		h.loops[o.Link.Connector] = append(h.loops[o.Link.Connector], fillPlaceholders(o.Dest.String()))
	}
	for _, p := range g.Pipelines() {
		for _, o := range p.Outputs {
			add(o)
		}
		add(p.DeadLetter)
	}
	for _, r := range g.Records() {
		for _, o := range r.Outbound {
			add(o)
		}
	}
	add(g.DeadLetter())
	h.loopConns = map[string]bool{}
	h.inboundOf = map[string][]string{}
	for _, r := range g.Records() {
		for _, l := range r.Inbound {
			h.inboundOf[l.Link.Connector] = append(h.inboundOf[l.Link.Connector], l.Link.Address)
			if h.loopFed(l.Link.Connector, l.Link.Address) {
				h.loopConns[l.Link.Connector] = true
			}
		}
	}
}

// loopFed reports whether connector conn publishes to something the
// inbound filter subscribes to.
func (h *harness) loopFed(conn, filter string) bool {
	f, _ := topic.Filter(filter)
	for _, d := range h.loops[conn] {
		if d == f || topic.Match(f, d) {
			return true
		}
	}
	return false
}

// fillPlaceholders turns "alerts/{device}/x" into "alerts/bench/x".
func fillPlaceholders(s string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString("bench")
		s = s[i+j+1:]
	}
}

// concrete turns a topic filter into a topic it matches.
func concrete(filter string) string {
	f, _ := topic.Filter(filter)
	parts := strings.Split(f, "/")
	for i, p := range parts {
		if p == "+" || p == "#" {
			parts[i] = "bench"
		}
	}
	return strings.Join(parts, "/")
}

func (h *harness) counter(conn, filter string) *atomic.Uint64 {
	v, _ := h.generated.LoadOrStore(conn+"|"+filter, new(atomic.Uint64))
	return v.(*atomic.Uint64)
}

// ---- the swapped connectors ----

type benchBuilder struct {
	h    *harness
	name string
	orig pipeline.Builder
}

func (b *benchBuilder) Scheme() string { return b.orig.Scheme() }

// Caps forwards the real connector's declaration.
func (b *benchBuilder) Caps() pipeline.Caps { return pipeline.CapsOf(b.orig) }

// ParseLinkOptions validates link settings with the real connector.
func (b *benchBuilder) ParseLinkOptions(dir pipeline.Direction, addr string, p pipeline.Params) (any, error) {
	if lp, ok := b.orig.(pipeline.LinkOptionParser); ok {
		return lp.ParseLinkOptions(dir, addr, p)
	}
	if len(p) > 0 {
		return nil, fmt.Errorf("connector %q takes no link options", b.name)
	}
	return nil, nil
}

func (b *benchBuilder) Build(_ context.Context, env pipeline.BuildEnv) (pipeline.Connector, error) {
	c := &benchConn{h: b.h, name: b.name, loop: make(chan pipeline.Envelope, 4096)}
	for _, s := range env.Inbound {
		if b.h.loopFed(b.name, s.Filter) {
			c.loopFilters = append(c.loopFilters, s.Filter)
		}
	}
	return c, nil
}

type benchConn struct {
	h           *harness
	name        string
	loopFilters []string
	loop        chan pipeline.Envelope
}

func (c *benchConn) Publish(ctx context.Context, dest string, _ any, env *pipeline.Envelope) error {
	h := c.h
	h.last.Store(time.Now().UnixNano())
	for _, f := range c.loopFilters {
		ff, _ := topic.Filter(f)
		if ff == dest || topic.Match(ff, dest) {
			e := pipeline.Envelope{Payload: append([]byte(nil), env.Payload...), Key: append([]byte(nil), env.Key...),
				Headers: env.Headers, Topic: dest, Time: env.Time}
			h.inflight.Add(1)
			select {
			case c.loop <- e:
			case <-ctx.Done():
				h.inflight.Add(-1)
				return ctx.Err()
			}
			break
		}
	}
	return nil
}

func (c *benchConn) Close(context.Context) error { return nil }

// Finite implements pipeline.FiniteSource: every source ends once its
// records (and what was looped back to it) are processed.
func (c *benchConn) Finite([]pipeline.Subscription) bool { return true }

// quiet is how long a loopback source waits without publishes before it
// decides that nothing more will arrive.
const quiet = 200 * time.Millisecond

// countingDispatcher tracks in-flight records for loopback termination.
type countingDispatcher struct {
	h     *harness
	d     pipeline.Dispatcher
	count *atomic.Uint64
	// looped: the record was counted in flight when it was published (it
	// stays counted while queued, so no source sees a false quiet moment).
	looped bool
}

func (cd countingDispatcher) Dispatch(ctx context.Context, env *pipeline.Envelope) error {
	h := cd.h
	if !cd.looped {
		h.inflight.Add(1)
	}
	env.Ack = pipeline.NewAck(func(error) { h.inflight.Add(-1) })
	if cd.count != nil {
		cd.count.Add(1)
	}
	return cd.d.Dispatch(ctx, env)
}

func (c *benchConn) Serve(ctx context.Context, subs []pipeline.Subscription, d pipeline.Dispatcher) error {
	h := c.h
	var wg sync.WaitGroup
	for i, s := range subs {
		if h.loopFed(c.name, s.Filter) {
			continue
		}
		o, isGen := s.Options.(gen.Options)
		if !isGen || o.Template == nil {
			o = gen.Options{Template: h.tmpl, Seed: uint64(i + 1)}
		}
		o.Count, o.Rate = int64(h.opts.Records), h.opts.Rate
		cd := countingDispatcher{h: h, d: d, count: h.counter(c.name, s.Filter)}
		h.feeding.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer h.feeding.Add(-1)
			gen.Generate(ctx, concrete(s.Filter), o, cd)
		}()
	}
	wg.Wait()
	if !h.loopConns[c.name] {
		return nil
	}
	cd := countingDispatcher{h: h, d: d, looped: true}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case env := <-c.loop:
			if cd.Dispatch(ctx, &env) != nil {
				return nil
			}
		case <-tick.C:
			if len(c.loop) == 0 && h.feeding.Load() == 0 && h.inflight.Load() == 0 &&
				time.Since(time.Unix(0, h.last.Load())) > quiet {
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// ---- the report ----

func (h *harness) fill(rep *Report, g *pipeline.Graph, s pipeline.Snapshot) {
	secs := rep.Duration.Seconds()
	rate := func(n uint64) float64 {
		if secs <= 0 {
			return 0
		}
		return float64(n) / secs
	}
	rep.DeadLetters, rep.Unrouted = s.DeadLetters, s.Unrouted
	for _, r := range s.Records {
		rep.Dropped += r.Buffer.Dropped + r.Buffer.Lagged
	}
	for _, r := range g.Records() {
		for _, l := range r.Inbound {
			st := SourceStat{Record: r.Name, Link: l.Raw, Loopback: h.loopFed(l.Link.Connector, l.Link.Address)}
			st.Generated = h.counter(l.Link.Connector, l.Link.Address).Load()
			if ls, ok := s.Links[r.Name+"|"+l.Raw]; ok {
				st.Messages, st.Errors = ls.Messages, ls.Errors
			}
			st.PerSec = rate(st.Messages)
			rep.Sources = append(rep.Sources, st)
		}
		for _, o := range r.Outbound {
			rep.Sinks = append(rep.Sinks, h.sink(r.Name, o, s, rate))
		}
	}
	for _, p := range g.Pipelines() {
		ps := s.Pipelines[p.Name]
		pst := PipeStat{Name: p.Name, In: ps.In, Out: ps.Out, Errors: ps.Errors, PerSec: rate(ps.In)}
		for _, st := range ps.Stages {
			pst.Stages = append(pst.Stages, StageStat{Name: st.Name, In: st.In, Errors: st.Errors, PerSec: rate(st.In),
				Latency: h.tracer.dist(pipeline.HopStage, p.Name, st.Name)})
		}
		rep.Pipelines = append(rep.Pipelines, pst)
		for _, o := range p.Outputs {
			rep.Sinks = append(rep.Sinks, h.sink(p.Name, o, s, rate))
		}
	}
	sort.SliceStable(rep.Sources, func(i, j int) bool { return rep.Sources[i].Record < rep.Sources[j].Record })
}

func (h *harness) sink(owner string, o *pipeline.OutLink, s pipeline.Snapshot, rate func(uint64) float64) SinkStat {
	st := SinkStat{Owner: owner, Link: o.Raw}
	if o.Dest != nil {
		d := fillPlaceholders(o.Dest.String())
		for _, r := range h.inboundOf[o.Link.Connector] {
			if f, _ := topic.Filter(r); f == d || topic.Match(f, d) {
				st.Loopback = true
			}
		}
	}
	if ls, ok := s.Links[owner+"|"+o.Raw]; ok {
		st.Messages, st.Errors = ls.Messages, ls.Errors
	}
	st.PerSec = rate(st.Messages)
	st.Publish = h.tracer.dist(pipeline.HopPublish, owner, o.Raw)
	st.EndToEnd = h.tracer.e2eDist(owner, o.Raw)
	return st
}

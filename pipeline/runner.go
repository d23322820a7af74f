package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
	"github.com/aimdb-dev/aimdb-flow/pipeline/topic"
)

// RunOptions configure a Runner.
type RunOptions struct {
	// Logger receives lifecycle and error logs (default slog.Default()).
	Logger *slog.Logger
	// Tracer is the tracing hook (nil: tracing off, at no cost).
	Tracer Tracer
	// DrainTimeout bounds the shutdown: after the sources stopped, in-flight
	// records have this long to reach their sinks (default 10s). Then the
	// stages' context is cancelled and they get a further grace of
	// min(DrainTimeout, 1s) to return; a pipeline or publisher still running
	// after that is abandoned (see ErrDrainTimeout). Closing the connectors
	// is bounded by DrainTimeout again.
	DrainTimeout time.Duration
	// MaxPayload rejects inbound payloads larger than this many bytes before
	// decoding: they are dead-lettered with the reason and never reach a
	// record (default 16 MiB; negative means no limit).
	MaxPayload int
	// DeadLetterPayload is how many bytes of the original payload a dead
	// letter keeps (default DefaultDeadLetterPayload; negative: all). The
	// dead letter records the original size and whether it was cut.
	DeadLetterPayload int
}

// DefaultMaxPayload is the inbound payload limit when RunOptions.MaxPayload
// is zero.
const DefaultMaxPayload = 16 << 20

// ErrPayloadTooLarge is the dead-letter reason for an inbound payload over
// RunOptions.MaxPayload.
var ErrPayloadTooLarge = errors.New("payload too large")

// ErrDrainTimeout is returned by Run when in-flight records did not drain
// within RunOptions.DrainTimeout. When a stage also ignored the
// cancellation that followed, the error wraps ErrDrainTimeout and names
// each stuck pipeline (or record publisher) and the last synchronous
// stage (Processor) it entered (async stages are not tracked);
// the source messages of the records it held are nacked (so an
// at-least-once source redelivers them) and its goroutine is left behind,
// since Go cannot stop it.
var ErrDrainTimeout = errors.New("drain timed out with records in flight")

// abandonGraceMax caps the time stages get to return after the drain
// timeout cancelled their context.
const abandonGraceMax = time.Second

// Runner runs a validated Graph. It owns every goroutine it starts: Run
// returns only after all of them have returned, except a stage that ignores
// the cancellation after the drain timeout (see ErrDrainTimeout).
type Runner struct {
	g     *Graph
	opts  RunOptions
	log   *slog.Logger
	hooks *hookSet

	records  map[string]*record
	recOrder []*record
	conns    map[string]*connRun
	connList []*connRun
	pipes    []*pipeRun
	pubs     []*publisherRun
	graphDL  *outRun

	// asyncDL counts dead letters of asynchronous publishes still being
	// sent (see settleAsync); closeConns waits for them.
	asyncDL sync.WaitGroup
	// watchMu serializes changes to the records' watcher lists (Watch).
	watchMu sync.Mutex

	unrouted    atomic.Uint64
	deadLetters atomic.Uint64
	dlLogged    atomic.Uint64
	started     atomic.Bool
	running     atomic.Bool
}

type connRun struct {
	name   string
	spec   *connSpec
	conn   Connector
	subs   []Subscription
	router *topic.Router[*route]
	routes []*route
	disp   *dispatcher
	topics bool
}

type route struct {
	rec    *record
	link   *InLink
	stats  *linkStats
	decode *HopInfo
}

// NewRunner validates g and prepares it to run. No goroutine is started and
// no connection is opened until Run.
func NewRunner(g *Graph, opts RunOptions) (*Runner, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 10 * time.Second
	}
	if opts.MaxPayload == 0 {
		opts.MaxPayload = DefaultMaxPayload
	}
	r := &Runner{g: g, opts: opts, log: opts.Logger, hooks: newHookSet(opts.Tracer),
		records: map[string]*record{}, conns: map[string]*connRun{}}
	for _, c := range g.conns {
		cr := &connRun{name: c.name, spec: c, router: topic.NewRouter[*route](), topics: CapsOf(c.b).Topics}
		cr.disp = &dispatcher{r: r, c: cr, info: &HopInfo{Hop: HopReceive, Connector: c.name, Scheme: c.b.Scheme(), Caps: CapsOf(c.b)}}
		r.conns[c.name] = cr
		r.connList = append(r.connList, cr)
	}
	for _, spec := range g.records {
		rec := newRecord(spec)
		r.records[spec.Name] = rec
		r.recOrder = append(r.recOrder, rec)
		if len(spec.Inbound) > 0 {
			rec.writer = writerSource
		}
		for _, l := range spec.Inbound {
			cr := r.conns[l.Link.Connector]
			rt := &route{rec: rec, link: l, stats: &linkStats{},
				decode: &HopInfo{Hop: HopDecode, Record: rec.name, Link: l.Raw, Connector: cr.name, Scheme: cr.spec.b.Scheme(), Caps: CapsOf(cr.spec.b)}}
			if cr.topics {
				if err := cr.router.Add(l.Link.Address, rt); err != nil {
					return nil, fmt.Errorf("record %s: %w", spec.Name, err)
				}
			} else {
				cr.router.AddExact(l.Link.Address, rt)
			}
			cr.routes = append(cr.routes, rt)
			cr.subs = append(cr.subs, Subscription{Filter: l.Link.Address, Options: l.Options, Record: spec.Name, Decoder: l.Decoder})
		}
	}
	if g.deadLetter != nil {
		r.graphDL = r.newOut(g.deadLetter, "", "")
	}
	for _, spec := range g.pipes {
		pr, err := r.newPipe(spec)
		if err != nil {
			return nil, err
		}
		r.pipes = append(r.pipes, pr)
	}
	for _, spec := range g.records {
		rec := r.records[spec.Name]
		for _, l := range spec.Outbound {
			o := r.newOut(l, "", rec.name)
			o.passthrough = passthroughFrom(spec, l.Encoder)
			r.pubs = append(r.pubs, &publisherRun{r: r, rec: rec, in: rec.subscribe(), out: o, hold: newInflight(1)})
		}
	}
	return r, nil
}

// Run builds the connectors, starts every pipeline, publisher and source,
// and blocks until ctx is cancelled (or every source is finite and done).
// It then stops the sources, drains in-flight records to their sinks within
// the drain timeout, closes the connectors (committing what completed) and
// returns. The error is nil on a clean stop.
func (r *Runner) Run(ctx context.Context) (err error) {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("pipeline: runner already started")
	}
	for _, c := range r.connList {
		conn, berr := c.spec.b.Build(ctx, BuildEnv{Name: c.name, Logger: r.log.With("connector", c.name), Tracer: r.opts.Tracer, Inbound: c.subs})
		if berr != nil {
			r.closeConns(ctx)
			return fmt.Errorf("connector %s: %w", c.name, berr)
		}
		c.conn = conn
		if len(c.subs) > 0 {
			if _, ok := conn.(Source); !ok {
				r.closeConns(ctx)
				return fmt.Errorf("connector %s (%s) cannot serve inbound links", c.name, c.spec.b.Scheme())
			}
		}
	}
	r.bindOutputs()

	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	srcCtx, cancelSrc := context.WithCancel(ctx)
	defer cancelSrc()

	var failOnce sync.Once
	var fatal error
	fail := func(e error) {
		failOnce.Do(func() { fatal = e })
		cancelSrc()
	}

	var workWG sync.WaitGroup
	for _, p := range r.pipes {
		workWG.Add(1)
		go func() {
			defer workWG.Done()
			defer p.stopped.Store(true)
			if e := p.run(workCtx); e != nil && workCtx.Err() == nil {
				fail(fmt.Errorf("pipeline %s: %w", p.name, e))
			}
		}()
	}
	for _, p := range r.pubs {
		workWG.Add(1)
		go func() {
			defer workWG.Done()
			defer p.stopped.Store(true)
			if e := p.run(workCtx); e != nil && workCtx.Err() == nil {
				fail(fmt.Errorf("record %s publisher %s: %w", p.rec.name, p.out.link.Raw, e))
			}
		}()
	}

	var srcWG sync.WaitGroup
	finite := true
	nsrc := 0
	for _, c := range r.connList {
		if len(c.subs) == 0 {
			continue
		}
		nsrc++
		if f, ok := c.conn.(FiniteSource); !ok || !f.Finite(c.subs) {
			finite = false
		}
		srcWG.Add(1)
		go func() {
			defer srcWG.Done()
			if e := c.conn.(Source).Serve(srcCtx, c.subs, c.disp); e != nil && srcCtx.Err() == nil {
				fail(fmt.Errorf("connector %s: %w", c.name, e))
			}
		}()
	}
	srcDone := make(chan struct{})
	go func() { srcWG.Wait(); close(srcDone) }()
	var finished <-chan struct{} // stays nil (never ready) unless every source is finite
	if nsrc > 0 && finite {
		finished = srcDone
	}
	r.running.Store(true)
	r.log.Debug("pipeline graph running", "records", len(r.records), "pipelines", len(r.pipes), "sources", nsrc)

	select {
	case <-srcCtx.Done():
	case <-finished:
	}
	r.running.Store(false)
	drainDeadline := time.NewTimer(r.opts.DrainTimeout)
	defer drainDeadline.Stop()
	cancelSrc()
	srcWG.Wait()
	for _, rec := range r.recOrder {
		if rec.writer != writerPipeline {
			rec.close()
		}
	}
	drained := make(chan struct{})
	go func() { workWG.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-drainDeadline.C:
		r.log.Warn("drain timed out; abandoning in-flight records", "timeout", r.opts.DrainTimeout)
		cancelWork()
		grace := time.NewTimer(min(r.opts.DrainTimeout, abandonGraceMax))
		defer grace.Stop()
		select {
		case <-drained:
			failOnce.Do(func() { fatal = ErrDrainTimeout })
		case <-grace.C:
			stuck := r.abandonStuck()
			failOnce.Do(func() { fatal = stuck })
		}
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.DrainTimeout)
	defer cancel()
	if cerr := r.closeConns(cctx); cerr != nil {
		failOnce.Do(func() { fatal = cerr })
	}
	return fatal
}

// abandonStuck names every pipeline and publisher whose goroutine has not
// returned, nacks the source messages of the records it holds and returns
// the error Run reports.
func (r *Runner) abandonStuck() error {
	var names []string
	for _, p := range r.pipes {
		if p.stopped.Load() {
			continue
		}
		stage := "none (between stages)"
		if i := int(p.stage.Load()); i > 0 && i <= len(p.stageNames) {
			stage = p.stageNames[i-1]
		}
		n := p.hold.abandon(fmt.Errorf("%w: pipeline %s stuck", ErrDrainTimeout, p.name))
		r.log.Error("pipeline ignored cancellation; abandoning it", "pipeline", p.name, "last_stage", stage, "nacked", n)
		names = append(names, fmt.Sprintf("pipeline %s (last stage entered: %s)", p.name, stage))
	}
	for _, p := range r.pubs {
		if p.stopped.Load() {
			continue
		}
		n := p.hold.abandon(fmt.Errorf("%w: record %s publisher %s stuck", ErrDrainTimeout, p.rec.name, p.out.link.Raw))
		r.log.Error("publisher ignored cancellation; abandoning it", "record", p.rec.name, "link", p.out.link.Raw, "nacked", n)
		names = append(names, fmt.Sprintf("record %s publisher %s", p.rec.name, p.out.link.Raw))
	}
	if len(names) == 0 {
		// Every goroutine returned between the grace timer and the check.
		return ErrDrainTimeout
	}
	return fmt.Errorf("%w; ignored cancellation: %s", ErrDrainTimeout, strings.Join(names, ", "))
}

// inflight holds the acks of the records a pipeline or publisher has taken
// from its input and not finished with, one slot per receive batch, so a
// stuck goroutine's records can be nacked. It is updated once per batch, not
// per record.
type inflight struct {
	mu    sync.Mutex
	slots [][]*Ack
}

func newInflight(slots int) *inflight { return &inflight{slots: make([][]*Ack, slots)} }

// hold records the acks of envs in slot.
func (h *inflight) hold(slot int, envs []Envelope) {
	h.mu.Lock()
	s := h.slots[slot][:0]
	for i := range envs {
		if a := envs[i].Ack; a != nil {
			s = append(s, a)
		}
	}
	h.slots[slot] = s
	h.mu.Unlock()
}

// release forgets slot once its batch is settled.
func (h *inflight) release(slot int) {
	h.mu.Lock()
	clear(h.slots[slot])
	h.slots[slot] = h.slots[slot][:0]
	h.mu.Unlock()
}

// abandon settles every held ack with err (a no-op for those already
// settled) and returns how many it held.
func (h *inflight) abandon(err error) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, s := range h.slots {
		for _, a := range s {
			a.abandon(err)
			n++
		}
	}
	return n
}

func (r *Runner) closeConns(ctx context.Context) error {
	var errs []error
	// Connectors without inbound links close first: closing a sink waits
	// for its outstanding (asynchronous) publishes, whose confirmations
	// release the source messages' acks; the sources close after, so they
	// can still send those acknowledgements to their brokers (an MQTT
	// source flushes its pending PUBACKs on Close, a Kafka source commits).
	// Dead-letter destinations close after the other sinks: a sink's
	// Close may report permanent failures whose dead letters go there
	// (see settleAsync), which are waited for after each Close.
	dlConns := map[string]bool{}
	if r.graphDL != nil {
		dlConns[r.graphDL.link.Link.Connector] = true
	}
	for _, p := range r.pipes {
		if p.dl != nil {
			dlConns[p.dl.link.Link.Connector] = true
		}
	}
	rank := func(c *connRun) int {
		switch {
		case len(c.subs) > 0:
			return 2
		case dlConns[c.name]:
			return 1
		}
		return 0
	}
	ordered := make([]*connRun, 0, len(r.connList))
	for k := 0; k <= 2; k++ {
		for _, c := range r.connList {
			if rank(c) == k {
				ordered = append(ordered, c)
			}
		}
	}
	for _, c := range ordered {
		if c.conn == nil {
			continue
		}
		if err := c.conn.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("connector %s: close: %w", c.name, err))
		}
		r.waitAsyncDL(ctx)
	}
	return errors.Join(errs...)
}

// waitAsyncDL waits, until ctx ends, for the dead letters of
// asynchronous publishes still being sent.
func (r *Runner) waitAsyncDL(ctx context.Context) {
	done := make(chan struct{})
	go func() { r.asyncDL.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func (r *Runner) bindOutputs() {
	bind := func(o *outRun) {
		if o == nil {
			return
		}
		o.conn = r.conns[o.link.Link.Connector].conn
		o.async, _ = o.conn.(AsyncPublisher)
		if o.async == nil {
			if pc, ok := o.conn.(PayloadCopier); ok && pc.CopiesPayload() {
				o.appendEnc, _ = o.link.Encoder.(AppendEncoder)
			}
		} else {
			o.flusher, _ = o.conn.(Flusher)
		}
	}
	bind(r.graphDL)
	for _, p := range r.pipes {
		for _, o := range p.outs {
			bind(o)
			o.dl = p.dl
		}
		if p.dl != r.graphDL {
			bind(p.dl)
		}
	}
	for _, p := range r.pubs {
		bind(p.out)
		p.out.dl = r.graphDL
	}
}

// Ready reports nil when the graph is running and every connector that can
// tell is connected.
func (r *Runner) Ready() error {
	if !r.running.Load() {
		return errors.New("not running")
	}
	for _, c := range r.connList {
		if rd, ok := c.conn.(Readiness); ok {
			if err := rd.Ready(); err != nil {
				return fmt.Errorf("connector %s: %w", c.name, err)
			}
		}
	}
	return nil
}

// Latest returns the latest value written to a record.
func (r *Runner) Latest(name string) (Envelope, bool) {
	rec := r.records[name]
	if rec == nil {
		return Envelope{}, false
	}
	return rec.get()
}

// Subscribe adds a reader to a record, for Go code consuming it. It must be
// called before Run. Envelopes read from a lossless record carry an ack
// share the caller must release with env.Ack.Done().
func (r *Runner) Subscribe(name string) (buffer.Reader[Envelope], error) {
	if r.started.Load() {
		return nil, errors.New("pipeline: Subscribe after Run")
	}
	rec := r.records[name]
	if rec == nil {
		return nil, fmt.Errorf("pipeline: unknown record %q", name)
	}
	return rec.subscribe(), nil
}

// Writer returns a producer for a record that has no other writer (no
// inbound link, no pipeline writing into it).
func (r *Runner) Writer(name string) (*Writer, error) {
	rec := r.records[name]
	if rec == nil {
		return nil, fmt.Errorf("pipeline: unknown record %q", name)
	}
	if rec.writer != writerNone {
		return nil, fmt.Errorf("pipeline: record %q already has a writer", name)
	}
	return &Writer{rec: rec}, nil
}

// Writer produces values into a record from Go code.
type Writer struct{ rec *record }

// Write writes env into the record (blocking on a full queue buffer). The
// caller keeps its ack share and must release it.
func (w *Writer) Write(ctx context.Context, env *Envelope) error {
	if w.rec.settable {
		// Runner.Set writes this record too: one writer at a time.
		w.rec.setMu.Lock()
		defer w.rec.setMu.Unlock()
	}
	if w.rec.closed.Load() {
		return buffer.ErrClosed
	}
	return w.rec.write(ctx, env)
}

// WriteValue writes a value with the current time.
func (w *Writer) WriteValue(ctx context.Context, v any) error {
	return w.Write(ctx, &Envelope{Value: v, Time: time.Now()})
}

// Stats returns a snapshot of every counter.
func (r *Runner) Stats() Snapshot {
	s := Snapshot{Records: map[string]RecordSnapshot{}, Pipelines: map[string]PipelineSnapshot{},
		Links: map[string]LinkSnapshot{}, Unrouted: r.unrouted.Load(), DeadLetters: r.deadLetters.Load()}
	for _, rec := range r.recOrder {
		s.Records[rec.name] = RecordSnapshot{Writes: rec.writes.Load(), Buffer: rec.buf.Stats()}
	}
	for _, p := range r.pipes {
		ps := PipelineSnapshot{In: p.inN.Load(), Out: p.out.Load(), Errors: p.errors.Load()}
		for i, st := range p.stageStats {
			ps.Stages = append(ps.Stages, StageSnapshot{Name: p.stageNames[i], In: st.In.Load(), Errors: st.Errors.Load()})
		}
		s.Pipelines[p.name] = ps
		for _, o := range p.outs {
			s.Links[p.name+"|"+o.link.Raw] = o.snapshot()
		}
	}
	for _, p := range r.pubs {
		s.Links[p.rec.name+"|"+p.out.link.Raw] = p.out.snapshot()
	}
	for _, c := range r.connList {
		for _, rt := range c.routes {
			s.Links[rt.rec.name+"|"+rt.link.Raw] = LinkSnapshot{Direction: Inbound, Link: rt.link.Raw,
				Messages: rt.stats.Messages.Load(), Errors: rt.stats.Errors.Load(), DeadLettered: rt.stats.DeadLettered.Load()}
		}
	}
	return s
}

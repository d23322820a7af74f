package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
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
	stats  *LinkStats
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
			rt := &route{rec: rec, link: l, stats: &LinkStats{},
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
		name := c.name
		conn, berr := c.spec.b.Build(ctx, BuildEnv{Name: c.name, Logger: r.log.With("connector", c.name), Tracer: r.opts.Tracer, Inbound: c.subs,
			DeadLetter: func(ctx context.Context, env *Envelope, dest string, cause error) error {
				if r.graphDL == nil {
					r.deadLetters.Add(1)
					return ErrNoDeadLetter
				}
				return r.deadLetter(ctx, r.graphDL, env, "", "publish", "", name+"://"+dest, cause)
			}})
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
	ordered := make([]*connRun, 0, len(r.connList))
	for _, c := range r.connList {
		if len(c.subs) == 0 {
			ordered = append(ordered, c)
		}
	}
	for _, c := range r.connList {
		if len(c.subs) > 0 {
			ordered = append(ordered, c)
		}
	}
	for _, c := range ordered {
		if c.conn == nil {
			continue
		}
		if err := c.conn.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("connector %s: close: %w", c.name, err))
		}
	}
	return errors.Join(errs...)
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
		}
		if p.dl != r.graphDL {
			bind(p.dl)
		}
	}
	for _, p := range r.pubs {
		bind(p.out)
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

// ---- inbound ----

type dispatcher struct {
	r    *Runner
	c    *connRun
	info *HopInfo
}

func (d *dispatcher) Dispatch(ctx context.Context, env *Envelope) error {
	r := d.r
	span := r.hooks.start(ctx, env, d.info)
	var arr [4]*route
	routes := d.c.router.Lookup(arr[:0], env.Topic)
	if len(routes) == 0 {
		r.unrouted.Add(1)
		endSpan(span, nil)
		env.Ack.Done()
		return nil
	}
	if env.Time.IsZero() {
		env.Time = time.Now()
	}
	if max := r.opts.MaxPayload; max > 0 && len(env.Payload) > max {
		cause := fmt.Errorf("%w: %d bytes, limit %d", ErrPayloadTooLarge, len(env.Payload), max)
		var werr error
		for _, rt := range routes {
			rt.stats.Messages.Add(1)
			rt.stats.Errors.Add(1)
			rt.stats.DeadLettered.Add(1)
			if dlErr := r.deadLetter(ctx, r.graphDL, env, "", "receive", rt.rec.name, rt.link.Raw, cause); dlErr != nil {
				werr = errors.Join(werr, dlErr)
			}
		}
		endSpan(span, cause)
		env.Ack.Finish(werr)
		return nil
	}
	// Each route decodes into env.Value in turn and the record copies the
	// envelope into its buffer, so one envelope serves every route with no
	// per-route copy (and no allocation).
	var werr error
	for _, rt := range routes {
		rt.stats.Messages.Add(1)
		if ok, dlErr := d.decodeInto(ctx, rt, env); !ok {
			if dlErr != nil {
				werr = errors.Join(werr, dlErr)
			}
			continue
		}
		if err := rt.rec.write(ctx, env); err != nil {
			werr = errors.Join(werr, err)
		}
	}
	env.Value = nil
	endSpan(span, werr)
	env.Ack.Finish(werr)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// decodeInto decodes env's payload with rt's link decoder into env.Value
// (a decode hop, with its span; a PayloadOnly link leaves the value nil).
// A payload that does not decode is counted and dead-lettered with its
// provenance: ok is false and dlErr is the dead letter's outcome.
func (d *dispatcher) decodeInto(ctx context.Context, rt *route, env *Envelope) (ok bool, dlErr error) {
	r := d.r
	var v any
	if rt.link.Decoder != PayloadOnly {
		dspan := r.hooks.start(ctx, env, rt.decode)
		var err error
		v, err = decode(rt.link.Decoder, env.Payload)
		endSpan(dspan, err)
		if err != nil {
			rt.stats.Errors.Add(1)
			rt.stats.DeadLettered.Add(1)
			env.Value = nil
			return false, r.deadLetter(ctx, r.graphDL, env, "", "decode", rt.rec.name, rt.link.Raw, err)
		}
	}
	env.Value = v
	return true, nil
}

// DispatchBatch implements BatchDispatcher. The fast path covers the
// common case (one route for the batch's topic, payloads within
// MaxPayload); anything else is dispatched one by one. Each message gets
// its receive and decode hops (and their spans) as with Dispatch.
func (d *dispatcher) DispatchBatch(ctx context.Context, envs []Envelope) error {
	r := d.r
	simple := len(envs) > 1
	topic := ""
	if simple {
		topic = envs[0].Topic
		for i := range envs {
			if envs[i].Topic != topic || r.opts.MaxPayload > 0 && len(envs[i].Payload) > r.opts.MaxPayload {
				simple = false
				break
			}
		}
	}
	var arr [4]*route
	var routes []*route
	if simple {
		routes = d.c.router.Lookup(arr[:0], topic)
		simple = len(routes) == 1
	}
	if !simple {
		for i := range envs {
			if err := d.Dispatch(ctx, &envs[i]); err != nil {
				return err
			}
		}
		return nil
	}
	rt := routes[0]
	rt.stats.Messages.Add(uint64(len(envs)))
	var spans []Span // receive spans, when a tracer is installed
	if r.hooks != nil && r.hooks.tracer != nil {
		spans = make([]Span, len(envs))
	}
	now := time.Time{}
	// Decode each; a payload that fails is dead-lettered on the spot and
	// dropped from the batch (kept envelopes move to the front).
	j := 0
	for i := range envs {
		env := &envs[i]
		var span Span
		if spans != nil {
			span = r.hooks.start(ctx, env, d.info)
		}
		if env.Time.IsZero() {
			if now.IsZero() {
				now = time.Now()
			}
			env.Time = now
		}
		if ok, dlErr := d.decodeInto(ctx, rt, env); !ok {
			endSpan(span, dlErr)
			env.Ack.Finish(dlErr)
			continue
		}
		if j != i {
			envs[j] = *env
		}
		if spans != nil {
			spans[j] = span
		}
		j++
	}
	n, werr := rt.rec.writeBatch(ctx, envs[:j])
	for i := 0; i < j; i++ {
		var err error
		if i >= n {
			err = werr
		}
		if spans != nil {
			endSpan(spans[i], err)
		}
		envs[i].Ack.Finish(err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// ---- dead letters ----

func (r *Runner) deadLetter(ctx context.Context, dl *outRun, env *Envelope, pipeline, stage, rec, link string, cause error) error {
	r.deadLetters.Add(1)
	keep := r.opts.DeadLetterPayload
	if keep == 0 {
		keep = DefaultDeadLetterPayload
	}
	d := newDeadLetter(env, pipeline, stage, rec, link, cause, keep)
	if dl == nil {
		// No destination: count and log (the first 10, then every 1000th).
		if n := r.dlLogged.Add(1); n <= 10 || n%1000 == 0 {
			r.log.Warn("record dropped (no dead-letter destination)", "pipeline", pipeline, "stage", stage,
				"record", rec, "link", link, "topic", env.Topic, "error", d.Error, "count", n)
		}
		return nil
	}
	dest, err := dl.link.Dest.Render(env)
	if err != nil {
		dest = dl.link.Dest.String()
	}
	e := Envelope{Payload: d.Marshal(), Topic: dest, Key: env.Key, Headers: env.Headers, Time: time.Now(), Trace: env.Trace}
	if err := dl.publish(ctx, &e, false); err != nil {
		r.log.Error("dead-letter publish failed", "destination", dl.link.Raw, "error", ErrorText(err))
		return err
	}
	return nil
}

// ---- outbound ----

type outRun struct {
	r        *Runner
	link     *OutLink
	conn     Connector
	async    AsyncPublisher
	stats    LinkStats
	pipeline string
	record   string
	encInfo  *HopInfo
	pubInfo  *HopInfo
	// passthrough: publish the original payload instead of encoding the
	// value (see ValuePreserver).
	passthrough bool
	// scratch is the outgoing envelope. An outRun is driven by one
	// goroutine (its pipeline's last segment or its publisher), and
	// publishers copy what they keep, so one envelope is reused.
	scratch Envelope
	// appendEnc is set when the encoder can append and the connector's
	// synchronous Publish never keeps the payload (PayloadCopier): records
	// are then encoded into buf, reused, instead of a fresh slice each.
	appendEnc AppendEncoder
	buf       []byte
	// flusher is the connector as a Flusher when it publishes
	// asynchronously in batches (nil otherwise); held is set when a
	// record was handed to it since its last Flush (see flush).
	flusher Flusher
	held    bool
}

// recordSpec is the graph's spec of the named record.
func (r *Runner) recordSpec(name string) *RecordSpec {
	for _, s := range r.g.records {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func (r *Runner) newOut(l *OutLink, pipeline, rec string) *outRun {
	scheme, caps := "", Caps{}
	if c := r.conns[l.Link.Connector]; c != nil {
		scheme, caps = c.spec.b.Scheme(), CapsOf(c.spec.b)
	}
	dest := ""
	if l.Dest != nil && l.Dest.Static() {
		dest = l.Dest.String()
	}
	return &outRun{r: r, link: l, pipeline: pipeline, record: rec,
		encInfo: &HopInfo{Hop: HopEncode, Pipeline: pipeline, Record: rec, Link: l.Raw, Connector: l.Link.Connector, Scheme: scheme, Caps: caps},
		pubInfo: &HopInfo{Hop: HopPublish, Pipeline: pipeline, Record: rec, Link: l.Raw, Connector: l.Link.Connector, Scheme: scheme, Destination: dest, Caps: caps}}
}

func (o *outRun) snapshot() LinkSnapshot {
	return LinkSnapshot{Direction: Outbound, Link: o.link.Raw, Messages: o.stats.Messages.Load(),
		Errors: o.stats.Errors.Load(), DeadLettered: o.stats.DeadLettered.Load()}
}

// outputError marks a failure in the output step (encode, destination,
// key, publish) so the dead letter names it.
type outputError struct {
	stage string
	err   error
}

func (e *outputError) Error() string { return e.stage + ": " + e.err.Error() }
func (e *outputError) Unwrap() error { return e.err }

// send encodes env and publishes it. A nil value passes its payload
// through unchanged.
func (o *outRun) send(ctx context.Context, env *Envelope) (err error) {
	defer func() {
		// A panicking encoder, template, key function or connector
		// Publish: dead-letter the record, keep the run going.
		if v := recover(); v != nil {
			err = &outputError{"send", newPanicError(v)}
		}
	}()
	o.scratch = *env
	out := &o.scratch
	if env.Value != nil && !(o.passthrough && env.Payload != nil && o.faithful(env)) {
		span := o.r.hooks.start(ctx, out, o.encInfo)
		var p []byte
		if o.appendEnc != nil {
			p, err = o.appendEnc.AppendEncode(o.buf[:0], env.Value)
			if cap(p) <= 64<<10 {
				o.buf = p // keep the buffer unless one record made it huge
			}
		} else {
			p, err = o.link.Encoder.Encode(env.Value)
		}
		endSpan(span, err)
		if err != nil {
			return &outputError{"encode", err}
		}
		out.Payload = p
	}
	dest, err := o.link.Dest.Render(env)
	if err != nil {
		return &outputError{"destination", err}
	}
	out.Topic = dest
	if o.link.Key != nil {
		k, err := o.link.Key(env)
		if err != nil {
			return &outputError{"key", err}
		}
		out.Key = k
	}
	if err := o.publish(ctx, out, true); err != nil {
		return &outputError{"publish", err}
	}
	return nil
}

func (o *outRun) publish(ctx context.Context, env *Envelope, allowAsync bool) error {
	span := o.r.hooks.start(ctx, env, o.pubInfo)
	var err error
	if o.async != nil && allowAsync {
		env.Ack.Add(1)
		if err = o.async.PublishAsync(ctx, env.Topic, o.link.Options, env); err != nil {
			env.Ack.Add(-1)
		} else if o.flusher != nil {
			o.held = true
		}
	} else {
		err = o.conn.Publish(ctx, env.Topic, o.link.Options, env)
	}
	endSpan(span, err)
	if err != nil {
		o.stats.Errors.Add(1)
		return err
	}
	o.stats.Messages.Add(1)
	return nil
}

// flush tells o's connector to hand off the records it may hold back
// (Flusher) once the outbound loop driving o has nothing more immediately
// ready: after each batch it received, and so also before it returns. Like
// send, it runs on that loop's goroutine.
func (o *outRun) flush(ctx context.Context) {
	if !o.held {
		return
	}
	o.held = false
	defer func() {
		if v := recover(); v != nil {
			o.r.log.Error("connector Flush panicked", "link", o.link.Raw, "error", newPanicError(v))
		}
	}()
	if err := o.flusher.Flush(ctx); err != nil {
		o.r.log.Debug("connector Flush failed", "link", o.link.Raw, "error", ErrorText(err))
	}
}

// nackError tells settle to reject the source message (at-least-once:
// redelivery) rather than dead-letter it again.
type nackError struct{ err error }

func (e *nackError) Error() string { return e.err.Error() }
func (e *nackError) Unwrap() error { return e.err }

// deliverOut sends env to o; on failure it dead-letters with provenance.
// It returns a *nackError when the record could neither be sent nor
// dead-lettered.
func (r *Runner) deliverOut(ctx context.Context, o *outRun, dl *outRun, env *Envelope) error {
	err := o.send(ctx, env)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return &nackError{err}
	}
	o.stats.DeadLettered.Add(1)
	stage := "to " + o.link.Raw
	var oe *outputError
	if errors.As(err, &oe) {
		stage = oe.stage + " " + o.link.Raw
		err = oe.err
	}
	if dl == nil && oe != nil && oe.stage == "publish" {
		// A rejected publish with nowhere to dead-letter it: reject the
		// source message so it is redelivered instead of lost.
		r.deadLetters.Add(1)
		r.log.Warn("publish failed; rejecting source message", "link", o.link.Raw, "error", ErrorText(err))
		return &nackError{err}
	}
	if dlErr := r.deadLetter(ctx, dl, env, o.pipeline, stage, o.record, o.link.Raw, err); dlErr != nil {
		return &nackError{dlErr}
	}
	return nil
}

type publisherRun struct {
	r       *Runner
	rec     *record
	in      buffer.Reader[Envelope]
	out     *outRun
	hold    *inflight
	stopped atomic.Bool
}

func (p *publisherRun) run(ctx context.Context) error {
	batch := make([]Envelope, recvBatchSize)
	for {
		n, err := p.in.RecvBatch(ctx, batch)
		if err != nil {
			var lag *buffer.LagError
			switch {
			case errors.As(err, &lag):
				p.r.log.Warn("publisher lagged", "record", p.rec.name, "link", p.out.link.Raw, "missed", lag.Missed)
				continue
			case errors.Is(err, buffer.ErrClosed):
				return nil
			}
			return err
		}
		p.hold.hold(0, batch[:n])
		for i := 0; i < n; i++ {
			env := &batch[i]
			err := p.r.deliverOut(ctx, p.out, p.r.graphDL, env)
			var ne *nackError
			if errors.As(err, &ne) {
				env.Ack.Nack(ne.err)
			} else {
				env.Ack.Done()
			}
		}
		p.out.flush(ctx)
		p.hold.release(0)
	}
}

// ---- pipelines ----

type pipeRun struct {
	r          *Runner
	name       string
	spec       *PipelineSpec
	in         buffer.Reader[Envelope]
	inRec      *record
	into       *record
	outs       []*outRun
	dl         *outRun
	stageNames []string
	stageStats []*StageStats
	segments   []segment
	inN        atomic.Uint64
	// For Workers > 1: the first segment's processors and what follows them.
	seg0Procs []Processor
	seg0Next  Emit
	out       atomic.Uint64
	errors    atomic.Uint64
	lagged    atomic.Uint64
	// stage is the 1-based index of the last stage entered (0: none yet);
	// hold tracks the records taken from the input and not yet settled;
	// stopped is set when run returned. Together they let Run name and
	// abandon a pipeline that ignores cancellation.
	stage   atomic.Int32
	hold    *inflight
	stopped atomic.Bool
}

// A segment is a run of processors fused into one Emit, optionally fed by
// an async stage's goroutine.
type segment struct {
	async AsyncStage // nil for the first segment
	name  string
	chain Emit
	in    chan Envelope // input of the async stage (nil for the first segment)
}

func (r *Runner) newPipe(spec *PipelineSpec) (*pipeRun, error) {
	p := &pipeRun{r: r, name: spec.Name, spec: spec, inRec: r.records[spec.Input]}
	p.hold = newInflight(1)
	if spec.Workers > 1 {
		p.hold = newInflight(parallelSlots(spec.Workers))
	}
	p.in = p.inRec.subscribe()
	if spec.IntoRecord != "" {
		p.into = r.records[spec.IntoRecord]
		p.into.writer = writerPipeline
	}
	for _, l := range spec.Outputs {
		o := r.newOut(l, spec.Name, "")
		o.passthrough = preservesValues(spec.Stages) && passthroughFrom(r.recordSpec(spec.Input), l.Encoder)
		p.outs = append(p.outs, o)
	}
	p.dl = r.graphDL
	if spec.DeadLetter != nil {
		p.dl = r.newOut(spec.DeadLetter, spec.Name, "")
	}
	for i, s := range spec.Stages {
		p.stageNames = append(p.stageNames, strconv.Itoa(i+1)+":"+s.Kind())
		p.stageStats = append(p.stageStats, &StageStats{})
	}
	// Cut the stage list at async stages; build chains back to front.
	type cut struct {
		async AsyncStage
		name  string
		from  int
	}
	cuts := []cut{{from: 0}}
	for i, s := range spec.Stages {
		if a, ok := s.(AsyncStage); ok {
			cuts = append(cuts, cut{async: a, name: p.stageNames[i], from: i + 1})
		} else if _, ok := s.(Processor); !ok {
			return nil, fmt.Errorf("pipeline %s: stage %s is neither a Processor nor an AsyncStage", spec.Name, p.stageNames[i])
		}
	}
	p.segments = make([]segment, len(cuts))
	var next Emit = p.terminal
	for ci := len(cuts) - 1; ci >= 0; ci-- {
		end := len(spec.Stages)
		if ci+1 < len(cuts) {
			end = cuts[ci+1].from - 1
		}
		var procs []Processor
		for i := cuts[ci].from; i < end; i++ {
			procs = append(procs, spec.Stages[i].(Processor))
		}
		from := cuts[ci].from
		if ci == 0 {
			p.seg0Procs, p.seg0Next = procs, next
		}
		chain := fuse(spec.Name, procs, p.stageNames[from:from+len(procs)], r.hooks, p.stageStats[from:from+len(procs)], &p.stage, from, next)
		seg := segment{async: cuts[ci].async, name: cuts[ci].name, chain: chain}
		if ci > 0 {
			// The previous segment ends by handing envelopes to this
			// segment's async stage through a bounded channel.
			seg.in = make(chan Envelope, 256)
			next = feed(seg.in, p.stageStats[cuts[ci].from-1])
		}
		p.segments[ci] = seg
	}
	return p, nil
}

func (p *pipeRun) terminal(ctx context.Context, env *Envelope) error {
	p.out.Add(1)
	var nack error
	if p.into != nil {
		if err := p.into.write(ctx, env); err != nil {
			nack = err
		}
	}
	for _, o := range p.outs {
		if err := p.r.deliverOut(ctx, o, p.dl, env); err != nil {
			nack = errors.Join(nack, err)
		}
	}
	if nack != nil {
		return &nackError{nack}
	}
	return nil
}

// settle releases the share env carries after its chain ran: success acks;
// a stage error is dead-lettered (with provenance) and acked; an output
// that could not deliver nor dead-letter, or any error once the drain
// timeout cancelled the stages, nacks so the source redelivers.
func (p *pipeRun) settle(ctx context.Context, env *Envelope, err error) {
	if err == nil {
		env.Ack.Done()
		return
	}
	var ne *nackError
	if errors.As(err, &ne) {
		env.Ack.Nack(ne.err)
		return
	}
	if ctx.Err() != nil {
		// The drain timed out and cancelled the stages: the record was
		// not processed, so the source must redeliver it.
		env.Ack.Nack(err)
		return
	}
	p.errors.Add(1)
	stage := ""
	cause := err
	var se *StageError
	if errors.As(err, &se) {
		stage, cause = se.Stage, se.Err
	}
	// The record is the pipeline's input: the one the failing record was
	// read from (README: dead letters carry pipeline, stage, record, link).
	if dlErr := p.r.deadLetter(ctx, p.dl, env, p.name, stage, p.spec.Input, "", cause); dlErr != nil {
		env.Ack.Nack(dlErr)
		return
	}
	env.Ack.Done()
}

func (p *pipeRun) run(ctx context.Context) error {
	defer func() {
		if p.into != nil {
			p.into.close()
		}
	}()
	// Segment i>0 runs in its async stage's goroutine, fed by segment i-1.
	n := len(p.segments)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 1; i < n; i++ {
		seg := p.segments[i]
		last := i == n-1
		emit := func(ctx context.Context, env *Envelope) error {
			p.settle(ctx, env, seg.chain(ctx, env))
			if last {
				// The stage emits when it chooses: no batch end to wait
				// for, so hand the outputs off at once.
				p.flushOuts(ctx)
			}
			return nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if i+1 < n {
					close(p.segments[i+1].in)
				}
			}()
			errs[i] = runAsync(ctx, seg.async, seg.name, seg.in, emit)
		}()
	}
	first := p.segments[0].chain
	var runErr error
	if p.spec.Workers > 1 {
		runErr = p.runParallel(ctx)
	} else {
		runErr = p.runSerial(ctx, first)
	}
	if n > 1 {
		close(p.segments[1].in)
	}
	wg.Wait()
	return errors.Join(append([]error{runErr}, errs...)...)
}

// flushOuts flushes the pipeline's outputs (see outRun.flush); it is
// called on the goroutine that runs the terminal step.
func (p *pipeRun) flushOuts(ctx context.Context) {
	for _, o := range p.outs {
		o.flush(ctx)
	}
}

// feed returns an Emit that hands a copy of env (with its own ack share) to
// an async stage's input channel, counting it as the stage's input.
func feed(ch chan Envelope, st *StageStats) Emit {
	return func(ctx context.Context, env *Envelope) error {
		st.In.Add(1)
		e := *env
		e.Ack.Add(1)
		select {
		case ch <- e:
			return nil
		case <-ctx.Done():
			e.Ack.Nack(ctx.Err())
			return ctx.Err()
		}
	}
}

func (p *pipeRun) runSerial(ctx context.Context, chain Emit) error {
	// Receive in batches: one lock acquisition hands over everything the
	// writer has queued (up to recvBatchSize), so producer and consumer
	// do not contend on the buffer's lock once per record.
	batch := make([]Envelope, recvBatchSize)
	for {
		n, err := p.recvBatch(ctx, batch)
		if n == 0 {
			return err
		}
		p.hold.hold(0, batch[:n])
		for i := 0; i < n; i++ {
			env := &batch[i]
			p.settle(ctx, env, chain(ctx, env))
		}
		if len(p.segments) == 1 { // this goroutine runs the outputs
			p.flushOuts(ctx)
		}
		p.hold.release(0)
	}
}

// recvBatchSize bounds how many envelopes a pipeline takes from its input
// buffer at once.
const recvBatchSize = 64

// recvBatch fills dst from the input record; it returns 0 and nil when the
// record is closed and drained.
func (p *pipeRun) recvBatch(ctx context.Context, dst []Envelope) (int, error) {
	for {
		n, err := p.in.RecvBatch(ctx, dst)
		if n > 0 {
			p.inN.Add(uint64(n))
			return n, nil
		}
		var lag *buffer.LagError
		switch {
		case errors.As(err, &lag):
			p.lagged.Add(lag.Missed)
			p.r.log.Warn("pipeline lagged behind its input record", "pipeline", p.name, "record", p.inRec.name, "missed", lag.Missed)
			continue
		case errors.Is(err, buffer.ErrClosed):
			return 0, nil
		}
		return 0, err
	}
}

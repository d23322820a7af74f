// Package otelflow implements aimdb-flow's tracing hook (pipeline.Tracer)
// on OpenTelemetry.
//
// Sampling is decided once per record where it enters (WithHeadSampler,
// which Setup installs): a record not sampled is marked in its envelope and
// its later hops cost the runner one comparison each. Every hop of a
// sampled record shows in its trace: as events on two spans per process
// (JourneySpans, Setup's mode: the receive span and one span per pipeline)
// or as one span per hop (StageSpans, New's default): receive (a consumer
// span), decode, the wait in the record's buffer, each pipeline stage,
// encode and publish (a producer span). The W3C trace context travels in the envelope's
// headers: it is extracted when a message is received and injected when it
// is published, and the connectors map those headers to MQTT 5 user
// properties, Kafka record headers or HTTP headers, so two aimdb-flow
// processes chained through a broker produce one trace.
//
// The core only knows the small pipeline.Tracer interface; this package is
// the only one importing OpenTelemetry, so device (TinyGo) builds never
// link it. With no Tracer installed the runner skips every hook (a nil
// check per hop).
//
// Span tree of one record in StageSpans mode (pipeline "alerts", stages
// filter and map):
//
//	receive                      (consumer, child of the remote publisher)
//	└─ decode sensor.temp
//	   └─ buffer sensor.temp     (time spent in the record's buffer)
//	      └─ alerts 1:filter
//	         └─ alerts 2:map     (fused stages nest: each runs inside the previous)
//	            ├─ encode alerts/{device}
//	            └─ send alerts/{device}   (producer; its context is injected)
package otelflow

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// ScopeName is the instrumentation scope of the spans this package creates.
const ScopeName = "github.com/aimdb-dev/aimdb-flow/observability/otelflow"

// Attribute keys specific to aimdb-flow (the messaging.* keys follow the
// OpenTelemetry semantic conventions).
const (
	AttrPipeline  = attribute.Key("aimdb.pipeline")
	AttrStage     = attribute.Key("aimdb.stage")
	AttrRecord    = attribute.Key("aimdb.record")
	AttrLink      = attribute.Key("aimdb.link")
	AttrConnector = attribute.Key("aimdb.connector")
)

// StageMode selects how the stages of a fused chain are represented.
type StageMode uint8

const (
	// StageSpans creates one span per stage. Fused stages run nested (each
	// calls the next), so their spans nest too and each shows its own
	// duration and error. This is the default.
	StageSpans StageMode = iota
	// FusedStageEvents creates one span per fused chain ("process
	// <pipeline>") and records each stage as an event on it. It saves one
	// span per extra stage (the event costs about a third of a span) at the
	// price of per-stage durations; a failing stage is still named, because
	// its *pipeline.StageError ends the chain's span.
	FusedStageEvents
	// JourneySpans traces a sampled record with two spans per process
	// instead of one per hop: its "receive" span (consumer) and, for each
	// pipeline it goes through, one "process <pipeline>" span, a child of
	// the receive, that starts when the record entered its buffer and ends
	// when its last hop in the pipeline does. Every hop is an event on
	// these spans, at the time it started: "decode <record>" on the
	// receive, then "buffer <record>", each stage, "encode <link>" and
	// "send <link>" on the process span. The first failing hop sets the
	// process span's error status and records the error. The traceparent a
	// publish injects names the process span. Setup uses this mode.
	JourneySpans
)

// Option configures a Tracer.
type Option func(*Tracer)

// WithPropagator replaces the W3C TraceContext propagator (for example
// with propagation.NewCompositeTextMapPropagator(propagation.TraceContext{},
// propagation.Baggage{})).
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(t *Tracer) { t.prop = p }
}

// WithStageMode selects how fused stages are traced (default StageSpans).
func WithStageMode(m StageMode) Option {
	return func(t *Tracer) { t.mode = m }
}

// WithUnsampledSpans makes the tracer start a (non-recording) span for
// every hop even inside a trace that was not sampled. By default, once the
// receive hop of a record was not sampled, its later hops create no span at
// all and publish propagates the unsampled parent: exactly what a
// parent-based sampler would decide, at almost no cost. Use this option
// only with a sampler that is not parent-based.
func WithUnsampledSpans() Option {
	return func(t *Tracer) { t.unsampledSpans = true }
}

// WithHops limits spans to the given hop kinds, to trade detail for cost:
// a skipped hop creates no span and its successors attach to the hop
// before it. Receive and publish always get spans (they carry the trace
// across brokers). For example WithHops(pipeline.HopStage) traces
// receive, each stage and publish, skipping decode, buffer and encode.
func WithHops(hops ...pipeline.Hop) Option {
	return func(t *Tracer) {
		t.skip = [8]bool{}
		for h := range t.skip {
			t.skip[h] = true
		}
		for _, h := range hops {
			if int(h) < len(t.skip) {
				t.skip[h] = false
			}
		}
		t.skip[pipeline.HopReceive], t.skip[pipeline.HopPublish] = false, false
	}
}

// WithRootRatio is WithHeadSampler(sdktrace.ParentBased(
// sdktrace.TraceIDRatioBased(ratio))): the tracer samples that fraction of
// new traces (records arriving without trace context) and follows an
// incoming traceparent's sampled flag for the others.
func WithRootRatio(ratio float64) Option {
	return WithHeadSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(min(max(ratio, 0), 1))))
}

// WithHeadSampler makes the tracer sample once per record, at its receive
// hop, with s (head sampling), instead of letting the SDK decide at every
// span. The decision is asked with the record's incoming trace context as
// the remote parent (so sdktrace.ParentBased honours an incoming
// traceparent's sampled flag) and is stored in the envelope: every later
// hop of a record not sampled is one comparison in the runner, with no
// span, no context, no allocation and no sampler call. Such a record is
// forwarded with the headers it arrived with: an incoming traceparent
// travels on unchanged, and a record that arrived without one gets none
// (W3C propagation requires nothing more), so the next process decides
// afresh about it. The SDK's own sampler still sees every span of a sampled
// record: pair this with a TracerProvider whose sampler samples what it is
// handed (sdktrace.AlwaysSample, as Setup does).
//
// The SDK's AlwaysSample, NeverSample and default ParentBased samplers are
// recognised and decided without calling them.
func WithHeadSampler(s sdktrace.Sampler) Option {
	return func(t *Tracer) {
		t.head, t.followParent, t.headConst, t.rootConst = s, false, 0, 0
		if s == nil {
			return
		}
		// A default ParentBased: an incoming flag decides, and its root
		// sampler only new traces.
		d := s.Description()
		if root, ok := strings.CutPrefix(d, "ParentBased{root:"); ok && strings.HasSuffix(root, defaultParentBasedTail) {
			t.followParent = true
			d = strings.TrimSuffix(root, defaultParentBasedTail)
			t.rootConst = constDecision(d)
		} else {
			t.headConst = constDecision(d)
			t.rootConst = t.headConst
		}
		t.ratioBound, t.hasRatio = ratioBound(d)
	}
}

// ratioBound recognises sdktrace.TraceIDRatioBased by its description and
// returns the bound it compares trace ids with (as the SDK computes it).
func ratioBound(desc string) (uint64, bool) {
	r, ok := strings.CutPrefix(desc, "TraceIDRatioBased{")
	if !ok || !strings.HasSuffix(r, "}") {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.TrimSuffix(r, "}"), 64)
	if err != nil || f < 0 || f >= 1 {
		return 0, false
	}
	return uint64(f * (1 << 63)), true
}

// constDecision recognises the SDK's constant samplers by description.
func constDecision(desc string) int8 {
	switch desc {
	case "AlwaysOnSampler":
		return 1
	case "AlwaysOffSampler":
		return -1
	}
	return 0
}

// defaultParentBasedTail ends the description of sdktrace.ParentBased with
// default options (its root sampler's description comes before it).
const defaultParentBasedTail = ",remoteParentSampled:AlwaysOnSampler,remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,localParentNotSampled:AlwaysOffSampler}"

// Tracer implements pipeline.Tracer on an
// OpenTelemetry TracerProvider. It is safe for concurrent use.
type Tracer struct {
	tracer         trace.Tracer
	prop           propagation.TextMapPropagator
	mode           StageMode
	unsampledSpans bool
	fastInject     bool // prop is the default W3C propagator
	// Head sampling (WithHeadSampler): head decides at the receive hop.
	// followParent: head is a default ParentBased, so an incoming
	// parent's sampled flag decides and head is asked only about new
	// traces. headConst, rootConst: +1 always sample, -1 never, 0 ask
	// head (about every record, or about new traces).
	head         sdktrace.Sampler
	followParent bool
	headConst    int8
	rootConst    int8
	// hasRatio: the sampler of new traces (of every record when not
	// followParent) is a TraceIDRatioBased with this bound.
	hasRatio     bool
	ratioBound   uint64
	skip         [8]bool  // hop kinds that get no span
	metas        sync.Map // *pipeline.HopInfo -> *hopMeta
	bufMetas     sync.Map // record name -> *hopMeta
	journeyMetas sync.Map // *pipeline.HopInfo of a pipeline's first hop -> *hopMeta
}

var (
	_ pipeline.Tracer      = (*Tracer)(nil)
	_ pipeline.HeadSampler = (*Tracer)(nil)
)

// New returns a Tracer creating spans with tp (the global provider when tp
// is nil).
func New(tp trace.TracerProvider, opts ...Option) *Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	t := &Tracer{
		tracer: tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL)),
		prop:   propagation.TraceContext{},
	}
	for _, o := range opts {
		o(t)
	}
	_, t.fastInject = t.prop.(propagation.TraceContext)
	return t
}

// HeadSampled implements pipeline.HeadSampler: with a head sampler, the
// runner skips every hop of a record this tracer marked not traced.
func (t *Tracer) HeadSampled() bool { return t.head != nil }

// headDecide takes the head-sampling decision for a record at its receive
// hop. It returns the record's remote parent (if it is sampled) and
// whether to trace it; it allocates nothing when the answer is no.
func (t *Tracer) headDecide(ctx context.Context, env *pipeline.Envelope, info *pipeline.HopInfo) (trace.SpanContext, bool) {
	if t.headConst < 0 {
		return trace.SpanContext{}, false
	}
	var psc trace.SpanContext
	if psc = t.remoteParent(ctx, env); psc.IsValid() && t.followParent && !psc.IsSampled() {
		return trace.SpanContext{}, false
	}
	switch {
	case t.headConst > 0:
		return psc, true
	case psc.IsValid() && t.followParent:
		return psc, true // sampled upstream
	case !psc.IsValid() && t.rootConst != 0:
		return psc, t.rootConst > 0
	case t.hasRatio && (!psc.IsValid() || !t.followParent):
		// What TraceIDRatioBased decides, without the call: by the
		// parent's trace id, or by the random one a new trace gets.
		x := rand.Uint64()
		if psc.IsValid() {
			tid := psc.TraceID()
			x = binary.BigEndian.Uint64(tid[8:16])
		}
		return psc, x>>1 < t.ratioBound
	}
	p := sdktrace.SamplingParameters{ParentContext: ctx, Name: t.meta(info).name, Kind: trace.SpanKindConsumer}
	if psc.IsValid() {
		p.ParentContext = trace.ContextWithRemoteSpanContext(ctx, psc)
		p.TraceID = psc.TraceID()
	} else {
		binary.BigEndian.PutUint64(p.TraceID[:8], rand.Uint64())
		binary.BigEndian.PutUint64(p.TraceID[8:], rand.Uint64())
	}
	return psc, t.head.ShouldSample(p).Decision != sdktrace.Drop
}

// remoteParent returns the trace context env arrived with. With the
// default propagator, an unsampled traceparent costs no allocation: its
// flags are read in place (its span context is not needed).
func (t *Tracer) remoteParent(ctx context.Context, env *pipeline.Envelope) trace.SpanContext {
	if len(env.Headers) == 0 {
		return trace.SpanContext{}
	}
	if t.fastInject {
		tp := HeaderCarrier{H: &env.Headers}.Get(traceparentHeader)
		flags, ok := traceparentFlags(tp)
		if !ok {
			return trace.SpanContext{} // absent or invalid: ignored, as Extract does
		}
		if t.followParent && flags&trace.FlagsSampled == 0 {
			// Only the flag matters: a remote, unsampled span context.
			return trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, Remote: true})
		}
	}
	h := env.Headers
	return trace.SpanContextFromContext(t.prop.Extract(ctx, HeaderCarrier{H: &h}))
}

// traceparentFlags returns the trace flags of a W3C traceparent, and
// whether it is well formed (what propagation.TraceContext accepts),
// without allocating.
func traceparentFlags(tp string) (trace.TraceFlags, bool) {
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' || len(tp) > 55 && tp[55] != '-' {
		return 0, false
	}
	if tp[:2] == "ff" || tp[:2] == "00" && len(tp) != 55 {
		return 0, false
	}
	zeroT, zeroS := true, true
	for i := 0; i < 55; i++ {
		if i == 2 || i == 35 || i == 52 {
			continue
		}
		c := tp[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return 0, false
		}
		if c != '0' {
			if i >= 3 && i < 35 {
				zeroT = false
			} else if i >= 36 && i < 52 {
				zeroS = false
			}
		}
	}
	if zeroT || zeroS {
		return 0, false
	}
	return trace.TraceFlags(unhex(tp[53])<<4 | unhex(tp[54])), true
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

// hopMeta is what a span of one HopInfo always has: computed once.
type hopMeta struct {
	name string
	opts []trace.SpanStartOption
	// rootOpts/attrs: for a receive hop, whose sampling is not known
	// before Start, the attributes are set only if the span records.
	rootOpts []trace.SpanStartOption
	attrs    []attribute.KeyValue
	events   bool // a fused chain span (FusedStageEvents)
	stage    trace.EventOption
	info     *pipeline.HopInfo // for synthesized hops (buffer)
}

func (t *Tracer) meta(info *pipeline.HopInfo) *hopMeta {
	if m, ok := t.metas.Load(info); ok {
		return m.(*hopMeta)
	}
	m := buildMeta(info, t.mode)
	actual, _ := t.metas.LoadOrStore(info, m)
	return actual.(*hopMeta)
}

// linkAddress returns the address part of "name://address".
func linkAddress(link string) string {
	if i := strings.Index(link, "://"); i >= 0 {
		return link[i+3:]
	}
	return link
}

func buildMeta(info *pipeline.HopInfo, mode StageMode) *hopMeta {
	var attrs []attribute.KeyValue
	add := func(k attribute.Key, v string) {
		if v != "" {
			attrs = append(attrs, k.String(v))
		}
	}
	add(AttrPipeline, info.Pipeline)
	add(AttrRecord, info.Record)
	add(AttrLink, info.Link)
	add(AttrConnector, info.Connector)
	m := &hopMeta{}
	kind := trace.SpanKindInternal
	switch info.Hop {
	case pipeline.HopReceive:
		kind = trace.SpanKindConsumer
		m.name = "receive"
		add(semconv.MessagingSystemKey, info.Scheme)
		attrs = append(attrs, semconv.MessagingOperationTypeReceive, semconv.MessagingOperationName("receive"))
	case pipeline.HopDecode:
		m.name = "decode " + info.Record
		add(semconv.MessagingSystemKey, info.Scheme)
		add(semconv.MessagingDestinationTemplateKey, linkAddress(info.Link))
	case pipeline.HopBuffer:
		m.name = "buffer " + info.Record
	case pipeline.HopStage:
		add(AttrStage, info.Stage)
		m.name = info.Pipeline + " " + info.Stage
		if mode == FusedStageEvents {
			m.name = "process " + info.Pipeline
			m.events = true
		}
		m.stage = trace.WithAttributes(AttrStage.String(info.Stage))
	case pipeline.HopEncode:
		m.name = "encode " + linkAddress(info.Link)
	case pipeline.HopPublish:
		kind = trace.SpanKindProducer
		tmpl := linkAddress(info.Link)
		m.name = "send " + tmpl
		add(semconv.MessagingSystemKey, info.Scheme)
		add(semconv.MessagingDestinationTemplateKey, tmpl)
		attrs = append(attrs, semconv.MessagingOperationTypeSend, semconv.MessagingOperationName("publish"))
	default:
		m.name = info.Hop.String()
	}
	m.opts = []trace.SpanStartOption{trace.WithSpanKind(kind), trace.WithAttributes(attrs...)}
	m.rootOpts = []trace.SpanStartOption{trace.WithSpanKind(kind)}
	m.attrs = attrs
	return m
}

func (t *Tracer) bufferMeta(rec string) *hopMeta {
	if m, ok := t.bufMetas.Load(rec); ok {
		return m.(*hopMeta)
	}
	info := &pipeline.HopInfo{Hop: pipeline.HopBuffer, Record: rec}
	m := buildMeta(info, t.mode)
	m.info = info
	actual, _ := t.bufMetas.LoadOrStore(rec, m)
	return actual.(*hopMeta)
}

// hop is one started span and what env.Trace points to while (and after)
// it runs: later hops of the same record use its span context as parent.
type hop struct {
	span  trace.Span
	sc    trace.SpanContext
	info  *pipeline.HopInfo
	meta  *hopMeta
	env   *pipeline.Envelope
	prev  any   // env.Trace before this hop, restored by End
	end   int64 // decode hops: end time (UnixNano), written before End returns
	keep  bool  // End leaves env.Trace on this hop (batches)
	ended atomic.Bool
}

// End implements pipeline.Span.
func (h *hop) End(err error) {
	if err != nil {
		h.span.RecordError(err)
		h.span.SetStatus(codes.Error, err.Error())
	}
	if h.info.Hop == pipeline.HopDecode && err == nil {
		// The decoded envelope is written into the record's buffer right
		// after this: keep env.Trace on this hop so the reader can draw the
		// buffer wait from this end time. (A payload that failed to decode
		// is dead-lettered at once: its trace goes back to the receive.)
		now := time.Now()
		h.end = now.UnixNano()
		h.span.End(trace.WithTimestamp(now))
		h.ended.Store(true)
		return
	}
	h.span.End()
	h.ended.Store(true)
	if !h.keep {
		h.env.Trace = h.prev
	}
}

// parent returns the span context a new hop of env continues.
func (t *Tracer) parent(ctx context.Context, env *pipeline.Envelope) (*hop, trace.SpanContext) {
	switch v := env.Trace.(type) {
	case *hop:
		return v, v.sc
	case trace.SpanContext:
		return nil, v
	case *decoded:
		return nil, v.recv.sc
	case *journey:
		return nil, v.sc
	}
	if len(env.Headers) == 0 {
		return nil, trace.SpanContext{}
	}
	h := env.Headers
	return nil, trace.SpanContextFromContext(t.prop.Extract(ctx, HeaderCarrier{H: &h}))
}

// TraceGroup is what a stage that merges envelopes (a batch, a window)
// may store in its output's Envelope.Trace: the Trace values of its
// inputs. The next hop then gets a "batch" span linked to every input's
// span (the messaging conventions' batch pattern), continuing the first
// input's trace.
type TraceGroup interface {
	TraceInputs() []any
}

// StartHop implements pipeline.Tracer.
func (t *Tracer) StartHop(ctx context.Context, env *pipeline.Envelope, info *pipeline.HopInfo) pipeline.Span {
	if pipeline.IsNotTraced(env) && info.Hop != pipeline.HopReceive {
		return nil // head sampling decided (the runner skips these hops itself)
	}
	if g, ok := env.Trace.(TraceGroup); ok {
		inputs := g.TraceInputs()
		if t.head != nil && !anyTraced(inputs) {
			pipeline.MarkNotTraced(env)
			return nil
		}
		env.Trace = t.startGroup(ctx, inputs, info)
	}
	var ph *hop
	var psc trace.SpanContext
	if t.head != nil && info.Hop == pipeline.HopReceive {
		var ok bool
		if psc, ok = t.headDecide(ctx, env, info); !ok {
			pipeline.MarkNotTraced(env)
			return nil
		}
		env.Trace = nil
	} else {
		ph, psc = t.parent(ctx, env)
	}
	if t.mode == JourneySpans && info.Hop != pipeline.HopReceive {
		if s, ok := t.journeyHop(ctx, env, info); ok {
			return s
		}
		ph, psc = t.parent(ctx, env) // a hop after the journey ended
	}
	if int(info.Hop) < len(t.skip) && t.skip[info.Hop] {
		return nil
	}
	if t.head == nil && psc.IsValid() && !psc.IsSampled() && !t.unsampledSpans {
		// (A head sampler decided already: it may trace such a record.)
		// Not sampled upstream: no span, but keep the decision travelling.
		switch info.Hop {
		case pipeline.HopPublish:
			t.inject(ctx, env, psc)
		case pipeline.HopReceive:
			// Remember the remote decision without asking the SDK.
			h := &hop{sc: psc, info: info, meta: t.meta(info)}
			h.ended.Store(true)
			env.Trace = h
		}
		return nil
	}
	m := t.meta(info)
	if m.events && ph != nil && ph.meta.events && ph.info.Pipeline == info.Pipeline && !ph.ended.Load() {
		// A later stage of the same fused chain: an event on its span.
		ph.span.AddEvent(info.Stage, m.stage)
		return nil
	}
	pctx := ctx
	if psc.IsValid() || trace.SpanContextFromContext(ctx).IsValid() {
		// (A root needs no context unless ctx carries an unrelated span.)
		pctx = trace.ContextWithSpanContext(ctx, psc)
	}
	prev := env.Trace
	if ph != nil && ph.info.Hop == pipeline.HopDecode && info.Hop != pipeline.HopDecode && ph.ended.Load() {
		// The record crossed its buffer between the decode and this hop:
		// draw the wait, and make it the parent of what follows (also of
		// a dead letter published after the chain ended).
		bm := t.bufferMeta(ph.info.Record)
		_, bs := t.tracer.Start(pctx, bm.name, append(bm.opts[:len(bm.opts):len(bm.opts)], trace.WithTimestamp(time.Unix(0, ph.end)))...)
		bs.End()
		bh := &hop{span: bs, sc: bs.SpanContext(), info: bm.info, meta: bm}
		bh.ended.Store(true)
		prev = bh
		pctx = trace.ContextWithSpanContext(ctx, bh.sc)
	}
	opts := m.opts
	if info.Hop == pipeline.HopReceive {
		opts = m.rootOpts
	}
	_, span := t.tracer.Start(pctx, m.name, opts...)
	h := &hop{span: span, sc: span.SpanContext(), info: info, meta: m, env: env, prev: prev}
	if span.IsRecording() {
		switch info.Hop {
		case pipeline.HopReceive:
			t.setMessageAttrs(span, env, info, m.attrs)
		case pipeline.HopPublish:
			span.SetAttributes(semconv.MessagingDestinationName(env.Topic), semconv.MessagingMessageBodySize(len(env.Payload)))
		case pipeline.HopStage:
			if m.events {
				span.AddEvent(info.Stage, m.stage)
			}
		}
	}
	env.Trace = h
	if info.Hop == pipeline.HopPublish {
		t.inject(ctx, env, h.sc)
	}
	return h
}

func (t *Tracer) setMessageAttrs(span trace.Span, env *pipeline.Envelope, info *pipeline.HopInfo, static []attribute.KeyValue) {
	attrs := make([]attribute.KeyValue, 0, len(static)+4)
	attrs = append(attrs, static...)
	attrs = append(attrs, semconv.MessagingDestinationName(env.Topic), semconv.MessagingMessageBodySize(len(env.Payload)))
	if info.Caps.Partitions {
		attrs = append(attrs, semconv.MessagingDestinationPartitionID(strconv.Itoa(int(env.Partition))),
			semconv.MessagingKafkaOffset(int(env.Offset)))
	}
	span.SetAttributes(attrs...)
}

// inject writes sc into env.Headers with the propagator (a fresh slice:
// the old one may be shared with other copies of the envelope).
func (t *Tracer) inject(ctx context.Context, env *pipeline.Envelope, sc trace.SpanContext) {
	if !sc.IsValid() {
		return
	}
	if !t.fastInject {
		t.prop.Inject(trace.ContextWithSpanContext(ctx, sc), HeaderCarrier{H: &env.Headers})
		return
	}
	// What propagation.TraceContext writes, without its allocations.
	c := HeaderCarrier{H: &env.Headers}
	c.Set(traceparentHeader, traceparent(sc))
	if ts := sc.TraceState(); ts.Len() > 0 {
		c.Set(tracestateHeader, ts.String())
	} else if c.Get(tracestateHeader) != "" {
		c.del(tracestateHeader) // an upstream tracestate no longer applies
	}
}

const (
	traceparentHeader = "traceparent"
	tracestateHeader  = "tracestate"
)

// traceparent formats sc as a W3C traceparent (version 00).
func traceparent(sc trace.SpanContext) string {
	const hexdig = "0123456789abcdef"
	var b [55]byte
	b[0], b[1], b[2] = '0', '0', '-'
	tid, sid := sc.TraceID(), sc.SpanID()
	for i, x := range tid {
		b[3+2*i], b[4+2*i] = hexdig[x>>4], hexdig[x&0xf]
	}
	b[35] = '-'
	for i, x := range sid {
		b[36+2*i], b[37+2*i] = hexdig[x>>4], hexdig[x&0xf]
	}
	b[52] = '-'
	f := byte(sc.TraceFlags() & trace.FlagsSampled)
	b[53], b[54] = hexdig[f>>4], hexdig[f&0xf]
	return string(b[:])
}

// anyTraced reports whether one of a group's inputs is traced.
func anyTraced(inputs []any) bool {
	for _, v := range inputs {
		if traceOf(v).IsValid() {
			return true
		}
	}
	return false
}

// traceOf returns the span context of one Trace value.
func traceOf(v any) trace.SpanContext {
	switch v := v.(type) {
	case *hop:
		return v.sc
	case trace.SpanContext:
		return v
	case *decoded:
		return v.recv.sc
	case *journey:
		return v.sc
	}
	return trace.SpanContext{}
}

// groupSpan starts the span of a group of inputs: it continues the first
// traced input's trace and links to every input's span.
func (t *Tracer) groupSpan(ctx context.Context, traces []trace.SpanContext, name string, info *pipeline.HopInfo) trace.Span {
	links := make([]trace.Link, 0, len(traces))
	var psc trace.SpanContext
	for _, sc := range traces {
		if !sc.IsValid() {
			continue
		}
		if !psc.IsValid() {
			psc = sc
		}
		links = append(links, trace.Link{SpanContext: sc})
	}
	attrs := []attribute.KeyValue{semconv.MessagingBatchMessageCount(len(traces))}
	if info.Pipeline != "" {
		attrs = append(attrs, AttrPipeline.String(info.Pipeline))
	}
	if info.Stage != "" {
		attrs = append(attrs, AttrStage.String(info.Stage))
	}
	_, span := t.tracer.Start(trace.ContextWithSpanContext(ctx, psc), name,
		trace.WithLinks(links...), trace.WithAttributes(attrs...))
	return span
}

// startGroup draws a group's junction (an instant "batch <pipeline>"
// span) and returns it, ended, as the parent of the hop that follows.
func (t *Tracer) startGroup(ctx context.Context, inputs []any, info *pipeline.HopInfo) any {
	traces := make([]trace.SpanContext, len(inputs))
	for i, v := range inputs {
		traces[i] = traceOf(v)
	}
	owner := info.Pipeline
	if owner == "" {
		owner = info.Record
	}
	span := t.groupSpan(ctx, traces, "batch "+owner, info)
	span.End()
	h := &hop{span: span, sc: span.SpanContext(), info: info, meta: t.meta(info)}
	h.ended.Store(true)
	return h
}

// SpanContext returns the span context env.Trace holds (set by this
// package's Tracer), or an invalid one. Code that publishes envelopes by
// other means can use it to propagate the trace.
func SpanContext(env *pipeline.Envelope) trace.SpanContext {
	return traceOf(env.Trace)
}

// decoded is env.Trace of a sampled record between its decode and the
// first hop of a pipeline (JourneySpans): the receive hop, and when the
// decode ended (the record entered its buffer). The dispatcher writes it
// before the record is buffered; pipelines only read it.
type decoded struct {
	recv  *hop
	buf   string // the buffer event's name
	start time.Time
	end   time.Time
	err   error
}

// End implements pipeline.Span for the decode hop.
func (d *decoded) End(err error) {
	d.end = time.Now()
	if err != nil {
		d.recv.span.AddEvent("decode failed", trace.WithAttributes(semconv.ExceptionMessage(err.Error())))
	}
}

// journey is env.Trace of a sampled record inside one pipeline
// (JourneySpans): the pipeline's span, and the stack of hops running (fused
// stages nest; encode and publish run inside the last stage). mu guards
// it: a stage that merges records (a window flushed by a timer) may emit
// an output carrying the journey of one input from another goroutine.
type journey struct {
	mu       sync.Mutex
	pipeline string
	span     trace.Span
	sc       trace.SpanContext
	depth    int
	open     [8]pipeline.Hop // kinds of the running hops (depth <= 8 kept)
	erred    bool
	done     bool
}

// journeyHop handles a non-receive hop in JourneySpans mode. ok is false
// when the standard path must handle it (an untraced record, a record
// whose journey ended, a batch).
func (t *Tracer) journeyHop(ctx context.Context, env *pipeline.Envelope, info *pipeline.HopInfo) (pipeline.Span, bool) {
	m := t.meta(info)
	switch v := env.Trace.(type) {
	case *journey:
		v.mu.Lock()
		defer v.mu.Unlock()
		if info.Pipeline != "" && info.Pipeline != v.pipeline {
			// Another pipeline reading what this one wrote (Into): its own
			// span, a child of this one.
			return t.startJourney(ctx, env, info, m, v.span, time.Time{}, ""), true
		}
		if v.done {
			return nil, false
		}
		v.span.AddEvent(m.name)
		return v.push(t, ctx, env, info), true
	case *decoded:
		if info.Hop == pipeline.HopDecode {
			// The same payload decoded for another route.
			return t.decode(v.recv, env, info, m), true
		}
		return t.startJourney(ctx, env, info, m, v.recv.span, v.end, v.buf), true
	case *hop:
		if v.info.Hop != pipeline.HopReceive || v.span == nil {
			return nil, false
		}
		if info.Hop == pipeline.HopDecode {
			return t.decode(v, env, info, m), true
		}
		return t.startJourney(ctx, env, info, m, v.span, time.Time{}, ""), true
	}
	return nil, false
}

func (t *Tracer) decode(recv *hop, env *pipeline.Envelope, info *pipeline.HopInfo, m *hopMeta) pipeline.Span {
	recv.span.AddEvent(m.name)
	d := &decoded{recv: recv, buf: t.bufferMeta(info.Record).name}
	env.Trace = d
	return d
}

// startJourney starts the pipeline span of a record (at buffered, when it
// entered its buffer, if known) and runs its first hop.
func (t *Tracer) startJourney(ctx context.Context, env *pipeline.Envelope, info *pipeline.HopInfo, m *hopMeta, parent trace.Span, buffered time.Time, bufName string) pipeline.Span {
	jm := t.journeyMeta(info)
	opts := jm.opts
	if !buffered.IsZero() {
		opts = append(opts[:len(opts):len(opts)], trace.WithTimestamp(buffered))
	}
	// The receive span as parent (already a heap value: one allocation
	// fewer than a span context); it may have ended, only its context is
	// read.
	_, span := t.tracer.Start(trace.ContextWithSpan(ctx, parent), jm.name, opts...)
	if bufName != "" {
		span.AddEvent(bufName, trace.WithTimestamp(buffered))
	}
	span.AddEvent(m.name)
	j := &journey{span: span, sc: span.SpanContext(), pipeline: info.Pipeline}
	env.Trace = j
	return j.push(t, ctx, env, info)
}

// push opens a hop of the journey (injecting the trace context before a
// publish) and returns the journey as its Span. j.mu is held, or j is not
// shared yet.
func (j *journey) push(t *Tracer, ctx context.Context, env *pipeline.Envelope, info *pipeline.HopInfo) pipeline.Span {
	if j.depth < len(j.open) {
		j.open[j.depth] = info.Hop
	}
	j.depth++
	if info.Hop == pipeline.HopPublish {
		t.inject(ctx, env, j.sc)
	}
	return j
}

// End implements pipeline.Span: it closes the innermost hop, and ends the
// span when the journey's outermost stage, or its last publish, ended.
func (j *journey) End(err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.depth--
	var h pipeline.Hop
	if j.depth < len(j.open) {
		h = j.open[j.depth]
	}
	if err != nil && !j.erred {
		j.erred = true
		j.span.RecordError(err)
		j.span.SetStatus(codes.Error, err.Error())
	}
	if j.depth == 0 && (h == pipeline.HopStage || h == pipeline.HopPublish || err != nil) {
		j.done = true
		j.span.End()
	}
}

// journeyMeta returns the start options of the pipeline span of info's
// pipeline (or of its record, for a hop outside any pipeline), cached per
// HopInfo of the pipeline's first hop.
func (t *Tracer) journeyMeta(info *pipeline.HopInfo) *hopMeta {
	if m, ok := t.journeyMetas.Load(info); ok {
		return m.(*hopMeta)
	}
	key := "process " + info.Pipeline
	if info.Pipeline == "" {
		key = "process " + info.Record
	}
	var attrs []attribute.KeyValue
	if info.Pipeline != "" {
		attrs = append(attrs, AttrPipeline.String(info.Pipeline))
	}
	if info.Record != "" {
		attrs = append(attrs, AttrRecord.String(info.Record))
	}
	m := &hopMeta{name: key, opts: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...)}}
	actual, _ := t.journeyMetas.LoadOrStore(info, m)
	return actual.(*hopMeta)
}

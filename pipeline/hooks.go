package pipeline

import "context"

// Hop identifies the kind of step a record is taking, for tracing.
type Hop uint8

// The hops of a record's journey.
const (
	HopReceive Hop = iota + 1 // a source received a message
	HopDecode                 // a decoder turned the payload into a value
	HopStage                  // a pipeline stage processed it
	HopBuffer                 // it waited in a record's buffer (a tracer's own span: the runner does not call StartHop for it)
	HopEncode                 // an encoder turned the value into a payload
	HopPublish                // a publisher sent it to a destination
)

var hopNames = [...]string{"", "receive", "decode", "stage", "buffer", "encode", "publish"}

// String returns the lower-case hop name.
func (h Hop) String() string {
	if int(h) < len(hopNames) {
		return hopNames[h]
	}
	return "hop"
}

// HopInfo describes where a hop happens. The runner builds these once per
// stage and link and passes the same pointer for every record, so tracers
// must not modify them.
type HopInfo struct {
	Hop         Hop
	Pipeline    string
	Stage       string
	Record      string
	Link        string // "mqtt://alerts/{device}"
	Connector   string // connector name
	Scheme      string // "mqtt", "kafka"
	Destination string // static part of the destination, if any
	// Caps is what the connector declared (see Caps): a tracer reads
	// which transport attributes a record carries (partition and offset)
	// from it rather than from the scheme name.
	Caps Caps
}

// Tracer is the tracing hook. StartHop is called at every hop of every
// record when a Tracer is installed; it may store state in env.Trace (for
// example the current span context) and inject propagation headers into
// env.Headers before a publish. The returned Span may be nil.
//
// The core depends only on this interface; the OpenTelemetry implementation
// lives in its own package so that device builds never import it.
type Tracer interface {
	StartHop(ctx context.Context, env *Envelope, info *HopInfo) Span
}

// Span ends a hop. err is the hop's outcome.
type Span interface {
	End(err error)
}

// HeadSampler is optionally implemented by a Tracer that decides once per
// record, at its receive hop, whether the record is traced, and marks a
// record it does not trace with MarkNotTraced. When HeadSampled reports
// true the runner does not call the Tracer for any later hop of a marked
// record: each such hop costs one comparison.
type HeadSampler interface {
	HeadSampled() bool
}

// traceMark is the type of notTraced (not zero-sized, so that its address
// is unique).
type traceMark struct{ _ byte }

// notTraced is the Envelope.Trace value of a record a head-sampling Tracer
// decided not to trace. A pointer in an interface compares as one word.
var notTraced = &traceMark{}

// MarkNotTraced records in env that no later hop of it is traced (a head
// sampling decision). It overwrites env.Trace.
func MarkNotTraced(env *Envelope) { env.Trace = notTraced }

// IsNotTraced reports whether env was marked by MarkNotTraced.
func IsNotTraced(env *Envelope) bool { return env.Trace == any(notTraced) }

type hookSet struct {
	tracer Tracer
	// skip: tracer is a HeadSampler; hops of records marked not traced
	// (except a receive, which decides afresh) bypass it.
	skip bool
}

func newHookSet(t Tracer) *hookSet {
	h := &hookSet{tracer: t}
	if hs, ok := t.(HeadSampler); ok && hs.HeadSampled() {
		h.skip = true
	}
	return h
}

// traced reports whether the tracer must see a (non-receive) hop of env.
func (h *hookSet) traced(env *Envelope) bool {
	return h.tracer != nil && !(h.skip && env.Trace == any(notTraced))
}

func (h *hookSet) start(ctx context.Context, env *Envelope, info *HopInfo) Span {
	if h == nil || h.tracer == nil || h.skip && env.Trace == any(notTraced) && info.Hop != HopReceive {
		return nil
	}
	return h.tracer.StartHop(ctx, env, info)
}

func endSpan(s Span, err error) {
	if s != nil {
		s.End(err)
	}
}

// Package flow is the device-side pipeline API: the same Record / Pipeline /
// Filter / Map / To shape as the server's pipeline package, on
// fixed-capacity storage that is allocated once, when the flow is built.
// After that, writing a record, running it through filters and maps, and
// writing it to a sink allocate nothing.
//
// Records hold encoded messages (topic + flat JSON, at most MaxMsg bytes)
// in a pipeline/buffer buffer (ring, latest, mailbox or queue). A pipeline
// reads one record, decodes each message into a preallocated value.Object,
// runs its filters and maps (device/expr expressions, the device subset of
// the filter language), and hands the result to its sink: another record
// (Into) or a Sink such as a framed writer on a UART (To).
//
// A device main loop calls Poll, which processes whatever is buffered
// without blocking; Run does the same with one goroutine per pipeline. The
// package builds under TinyGo and imports no networking, reflection-based
// encoding, logging or tracing packages.
package flow

import (
	"context"
	"errors"
	"strconv"

	"github.com/aimdb-dev/aimdb-flow/device/expr"
	"github.com/aimdb-dev/aimdb-flow/device/frame"
	"github.com/aimdb-dev/aimdb-flow/device/jsonflat"
	"github.com/aimdb-dev/aimdb-flow/device/value"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
)

// MaxMsg is the largest encoded message (topic + payload) a record holds.
const MaxMsg = 192

// Msg is one buffered message, stored by value in a record's buffer.
type Msg struct {
	n, topicLen uint16
	b           [MaxMsg]byte
}

// Topic returns the message topic (valid while m is).
func (m *Msg) Topic() []byte { return m.b[:m.topicLen] }

// Payload returns the encoded payload.
func (m *Msg) Payload() []byte { return m.b[m.topicLen:m.n] }

// ErrMsgTooLong is returned when a message does not fit in MaxMsg bytes.
var ErrMsgTooLong = errors.New("flow: message longer than MaxMsg")

// Set fills m with topic and payload.
func (m *Msg) Set(topic, payload []byte) error {
	if len(topic)+len(payload) > MaxMsg {
		return ErrMsgTooLong
	}
	m.topicLen = uint16(copy(m.b[:], topic))
	m.n = m.topicLen + uint16(copy(m.b[m.topicLen:], payload))
	return nil
}

// encode writes topic and the JSON form of obj into m.
func (m *Msg) encode(topic []byte, obj *value.Object) error {
	if len(topic) > MaxMsg {
		return ErrMsgTooLong
	}
	m.topicLen = uint16(copy(m.b[:], topic))
	out, err := jsonflat.Append(m.b[m.topicLen:m.topicLen], obj)
	if err != nil {
		return err
	}
	if &out[:1][0] != &m.b[m.topicLen] || len(out) > MaxMsg-int(m.topicLen) {
		return ErrMsgTooLong // append had to grow: the encoding did not fit
	}
	m.n = m.topicLen + uint16(len(out))
	return nil
}

// Config sizes the per-pipeline storage.
type Config struct {
	// MaxFields and ArenaBytes size each decoded record (value.NewObject).
	// Defaults 16 and 256.
	MaxFields, ArenaBytes int
	// Scratch sizes each expression's string scratch (default
	// expr.DefaultScratch).
	Scratch int
}

// Flow is a set of records and pipelines, built once at start-up.
type Flow struct {
	cfg     Config
	records []*Record
	pipes   []*Pipeline
	errs    []error
}

// New returns an empty flow.
func New(cfg Config) *Flow {
	if cfg.MaxFields <= 0 {
		cfg.MaxFields = 16
	}
	if cfg.ArenaBytes <= 0 {
		cfg.ArenaBytes = 256
	}
	if cfg.Scratch <= 0 {
		cfg.Scratch = expr.DefaultScratch
	}
	return &Flow{cfg: cfg}
}

// Record is a named stream of messages with one buffer.
type Record struct {
	name   string
	buf    buffer.Buffer[Msg]
	msg    Msg // staging for Write (kept here, not on a small device stack)
	writes uint64
}

// Record declares a record with the given buffer (see pipeline/buffer).
func (f *Flow) Record(name string, cfg buffer.Config) *Record {
	if err := cfg.Validate(); err != nil {
		f.errs = append(f.errs, errors.New("record "+name+": "+err.Error()))
		cfg = buffer.Config{Kind: buffer.Latest}
	}
	r := &Record{name: name, buf: buffer.New[Msg](cfg)}
	f.records = append(f.records, r)
	return r
}

// Name returns the record name.
func (r *Record) Name() string { return r.name }

// Write encodes obj as flat JSON under topic and pushes it. Only a queue
// buffer blocks (when full). Write is for the record's single writer.
func (r *Record) Write(ctx context.Context, topic string, obj *value.Object) error {
	if err := r.msg.encode(stringBytes(topic), obj); err != nil {
		return err
	}
	r.writes++
	return r.buf.Push(ctx, r.msg)
}

// WriteRaw pushes an already encoded payload.
func (r *Record) WriteRaw(ctx context.Context, topic, payload []byte) error {
	if err := r.msg.Set(topic, payload); err != nil {
		return err
	}
	r.writes++
	return r.buf.Push(ctx, r.msg)
}

// Stats returns the record buffer's counters.
func (r *Record) Stats() buffer.Stats { return r.buf.Stats() }

// Subscribe adds a reader to the record (for code outside a pipeline).
func (r *Record) Subscribe() buffer.Reader[Msg] { return r.buf.Subscribe() }

// Close closes the record's buffer: its readers drain and stop.
func (r *Record) Close() { r.buf.Close() }

// Sink receives the records a pipeline emits. topic and obj are only valid
// during the call.
type Sink interface {
	Send(ctx context.Context, topic []byte, obj *value.Object) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, topic []byte, obj *value.Object) error

// Send implements Sink.
func (f SinkFunc) Send(ctx context.Context, topic []byte, obj *value.Object) error {
	return f(ctx, topic, obj)
}

// FrameSink encodes records as flat JSON and writes them as framed record
// messages (device/frame) to w: the publisher sink for a UART.
type FrameSink struct {
	w   *frame.Writer
	buf []byte
}

// NewFrameSink returns a sink writing to fw; maxPayload bounds the encoded
// JSON (its buffer is allocated here).
func NewFrameSink(fw *frame.Writer, maxPayload int) *FrameSink {
	return &FrameSink{w: fw, buf: make([]byte, 0, maxPayload)}
}

// Send implements Sink.
func (s *FrameSink) Send(_ context.Context, topic []byte, obj *value.Object) error {
	out, err := jsonflat.Append(s.buf[:0], obj)
	if err != nil {
		return err
	}
	if cap(out) != cap(s.buf) {
		return ErrMsgTooLong
	}
	return s.w.WriteRecord(bytesString(topic), out)
}

type stageKind uint8

const (
	stFilter stageKind = iota
	stMap
)

type stage struct {
	kind stageKind
	src  string
	prog *expr.Program
}

// Stats counts what a pipeline did.
type Stats struct {
	In, Out, Filtered, Errors, Lagged uint64
}

// Pipeline reads one record, runs stages, and writes to a sink.
type Pipeline struct {
	name    string
	f       *Flow
	from    *Record
	rd      buffer.Reader[Msg]
	stages  []stage
	sink    Sink
	into    *Record
	topic   []byte // fixed output topic; nil keeps the input topic
	objs    [2]*value.Object
	msg     Msg
	stats   Stats
	onError func(pipeline string, err error)
}

// Pipeline declares a pipeline.
func (f *Flow) Pipeline(name string) *Pipeline {
	p := &Pipeline{name: name, f: f,
		objs: [2]*value.Object{value.NewObject(f.cfg.MaxFields, f.cfg.ArenaBytes), value.NewObject(f.cfg.MaxFields, f.cfg.ArenaBytes)}}
	f.pipes = append(f.pipes, p)
	return p
}

// From sets the input record.
func (p *Pipeline) From(r *Record) *Pipeline {
	p.from = r
	p.rd = r.buf.Subscribe()
	return p
}

func (p *Pipeline) add(kind stageKind, src string) *Pipeline {
	prog, err := expr.Compile(src, expr.WithScratch(p.f.cfg.Scratch))
	if err != nil {
		p.f.errs = append(p.f.errs, errors.New("pipeline "+p.name+": stage "+strconv.Itoa(len(p.stages))+": "+err.Error()))
	} else if kind == stMap && !prog.IsMap() {
		p.f.errs = append(p.f.errs, errors.New("pipeline "+p.name+": map needs a map literal {\"k\": expr, ...}"))
	}
	p.stages = append(p.stages, stage{kind: kind, src: src, prog: prog})
	return p
}

// Filter keeps records for which the expression is true.
func (p *Pipeline) Filter(src string) *Pipeline { return p.add(stFilter, src) }

// Map replaces each record with the fields of a map literal expression.
func (p *Pipeline) Map(src string) *Pipeline { return p.add(stMap, src) }

// To sends the pipeline's output to s under topic (empty keeps the input
// message's topic).
func (p *Pipeline) To(topic string, s Sink) *Pipeline {
	p.sink = s
	if topic != "" {
		p.topic = []byte(topic)
	}
	return p
}

// Into writes the pipeline's output into record r (its buffer decides what
// readers see), under topic (empty keeps the input topic).
func (p *Pipeline) Into(topic string, r *Record) *Pipeline {
	p.into = r
	if topic != "" {
		p.topic = []byte(topic)
	}
	return p
}

// OnError registers a callback for records dropped by a stage or sink
// error (they are counted in Stats.Errors in any case).
func (p *Pipeline) OnError(fn func(pipeline string, err error)) *Pipeline {
	p.onError = fn
	return p
}

// Stats returns the pipeline's counters.
func (p *Pipeline) Stats() Stats { return p.stats }

// Validate reports every construction error (bad buffer config, an
// expression outside the device subset, a pipeline without input or sink).
func (f *Flow) Validate() error {
	errs := append([]error(nil), f.errs...)
	for _, p := range f.pipes {
		if p.from == nil {
			errs = append(errs, errors.New("pipeline "+p.name+": no From record"))
		}
		if p.sink == nil && p.into == nil {
			errs = append(errs, errors.New("pipeline "+p.name+": no To sink or Into record"))
		}
	}
	return errors.Join(errs...)
}

// Poll processes every message currently buffered for every pipeline,
// without blocking, and returns how many it processed. Call it from the
// device main loop after writing records.
func (f *Flow) Poll(ctx context.Context) (int, error) {
	total := 0
	for _, p := range f.pipes {
		for {
			m, ok, err := p.rd.TryRecv()
			if err != nil {
				var lag *buffer.LagError
				if errors.As(err, &lag) {
					p.stats.Lagged += lag.Missed
					continue
				}
				if err == buffer.ErrClosed {
					break
				}
				return total, err
			}
			if !ok {
				break
			}
			p.msg = m
			total++
			if err := p.process(ctx); err != nil && ctx.Err() != nil {
				return total, ctx.Err()
			}
		}
	}
	return total, nil
}

// Run processes messages as they arrive, one goroutine per pipeline, until
// ctx ends or every input record is closed and drained.
func (f *Flow) Run(ctx context.Context) error {
	if err := f.Validate(); err != nil {
		return err
	}
	done := make(chan error, len(f.pipes))
	for _, p := range f.pipes {
		go func(p *Pipeline) { done <- p.run(ctx) }(p)
	}
	var first error
	for range f.pipes {
		if err := <-done; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (p *Pipeline) run(ctx context.Context) error {
	for {
		m, err := p.rd.Recv(ctx)
		if err != nil {
			var lag *buffer.LagError
			switch {
			case errors.As(err, &lag):
				p.stats.Lagged += lag.Missed
				continue
			case err == buffer.ErrClosed:
				if p.into != nil {
					p.into.Close()
				}
				return nil
			case ctx.Err() != nil:
				return nil
			}
			return err
		}
		p.msg = m
		p.process(ctx)
	}
}

func (p *Pipeline) fail(err error) error {
	p.stats.Errors++
	if p.onError != nil {
		p.onError(p.name, err)
	}
	return err
}

// process runs one message (in p.msg) through the stages and the sink.
func (p *Pipeline) process(ctx context.Context) error {
	p.stats.In++
	cur, spare := p.objs[0], p.objs[1]
	if err := jsonflat.Decode(p.msg.Payload(), cur); err != nil {
		return p.fail(err)
	}
	for i := range p.stages {
		s := &p.stages[i]
		switch s.kind {
		case stFilter:
			ok, err := s.prog.EvalBool(cur)
			if err != nil {
				return p.fail(err)
			}
			if !ok {
				p.stats.Filtered++
				return nil
			}
		case stMap:
			if err := s.prog.EvalInto(cur, spare); err != nil {
				return p.fail(err)
			}
			cur, spare = spare, cur
		}
	}
	topic := p.topic
	if topic == nil {
		topic = p.msg.Topic()
	}
	var err error
	if p.into != nil {
		if err = p.into.msg.encode(topic, cur); err == nil {
			p.into.writes++
			err = p.into.buf.Push(ctx, p.into.msg)
		}
	} else {
		err = p.sink.Send(ctx, topic, cur)
	}
	if err != nil {
		return p.fail(err)
	}
	p.stats.Out++
	return nil
}

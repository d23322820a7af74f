// Package flow is the device-side pipeline API: the same Record / Pipeline /
// Filter / Map / To shape as the server's pipeline package, on
// fixed-capacity storage that is allocated once, when the flow is built.
// After that, writing a record, running it through filters and maps, and
// writing it to a sink allocate nothing.
//
// Records hold encoded messages (topic + a binflat or JSON record, at most
// MaxMsg bytes)
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
	"sync"

	"github.com/aimdb-dev/aimdb-flow/device/binflat"
	"github.com/aimdb-dev/aimdb-flow/device/expr"
	"github.com/aimdb-dev/aimdb-flow/device/frame"
	"github.com/aimdb-dev/aimdb-flow/device/value"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
)

// Codec encodes records for storage in a record's buffer and for sinks.
type Codec interface {
	Append(dst []byte, o *value.Object) ([]byte, error)
	Decode(data []byte, o *value.Object) error
}

// The codecs: binflat.Codec{} (the default storage; it needs no float
// parsing or formatting, so a device build that never uses JSON links none
// of strconv's float tables) and jsonflat.Codec{}. This package imports
// neither JSON nor float formatting itself.

// MaxMsg is the largest encoded message (topic + payload) a record holds.
const MaxMsg = 192

// Msg is one buffered message, stored by value in a record's buffer.
type Msg struct {
	n, topicLen uint16
	seq         uint32 // write sequence number, checked by readers
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

// encode writes topic and obj (encoded with c) into m.
func (m *Msg) encode(c Codec, topic []byte, obj *value.Object) error {
	if len(topic) > MaxMsg {
		return ErrMsgTooLong
	}
	m.topicLen = uint16(copy(m.b[:], topic))
	out, err := c.Append(m.b[m.topicLen:m.topicLen], obj)
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
	// Storage is how records hold messages (default binflat.Codec{}). Record.WriteRaw
	// payloads must be in this encoding.
	Storage Codec
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
	if cfg.Storage == nil {
		cfg.Storage = binflat.Codec{}
	}
	return &Flow{cfg: cfg}
}

// ref is what a record's buffer carries: a slot in the record's message
// pool and the sequence number written there. Buffers copy their elements
// by value; keeping the element this small keeps TinyGo's generated code
// small (large by-value aggregates bloat it) and copies cheap.
type ref struct {
	slot uint16
	seq  uint32
}

// Record is a named stream of messages with one buffer.
type Record struct {
	name   string
	buf    buffer.Buffer[ref]
	mu     sync.Mutex // guards pool slots against a concurrent reader (Run)
	pool   []Msg      // cap+2 slots: what the buffer holds, one being read, one being written
	seq    uint32
	writes uint64
	codec  Codec
}

// Record declares a record with the given buffer (see pipeline/buffer).
// Its message storage (MaxMsg bytes per slot) is allocated here.
func (f *Flow) Record(name string, cfg buffer.Config) *Record {
	if err := cfg.Validate(); err != nil {
		f.errs = append(f.errs, errors.New("record "+name+": "+err.Error()))
		cfg = buffer.Config{Kind: buffer.Latest}
	}
	n := 1
	if cfg.Kind == buffer.Ring || cfg.Kind == buffer.Queue {
		n = cfg.Size
	}
	r := &Record{name: name, buf: buffer.New[ref](cfg), pool: make([]Msg, n+2), codec: f.cfg.Storage}
	f.records = append(f.records, r)
	return r
}

// Name returns the record name.
func (r *Record) Name() string { return r.name }

// slot returns the pool slot for the next write (the caller holds r.mu).
func (r *Record) slot() (*Msg, ref) {
	rf := ref{slot: uint16(r.seq % uint32(len(r.pool))), seq: r.seq}
	m := &r.pool[rf.slot]
	m.seq = rf.seq
	return m, rf
}

func (r *Record) push(ctx context.Context, rf ref) error {
	r.seq++
	r.writes++
	return r.buf.Push(ctx, rf)
}

// Write encodes obj (with the flow's Storage codec) under topic and pushes it. Only a queue
// buffer blocks (when full). Write is for the record's single writer.
func (r *Record) Write(ctx context.Context, topic string, obj *value.Object) error {
	r.mu.Lock()
	m, rf := r.slot()
	err := m.encode(r.codec, stringBytes(topic), obj)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	return r.push(ctx, rf)
}

// WriteRaw pushes an already encoded payload.
func (r *Record) WriteRaw(ctx context.Context, topic, payload []byte) error {
	r.mu.Lock()
	m, rf := r.slot()
	err := m.Set(topic, payload)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	return r.push(ctx, rf)
}

// read copies the message rf refers to into dst; false if the slot was
// reused meanwhile (the reader lagged).
func (r *Record) read(rf ref, dst *Msg) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	src := &r.pool[rf.slot]
	if src.seq != rf.seq {
		return false
	}
	dst.n, dst.topicLen, dst.seq = src.n, src.topicLen, src.seq
	copy(dst.b[:src.n], src.b[:src.n])
	return true
}

// Stats returns the record buffer's counters.
func (r *Record) Stats() buffer.Stats { return r.buf.Stats() }

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

// FrameSink encodes records (binflat or jsonflat) and writes them as framed
// record messages (device/frame) to a byte stream: the publisher sink for a
// UART.
type FrameSink struct {
	w     *frame.Writer
	codec Codec
	buf   []byte
}

// NewFrameSink returns a sink writing to fw with codec c; maxPayload bounds
// the encoded record (its buffer is allocated here).
func NewFrameSink(fw *frame.Writer, c Codec, maxPayload int) *FrameSink {
	return &FrameSink{w: fw, codec: c, buf: make([]byte, 0, maxPayload)}
}

// Send implements Sink.
func (s *FrameSink) Send(_ context.Context, topic []byte, obj *value.Object) error {
	out, err := s.codec.Append(s.buf[:0], obj)
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
	rd      buffer.Reader[ref]
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
				// Buffers return *LagError unwrapped; a type assertion (not
				// errors.As) keeps reflection out of device builds.
				if lag, ok := err.(*buffer.LagError); ok {
					p.stats.Lagged += lag.Missed
					continue
				}
				break // TryRecv's only other error is buffer.ErrClosed
			}
			if !ok {
				break
			}
			if !p.from.read(m, &p.msg) {
				p.stats.Lagged++
				continue
			}
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
			lag, isLag := err.(*buffer.LagError)
			switch {
			case isLag:
				p.stats.Lagged += lag.Missed
				continue
			case ctx.Err() != nil:
				return nil
			}
			// Recv's only other error is buffer.ErrClosed (compared by
			// elimination: interface equality would link reflection into
			// device builds).
			if p.into != nil {
				p.into.Close()
			}
			return nil
		}
		if !p.from.read(m, &p.msg) {
			p.stats.Lagged++
			continue
		}
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
	if err := p.from.codec.Decode(p.msg.Payload(), cur); err != nil {
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
		r := p.into
		r.mu.Lock()
		m, rf := r.slot()
		err = m.encode(r.codec, topic, cur)
		r.mu.Unlock()
		if err == nil {
			err = r.push(ctx, rf)
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

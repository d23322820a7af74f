package pipeline

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Header is one message header (an MQTT 5 user property, a Kafka header, an
// HTTP header). Order is preserved and keys may repeat.
type Header struct {
	Key   string
	Value string
}

// Headers is an ordered list of headers.
type Headers []Header

// Get returns the first value stored under key and whether it was present.
func (h Headers) Get(key string) (string, bool) {
	for _, kv := range h {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// Set replaces every value stored under key with value (appending if absent)
// and returns the updated list.
func (h Headers) Set(key, value string) Headers {
	out := h[:0:0]
	found := false
	for _, kv := range h {
		if kv.Key == key {
			if found {
				continue
			}
			kv.Value = value
			found = true
		}
		out = append(out, kv)
	}
	if !found {
		out = append(out, Header{Key: key, Value: value})
	}
	return out
}

// Envelope is what flows through a pipeline: the decoded value and/or the raw
// payload, plus transport metadata and the acknowledgement handle of the
// message it came from.
//
// An Envelope is passed by pointer through a fused chain of stages and copied
// by value into buffers; stages that keep an envelope beyond their call must
// copy it.
type Envelope struct {
	// Value is the decoded value (nil until a decoder ran, or for raw flows).
	Value any
	// Payload is the raw bytes as received, or as produced by an encoder.
	Payload []byte
	// Topic is the inbound topic or the computed outbound destination.
	Topic string
	// Key is the partitioning key (Kafka key, dedupe key, ...).
	Key []byte
	// Headers are transport headers; trace context travels here across brokers.
	Headers Headers
	// Time is the event time (the source's timestamp when it has one, else
	// the receive time).
	Time time.Time
	// Trace is an opaque slot for the tracing hook (span or span context).
	// The core never looks inside.
	Trace any
	// Partition and Offset locate the message in a partitioned log source
	// (Kafka); both are -1 / 0 for other sources.
	Partition int32
	Offset    int64
	// Ack is the acknowledgement handle of the source message; nil when the
	// source does not need acknowledgements.
	Ack *Ack
}

// Reset clears the envelope for reuse.
func (e *Envelope) Reset() { *e = Envelope{} }

// ErrNacked is reported to an ack callback when a consumer rejected the
// message without giving a more specific error.
var ErrNacked = errors.New("message not acknowledged")

// Ack is a fan-in acknowledgement: a source creates one per inbound message
// with the callback to run when every party that received the message has
// finished with it. Each party that takes a share calls Add before the hand
// off and exactly one of Done or Nack afterwards. The callback runs exactly
// once, when the count drops to zero, with nil if every share succeeded or
// the first error reported otherwise.
//
// A nil *Ack is valid and does nothing, so stages never need to check.
//
// The callback is either a function (NewAck) or a method of a Settler
// called with a tag (NewAckFor, InitAck), which spares a source a closure
// per message.
type Ack struct {
	pending   atomic.Int64
	abandoned atomic.Bool
	called    atomic.Bool // the callback has run (or is running)
	errMu     sync.Mutex
	err       error
	fn        func(error)
	to        Settler
	tag       uint64
}

// Settler receives the outcome of acks made by NewAckFor and InitAck:
// Settle(tag, err) runs exactly once per ack, when every share is
// released, with the error a NewAck callback would get. A source
// implements it on its own per-partition (or per-stream) tracker and tags
// each ack with what identifies the message there (an offset, a slot), so
// that making an ack allocates no closure. Settle may run on any
// goroutine, concurrently for different acks.
type Settler interface {
	Settle(tag uint64, err error)
}

// NewAck returns an ack with one share held by the caller (the source) and
// fn to run when all shares are released. The source normally passes the
// envelope on and lets the pipeline release its share.
func NewAck(fn func(err error)) *Ack {
	a := &Ack{fn: fn}
	a.pending.Store(1)
	return a
}

// NewAckFor is NewAck with a Settler instead of a function: when every
// share is released, s.Settle(tag, err) runs.
func NewAckFor(s Settler, tag uint64) *Ack {
	a := &Ack{}
	InitAck(a, s, tag)
	return a
}

// InitAck readies a, a zero Ack that nothing else holds yet, like
// NewAckFor: one share held by the caller, s.Settle(tag, err) once all
// are released. It lets a source allocate acks in bulk (a slab of many
// messages' acks in one allocation) instead of one by one. An Ack is
// initialised once: a must not be in use and is not reused afterwards.
func InitAck(a *Ack, s Settler, tag uint64) {
	a.to, a.tag = s, tag
	a.pending.Store(1)
}

// Add takes n more shares (n may be 0).
func (a *Ack) Add(n int) {
	if a == nil || n == 0 {
		return
	}
	a.pending.Add(int64(n))
}

// Done releases one share successfully.
func (a *Ack) Done() { a.release(nil) }

// Nack releases one share with a failure; the source will see err (or
// ErrNacked when err is nil) and may redeliver.
func (a *Ack) Nack(err error) {
	if err == nil {
		err = ErrNacked
	}
	a.release(err)
}

// Finish releases one share, failed when err is non-nil.
func (a *Ack) Finish(err error) {
	if err != nil {
		a.Nack(err)
		return
	}
	a.Done()
}

func (a *Ack) release(err error) {
	if a == nil {
		return
	}
	if err != nil {
		a.errMu.Lock()
		if a.err == nil {
			a.err = err
		}
		a.errMu.Unlock()
	}
	n := a.pending.Add(-1)
	if n > 0 {
		return
	}
	if n < 0 {
		if a.abandoned.Load() {
			return // a stuck stage released its share after the runner gave up on it
		}
		panic("pipeline: Ack released more times than taken")
	}
	if !a.called.CompareAndSwap(false, true) {
		return // abandoned first
	}
	a.errMu.Lock()
	e := a.err
	a.errMu.Unlock()
	// Nothing below touches a after the callback: a Settler may reuse the
	// ack (reinit) from within it.
	a.call(e)
}

// call runs the callback with the outcome.
func (a *Ack) call(err error) {
	switch {
	case a.fn != nil:
		a.fn(err)
	case a.to != nil:
		a.to.Settle(a.tag, err)
	}
}

// abandon settles the ack now with err (the callback runs unless it already
// ran), whatever shares are still out. The runner uses it for records held
// by a stage that ignored cancellation: later releases of those shares are
// then no-ops instead of a panic.
func (a *Ack) abandon(err error) {
	if a == nil {
		return
	}
	a.abandoned.Store(true)
	if a.called.CompareAndSwap(false, true) {
		a.call(err)
	}
}

// reinit readies a settled ack for another message, as InitAck does for a
// zero one. Only the runner reuses acks, for the shares it hands to
// asynchronous publishers, once their Settle has run (the conformance suite
// holds connectors to finishing each ack exactly once).
func (a *Ack) reinit(s Settler, tag uint64) {
	a.abandoned.Store(false)
	a.called.Store(false)
	a.err, a.fn = nil, nil
	InitAck(a, s, tag)
}

// Pending reports the number of shares not yet released.
func (a *Ack) Pending() int64 {
	if a == nil {
		return 0
	}
	return a.pending.Load()
}

package mqtt

import (
	"context"
	"time"

	"github.com/aimdb-dev/aimdb-flow/device/binflat"
	"github.com/aimdb-dev/aimdb-flow/device/flow"
	"github.com/aimdb-dev/aimdb-flow/device/value"
)

// Sink publishes a device pipeline's output (a flow.Sink, for
// Pipeline.To): each record is encoded with the sink's codec and published
// under the pipeline's topic. At QoS 1, Send waits, polling the client,
// while the in-flight window is full (backpressure on the pipeline rather
// than a dropped record); a message published while disconnected waits in
// the client's in-flight slots for the next Connect.
type Sink struct {
	c     *Client
	opt   SinkOptions
	buf   []byte
	clock func() time.Duration
}

// SinkOptions configure a Sink.
type SinkOptions struct {
	// Codec encodes each record: binflat.Codec{} (the default, what
	// serial.BinFlat decodes on a host) or jsonflat.Codec{} for servers
	// that expect JSON (it links strconv's float tables: ~25 KB of flash).
	Codec  flow.Codec
	QoS    QoS
	Retain bool
	// MaxPayload bounds the encoded record (default 128 bytes); its buffer
	// is allocated by NewSink.
	MaxPayload int
	// Clock is the main loop's monotonic clock, passed to Client.Poll
	// while Send waits for a free in-flight slot, so keep-alive and
	// AckTimeout keep running. Without it the wait polls at the client's
	// last time, and only acknowledgements and errors end it.
	Clock func() time.Duration
}

// NewSink returns a sink publishing through c.
func NewSink(c *Client, opt SinkOptions) *Sink {
	if opt.Codec == nil {
		opt.Codec = binflat.Codec{}
	}
	if opt.MaxPayload <= 0 {
		opt.MaxPayload = 128
	}
	return &Sink{c: c, opt: opt, buf: make([]byte, 0, opt.MaxPayload), clock: opt.Clock}
}

// Send implements flow.Sink.
func (s *Sink) Send(ctx context.Context, topic []byte, obj *value.Object) error {
	out, err := s.opt.Codec.Append(s.buf[:0], obj)
	if err != nil {
		return err
	}
	if cap(out) != cap(s.buf) {
		return flow.ErrMsgTooLong // the encoding outgrew the buffer
	}
	for s.opt.QoS == QoS1 && s.c.Free() == 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := s.c.now
		if s.clock != nil {
			now = s.clock()
		}
		if err := s.c.Poll(now); err != nil {
			return err
		}
	}
	return s.c.Publish(topic, out, s.opt.QoS, s.opt.Retain)
}

// RecordSource writes inbound messages into a flow record (a Handler, for
// a Subscription): the payload is decoded with the source's codec into a
// preallocated object and written under the message's topic. The record's
// own Storage codec re-encodes it, so a JSON payload can feed a binflat
// record. A payload that does not decode is counted (DecodeErrors) and
// acknowledged: redelivering it would not help. A failed write leaves the
// message unacknowledged. Poll runs the handler, so the record should not
// block when full: use a latest, mailbox or ring buffer.
type RecordSource struct {
	rec          *flow.Record
	codec        flow.Codec
	obj          *value.Object
	decodeErrors uint64
}

// NewRecordSource returns a handler writing into rec; maxFields and
// arenaBytes size the decoded object (value.NewObject).
func NewRecordSource(rec *flow.Record, codec flow.Codec, maxFields, arenaBytes int) *RecordSource {
	return &RecordSource{rec: rec, codec: codec, obj: value.NewObject(maxFields, arenaBytes)}
}

// HandleMessage implements Handler.
func (r *RecordSource) HandleMessage(m *Message) error {
	if err := r.codec.Decode(m.Payload, r.obj); err != nil {
		r.decodeErrors++
		return nil
	}
	return r.rec.Write(context.Background(), bytesString(m.Topic), r.obj)
}

// DecodeErrors returns how many payloads did not decode.
func (r *RecordSource) DecodeErrors() uint64 { return r.decodeErrors }

package mqtt

import (
	"context"
	"time"

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
	c      *Client
	codec  flow.Codec
	qos    QoS
	retain bool
	buf    []byte
	// Clock is the time passed to Client.Poll while Send waits for a free
	// in-flight slot (default time.Now).
	Clock func() time.Time
}

// NewSink returns a sink publishing through c with codec (jsonflat.Codec{}
// for a server that decodes JSON, binflat.Codec{} for serial.BinFlat);
// maxPayload bounds the encoded record (its buffer is allocated here).
func NewSink(c *Client, codec flow.Codec, qos QoS, retain bool, maxPayload int) *Sink {
	return &Sink{c: c, codec: codec, qos: qos, retain: retain, buf: make([]byte, 0, maxPayload), Clock: time.Now}
}

// Send implements flow.Sink.
func (s *Sink) Send(ctx context.Context, topic []byte, obj *value.Object) error {
	out, err := s.codec.Append(s.buf[:0], obj)
	if err != nil {
		return err
	}
	if cap(out) != cap(s.buf) {
		return flow.ErrMsgTooLong // the encoding outgrew the buffer
	}
	for s.qos == QoS1 && s.c.Free() == 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.c.Poll(s.Clock()); err != nil {
			return err
		}
	}
	return s.c.Publish(topic, out, s.qos, s.retain)
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

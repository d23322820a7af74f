package pipeline

// Decoder turns a payload into a value. The payload belongs to the
// envelope (sources never reuse it after dispatch), so a decoder may return
// values that alias it.
type Decoder interface {
	Decode(payload []byte) (any, error)
}

// PayloadOnly is an inbound decoder that leaves the value nil and keeps the
// payload, so decoding can happen later in the pipeline: typically in a
// Decode stage of a parallel pipeline, so that decoding uses every core.
var PayloadOnly Decoder = payloadOnly{}

type payloadOnly struct{}

func (payloadOnly) Decode([]byte) (any, error) { return nil, nil }

// Encoder turns a value into a payload. The returned slice must be freshly
// allocated or otherwise owned by the caller: publishers may hold it after
// the next record was encoded.
type Encoder interface {
	Encode(v any) ([]byte, error)
}

// Codec is a named pair of Decoder and Encoder ("json", "msgpack", "raw").
type Codec interface {
	Name() string
	Decoder
	Encoder
}

// AppendEncoder is optionally implemented by encoders that can append a
// value's encoding to a caller's buffer. The runner uses it, with a reused
// buffer, for sinks whose connector is a PayloadCopier.
type AppendEncoder interface {
	AppendEncode(dst []byte, v any) ([]byte, error)
}

// PayloadCopier is optionally implemented by connectors whose synchronous
// Publish never keeps env.Payload after it returns (it writes or copies
// the bytes before returning). The runner may then encode each record into
// one reused buffer. Connectors that hand the payload to a background
// writer must not implement it (or return false).
type PayloadCopier interface {
	CopiesPayload() bool
}

package pipeline

// Decoder turns a payload into a value. Implementations must not retain
// payload after returning (the source may reuse it) unless they copy it.
type Decoder interface {
	Decode(payload []byte) (any, error)
}

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

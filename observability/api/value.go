package api

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// renderValue is env as the API shows it: the value as JSON when it has
// one (encoded as the json codec would publish it), else the payload.
func renderValue(name string, env pipeline.Envelope) Value {
	v := Value{Record: name, Time: env.Time, Topic: env.Topic, Headers: redactHeaders(env.Headers)}
	if len(env.Key) > 0 && utf8.Valid(env.Key) {
		v.Key = string(env.Key)
	}
	raw := func(b []byte) {
		if len(b) > 0 && json.Valid(b) {
			v.Value = json.RawMessage(b)
		} else if len(b) > 0 {
			v.Payload = b
		}
	}
	switch x := env.Value.(type) {
	case nil:
		raw(env.Payload)
	case []byte:
		raw(x)
	default:
		if b, err := (codec.LazyJSON{}).Encode(x); err == nil && json.Valid(b) {
			v.Value = json.RawMessage(b)
		} else {
			raw(env.Payload)
		}
	}
	return v
}

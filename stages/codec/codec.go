// Package codec provides the serializers used by links and encode/decode
// stages: JSON, raw bytes, and MessagePack (compact binary). Lookup maps a
// DSL codec name to its implementation.
package codec

import (
	"fmt"
	"sort"
	"unicode/utf8"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// JSON decodes a JSON document into map[string]any / []any / float64 /
// string / bool / nil (exactly the values encoding/json produces for `any`)
// and encodes any value encoding/json accepts, with identical output.
//
// Decoding uses a hand-written single-pass parser (no reflection) with key
// interning; encoding has fast paths for the decoded shapes, scalars,
// json.Number, []byte and time.Time and falls back to encoding/json for
// everything else (structs, pointers, Marshalers).
type JSON struct {
	// Ints decodes integer literals (no fraction, no exponent, within
	// int64's range) as int64 instead of float64: the number model of
	// LazyJSON, the DSL's json.
	Ints bool
}

// Name implements pipeline.Codec.
func (JSON) Name() string { return "json" }

// Decode implements pipeline.Decoder.
func (j JSON) Decode(p []byte) (any, error) {
	v, err := decodeWith(p, false, j.Ints)
	if err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	return v, nil
}

// Encode implements pipeline.Encoder.
func (JSON) Encode(v any) ([]byte, error) {
	// Errors already carry the "json: " prefix (ours and encoding/json's).
	return encodeJSON(v)
}

// LazyJSON is JSON that decodes a top-level object into an *Object: an
// index of its fields over the payload, with values parsed only when read
// (see Object). It accepts and rejects exactly the documents JSON does, and
// other top-level values decode as JSON{Ints: true} decodes them.
//
// Its number model: an integer literal (`7`, `-12`, no fraction, no
// exponent, within int64) is an int64, any other number (`7.0`, `1e3`,
// `23.5`) a float64. So `seq % 2` works, and comparisons across the two
// (`temp > 25.0` with temp 30) work in expr-lang and CEL alike. It is the codec the
// DSL's "json" names: filters read one field without building a map, set
// writes an overlay, and encoding forwards untouched fields as their
// original bytes (so key order and number spelling are kept, where JSON
// sorts keys).
//
// Go code that wants map[string]any gets it from Object.Map, or from
// pipeline.Plain, which stages.FilterValue and stages.MapValue apply for
// functions over map[string]any or any.
type LazyJSON struct{}

// Name implements pipeline.Codec.
func (LazyJSON) Name() string { return "json" }

// Decode implements pipeline.Decoder.
func (LazyJSON) Decode(p []byte) (any, error) {
	v, err := decodeWith(p, true, true)
	if err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	return v, nil
}

// Encode implements pipeline.Encoder. An unchanged *Object encodes as its
// original bytes (capacity-limited, so appending to them copies).
func (LazyJSON) Encode(v any) ([]byte, error) {
	if o, ok := v.(*Object); ok && len(o.set) == 0 && !o.idx.badUTF8 {
		r := o.idx.raw
		return r[:len(r):len(r)], nil
	}
	return encodeJSON(v)
}

// Faithful implements pipeline.PassthroughChecker: a payload is forwarded
// as is only when it is valid UTF-8 (known from decoding for an Object).
func (LazyJSON) Faithful(payload []byte, v any) bool {
	if o, ok := v.(*Object); ok {
		return !o.idx.badUTF8
	}
	return utf8.Valid(payload)
}

// Faithful implements pipeline.PassthroughChecker: a payload is forwarded
// as is only when it is valid UTF-8.
func (JSON) Faithful(payload []byte, _ any) bool { return utf8.Valid(payload) }

// AppendEncode implements pipeline.AppendEncoder.
func (LazyJSON) AppendEncode(dst []byte, v any) ([]byte, error) { return appendJSON(dst, v) }

// AppendEncode implements pipeline.AppendEncoder.
func (JSON) AppendEncode(dst []byte, v any) ([]byte, error) { return appendJSON(dst, v) }

// Raw passes bytes through: Decode returns the payload as []byte (a copy);
// Encode accepts []byte or string.
type Raw struct{}

// Name implements pipeline.Codec.
func (Raw) Name() string { return "raw" }

// Decode implements pipeline.Decoder.
func (Raw) Decode(p []byte) (any, error) { return append([]byte(nil), p...), nil }

// Encode implements pipeline.Encoder.
func (Raw) Encode(v any) ([]byte, error) {
	switch x := v.(type) {
	case []byte:
		return x, nil
	case string:
		return []byte(x), nil
	case nil:
		return nil, nil
	}
	return nil, fmt.Errorf("raw: cannot encode %T (want bytes or string; use encode json)", v)
}

// Registry maps codec names to codecs.
type Registry map[string]pipeline.Codec

// Default returns a registry with every built-in codec.
func Default() Registry {
	return Registry{"json": LazyJSON{}, "raw": Raw{}, "msgpack": MsgPack{}}
}

// Lookup returns the named codec.
func (r Registry) Lookup(name string) (pipeline.Codec, error) {
	c, ok := r[name]
	if !ok {
		return nil, fmt.Errorf("unknown codec %q (known: %v)", name, r.Names())
	}
	return c, nil
}

// Names lists the registered codec names, sorted.
func (r Registry) Names() []string {
	out := make([]string, 0, len(r))
	for n := range r {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

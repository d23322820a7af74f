package pipeline

import "reflect"

// ValuePreserver is implemented by stages that never change an envelope's
// value or payload: they only pass, drop, delay or observe envelopes
// (expression filters, throttle, dedupe, log).
//
// Passthrough: a pipeline made only of such stages, reading a record fed
// only by inbound links whose decoders are all the codec of its output
// link, publishes each record's original payload bytes instead of encoding
// its value again, since encoding would reproduce the same record. The
// bytes are the ones the source received (for JSON: key order and spacing
// as they came). A record publisher (RecordSpec.To) passes through on the
// same condition. Stages written with a function over the value or the
// envelope (FilterValue, Filter, Map, Tap) may change what they are given,
// so a pipeline containing one re-encodes.
type ValuePreserver interface {
	PreservesValue() bool
}

// preservesValues reports whether every stage preserves values.
func preservesValues(stages []Stage) bool {
	for _, s := range stages {
		p, ok := s.(ValuePreserver)
		if !ok || !p.PreservesValue() {
			return false
		}
	}
	return true
}

// sameCodec reports whether a decoder and an encoder are the same codec:
// the same comparable type and equal values (codec.JSON{} and codec.JSON{}).
func sameCodec(dec Decoder, enc Encoder) bool {
	if dec == nil || enc == nil {
		return false
	}
	td, te := reflect.TypeOf(dec), reflect.TypeOf(enc)
	if td != te || !td.Comparable() {
		return false
	}
	return any(dec) == any(enc)
}

// passthroughFrom reports whether values read from the record spec are
// exactly what its inbound links decoded from the payload they carry, with
// enc's codec: the record has inbound links only (no pipeline writes into
// it), each decoding with enc's codec.
func passthroughFrom(spec *RecordSpec, enc Encoder) bool {
	if spec == nil || len(spec.Inbound) == 0 {
		return false
	}
	for _, l := range spec.Inbound {
		if !sameCodec(l.Decoder, enc) {
			return false
		}
	}
	return true
}

// PassthroughChecker is optionally implemented by a codec whose original
// payload bytes are not always what it would encode: JSON forwards a
// payload only when it is valid UTF-8 (an invalid byte is encoded as
// U+FFFD, so output stays valid JSON). Passthrough forwards the payload
// when Faithful reports true and encodes the value otherwise.
type PassthroughChecker interface {
	Faithful(payload []byte, v any) bool
}

// faithful reports whether env's payload may be forwarded as is.
func (o *outRun) faithful(env *Envelope) bool {
	pc, ok := o.link.Encoder.(PassthroughChecker)
	return !ok || pc.Faithful(env.Payload, env.Value)
}

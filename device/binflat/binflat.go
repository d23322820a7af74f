// Package binflat is a compact binary codec for flat records
// (value.Object), the device subset's alternative to JSON: no number
// parsing or formatting, so a device build that uses it links none of
// strconv's float tables (~20 KB of flash on a Cortex-M).
//
// Format: a field count (uvarint), then per field: name length (uvarint),
// name bytes, kind byte (value.Kind), and the value: nothing for nil, one
// byte for a bool, a zig-zag uvarint for an int, 8 little-endian bytes of
// IEEE-754 bits for a float, a uvarint length and bytes for a string.
//
// Append and Decode allocate nothing. Decode copies names and strings into
// the destination object's arena. The host decodes the same format with
// Decode into a value.Object (or connectors/serial.BinFlat as a codec).
package binflat

import (
	"errors"
	"math"

	"github.com/aimdb-dev/aimdb-flow/device/value"
)

// ErrFormat reports malformed input.
var ErrFormat = errors.New("binflat: malformed record")

func appendUvarint(dst []byte, x uint64) []byte {
	for x >= 0x80 {
		dst = append(dst, byte(x)|0x80)
		x >>= 7
	}
	return append(dst, byte(x))
}

// Append appends the encoding of o to dst.
func Append(dst []byte, o *value.Object) []byte {
	dst = appendUvarint(dst, uint64(o.Len()))
	for i := 0; i < o.Len(); i++ {
		f := o.Field(i)
		dst = appendUvarint(dst, uint64(len(f.Name)))
		dst = append(dst, f.Name...)
		dst = append(dst, byte(f.Val.K))
		switch f.Val.K {
		case value.Bool:
			b := byte(0)
			if f.Val.B {
				b = 1
			}
			dst = append(dst, b)
		case value.Int:
			dst = appendUvarint(dst, uint64(f.Val.I<<1)^uint64(f.Val.I>>63))
		case value.Float:
			u := math.Float64bits(f.Val.F)
			for k := 0; k < 8; k++ {
				dst = append(dst, byte(u>>(8*k)))
			}
		case value.String:
			dst = appendUvarint(dst, uint64(len(f.Val.S)))
			dst = append(dst, f.Val.S...)
		}
	}
	return dst
}

type reader struct {
	b []byte
	i int
}

func (r *reader) uvarint() (uint64, bool) {
	var x uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if r.i >= len(r.b) {
			return 0, false
		}
		c := r.b[r.i]
		r.i++
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x, true
		}
	}
	return 0, false
}

func (r *reader) bytes(n uint64) ([]byte, bool) {
	if n > uint64(len(r.b)-r.i) {
		return nil, false
	}
	s := r.b[r.i : r.i+int(n)]
	r.i += int(n)
	return s, true
}

// Decode decodes data into dst (reset first). Capacity errors are
// value.ErrTooManyFields and value.ErrArenaFull.
func Decode(data []byte, dst *value.Object) error {
	dst.Reset()
	r := reader{b: data}
	n, ok := r.uvarint()
	if !ok {
		return ErrFormat
	}
	for ; n > 0; n-- {
		l, ok := r.uvarint()
		if !ok {
			return ErrFormat
		}
		name, ok := r.bytes(l)
		if !ok || r.i >= len(data) {
			return ErrFormat
		}
		var v value.Value
		v.K = value.Kind(data[r.i])
		r.i++
		switch v.K {
		case value.Nil:
		case value.Bool:
			b, ok := r.bytes(1)
			if !ok || b[0] > 1 {
				return ErrFormat
			}
			v.B = b[0] == 1
		case value.Int:
			u, ok := r.uvarint()
			if !ok {
				return ErrFormat
			}
			v.I = int64(u>>1) ^ -int64(u&1)
		case value.Float:
			b, ok := r.bytes(8)
			if !ok {
				return ErrFormat
			}
			var u uint64
			for k := 7; k >= 0; k-- {
				u = u<<8 | uint64(b[k])
			}
			v.F = math.Float64frombits(u)
		case value.String:
			l, ok := r.uvarint()
			if !ok {
				return ErrFormat
			}
			if v.S, ok = r.bytes(l); !ok {
				return ErrFormat
			}
		default:
			return ErrFormat
		}
		if err := dst.SetBytes(name, v); err != nil {
			return err
		}
	}
	if r.i != len(data) {
		return ErrFormat
	}
	return nil
}

// Codec adapts the package to device/flow's Codec interface.
type Codec struct{}

// Append implements flow.Codec.
func (Codec) Append(dst []byte, o *value.Object) ([]byte, error) { return Append(dst, o), nil }

// Decode implements flow.Codec.
func (Codec) Decode(data []byte, o *value.Object) error { return Decode(data, o) }

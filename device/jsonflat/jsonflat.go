// Package jsonflat encodes and decodes flat JSON objects ({"k": scalar, ...})
// to and from value.Object without allocating: decoded names and strings are
// copied (unescaped) into the object's preallocated arena.
//
// Scalars map as follows: strings to String, true/false to Bool, null to
// Nil, numbers without fraction or exponent that fit in int64 to Int, other
// numbers to Float. Nested objects and arrays are rejected with ErrNotFlat.
// The package builds under TinyGo and imports neither reflect-based
// encoding/json nor fmt.
package jsonflat

import (
	"errors"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/aimdb-dev/aimdb-flow/device/value"
)

// Decoding errors.
var (
	ErrSyntax    = errors.New("jsonflat: syntax error")
	ErrNotFlat   = errors.New("jsonflat: nested objects and arrays are not supported")
	ErrNotFinite = errors.New("jsonflat: NaN and infinities cannot be encoded")
)

// SyntaxError locates a decoding error.
type SyntaxError struct {
	Offset int
	Err    error
}

func (e *SyntaxError) Error() string {
	return e.Err.Error() + " at offset " + strconv.Itoa(e.Offset)
}

func (e *SyntaxError) Unwrap() error { return e.Err }

type decoder struct {
	data []byte
	i    int
	dst  *value.Object
	out  []byte // string being unescaped (the arena's free tail)
	n    int
}

// put appends one byte to the string being decoded. (A method, not a
// closure: TinyGo heap-allocates closure-captured variables on some targets.)
func (d *decoder) put(c byte) bool {
	if d.n == len(d.out) {
		return false
	}
	d.out[d.n] = c
	d.n++
	return true
}

func (d *decoder) fail(err error) error { return &SyntaxError{Offset: d.i, Err: err} }

func (d *decoder) ws() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// Decode parses the flat JSON object in data into dst (reset first). It
// fails with value.ErrTooManyFields or value.ErrArenaFull (wrapped in a
// *SyntaxError) when dst's capacity is too small. A repeated key keeps the
// last value, like encoding/json.
func Decode(data []byte, dst *value.Object) error {
	dst.Reset()
	d := decoder{data: data, dst: dst}
	d.ws()
	if d.i >= len(data) || data[d.i] != '{' {
		return d.fail(ErrSyntax)
	}
	d.i++
	d.ws()
	if d.i < len(data) && data[d.i] == '}' {
		d.i++
		return d.end()
	}
	for {
		d.ws()
		name, err := d.str()
		if err != nil {
			return err
		}
		d.ws()
		if d.i >= len(data) || data[d.i] != ':' {
			return d.fail(ErrSyntax)
		}
		d.i++
		d.ws()
		v, err := d.scalar()
		if err != nil {
			return err
		}
		if j := dst.Index(name); j >= 0 {
			// Duplicate key: last one wins (its bytes stay in the arena).
			if err := dst.SetBytes(name, v); err != nil {
				return d.fail(err)
			}
		} else if err := dst.AppendRaw(name, v); err != nil {
			return d.fail(err)
		}
		d.ws()
		if d.i >= len(data) {
			return d.fail(ErrSyntax)
		}
		switch data[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			return d.end()
		default:
			return d.fail(ErrSyntax)
		}
	}
}

func (d *decoder) end() error {
	d.ws()
	if d.i != len(d.data) {
		return d.fail(ErrSyntax)
	}
	return nil
}

func (d *decoder) scalar() (value.Value, error) {
	if d.i >= len(d.data) {
		return value.Value{}, d.fail(ErrSyntax)
	}
	switch c := d.data[d.i]; {
	case c == '"':
		s, err := d.str()
		return value.BytesOf(s), err
	case c == '{' || c == '[':
		return value.Value{}, d.fail(ErrNotFlat)
	case c == 't':
		return value.BoolOf(true), d.lit("true")
	case c == 'f':
		return value.BoolOf(false), d.lit("false")
	case c == 'n':
		return value.Value{}, d.lit("null")
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	}
	return value.Value{}, d.fail(ErrSyntax)
}

func (d *decoder) lit(s string) error {
	if len(d.data)-d.i < len(s) || !value.EqualString(d.data[d.i:d.i+len(s)], s) {
		return d.fail(ErrSyntax)
	}
	d.i += len(s)
	return nil
}

func (d *decoder) number() (value.Value, error) {
	start := d.i
	b := d.data
	if b[d.i] == '-' {
		d.i++
	}
	if d.i < len(b) && b[d.i] == '0' {
		d.i++
	} else if d.digits() == 0 {
		return value.Value{}, d.fail(ErrSyntax)
	}
	isFloat := false
	if d.i < len(b) && b[d.i] == '.' {
		d.i++
		isFloat = true
		if d.digits() == 0 {
			return value.Value{}, d.fail(ErrSyntax)
		}
	}
	if d.i < len(b) && (b[d.i] == 'e' || b[d.i] == 'E') {
		d.i++
		isFloat = true
		if d.i < len(b) && (b[d.i] == '+' || b[d.i] == '-') {
			d.i++
		}
		if d.digits() == 0 {
			return value.Value{}, d.fail(ErrSyntax)
		}
	}
	text := b[start:d.i]
	if !isFloat {
		if i, ok := parseInt(text); ok {
			return value.IntOf(i), nil
		}
	}
	f, err := strconv.ParseFloat(bytesString(text), 64)
	if ne, ok := err.(*strconv.NumError); err != nil && !(ok && ne.Err == strconv.ErrRange) {
		return value.Value{}, d.fail(ErrSyntax)
	}
	return value.FloatOf(f), nil
}

func (d *decoder) digits() int {
	n := 0
	for d.i < len(d.data) && d.data[d.i] >= '0' && d.data[d.i] <= '9' {
		d.i++
		n++
	}
	return n
}

func parseInt(b []byte) (int64, bool) {
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	var u uint64
	for _, c := range b {
		if u > (math.MaxUint64-9)/10 {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

// str reads a JSON string at d.i and returns its unescaped bytes, stored in
// the destination's arena.
func (d *decoder) str() ([]byte, error) {
	b := d.data
	if d.i >= len(b) || b[d.i] != '"' {
		return nil, d.fail(ErrSyntax)
	}
	d.i++
	d.out, d.n = d.dst.Arena(), 0
	for {
		if d.i >= len(b) {
			return nil, d.fail(ErrSyntax)
		}
		c := b[d.i]
		switch {
		case c == '"':
			d.i++
			return d.dst.Commit(d.n), nil
		case c < 0x20:
			return nil, d.fail(ErrSyntax)
		case c == '\\':
			if d.i+1 >= len(b) {
				return nil, d.fail(ErrSyntax)
			}
			e := b[d.i+1]
			d.i += 2
			var r byte
			switch e {
			case '"', '\\', '/':
				r = e
			case 'b':
				r = '\b'
			case 'f':
				r = '\f'
			case 'n':
				r = '\n'
			case 'r':
				r = '\r'
			case 't':
				r = '\t'
			case 'u':
				cp, ok := d.hex4()
				if !ok {
					return nil, d.fail(ErrSyntax)
				}
				ru := rune(cp)
				if utf16.IsSurrogate(ru) {
					ru = utf8.RuneError
					if d.i+1 < len(b) && b[d.i] == '\\' && b[d.i+1] == 'u' {
						save := d.i
						d.i += 2
						lo, ok := d.hex4()
						if !ok {
							return nil, d.fail(ErrSyntax)
						}
						if dec := utf16.DecodeRune(rune(cp), rune(lo)); dec != utf8.RuneError {
							ru = dec
						} else {
							d.i = save
						}
					}
				}
				var tmp [4]byte
				w := utf8.EncodeRune(tmp[:], ru)
				for k := 0; k < w; k++ {
					if !d.put(tmp[k]) {
						return nil, d.fail(value.ErrArenaFull)
					}
				}
				continue
			default:
				return nil, d.fail(ErrSyntax)
			}
			if !d.put(r) {
				return nil, d.fail(value.ErrArenaFull)
			}
		case c >= utf8.RuneSelf:
			// Invalid UTF-8 becomes U+FFFD, as in encoding/json.
			r, w := utf8.DecodeRune(b[d.i:])
			src := b[d.i : d.i+w]
			if r == utf8.RuneError && w == 1 {
				src = replacementChar[:]
			}
			for _, x := range src {
				if !d.put(x) {
					return nil, d.fail(value.ErrArenaFull)
				}
			}
			d.i += w
		default:
			if !d.put(c) {
				return nil, d.fail(value.ErrArenaFull)
			}
			d.i++
		}
	}
}

func (d *decoder) hex4() (uint16, bool) {
	if len(d.data)-d.i < 4 {
		return 0, false
	}
	var v uint16
	for k := 0; k < 4; k++ {
		c := d.data[d.i+k]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint16(c)
	}
	d.i += 4
	return v, true
}

// Append appends the JSON encoding of o to dst. Floats use encoding/json's
// formatting; NaN and infinities are an error (ErrNotFinite).
func Append(dst []byte, o *value.Object) ([]byte, error) {
	dst = append(dst, '{')
	for i := 0; i < o.Len(); i++ {
		f := o.Field(i)
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, f.Name)
		dst = append(dst, ':')
		var err error
		if dst, err = AppendValue(dst, f.Val); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

// AppendValue appends the JSON encoding of one scalar.
func AppendValue(dst []byte, v value.Value) ([]byte, error) {
	switch v.K {
	case value.Nil:
		return append(dst, "null"...), nil
	case value.Bool:
		return strconv.AppendBool(dst, v.B), nil
	case value.Int:
		return strconv.AppendInt(dst, v.I, 10), nil
	case value.Float:
		return appendFloat(dst, v.F)
	case value.String:
		return appendString(dst, v.S), nil
	}
	return dst, ErrSyntax
}

// appendFloat formats like encoding/json.
func appendFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, ErrNotFinite
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	if format == 'f' {
		if out, ok := appendShortFloat(dst, f); ok {
			return out, nil
		}
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(dst) - start
		if n >= 4 && dst[len(dst)-4] == 'e' && dst[len(dst)-3] == '-' && dst[len(dst)-2] == '0' {
			dst[len(dst)-2] = dst[len(dst)-1]
			dst = dst[:len(dst)-1]
		}
	}
	return dst, nil
}

// pow10 are the powers of ten a float64 holds exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// appendShortFloat formats f (finite, 'f' format) as strconv.AppendFloat(dst,
// f, 'f', -1, 64) does when f has a short decimal form, m·10^-k with
// |m| < 2^53 and k <= 15 (sensor readings: 21.5, 40.01, 43.125), and
// reports false otherwise. It finds the smallest such k: m/10^k of two
// exactly represented floats is correctly rounded, so it equals f exactly
// when the decimal parses back to f, and the smallest k is the shortest
// form. It needs neither strconv's float tables nor its digit buffer,
// which TinyGo allocates on the heap for every AppendFloat.
func appendShortFloat(dst []byte, f float64) ([]byte, bool) {
	if f == 0 {
		if math.Signbit(f) {
			return append(dst, "-0"...), true
		}
		return append(dst, '0'), true
	}
	neg := f < 0
	if neg {
		f = -f
	}
	if f >= 1<<53 {
		return dst, false
	}
	for k := 0; k <= 15; k++ {
		m := math.Round(f * pow10[k])
		if m >= 1<<53 {
			return dst, false
		}
		if m/pow10[k] != f {
			continue
		}
		if neg {
			dst = append(dst, '-')
		}
		var buf [24]byte
		i, u := len(buf), uint64(m)
		for n := 0; ; {
			if n == k && k > 0 {
				i--
				buf[i] = '.'
			}
			i--
			buf[i] = byte('0' + u%10)
			u /= 10
			n++
			if u == 0 && n > k {
				break
			}
		}
		return append(dst, buf[i:]...), true
	}
	return dst, false
}

var replacementChar = [3]byte{0xEF, 0xBF, 0xBD} // U+FFFD

const hexDigits = "0123456789abcdef"

func appendString(dst, s []byte) []byte {
	dst = append(dst, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// Codec adapts the package to device/flow's Codec interface.
type Codec struct{}

// Append implements flow.Codec.
func (Codec) Append(dst []byte, o *value.Object) ([]byte, error) { return Append(dst, o) }

// Decode implements flow.Codec.
func (Codec) Decode(data []byte, o *value.Object) error { return Decode(data, o) }

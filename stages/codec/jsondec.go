package codec

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// maxJSONDepth matches encoding/json: documents nested deeper than this are
// rejected with an error instead of exhausting the stack.
const maxJSONDepth = 10000

// SyntaxError reports malformed JSON input. Offset is the byte offset in the
// payload where the problem was detected.
type SyntaxError struct {
	Msg    string
	Offset int
	err    error // wrapped sentinel (ErrTooDeep), may be nil
}

// Unwrap lets errors.Is(err, ErrTooDeep) work on depth errors.
func (e *SyntaxError) Unwrap() error { return e.err }

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s at offset %d", e.Msg, e.Offset)
}

// ErrTooDeep is wrapped by decode errors for documents nested deeper than
// the codec's limit (10000 levels for JSON and MessagePack).
var ErrTooDeep = errors.New("nesting too deep")

// internSize is the number of slots in a decoder's key intern table
// (the hash in intern uses its top 8 bits).
const internSize = 256

// jsonDecoder is a single-pass parser producing the same shapes
// encoding/json produces for `any`. Decoders are pooled so that the key
// intern table survives between documents: repeated object keys ("device",
// "temp", ...) are then returned from the table instead of being allocated
// for every record.
type jsonDecoder struct {
	data  []byte
	pos   int
	depth int
	buf   []byte // scratch for unescaping
	keys  internTable
	slab  valueSlab
	// badUTF8 is set by str when a string held invalid UTF-8 (replaced
	// by U+FFFD); the lazy decoder then never forwards raw bytes.
	badUTF8 bool
	objs    []decodedObject // the lazy decoder's object slab
	// ints decodes integer literals (no fraction, no exponent, within
	// int64) as int64; number sets isInt and intVal for each literal.
	ints   bool
	isInt  bool
	intVal int64
}

var jsonDecoderPool = sync.Pool{New: func() any { return new(jsonDecoder) }}

// decodeJSON parses p into map[string]any / []any / float64 / string / bool
// / nil. The result never aliases p.
func decodeJSON(p []byte) (any, error) { return decodeWith(p, false, false) }

// decodeWith parses p; lazy returns a top-level object as an *Object
// indexing p (see Object) instead of a map; ints decodes integer literals
// as int64.
func decodeWith(p []byte, lazy, ints bool) (any, error) {
	d := jsonDecoderPool.Get().(*jsonDecoder)
	d.data, d.pos, d.depth, d.badUTF8, d.ints = p, 0, 0, false, ints
	var v any
	var err error
	if d.skipSpace(); lazy && d.pos < len(p) && p[d.pos] == '{' && len(p) < 1<<31-1 {
		v, err = d.lazyObject()
	} else {
		v, err = d.value()
	}
	if err == nil {
		d.skipSpace()
		if d.pos < len(d.data) {
			err = d.errorf("invalid character %s after top-level value", quoteChar(d.data[d.pos]))
		}
	}
	d.data = nil
	if cap(d.buf) > 64<<10 {
		d.buf = nil
	}
	jsonDecoderPool.Put(d)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// errorf is kept out of line so the cold error paths do not bloat the hot
// parsing functions.
//
//go:noinline
func (d *jsonDecoder) errorf(format string, args ...any) error {
	return &SyntaxError{Msg: fmt.Sprintf(format, args...), Offset: d.pos}
}

func quoteChar(c byte) string {
	switch {
	case c == '\'':
		return `'\''`
	case c == '"':
		return `'"'`
	case c < 0x20 || c >= 0x7f:
		return fmt.Sprintf("0x%02x", c)
	}
	return "'" + string(rune(c)) + "'"
}

func (d *jsonDecoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

//go:noinline
func (d *jsonDecoder) unexpectedEnd() error {
	return d.errorf("unexpected end of JSON input")
}

func (d *jsonDecoder) value() (any, error) {
	d.skipSpace()
	if d.pos >= len(d.data) {
		return nil, d.unexpectedEnd()
	}
	switch c := d.data[d.pos]; c {
	case '{':
		return d.object()
	case '[':
		return d.array()
	case '"':
		b, err := d.str()
		if err != nil {
			return nil, err
		}
		return d.slab.boxString(b), nil
	case 't':
		return true, d.literal("true")
	case 'f':
		return false, d.literal("false")
	case 'n':
		return nil, d.literal("null")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			f, err := d.number()
			if err != nil {
				return nil, err
			}
			if d.ints && d.isInt {
				return d.intVal, nil
			}
			return d.slab.boxFloat(f), nil
		}
		return nil, d.errorf("invalid character %s looking for beginning of value", quoteChar(c))
	}
}

func (d *jsonDecoder) literal(lit string) error {
	for i := 0; i < len(lit); i++ {
		if d.pos >= len(d.data) {
			return d.unexpectedEnd()
		}
		if d.data[d.pos] != lit[i] {
			return d.errorf("invalid character %s in literal %s (expecting %s)", quoteChar(d.data[d.pos]), lit, quoteChar(lit[i]))
		}
		d.pos++
	}
	return nil
}

func (d *jsonDecoder) enter() error {
	d.depth++
	if d.depth > maxJSONDepth {
		return &SyntaxError{Msg: fmt.Sprintf("%v: more than %d levels", ErrTooDeep, maxJSONDepth), Offset: d.pos, err: ErrTooDeep}
	}
	return nil
}

func (d *jsonDecoder) object() (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	d.pos++ // '{'
	m := make(map[string]any)
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		d.depth--
		return m, nil
	}
	for {
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.unexpectedEnd()
		}
		if d.data[d.pos] != '"' {
			return nil, d.errorf("invalid character %s looking for beginning of object key string", quoteChar(d.data[d.pos]))
		}
		kb, err := d.str()
		if err != nil {
			return nil, err
		}
		k := d.keys.intern(kb)
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.unexpectedEnd()
		}
		if d.data[d.pos] != ':' {
			return nil, d.errorf("invalid character %s after object key", quoteChar(d.data[d.pos]))
		}
		d.pos++
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		m[k] = v
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.unexpectedEnd()
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			d.depth--
			return m, nil
		default:
			return nil, d.errorf("invalid character %s after object key:value pair", quoteChar(d.data[d.pos]))
		}
	}
}

func (d *jsonDecoder) array() (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	d.pos++ // '['
	a := []any{}
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		d.depth--
		return a, nil
	}
	for {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.unexpectedEnd()
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case ']':
			d.pos++
			d.depth--
			return a, nil
		default:
			return nil, d.errorf("invalid character %s after array element", quoteChar(d.data[d.pos]))
		}
	}
}

// internTable is a small direct-mapped cache of map keys.
type internTable [internSize]string

// intern returns a string equal to b, reusing a previously allocated one
// when the same key was seen before.
func (t *internTable) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > 32 {
		return string(b)
	}
	// A cheap hash of length, first, middle and last byte: collisions only
	// cost an allocation, never a wrong result (the slot is compared).
	n := len(b)
	h := uint32(n) | uint32(b[0])<<8 | uint32(b[n/2])<<16 | uint32(b[n-1])<<24
	h *= 0x9e3779b1
	slot := &t[h>>(32-8)]
	if *slot == string(b) { // comparison does not allocate
		return *slot
	}
	s := string(b)
	*slot = s
	return s
}

// str parses a string starting at the opening quote and returns its
// unescaped bytes, which alias the input or the scratch buffer: callers
// copy them before the next call.
func (d *jsonDecoder) str() ([]byte, error) {
	d.pos++
	i := d.pos
	data := d.data
	// Fast path: plain ASCII without escapes.
	for i < len(data) {
		c := data[i]
		if c == '"' {
			b := data[d.pos:i]
			d.pos = i + 1
			return b, nil
		}
		if c == '\\' || c < 0x20 || c >= 0x80 {
			break
		}
		i++
	}
	if i >= len(data) {
		d.pos = len(data)
		return nil, d.unexpectedEnd()
	}
	// Slow path: escapes, control characters or non-ASCII bytes.
	buf := append(d.buf[:0], data[d.pos:i]...)
	for {
		if i >= len(data) {
			d.pos = len(data)
			d.buf = buf
			return nil, d.unexpectedEnd()
		}
		c := data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			d.buf = buf
			return buf, nil
		case c < 0x20:
			d.pos = i
			d.buf = buf
			return nil, d.errorf("invalid character %s in string literal", quoteChar(c))
		case c == '\\':
			if i+1 >= len(data) {
				d.pos = len(data)
				d.buf = buf
				return nil, d.unexpectedEnd()
			}
			e := data[i+1]
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
				i += 2
			case 'b':
				buf = append(buf, '\b')
				i += 2
			case 'f':
				buf = append(buf, '\f')
				i += 2
			case 'n':
				buf = append(buf, '\n')
				i += 2
			case 'r':
				buf = append(buf, '\r')
				i += 2
			case 't':
				buf = append(buf, '\t')
				i += 2
			case 'u':
				r, err := d.hex4(i + 2)
				if err != nil {
					d.buf = buf
					return nil, err
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if i+1 < len(data) && data[i] == '\\' && data[i+1] == 'u' {
						r2, err := d.hex4(i + 2)
						if err != nil {
							d.buf = buf
							return nil, err
						}
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							buf = utf8.AppendRune(buf, dec)
							i += 6
							break
						}
					}
					r = utf8.RuneError
				}
				buf = utf8.AppendRune(buf, r)
			default:
				d.pos = i + 1
				d.buf = buf
				return nil, d.errorf("invalid character %s in string escape code", quoteChar(e))
			}
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			i++
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				d.badUTF8 = true
				buf = utf8.AppendRune(buf, utf8.RuneError)
			} else {
				buf = append(buf, data[i:i+size]...)
			}
			i += size
		}
	}
}

// hex4 reads four hex digits at offset i.
func (d *jsonDecoder) hex4(i int) (rune, error) {
	var r rune
	for j := 0; j < 4; j++ {
		if i+j >= len(d.data) {
			d.pos = len(d.data)
			return 0, d.unexpectedEnd()
		}
		c := d.data[i+j]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			d.pos = i + j
			return 0, d.errorf("invalid character %s in \\u hexadecimal character escape", quoteChar(d.data[i+j]))
		}
		r = r*16 + rune(c)
	}
	return r, nil
}

// float64pow10 holds the powers of ten exactly representable as float64.
var float64pow10 = [...]float64{
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
	1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
	1e20, 1e21, 1e22,
}

// number parses a JSON number with the grammar of RFC 8259 and the value
// strconv.ParseFloat(text, 64) would return. Numbers whose magnitude
// overflows float64 are an error, as in encoding/json.
func (d *jsonDecoder) number() (float64, error) {
	data := d.data
	start := d.pos
	i := start
	neg := false
	if data[i] == '-' {
		neg = true
		i++
	}
	if i >= len(data) {
		d.pos = i
		return 0, d.unexpectedEnd()
	}
	var mant uint64
	digits := 0 // significant digits accumulated in mant
	exact := true
	switch c := data[i]; {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			if digits < 19 {
				mant = mant*10 + uint64(data[i]-'0')
				digits++
			} else {
				exact = false
			}
			i++
		}
	default:
		d.pos = i
		return 0, d.errorf("invalid character %s in numeric literal", quoteChar(c))
	}
	exp10 := 0
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) {
			d.pos = i
			return 0, d.unexpectedEnd()
		}
		if data[i] < '0' || data[i] > '9' {
			d.pos = i
			return 0, d.errorf("invalid character %s after decimal point in numeric literal", quoteChar(data[i]))
		}
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			if digits < 19 {
				if mant != 0 || data[i] != '0' {
					digits++
				}
				mant = mant*10 + uint64(data[i]-'0')
				exp10--
			} else {
				exact = false
			}
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		exact = false
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) {
			d.pos = i
			return 0, d.unexpectedEnd()
		}
		if data[i] < '0' || data[i] > '9' {
			d.pos = i
			return 0, d.errorf("invalid character %s in exponent of numeric literal", quoteChar(data[i]))
		}
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
	}
	d.pos = i
	// An integer literal: no fraction, no exponent, at most 19 digits, in
	// int64's range.
	d.isInt = exp10 == 0 && exact && data[i-1] != '.' && (neg && mant <= 1<<63 || !neg && mant <= 1<<63-1)
	if d.isInt {
		if neg {
			d.intVal = -int64(mant-1) - 1 // -(1<<63) included
		} else {
			d.intVal = int64(mant)
		}
	}
	// Clinger's fast path: an exactly representable mantissa combined with
	// an exactly representable power of ten gives a correctly rounded
	// result with one IEEE operation (what strconv does internally too).
	if exact && mant < 1<<53 && exp10 >= -22 {
		f := float64(mant)
		if exp10 < 0 {
			f /= float64pow10[-exp10]
		}
		if neg {
			f = -f
		}
		return f, nil
	}
	text := data[start:i]
	f, err := strconv.ParseFloat(unsafe.String(&text[0], len(text)), 64)
	if err != nil {
		return 0, &SyntaxError{Msg: fmt.Sprintf("number %s out of range of float64", quoteStart(text)), Offset: start}
	}
	return f, nil
}

// quoteStart is a token for an error message: whole when short, else its
// first bytes and its length, so a hostile 10 MB token stays out of logs.
func quoteStart(tok []byte) string {
	const keep = 32
	if len(tok) <= keep {
		return string(tok)
	}
	return fmt.Sprintf("%s… (%d bytes)", tok[:keep], len(tok))
}

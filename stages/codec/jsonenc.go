package codec

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// jsonEncoder appends JSON to a pooled scratch buffer. Output is
// byte-for-byte what encoding/json.Marshal produces for the same value:
// sorted map keys, HTML-safe string escaping, the same float formatting.
type jsonEncoder struct {
	buf   []byte
	keys  []string
	depth int
}

var jsonEncoderPool = sync.Pool{New: func() any { return &jsonEncoder{buf: make([]byte, 0, 256)} }}

// encodeJSON returns a freshly allocated JSON encoding of v.
func encodeJSON(v any) ([]byte, error) {
	e := jsonEncoderPool.Get().(*jsonEncoder)
	e.buf, e.depth = e.buf[:0], 0
	err := e.value(v)
	var out []byte
	if err == nil {
		out = make([]byte, len(e.buf))
		copy(out, e.buf)
	}
	if cap(e.buf) > 64<<10 {
		e.buf = make([]byte, 0, 256)
	}
	clear(e.keys)
	e.keys = e.keys[:0]
	jsonEncoderPool.Put(e)
	return out, err
}

// appendJSON appends the JSON encoding of v to dst.
func appendJSON(dst []byte, v any) ([]byte, error) {
	e := jsonEncoderPool.Get().(*jsonEncoder)
	own := e.buf
	e.buf, e.depth = dst, 0
	err := e.value(v)
	out := e.buf
	e.buf = own
	clear(e.keys)
	e.keys = e.keys[:0]
	jsonEncoderPool.Put(e)
	return out, err
}

func (e *jsonEncoder) value(v any) error {
	switch x := v.(type) {
	case nil:
		e.buf = append(e.buf, "null"...)
	case string:
		e.buf = appendJSONString(e.buf, x)
	case float64:
		return e.float(x, 64)
	case bool:
		e.buf = strconv.AppendBool(e.buf, x)
	case map[string]any:
		if x == nil {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		return e.object(x)
	case *Object:
		return x.appendTo(e)
	case []any:
		if x == nil {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		if err := e.enter(); err != nil {
			return err
		}
		e.buf = append(e.buf, '[')
		for i, el := range x {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if err := e.value(el); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, ']')
		e.depth--
	case int:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int64:
		e.buf = strconv.AppendInt(e.buf, x, 10)
	case int32:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int16:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int8:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case uint:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint64:
		e.buf = strconv.AppendUint(e.buf, x, 10)
	case uint32:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint16:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint8:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case float32:
		return e.float(float64(x), 32)
	case json.Number:
		if x == "" {
			e.buf = append(e.buf, '0')
			return nil
		}
		if !validJSONNumber(string(x)) {
			return fmt.Errorf("json: invalid number literal %q", string(x))
		}
		e.buf = append(e.buf, x...)
	case []byte:
		if x == nil {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		e.buf = append(e.buf, '"')
		e.buf = base64.StdEncoding.AppendEncode(e.buf, x)
		e.buf = append(e.buf, '"')
	case time.Time:
		// Years beyond 4 digits and zone offsets of 24h or more are
		// errors in time.Time.MarshalJSON: let encoding/json report them.
		if y := x.Year(); y < 0 || y >= 10000 {
			return e.fallback(v)
		}
		if _, off := x.Zone(); off <= -24*3600 || off >= 24*3600 {
			return e.fallback(v)
		}
		e.buf = append(e.buf, '"')
		e.buf = x.AppendFormat(e.buf, time.RFC3339Nano)
		e.buf = append(e.buf, '"')
	case []string:
		if x == nil {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		e.buf = append(e.buf, '[')
		for i, s := range x {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.buf = appendJSONString(e.buf, s)
		}
		e.buf = append(e.buf, ']')
	case []float64:
		if x == nil {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		e.buf = append(e.buf, '[')
		for i, f := range x {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if err := e.float(f, 64); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, ']')
	case map[string]string:
		if x == nil {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		start := len(e.keys)
		for k := range x {
			e.keys = append(e.keys, k)
		}
		keys := e.keys[start:]
		slices.Sort(keys)
		e.buf = append(e.buf, '{')
		for i, k := range keys {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.buf = appendJSONString(e.buf, k)
			e.buf = append(e.buf, ':')
			e.buf = appendJSONString(e.buf, x[k])
		}
		e.buf = append(e.buf, '}')
		e.keys = e.keys[:start]
	default:
		return e.fallback(v)
	}
	return nil
}

// fallback encodes values the fast path does not know (structs, pointers,
// Marshalers, named types) with encoding/json.
func (e *jsonEncoder) fallback(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	e.buf = append(e.buf, b...)
	return nil
}

func (e *jsonEncoder) enter() error {
	e.depth++
	if e.depth > maxJSONDepth {
		return fmt.Errorf("json: unsupported value: encountered a cycle or %w (more than %d levels)", ErrTooDeep, maxJSONDepth)
	}
	return nil
}

func (e *jsonEncoder) object(m map[string]any) error {
	if err := e.enter(); err != nil {
		return err
	}
	// Keys are collected on a shared stack so nested objects reuse it.
	start := len(e.keys)
	for k := range m {
		e.keys = append(e.keys, k)
	}
	keys := e.keys[start:]
	if len(keys) > 1 {
		slices.Sort(keys)
	}
	e.buf = append(e.buf, '{')
	for i := start; i < start+len(keys); i++ {
		k := e.keys[i]
		if i > start {
			e.buf = append(e.buf, ',')
		}
		e.buf = appendJSONString(e.buf, k)
		e.buf = append(e.buf, ':')
		if err := e.value(m[k]); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, '}')
	clear(e.keys[start:])
	e.keys = e.keys[:start]
	e.depth--
	return nil
}

func (e *jsonEncoder) float(f float64, bits int) error {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return fmt.Errorf("json: unsupported value: %s", strconv.FormatFloat(f, 'g', -1, bits))
	}
	// Same rules as encoding/json: ES6 number formatting.
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	// Integral values print faster as integers.
	if bits == 64 && format == 'f' && abs < 1<<53 && f == math.Trunc(f) && !(f == 0 && math.Signbit(f)) {
		e.buf = strconv.AppendInt(e.buf, int64(f), 10)
		return nil
	}
	e.buf = strconv.AppendFloat(e.buf, f, format, -1, bits)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(e.buf)
		if n >= 4 && e.buf[n-4] == 'e' && e.buf[n-3] == '-' && e.buf[n-2] == '0' {
			e.buf[n-2] = e.buf[n-1]
			e.buf = e.buf[:n-1]
		}
	}
	return nil
}

// htmlSafe[c] is true for ASCII bytes encoding/json copies unescaped
// (it escapes <, > and & by default).
var htmlSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted exactly as encoding/json does.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if htmlSafe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// validJSONNumber reports whether s is a valid JSON number literal.
func validJSONNumber(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '-' {
		s = s[1:]
		if s == "" {
			return false
		}
	}
	switch {
	case s[0] == '0':
		s = s[1:]
	case '1' <= s[0] && s[0] <= '9':
		s = s[1:]
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	default:
		return false
	}
	if len(s) >= 2 && s[0] == '.' && '0' <= s[1] && s[1] <= '9' {
		s = s[2:]
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	if len(s) >= 2 && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		if s[0] == '+' || s[0] == '-' {
			s = s[1:]
			if s == "" {
				return false
			}
		}
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	return s == ""
}

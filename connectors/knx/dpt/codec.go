package dpt

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// Decode returns the value the group value bytes stand for (see the
// package doc for the Go types). Bytes of the wrong length or outside the
// type's range are an error wrapping ErrMalformed.
func (t Type) Decode(data []byte) (any, error) {
	if t.kind != kString && len(data) != t.Size {
		return nil, fmt.Errorf("dpt %s: %w: %d bytes, want %d", t.ID, ErrMalformed, len(data), t.Size)
	}
	switch t.kind {
	case kBool:
		if data[0] > 1 {
			return nil, fmt.Errorf("dpt %s: %w: value 0x%02x, want 0 or 1", t.ID, ErrMalformed, data[0])
		}
		return data[0] == 1, nil
	case kU8, kEnum:
		return t.scaled(int64(data[0])), nil
	case kI8:
		return t.scaled(int64(int8(data[0]))), nil
	case kU16:
		return t.scaled(int64(binary.BigEndian.Uint16(data))), nil
	case kI16:
		return t.scaled(int64(int16(binary.BigEndian.Uint16(data)))), nil
	case kU32:
		return t.scaled(int64(binary.BigEndian.Uint32(data))), nil
	case kI32:
		return t.scaled(int64(int32(binary.BigEndian.Uint32(data)))), nil
	case kF16:
		raw := binary.BigEndian.Uint16(data)
		if raw == 0x7fff {
			return nil, fmt.Errorf("dpt %s: %w: 0x7fff is the invalid-data marker", t.ID, ErrMalformed)
		}
		return decodeFloat16(raw), nil
	case kF32:
		f := math.Float32frombits(binary.BigEndian.Uint32(data))
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return nil, fmt.Errorf("dpt %s: %w: %v", t.ID, ErrMalformed, f)
		}
		return float64(f), nil
	case kString:
		if len(data) > t.Size {
			return nil, fmt.Errorf("dpt %s: %w: %d bytes, want at most %d", t.ID, ErrMalformed, len(data), t.Size)
		}
		end := len(data)
		for end > 0 && data[end-1] == 0 {
			end--
		}
		var b strings.Builder
		for _, c := range data[:end] {
			if c == 0 || t.ID == "16.000" && c > 0x7f {
				return nil, fmt.Errorf("dpt %s: %w: byte 0x%02x in the string", t.ID, ErrMalformed, c)
			}
			b.WriteRune(rune(c)) // ISO 8859-1 maps to the first 256 code points
		}
		return b.String(), nil
	case kScene:
		if data[0] > 63 {
			return nil, fmt.Errorf("dpt %s: %w: scene %d, want 0 to 63", t.ID, ErrMalformed, data[0])
		}
		return int64(data[0]), nil
	case kSceneControl:
		if data[0]&0x40 != 0 {
			return nil, fmt.Errorf("dpt %s: %w: reserved bit set in 0x%02x", t.ID, ErrMalformed, data[0])
		}
		return map[string]any{"learn": data[0]&0x80 != 0, "scene": int64(data[0] & 0x3f)}, nil
	}
	return nil, fmt.Errorf("dpt %s: no format", t.ID)
}

func (t Type) scaled(raw int64) any {
	if t.scale == 0 {
		return raw
	}
	return float64(raw) * t.scale
}

// Text returns the name of a decoded value where the type names its
// values (1.001: "on", 20.102: "comfort"), or "".
func (t Type) Text(v any) string {
	switch x := v.(type) {
	case bool:
		if len(t.names) == 2 {
			if x {
				return t.names[1]
			}
			return t.names[0]
		}
	case int64:
		if t.kind == kEnum && x >= 0 && x < int64(len(t.names)) {
			return t.names[x]
		}
	}
	return ""
}

// Encode returns the group value bytes for v (for a Short type, one byte
// holding the value's bits). A value of the wrong shape or outside the
// type's range is an error wrapping ErrValue.
func (t Type) Encode(v any) ([]byte, error) {
	bad := func(format string, args ...any) ([]byte, error) {
		return nil, fmt.Errorf("dpt %s: %w: %s", t.ID, ErrValue, fmt.Sprintf(format, args...))
	}
	switch t.kind {
	case kBool:
		switch x := v.(type) {
		case bool:
			if x {
				return []byte{1}, nil
			}
			return []byte{0}, nil
		case string:
			for i, n := range t.names {
				if strings.EqualFold(x, n) {
					return []byte{byte(i)}, nil
				}
			}
			return bad("%q is not %s or %s", x, t.names[0], t.names[1])
		}
		f, ok := number(v)
		if !ok || f != 0 && f != 1 {
			return bad("%v is not a boolean (true/false, 0/1)", show(v))
		}
		return []byte{byte(f)}, nil
	case kString:
		s, ok := v.(string)
		if !ok {
			return bad("%v is not a string", show(v))
		}
		out := make([]byte, t.Size)
		i := 0
		for _, r := range s {
			if r == utf8.RuneError || r == 0 || t.ID == "16.000" && r > 0x7f || r > 0xff {
				return bad("character %q cannot be written in %s", r, t.Name)
			}
			if i >= t.Size {
				return bad("%q is longer than %d characters", s, t.Size)
			}
			out[i] = byte(r)
			i++
		}
		return out, nil
	case kSceneControl:
		m, ok := v.(map[string]any)
		if !ok {
			return bad("%v is not an object {learn, scene}", show(v))
		}
		scene, ok := number(m["scene"])
		if !ok || scene != math.Trunc(scene) || scene < 0 || scene > 63 {
			return bad("scene %v, want a whole number from 0 to 63", show(m["scene"]))
		}
		b := byte(scene)
		switch l := m["learn"].(type) {
		case nil:
		case bool:
			if l {
				b |= 0x80
			}
		default:
			return bad("learn %v is not a boolean", show(l))
		}
		return []byte{b}, nil
	case kEnum:
		if s, ok := v.(string); ok {
			for i, n := range t.names {
				if strings.EqualFold(s, n) {
					return []byte{byte(i)}, nil
				}
			}
			if len(t.names) > 0 {
				return bad("%q is not one of %s", s, strings.Join(t.names, ", "))
			}
		}
	}
	f, ok := number(v)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
		return bad("%v is not a number", show(v))
	}
	switch t.kind {
	case kF16:
		raw, err := encodeFloat16(f)
		if err != nil {
			return bad("%v", err)
		}
		return binary.BigEndian.AppendUint16(nil, raw), nil
	case kF32:
		if math.Abs(f) > math.MaxFloat32 {
			return bad("%v is out of the 32-bit float range", f)
		}
		return binary.BigEndian.AppendUint32(nil, math.Float32bits(float32(f))), nil
	}
	lo, hi := t.rawRange()
	raw := f
	if t.scale != 0 {
		raw = math.Round(f / t.scale)
	} else if f != math.Trunc(f) {
		return bad("%v is not a whole number", f)
	}
	if raw < lo || raw > hi {
		if t.scale != 0 {
			return bad("%v is out of range %v to %v %s", f, lo*t.scale, hi*t.scale, t.Unit)
		}
		return bad("%v is out of range %v to %v", f, lo, hi)
	}
	n := int64(raw)
	switch t.Size {
	case 1:
		return []byte{byte(n)}, nil
	case 2:
		return binary.BigEndian.AppendUint16(nil, uint16(n)), nil
	}
	return binary.BigEndian.AppendUint32(nil, uint32(n)), nil
}

// rawRange is the range of the raw integer of an integer type.
func (t Type) rawRange() (lo, hi float64) {
	switch t.kind {
	case kU8, kEnum:
		return 0, math.MaxUint8
	case kScene:
		return 0, 63
	case kI8:
		return math.MinInt8, math.MaxInt8
	case kU16:
		return 0, math.MaxUint16
	case kI16:
		return math.MinInt16, math.MaxInt16
	case kU32:
		return 0, math.MaxUint32
	case kI32:
		return math.MinInt32, math.MaxInt32
	}
	return 0, 0
}

// number converts the numeric shapes a value may come in.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int8:
		return float64(x), true
	case int16:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

func show(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	if v == nil {
		return "null"
	}
	return fmt.Sprintf("%v", v)
}

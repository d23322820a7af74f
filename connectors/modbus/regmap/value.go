package regmap

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrNotFinite is reported for a float register holding NaN or an
// infinity (a sensor fault, or a hostile peer): JSON has no such number,
// so the field's value is null.
var ErrNotFinite = errors.New("not a finite number")

// bytesOf returns the field's registers as bytes, most significant first
// for numbers (word and byte order applied), in address order for strings.
func (f Field) bytesOf(regs []uint16, buf []byte) []byte {
	b := buf[:0]
	n := len(regs)
	for i := range n {
		r := regs[i]
		if f.Words == LowWordFirst && f.Type != String {
			r = regs[n-1-i]
		}
		if f.Bytes == LittleEndian {
			b = append(b, byte(r), byte(r>>8))
		} else {
			b = append(b, byte(r>>8), byte(r))
		}
	}
	return b
}

// AppendRegs appends the JSON value of f read from regs (exactly f.Len
// registers, as they came off the wire) to dst. A float that is not finite
// appends null and returns ErrNotFinite.
func (f Field) AppendRegs(dst []byte, regs []uint16) ([]byte, error) {
	var scratch [8]byte
	b := f.bytesOf(regs, scratch[:])
	var (
		u       uint64
		i       int64
		fl      float64
		isFloat bool
		signed  bool
	)
	switch f.Type {
	case String:
		s := string(f.bytesOf(regs, make([]byte, 0, 2*len(regs))))
		return AppendString(dst, strings.TrimRight(s, "\x00")), nil
	case Uint16:
		u = uint64(binary.BigEndian.Uint16(b))
	case Int16:
		i, signed = int64(int16(binary.BigEndian.Uint16(b))), true
	case Uint32:
		u = uint64(binary.BigEndian.Uint32(b))
	case Int32:
		i, signed = int64(int32(binary.BigEndian.Uint32(b))), true
	case Uint64:
		u = binary.BigEndian.Uint64(b)
	case Int64:
		i, signed = int64(binary.BigEndian.Uint64(b)), true
	case Float32:
		fl, isFloat = float64(math.Float32frombits(binary.BigEndian.Uint32(b))), true
	case Float64:
		fl, isFloat = math.Float64frombits(binary.BigEndian.Uint64(b)), true
	default:
		return dst, fmt.Errorf("field %s: %s is not a register type", f.Name, f.Type)
	}
	if f.Scaled || isFloat {
		switch {
		case !isFloat && signed:
			fl = float64(i)
		case !isFloat:
			fl = float64(u)
		}
		if f.Scaled {
			fl = fl*f.Scale + f.Offset
		}
		if math.IsNaN(fl) || math.IsInf(fl, 0) {
			return append(dst, "null"...), fmt.Errorf("field %s (%s): %w", f.Name, f.Span(), ErrNotFinite)
		}
		return appendFloat(dst, fl, f.Type == Float32, f.Scaled), nil
	}
	if signed {
		return strconv.AppendInt(dst, i, 10), nil
	}
	return strconv.AppendUint(dst, u, 10), nil
}

// appendFloat appends fl as JSON: the shortest representation that reads
// back as the same float32 or float64, integers without a fraction; a
// scaled value is rounded to 15 significant digits (0.1*3 is 0.3, not
// 0.30000000000000004).
func appendFloat(dst []byte, fl float64, single, scaled bool) []byte {
	switch {
	case scaled:
		return strconv.AppendFloat(dst, fl, 'g', 15, 64)
	case fl == math.Trunc(fl) && math.Abs(fl) < 1e15:
		return strconv.AppendFloat(dst, fl, 'f', -1, 64)
	case single:
		return strconv.AppendFloat(dst, fl, 'g', -1, 32)
	}
	return strconv.AppendFloat(dst, fl, 'g', -1, 64)
}

// AppendBit appends the JSON value of a bit field.
func AppendBit(dst []byte, v bool) []byte {
	if v {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// ValueError is a value a field cannot take (wrong type, out of range,
// too long): retrying cannot help.
type ValueError struct {
	Field string
	Err   error
}

func (e *ValueError) Error() string { return "field " + e.Field + ": " + e.Err.Error() }

// Unwrap returns the problem.
func (e *ValueError) Unwrap() error { return e.Err }

func (f Field) bad(format string, args ...any) error {
	return &ValueError{Field: f.Name, Err: fmt.Errorf(format, args...)}
}

// Bit returns the bit value of v (a JSON bool) for a bit field.
func (f Field) Bit(v any) (bool, error) {
	b, ok := v.(bool)
	if !ok {
		return false, f.bad("want true or false for %s, got %s", f.Span(), describe(v))
	}
	return b, nil
}

// Regs converts v, as decoded by encoding/json with UseNumber
// (json.Number, string, bool, nil, ...), into the field's registers in
// wire order, appended to dst. Wrong types and values out of the type's
// range are *ValueError.
func (f Field) Regs(dst []uint16, v any) ([]uint16, error) {
	if f.Type == String {
		s, ok := v.(string)
		if !ok {
			return dst, f.bad("want a string for %s, got %s", f.Span(), describe(v))
		}
		if len(s) > 2*f.Len {
			return dst, f.bad("string of %d bytes does not fit %d registers (%d bytes)", len(s), f.Len, 2*f.Len)
		}
		b := make([]byte, 2*f.Len)
		copy(b, s)
		return f.fromBytes(dst, b), nil
	}
	num, ok := v.(json.Number)
	if !ok {
		if fl, isF := v.(float64); isF {
			num, ok = json.Number(strconv.FormatFloat(fl, 'g', -1, 64)), true
		}
	}
	if !ok {
		return dst, f.bad("want a number for %s %s, got %s", f.Type, f.Span(), describe(v))
	}
	var b [8]byte
	switch f.Type {
	case Float32, Float64:
		x, err := strconv.ParseFloat(string(num), 64)
		if err != nil {
			return dst, f.bad("%s is not a number", num)
		}
		if f.Scaled {
			x = (x - f.Offset) / f.Scale
		}
		if f.Type == Float32 {
			if math.Abs(x) > math.MaxFloat32 {
				return dst, f.bad("%s is out of the float32 range", num)
			}
			binary.BigEndian.PutUint32(b[:], math.Float32bits(float32(x)))
			return f.fromBytes(dst, b[:4]), nil
		}
		binary.BigEndian.PutUint64(b[:], math.Float64bits(x))
		return f.fromBytes(dst, b[:8]), nil
	}
	u, err := f.Type.whole(string(num), f)
	if err != nil {
		return dst, err
	}
	switch f.Len {
	case 1:
		binary.BigEndian.PutUint16(b[:], uint16(u))
	case 2:
		binary.BigEndian.PutUint32(b[:], uint32(u))
	default:
		binary.BigEndian.PutUint64(b[:], u)
	}
	return f.fromBytes(dst, b[:2*f.Len]), nil
}

// whole converts a JSON number to the bits of an integer type (two's
// complement for signed types), scaled back when the field is scaled.
func (t Type) whole(num string, f Field) (uint64, error) {
	if f.Scaled {
		x, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, f.bad("%s is not a number", num)
		}
		x = math.Round((x - f.Offset) / f.Scale)
		num = strconv.FormatFloat(x, 'f', -1, 64)
	}
	if t == Uint64 {
		u, err := strconv.ParseUint(num, 10, 64)
		if err != nil {
			if x, ferr := strconv.ParseFloat(num, 64); ferr == nil && x == math.Trunc(x) && x >= 0 && x < 1<<64 {
				return uint64(x), nil
			}
			return 0, t.rangeErr(num, f)
		}
		return u, nil
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		x, ferr := strconv.ParseFloat(num, 64)
		switch {
		case ferr != nil:
			return 0, f.bad("%s is not a number", num)
		case x != math.Trunc(x):
			return 0, f.bad("want a whole number for %s, got %s", t, num)
		case x < math.MinInt64 || x >= math.MaxInt64:
			return 0, t.rangeErr(num, f)
		}
		n = int64(x)
	}
	var lo, hi int64
	switch t {
	case Int16:
		lo, hi = math.MinInt16, math.MaxInt16
	case Uint16:
		lo, hi = 0, math.MaxUint16
	case Int32:
		lo, hi = math.MinInt32, math.MaxInt32
	case Uint32:
		lo, hi = 0, math.MaxUint32
	default:
		lo, hi = math.MinInt64, math.MaxInt64
	}
	if n < lo || n > hi {
		return 0, t.rangeErr(num, f)
	}
	return uint64(n), nil
}

func (t Type) rangeErr(num string, f Field) error {
	if f.Scaled {
		return f.bad("%s scales to a raw value out of the %s range", num, t)
	}
	return f.bad("%s is out of the %s range", num, t)
}

// fromBytes turns big-endian value bytes (or string bytes in address
// order) into registers in wire order, applying the field's orders.
func (f Field) fromBytes(dst []uint16, b []byte) []uint16 {
	n := len(b) / 2
	start := len(dst)
	for i := range n {
		hi, lo := b[2*i], b[2*i+1]
		if f.Bytes == LittleEndian {
			hi, lo = lo, hi
		}
		dst = append(dst, uint16(hi)<<8|uint16(lo))
	}
	if f.Words == LowWordFirst && f.Type != String {
		r := dst[start:]
		for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
			r[i], r[j] = r[j], r[i]
		}
	}
	return dst
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	default:
		return fmt.Sprintf("%T", x)
	}
}

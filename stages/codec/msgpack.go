package codec

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
)

// MsgPack is a MessagePack codec (https://msgpack.org/) implemented without
// dependencies. It is a drop-in replacement for JSON inside a pipeline:
// Decode produces the same shapes JSON does, so expressions and stages see
// identical values whichever codec a link uses.
//
// Decoding:
//   - every integer format (positive/negative fixint, int8..int64,
//     uint8..uint64) decodes to float64, exactly like a JSON number; integers
//     beyond ±2^53 lose precision just as they would in JSON;
//   - float32 and float64 decode to float64;
//   - str to string, nil to nil, bool to bool, array to []any;
//   - map to map[string]any; str and bin keys are used as is, integer keys
//     become their decimal text (as encoding/json does for map[int]T);
//     other key types are an error;
//   - bin to []byte (a copy, never aliasing the payload);
//   - the timestamp extension (type -1) to time.Time in UTC; other
//     extension types are an error.
//
// Encoding accepts the decoded shapes plus every Go integer and float type,
// map[string]string, []string, []float64, json.Number and time.Time.
// float64 values that hold an integer (and are not -0) are written in the
// smallest integer format, so {"seq":1} costs one byte for the value and
// other MessagePack readers see an integer where JSON had one. Other values
// (structs, pointers, json.Marshalers) are encoded through their JSON
// form: encoding/json first, then the JSON document re-encoded as
// MessagePack, so struct tags apply the same way in both codecs.
//
// Nesting deeper than 10000 levels is rejected (wraps ErrTooDeep), as is
// trailing data after the first value.
type MsgPack struct{}

// Name implements pipeline.Codec.
func (MsgPack) Name() string { return "msgpack" }

// Decode implements pipeline.Decoder.
func (MsgPack) Decode(p []byte) (any, error) {
	d := msgpackDecoderPool.Get().(*msgpackDecoder)
	d.data, d.pos, d.depth = p, 0, 0
	v, err := d.value()
	if err == nil && d.pos < len(d.data) {
		err = d.errorf("%d bytes of trailing data after the value", len(d.data)-d.pos)
	}
	d.data = nil
	msgpackDecoderPool.Put(d)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Encode implements pipeline.Encoder. The result is freshly allocated.
func (MsgPack) Encode(v any) ([]byte, error) {
	e := msgpackEncoderPool.Get().(*msgpackEncoder)
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
	msgpackEncoderPool.Put(e)
	return out, err
}

// MsgPackError reports malformed MessagePack input at a byte offset.
type MsgPackError struct {
	Msg    string
	Offset int
	err    error
}

func (e *MsgPackError) Error() string {
	return fmt.Sprintf("msgpack: %s at offset %d", e.Msg, e.Offset)
}

// Unwrap lets errors.Is(err, ErrTooDeep) work on depth errors.
func (e *MsgPackError) Unwrap() error { return e.err }

type msgpackDecoder struct {
	data  []byte
	pos   int
	depth int
	keys  internTable
	slab  valueSlab
}

var msgpackDecoderPool = sync.Pool{New: func() any { return new(msgpackDecoder) }}

func (d *msgpackDecoder) errorf(format string, args ...any) error {
	return &MsgPackError{Msg: fmt.Sprintf(format, args...), Offset: d.pos}
}

// need returns the next n bytes and advances, or an error at end of input.
func (d *msgpackDecoder) need(n int) ([]byte, error) {
	if n < 0 || len(d.data)-d.pos < n {
		return nil, d.errorf("unexpected end of input (need %d bytes, have %d)", n, len(d.data)-d.pos)
	}
	b := d.data[d.pos : d.pos+n]
	d.pos += n
	return b, nil
}

// length reads a big-endian length of size bytes.
func (d *msgpackDecoder) length(size int) (int, error) {
	b, err := d.need(size)
	if err != nil {
		return 0, err
	}
	switch size {
	case 1:
		return int(b[0]), nil
	case 2:
		return int(binary.BigEndian.Uint16(b)), nil
	default:
		return int(binary.BigEndian.Uint32(b)), nil
	}
}

func (d *msgpackDecoder) value() (any, error) {
	if d.pos >= len(d.data) {
		return nil, d.errorf("unexpected end of input")
	}
	c := d.data[d.pos]
	d.pos++
	switch {
	case c <= 0x7f:
		return d.slab.boxFloat(float64(c)), nil
	case c >= 0xe0:
		return d.slab.boxFloat(float64(int8(c))), nil
	case c <= 0x8f:
		return d.mapN(int(c & 0x0f))
	case c <= 0x9f:
		return d.arrayN(int(c & 0x0f))
	case c <= 0xbf:
		return d.str(int(c & 0x1f))
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	case 0xc4, 0xc5, 0xc6:
		n, err := d.length(1 << (c - 0xc4))
		if err != nil {
			return nil, err
		}
		b, err := d.need(n)
		if err != nil {
			return nil, err
		}
		return append([]byte{}, b...), nil
	case 0xc7, 0xc8, 0xc9:
		n, err := d.length(1 << (c - 0xc7))
		if err != nil {
			return nil, err
		}
		return d.ext(n)
	case 0xca:
		b, err := d.need(4)
		if err != nil {
			return nil, err
		}
		return d.slab.boxFloat(float64(math.Float32frombits(binary.BigEndian.Uint32(b)))), nil
	case 0xcb:
		b, err := d.need(8)
		if err != nil {
			return nil, err
		}
		return d.slab.boxFloat(math.Float64frombits(binary.BigEndian.Uint64(b))), nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		u, err := d.uint(1 << (c - 0xcc))
		if err != nil {
			return nil, err
		}
		return d.slab.boxFloat(float64(u)), nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		i, err := d.int(1 << (c - 0xd0))
		if err != nil {
			return nil, err
		}
		return d.slab.boxFloat(float64(i)), nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		return d.ext(1 << (c - 0xd4))
	case 0xd9, 0xda, 0xdb:
		n, err := d.length(1 << (c - 0xd9))
		if err != nil {
			return nil, err
		}
		return d.str(n)
	case 0xdc, 0xdd:
		n, err := d.length(2 << (c - 0xdc))
		if err != nil {
			return nil, err
		}
		return d.arrayN(n)
	case 0xde, 0xdf:
		n, err := d.length(2 << (c - 0xde))
		if err != nil {
			return nil, err
		}
		return d.mapN(n)
	}
	d.pos--
	return nil, d.errorf("invalid type byte 0x%02x", c)
}

func (d *msgpackDecoder) uint(size int) (uint64, error) {
	b, err := d.need(size)
	if err != nil {
		return 0, err
	}
	switch size {
	case 1:
		return uint64(b[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(b)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(b)), nil
	default:
		return binary.BigEndian.Uint64(b), nil
	}
}

func (d *msgpackDecoder) int(size int) (int64, error) {
	u, err := d.uint(size)
	if err != nil {
		return 0, err
	}
	switch size {
	case 1:
		return int64(int8(u)), nil
	case 2:
		return int64(int16(u)), nil
	case 4:
		return int64(int32(u)), nil
	default:
		return int64(u), nil
	}
}

func (d *msgpackDecoder) str(n int) (any, error) {
	b, err := d.need(n)
	if err != nil {
		return nil, err
	}
	return d.slab.boxString(b), nil
}

func (d *msgpackDecoder) enter() error {
	d.depth++
	if d.depth > maxJSONDepth {
		return &MsgPackError{Msg: fmt.Sprintf("%v: more than %d levels", ErrTooDeep, maxJSONDepth), Offset: d.pos, err: ErrTooDeep}
	}
	return nil
}

func (d *msgpackDecoder) arrayN(n int) (any, error) {
	// Every element takes at least one byte: reject impossible lengths
	// before allocating.
	if n > len(d.data)-d.pos {
		return nil, d.errorf("array of %d elements exceeds the remaining %d bytes", n, len(d.data)-d.pos)
	}
	if err := d.enter(); err != nil {
		return nil, err
	}
	a := make([]any, n)
	for i := range a {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		a[i] = v
	}
	d.depth--
	return a, nil
}

func (d *msgpackDecoder) mapN(n int) (any, error) {
	if n > (len(d.data)-d.pos)/2 {
		return nil, d.errorf("map of %d entries exceeds the remaining %d bytes", n, len(d.data)-d.pos)
	}
	if err := d.enter(); err != nil {
		return nil, err
	}
	m := make(map[string]any, n)
	for i := 0; i < n; i++ {
		k, err := d.key()
		if err != nil {
			return nil, err
		}
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		m[k] = v
	}
	d.depth--
	return m, nil
}

// key reads a map key: str or bin as is, integers as decimal text.
func (d *msgpackDecoder) key() (string, error) {
	if d.pos >= len(d.data) {
		return "", d.errorf("unexpected end of input")
	}
	c := d.data[d.pos]
	n := -1
	switch {
	case c >= 0xa0 && c <= 0xbf:
		d.pos++
		n = int(c & 0x1f)
	case c == 0xd9 || c == 0xda || c == 0xdb:
		d.pos++
		var err error
		if n, err = d.length(1 << (c - 0xd9)); err != nil {
			return "", err
		}
	case c == 0xc4 || c == 0xc5 || c == 0xc6:
		d.pos++
		var err error
		if n, err = d.length(1 << (c - 0xc4)); err != nil {
			return "", err
		}
	case c <= 0x7f || c >= 0xe0 || (c >= 0xcc && c <= 0xd3):
		d.pos++
		switch {
		case c <= 0x7f:
			return strconv.Itoa(int(c)), nil
		case c >= 0xe0:
			return strconv.Itoa(int(int8(c))), nil
		case c <= 0xcf:
			u, err := d.uint(1 << (c - 0xcc))
			if err != nil {
				return "", err
			}
			return strconv.FormatUint(u, 10), nil
		default:
			i, err := d.int(1 << (c - 0xd0))
			if err != nil {
				return "", err
			}
			return strconv.FormatInt(i, 10), nil
		}
	default:
		return "", d.errorf("map key of type byte 0x%02x is not a string or integer", c)
	}
	b, err := d.need(n)
	if err != nil {
		return "", err
	}
	return d.keys.intern(b), nil
}

// ext decodes an extension value with n data bytes (type byte first).
func (d *msgpackDecoder) ext(n int) (any, error) {
	start := d.pos
	tb, err := d.need(1)
	if err != nil {
		return nil, err
	}
	typ := int8(tb[0])
	b, err := d.need(n)
	if err != nil {
		return nil, err
	}
	if typ != -1 {
		d.pos = start
		return nil, d.errorf("unsupported extension type %d", typ)
	}
	switch n {
	case 4:
		return time.Unix(int64(binary.BigEndian.Uint32(b)), 0).UTC(), nil
	case 8:
		x := binary.BigEndian.Uint64(b)
		nsec := int64(x >> 34)
		if nsec > 999999999 {
			d.pos = start
			return nil, d.errorf("timestamp nanoseconds %d out of range", nsec)
		}
		return time.Unix(int64(x&(1<<34-1)), nsec).UTC(), nil
	case 12:
		nsec := int64(binary.BigEndian.Uint32(b))
		if nsec > 999999999 {
			d.pos = start
			return nil, d.errorf("timestamp nanoseconds %d out of range", nsec)
		}
		return time.Unix(int64(binary.BigEndian.Uint64(b[4:])), nsec).UTC(), nil
	}
	d.pos = start
	return nil, d.errorf("timestamp extension of %d bytes (want 4, 8 or 12)", n)
}

type msgpackEncoder struct {
	buf   []byte
	keys  []string
	depth int
}

var msgpackEncoderPool = sync.Pool{New: func() any { return &msgpackEncoder{buf: make([]byte, 0, 256)} }}

func (e *msgpackEncoder) value(v any) error {
	switch x := v.(type) {
	case nil:
		e.buf = append(e.buf, 0xc0)
	case bool:
		if x {
			e.buf = append(e.buf, 0xc3)
		} else {
			e.buf = append(e.buf, 0xc2)
		}
	case string:
		e.str(x)
	case float64:
		e.float64(x)
	case *Object:
		return e.object(x.Map())
	case map[string]any:
		if x == nil {
			e.buf = append(e.buf, 0xc0)
			return nil
		}
		return e.object(x)
	case []any:
		if x == nil {
			e.buf = append(e.buf, 0xc0)
			return nil
		}
		if err := e.enter(); err != nil {
			return err
		}
		e.arrayHeader(len(x))
		for _, el := range x {
			if err := e.value(el); err != nil {
				return err
			}
		}
		e.depth--
	case int:
		e.int(int64(x))
	case int8:
		e.int(int64(x))
	case int16:
		e.int(int64(x))
	case int32:
		e.int(int64(x))
	case int64:
		e.int(x)
	case uint:
		e.uint(uint64(x))
	case uint8:
		e.uint(uint64(x))
	case uint16:
		e.uint(uint64(x))
	case uint32:
		e.uint(uint64(x))
	case uint64:
		e.uint(x)
	case float32:
		e.buf = append(e.buf, 0xca)
		e.buf = binary.BigEndian.AppendUint32(e.buf, math.Float32bits(x))
	case []byte:
		if x == nil {
			e.buf = append(e.buf, 0xc0)
			return nil
		}
		n := len(x)
		switch {
		case n <= math.MaxUint8:
			e.buf = append(e.buf, 0xc4, byte(n))
		case n <= math.MaxUint16:
			e.buf = append(e.buf, 0xc5)
			e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(n))
		default:
			e.buf = append(e.buf, 0xc6)
			e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(n))
		}
		e.buf = append(e.buf, x...)
	case json.Number:
		if x == "" { // as encoding/json: the empty Number is 0
			e.buf = append(e.buf, 0)
			return nil
		}
		if !validJSONNumber(string(x)) {
			return fmt.Errorf("msgpack: invalid number literal %q", string(x))
		}
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			e.int(i)
			return nil
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return fmt.Errorf("msgpack: number %s: %w", string(x), err)
		}
		e.float64(f)
	case time.Time:
		e.time(x)
	case []string:
		if x == nil {
			e.buf = append(e.buf, 0xc0)
			return nil
		}
		e.arrayHeader(len(x))
		for _, s := range x {
			e.str(s)
		}
	case []float64:
		if x == nil {
			e.buf = append(e.buf, 0xc0)
			return nil
		}
		e.arrayHeader(len(x))
		for _, f := range x {
			e.float64(f)
		}
	case map[string]string:
		if x == nil {
			e.buf = append(e.buf, 0xc0)
			return nil
		}
		start := len(e.keys)
		for k := range x {
			e.keys = append(e.keys, k)
		}
		keys := e.keys[start:]
		slices.Sort(keys)
		e.mapHeader(len(keys))
		for _, k := range keys {
			e.str(k)
			e.str(x[k])
		}
		clear(e.keys[start:])
		e.keys = e.keys[:start]
	default:
		// Unknown types take their JSON form (struct tags, Marshalers).
		j, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("msgpack: %w", err)
		}
		jv, err := decodeJSON(j)
		if err != nil {
			return fmt.Errorf("msgpack: re-reading JSON form of %T: %w", v, err)
		}
		return e.value(jv)
	}
	return nil
}

func (e *msgpackEncoder) enter() error {
	e.depth++
	if e.depth > maxJSONDepth {
		return fmt.Errorf("msgpack: unsupported value: encountered a cycle or %w (more than %d levels)", ErrTooDeep, maxJSONDepth)
	}
	return nil
}

func (e *msgpackEncoder) object(m map[string]any) error {
	if err := e.enter(); err != nil {
		return err
	}
	start := len(e.keys)
	for k := range m {
		e.keys = append(e.keys, k)
	}
	n := len(e.keys) - start
	// Sorted keys make the encoding deterministic.
	if n > 1 {
		slices.Sort(e.keys[start:])
	}
	e.mapHeader(n)
	for i := start; i < start+n; i++ {
		k := e.keys[i]
		e.str(k)
		if err := e.value(m[k]); err != nil {
			return err
		}
	}
	clear(e.keys[start:])
	e.keys = e.keys[:start]
	e.depth--
	return nil
}

func (e *msgpackEncoder) arrayHeader(n int) {
	switch {
	case n <= 15:
		e.buf = append(e.buf, 0x90|byte(n))
	case n <= math.MaxUint16:
		e.buf = append(e.buf, 0xdc)
		e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(n))
	default:
		e.buf = append(e.buf, 0xdd)
		e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(n))
	}
}

func (e *msgpackEncoder) mapHeader(n int) {
	switch {
	case n <= 15:
		e.buf = append(e.buf, 0x80|byte(n))
	case n <= math.MaxUint16:
		e.buf = append(e.buf, 0xde)
		e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(n))
	default:
		e.buf = append(e.buf, 0xdf)
		e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(n))
	}
}

func (e *msgpackEncoder) str(s string) {
	n := len(s)
	switch {
	case n <= 31:
		e.buf = append(e.buf, 0xa0|byte(n))
	case n <= math.MaxUint8:
		e.buf = append(e.buf, 0xd9, byte(n))
	case n <= math.MaxUint16:
		e.buf = append(e.buf, 0xda)
		e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(n))
	default:
		e.buf = append(e.buf, 0xdb)
		e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(n))
	}
	e.buf = append(e.buf, s...)
}

// float64 writes integral values in the smallest integer format and
// everything else (fractions, -0, NaN, ±Inf, |f| >= 2^63) as float64.
func (e *msgpackEncoder) float64(f float64) {
	if f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 && !(f == 0 && math.Signbit(f)) {
		if f >= 0 {
			e.uint(uint64(f))
		} else {
			e.int(int64(f))
		}
		return
	}
	e.buf = append(e.buf, 0xcb)
	e.buf = binary.BigEndian.AppendUint64(e.buf, math.Float64bits(f))
}

func (e *msgpackEncoder) uint(u uint64) {
	switch {
	case u <= 0x7f:
		e.buf = append(e.buf, byte(u))
	case u <= math.MaxUint8:
		e.buf = append(e.buf, 0xcc, byte(u))
	case u <= math.MaxUint16:
		e.buf = append(e.buf, 0xcd)
		e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(u))
	case u <= math.MaxUint32:
		e.buf = append(e.buf, 0xce)
		e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(u))
	default:
		e.buf = append(e.buf, 0xcf)
		e.buf = binary.BigEndian.AppendUint64(e.buf, u)
	}
}

func (e *msgpackEncoder) int(i int64) {
	if i >= 0 {
		e.uint(uint64(i))
		return
	}
	switch {
	case i >= -32:
		e.buf = append(e.buf, byte(int8(i)))
	case i >= math.MinInt8:
		e.buf = append(e.buf, 0xd0, byte(int8(i)))
	case i >= math.MinInt16:
		e.buf = append(e.buf, 0xd1)
		e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(i))
	case i >= math.MinInt32:
		e.buf = append(e.buf, 0xd2)
		e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(i))
	default:
		e.buf = append(e.buf, 0xd3)
		e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(i))
	}
}

// time writes the timestamp extension (type -1) in its smallest form.
func (e *msgpackEncoder) time(t time.Time) {
	sec, nsec := t.Unix(), int64(t.Nanosecond())
	switch {
	case sec>>34 == 0 && nsec == 0 && sec <= math.MaxUint32:
		e.buf = append(e.buf, 0xd6, 0xff)
		e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(sec))
	case sec>>34 == 0:
		e.buf = append(e.buf, 0xd7, 0xff)
		e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(nsec)<<34|uint64(sec))
	default:
		e.buf = append(e.buf, 0xc7, 12, 0xff)
		e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(nsec))
		e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(sec))
	}
}

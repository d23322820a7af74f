package codec

import (
	"strconv"
	"unsafe"
)

// Object is a JSON object decoded lazily: an index of its top-level fields
// over the payload it came from, plus an overlay of the fields a stage set.
// Decoding validates the whole document (a malformed payload is rejected
// at the link, exactly as the eager decoder rejects it) but builds no map:
// numbers are parsed once, strings and nested values are materialised only
// when something reads them.
//
// Invariants:
//   - An Object is immutable once returned: readers of a record share it.
//     With returns a new Object that shares the index and carries its own
//     overlay.
//   - It aliases the payload it was decoded from. The pipeline's payloads
//     are never modified after dispatch (see pipeline.Decoder), so the
//     aliasing is safe.
//   - Field and Map give the values JSON{Ints: true} gives: int64 for an
//     integer literal (no fraction, no exponent, within int64), float64 for
//     other numbers, string, bool, nil, map[string]any and []any; a
//     duplicated key reads as its last occurrence.
//   - Encoding to JSON writes every field nobody set as its original bytes
//     (key spelling, number text and spacing inside the value as received)
//     and set fields in place of the first occurrence, new ones at the end.
//     An unchanged object encodes as its original bytes. An object whose
//     payload held invalid UTF-8 is encoded from its values instead (with
//     U+FFFD, as the eager path does), so output is always valid JSON.
type Object struct {
	idx *objIndex
	set []setField
}

// objIndex is the decoded, shared part of an Object.
type objIndex struct {
	raw     []byte // the object's bytes, '{' to '}'
	fields  []objField
	inline  [4]objField
	esc     []string // unescaped keys by field index, only for escaped keys
	badUTF8 bool     // a string held invalid UTF-8: never forward raw bytes
}

type fieldKind uint8

const (
	kindNumber  fieldKind = iota // float64 in num
	kindInt                      // int64 in num's bits (an integer literal)
	kindString                   // no escapes, valid UTF-8: the bytes are the value
	kindEscaped                  // escapes or non-ASCII: unescape on read
	kindTrue
	kindFalse
	kindNull
	kindNested // object or array: decoded on read
)

// objField locates one field in raw. It holds no pointers: keys are read
// from raw (or from objIndex.esc when the key has escapes).
type objField struct {
	keyStart   int32 // the quoted key in raw (with its quotes)
	start, end int32 // the value in raw
	// keyLen is the quoted key's length in raw; 0 for a key too long for
	// it (over 65535 bytes: keyEsc is then set and esc holds the key).
	keyLen uint16
	kind   fieldKind
	keyEsc bool
	num    float64
}

// maxKeyLen is the longest quoted key objField.keyLen holds. The field
// is 24 bytes: a decoded object with its four inline fields fits a
// 208-byte allocation instead of a 256-byte one.
const maxKeyLen = 1<<16 - 1

// rawKey returns field f's quoted key as it is in raw, or false for a key
// too long to be kept by position.
func (x *objIndex) rawKey(f *objField) ([]byte, bool) {
	if f.keyLen == 0 {
		return nil, false
	}
	return x.raw[f.keyStart : f.keyStart+int32(f.keyLen)], true
}

// key returns field i's key (aliasing raw unless it had escapes).
func (x *objIndex) key(i int) string {
	f := &x.fields[i]
	if f.keyEsc {
		return x.esc[i]
	}
	n := int(f.keyLen) - 2
	if n == 0 {
		return ""
	}
	return unsafe.String(&x.raw[f.keyStart+1], n)
}

// appendKey appends field i's key as JSON: its original bytes, or, for a
// key too long to be kept by position, the key quoted again.
func (x *objIndex) appendKey(dst []byte, i int) []byte {
	if k, ok := x.rawKey(&x.fields[i]); ok {
		return append(dst, k...)
	}
	return appendJSONString(dst, x.esc[i])
}

type setField struct {
	key string
	val any
}

// decodedObject keeps an Object and its index in one allocation.
type decodedObject struct {
	obj Object
	idx objIndex
}

// Len returns the number of distinct fields.
func (o *Object) Len() int {
	n := 0
	for i := range o.idx.fields {
		if !o.shadowed(i) {
			n++
		}
	}
	for i, s := range o.set {
		if !o.idx.has(s.key) && !o.setLater(i) {
			n++
		}
	}
	return n
}

// Changed reports whether a stage set a field since decoding.
func (o *Object) Changed() bool { return len(o.set) > 0 }

// Raw returns the bytes the object was decoded from, for an unchanged
// object (nil once a field was set). The caller must not modify them.
func (o *Object) Raw() []byte {
	if len(o.set) > 0 {
		return nil
	}
	return o.idx.raw
}

// Field returns the value of the top-level field name and whether the
// object has it. Implements pipeline.Fields.
func (o *Object) Field(name string) (any, bool) {
	for i := len(o.set) - 1; i >= 0; i-- {
		if o.set[i].key == name {
			return o.set[i].val, true
		}
	}
	x := o.idx
	for i := len(x.fields) - 1; i >= 0; i-- {
		if x.key(i) == name {
			return x.value(&x.fields[i]), true
		}
	}
	return nil, false
}

func (x *objIndex) value(f *objField) any {
	switch f.kind {
	case kindNumber:
		return boxFloatAt(&f.num)
	case kindInt:
		return boxInt64At((*int64)(unsafe.Pointer(&f.num)))
	case kindString:
		if f.end-f.start == 2 {
			return ""
		}
		b := x.raw[f.start+1 : f.end-1]
		return unsafe.String(&b[0], len(b))
	case kindTrue:
		return true
	case kindFalse:
		return false
	case kindNull:
		return nil
	}
	// Escaped strings and nested values: the eager decoder on the span
	// (already validated, so it cannot fail).
	v, err := decodeWith(x.raw[f.start:f.end], false, true)
	if err != nil {
		panic("codec: lazily decoded value failed to decode: " + err.Error())
	}
	return v
}

// Range calls fn for every field (document order, set fields that are new
// at the end) until fn returns false. A duplicated key is visited once,
// with its last value.
func (o *Object) Range(fn func(key string, v any) bool) {
	x := o.idx
	for i := range x.fields {
		k := x.key(i)
		if o.shadowed(i) {
			continue
		}
		if v, ok := o.setValue(k); ok {
			if !fn(k, v) {
				return
			}
			continue
		}
		if !fn(k, x.value(&x.fields[i])) {
			return
		}
	}
	for i, s := range o.set {
		if o.idx.has(s.key) || o.setLater(i) {
			continue
		}
		if !fn(s.key, s.val) {
			return
		}
	}
}

// shadowed reports whether field i's key occurs again later in the index
// (JSON objects with duplicate keys keep the last value).
func (o *Object) shadowed(i int) bool {
	x := o.idx
	k := x.key(i)
	for j := i + 1; j < len(x.fields); j++ {
		if x.key(j) == k {
			return true
		}
	}
	return false
}

func (o *Object) setLater(i int) bool {
	for j := i + 1; j < len(o.set); j++ {
		if o.set[j].key == o.set[i].key {
			return true
		}
	}
	return false
}

func (o *Object) setValue(k string) (any, bool) {
	for i := len(o.set) - 1; i >= 0; i-- {
		if o.set[i].key == k {
			return o.set[i].val, true
		}
	}
	return nil, false
}

func (x *objIndex) has(k string) bool {
	for i := range x.fields {
		if x.key(i) == k {
			return true
		}
	}
	return false
}

// Map returns the object as a fresh map[string]any (the value the eager
// decoder returns). Implements pipeline.Fields.
func (o *Object) Map() map[string]any {
	m := make(map[string]any, len(o.idx.fields)+len(o.set))
	x := o.idx
	for i := range x.fields {
		m[x.key(i)] = x.value(&x.fields[i])
	}
	for _, s := range o.set {
		m[s.key] = s.val
	}
	return m
}

// With returns a copy of o with the given fields set (key, value pairs
// applied in order); o is unchanged. Values are plain Go values of the kind
// Field returns (or anything the JSON encoder accepts).
func (o *Object) With(kv ...KeyValue) *Object {
	n := len(o.set) + len(kv)
	var out *Object
	var set []setField
	if n == 1 {
		// The common case (one set on a decoded object): one allocation
		// for the object and its overlay.
		w := new(objectWith1)
		out, set = &w.obj, w.set[:0]
	} else {
		out, set = new(Object), make([]setField, 0, n)
	}
	set = append(set, o.set...)
	for _, p := range kv {
		set = append(set, setField{key: p.Key, val: p.Value})
	}
	out.idx, out.set = o.idx, set
	return out
}

// objectWith1 is an Object with room for a one-field overlay.
type objectWith1 struct {
	obj Object
	set [1]setField
}

// KeyValue is one field for Object.With.
type KeyValue struct {
	Key   string
	Value any
}

// appendTo appends the object's JSON encoding to the encoder's buffer.
func (o *Object) appendTo(e *jsonEncoder) error {
	x := o.idx
	if len(o.set) == 0 && !x.badUTF8 {
		e.buf = append(e.buf, x.raw...)
		return nil
	}
	if x.badUTF8 {
		return e.object(o.Map())
	}
	if err := e.enter(); err != nil {
		return err
	}
	e.buf = append(e.buf, '{')
	first := true
	comma := func() {
		if !first {
			e.buf = append(e.buf, ',')
		}
		first = false
	}
	fs := x.fields
	var last map[string]int // key -> index of its last occurrence, for big objects
	if len(fs) > 32 {
		last = make(map[string]int, len(fs))
		for i := range fs {
			last[x.key(i)] = i
		}
	}
	for i := range fs {
		f := &fs[i]
		if v, ok := o.setValue(x.key(i)); ok {
			if o.seenBefore(i) {
				continue // written at the key's first occurrence
			}
			comma()
			e.buf = x.appendKey(e.buf, i)
			e.buf = append(e.buf, ':')
			if err := e.value(v); err != nil {
				return err
			}
			continue
		}
		if last != nil && last[x.key(i)] != i || last == nil && o.shadowed(i) {
			continue // a duplicated key: its last occurrence is written
		}
		comma()
		e.buf = x.appendKey(e.buf, i)
		e.buf = append(e.buf, ':')
		e.buf = append(e.buf, x.raw[f.start:f.end]...)
	}
	for i, s := range o.set {
		if x.has(s.key) || o.setLater(i) {
			continue
		}
		comma()
		e.buf = appendJSONString(e.buf, s.key)
		e.buf = append(e.buf, ':')
		if err := e.value(s.val); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, '}')
	e.depth--
	return nil
}

func (o *Object) seenBefore(i int) bool {
	x := o.idx
	k := x.key(i)
	for j := 0; j < i; j++ {
		if x.key(j) == k {
			return true
		}
	}
	return false
}

// String returns the object's JSON text (for logs and debugging).
func (o *Object) String() string {
	b, err := encodeJSON(o)
	if err != nil {
		return "codec.Object(" + strconv.Quote(err.Error()) + ")"
	}
	return string(b)
}

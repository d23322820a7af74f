// Package value holds the data model of the device subset: a Value is a
// scalar (nil, bool, int, float or string) and an Object is a flat record of
// named Values stored in fixed-capacity, preallocated storage.
//
// Nothing in this package allocates after an Object has been created, and it
// imports only the standard library packages that TinyGo supports on
// microcontrollers, so records can be decoded, inspected and re-encoded on a
// device with no garbage per record.
package value

import (
	"errors"
	"strconv"
)

// Kind is the type of a Value.
type Kind uint8

// Value kinds.
const (
	Nil Kind = iota
	Bool
	Int
	Float
	String
)

// String returns the kind's name as expr-lang reports types.
func (k Kind) String() string {
	switch k {
	case Nil:
		return "nil"
	case Bool:
		return "bool"
	case Int:
		return "int"
	case Float:
		return "float64"
	case String:
		return "string"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is a scalar. The zero Value is nil. A String value's bytes (S) are
// borrowed: they point into the Object or scratch buffer that produced them
// and are valid until that storage is reused.
type Value struct {
	K Kind
	B bool
	I int64
	F float64
	S []byte
}

// Constructors for the kinds.
func BoolOf(b bool) Value      { return Value{K: Bool, B: b} }
func IntOf(i int64) Value      { return Value{K: Int, I: i} }
func FloatOf(f float64) Value  { return Value{K: Float, F: f} }
func BytesOf(s []byte) Value   { return Value{K: String, S: s} }
func StringOf(s string) Value  { return Value{K: String, S: []byte(s)} }
func (v Value) IsNumber() bool { return v.K == Int || v.K == Float }

// Num returns the value as float64 (ints converted); false if not a number.
func (v Value) Num() (float64, bool) {
	switch v.K {
	case Int:
		return float64(v.I), true
	case Float:
		return v.F, true
	}
	return 0, false
}

// Truthy reports whether v is the boolean true.
func (v Value) Truthy() bool { return v.K == Bool && v.B }

// Equal compares like expr-lang's == operator: numbers compare by value
// across int and float, strings bytewise, bools by value, nil equals only
// nil, and values of different kinds are unequal.
func (v Value) Equal(w Value) bool {
	switch {
	case v.K == Int && w.K == Int:
		return v.I == w.I
	case v.IsNumber() && w.IsNumber():
		a, _ := v.Num()
		b, _ := w.Num()
		return a == b
	case v.K != w.K:
		return false
	case v.K == Nil:
		return true
	case v.K == Bool:
		return v.B == w.B
	case v.K == String:
		return BytesEqual(v.S, w.S)
	}
	return false
}

// AppendText appends a human-readable form of v (numbers in Go's shortest
// formatting, strings unquoted) to dst.
func (v Value) AppendText(dst []byte) []byte {
	switch v.K {
	case Bool:
		return strconv.AppendBool(dst, v.B)
	case Int:
		return strconv.AppendInt(dst, v.I, 10)
	case Float:
		return strconv.AppendFloat(dst, v.F, 'g', -1, 64)
	case String:
		return append(dst, v.S...)
	}
	return append(dst, "nil"...)
}

// Format formats v for debugging (allocates). It is a function, not a
// String method, so that device builds which never format values do not
// link float formatting through interface method tables.
func Format(v Value) string { return string(v.AppendText(nil)) }

// BytesEqual reports whether a and b hold the same bytes (no allocation on
// any compiler).
func BytesEqual(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// EqualString reports whether b holds the bytes of s.
func EqualString(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if b[i] != s[i] {
			return false
		}
	}
	return true
}

// Env is what an expression reads fields from.
type Env interface {
	// Lookup returns the field named name, and false when it is absent.
	Lookup(name string) (Value, bool)
}

// Errors reported when an Object's fixed capacity is exceeded.
var (
	ErrTooManyFields = errors.New("value: too many fields for the object's capacity")
	ErrArenaFull     = errors.New("value: object byte arena full")
)

// Field is one named value of an Object.
type Field struct {
	Name []byte
	Val  Value
}

// Object is a flat record with a fixed maximum number of fields and a fixed
// byte arena holding field names and string values. Create it once with
// NewObject and Reset it per record: Set, Lookup and Reset never allocate.
// An Object is not safe for concurrent use.
type Object struct {
	fields []Field
	arena  []byte
}

// NewObject preallocates an object for up to maxFields fields whose names
// and string values total at most arenaBytes bytes.
func NewObject(maxFields, arenaBytes int) *Object {
	return &Object{fields: make([]Field, 0, maxFields), arena: make([]byte, 0, arenaBytes)}
}

// Reset empties the object, keeping its storage.
func (o *Object) Reset() {
	o.fields = o.fields[:0]
	o.arena = o.arena[:0]
}

// Len returns the number of fields.
func (o *Object) Len() int { return len(o.fields) }

// Field returns the i-th field in insertion order.
func (o *Object) Field(i int) Field { return o.fields[i] }

// Cap returns the field capacity and the arena capacity.
func (o *Object) Cap() (fields, arenaBytes int) { return cap(o.fields), cap(o.arena) }

// Lookup implements Env.
func (o *Object) Lookup(name string) (Value, bool) {
	for i := range o.fields {
		if EqualString(o.fields[i].Name, name) {
			return o.fields[i].Val, true
		}
	}
	return Value{}, false
}

// Index returns the position of the field named name, or -1.
func (o *Object) Index(name []byte) int {
	for i := range o.fields {
		if BytesEqual(o.fields[i].Name, name) {
			return i
		}
	}
	return -1
}

// Alloc reserves n bytes of the arena and returns them (zeroed is not
// guaranteed). It fails when the arena is full.
func (o *Object) Alloc(n int) ([]byte, error) {
	l := len(o.arena)
	if cap(o.arena)-l < n {
		return nil, ErrArenaFull
	}
	o.arena = o.arena[:l+n]
	return o.arena[l : l+n : l+n], nil
}

// Arena returns the unused tail of the arena for in-place appends; call
// Commit with the number of bytes used.
func (o *Object) Arena() []byte { return o.arena[len(o.arena):cap(o.arena)] }

// Commit marks n bytes of Arena() as used and returns them.
func (o *Object) Commit(n int) []byte {
	l := len(o.arena)
	o.arena = o.arena[:l+n]
	return o.arena[l : l+n : l+n]
}

// SetBytes sets field name (copied into the arena) to v, whose string bytes
// (if any) are copied into the arena too. An existing field of that name is
// replaced.
func (o *Object) SetBytes(name []byte, v Value) error {
	if v.K == String {
		s, err := o.Alloc(len(v.S))
		if err != nil {
			return err
		}
		copy(s, v.S)
		v.S = s
	}
	if i := o.Index(name); i >= 0 {
		o.fields[i].Val = v
		return nil
	}
	if len(o.fields) == cap(o.fields) {
		return ErrTooManyFields
	}
	n, err := o.Alloc(len(name))
	if err != nil {
		return err
	}
	copy(n, name)
	o.fields = append(o.fields, Field{Name: n, Val: v})
	return nil
}

// Set is SetBytes with a string name.
func (o *Object) Set(name string, v Value) error {
	if i := o.indexString(name); i >= 0 {
		if v.K == String {
			s, err := o.Alloc(len(v.S))
			if err != nil {
				return err
			}
			copy(s, v.S)
			v.S = s
		}
		o.fields[i].Val = v
		return nil
	}
	if len(o.fields) == cap(o.fields) {
		return ErrTooManyFields
	}
	n, err := o.Alloc(len(name))
	if err != nil {
		return err
	}
	copy(n, name)
	if v.K == String {
		s, err := o.Alloc(len(v.S))
		if err != nil {
			return err
		}
		copy(s, v.S)
		v.S = s
	}
	o.fields = append(o.fields, Field{Name: n, Val: v})
	return nil
}

// AppendRaw appends a field whose name and value bytes already live in the
// object's arena (decoders use this after Commit). No duplicate check.
func (o *Object) AppendRaw(name []byte, v Value) error {
	if len(o.fields) == cap(o.fields) {
		return ErrTooManyFields
	}
	o.fields = append(o.fields, Field{Name: name, Val: v})
	return nil
}

func (o *Object) indexString(name string) int {
	for i := range o.fields {
		if EqualString(o.fields[i].Name, name) {
			return i
		}
	}
	return -1
}

// CopyFrom replaces o's contents with a deep copy of src.
func (o *Object) CopyFrom(src *Object) error {
	o.Reset()
	for i := range src.fields {
		if err := o.SetBytes(src.fields[i].Name, src.fields[i].Val); err != nil {
			return err
		}
	}
	return nil
}

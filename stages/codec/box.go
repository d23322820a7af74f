//go:build !tinygo

package codec

import "unsafe"

// Decoded scalars are boxed into interfaces. A plain any(f) allocates 8
// bytes per float64 and any(s) 16 bytes per string header plus the string
// data, which made allocation the dominant cost of decoding small records.
// The slab hands out interface values that point into shared chunks
// instead: the chunks are written once per slot and never modified again,
// so the values are immutable like any other boxed value, and the garbage
// collector keeps a chunk alive while any value points into it. The cost is
// bounded retention: a value that outlives its siblings pins at most one
// chunk (512 B of floats, 512 B of string headers, 1 KiB of string bytes).
//
// This relies on the gc toolchain's interface layout (type word, data
// word); box_tinygo.go has the plain version for TinyGo.

type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

func typeWord(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

var (
	int64Type   = typeWord(int64(0))
	float64Type = typeWord(float64(0))
	stringType  = typeWord("")
)

const (
	slabFloats    = 64
	slabStrings   = 32
	slabBytes     = 1024
	slabMaxString = 128 // longer strings are allocated on their own
)

type valueSlab struct {
	floats []float64
	strs   []string
	bytes  []byte
}

func (s *valueSlab) boxFloat(f float64) any {
	if len(s.floats) == 0 {
		s.floats = make([]float64, slabFloats)
	}
	p := &s.floats[0]
	*p = f
	s.floats = s.floats[1:]
	return *(*any)(unsafe.Pointer(&eface{typ: float64Type, data: unsafe.Pointer(p)}))
}

// boxString copies b and returns it as a string in an interface.
func (s *valueSlab) boxString(b []byte) any {
	if len(s.strs) == 0 {
		s.strs = make([]string, slabStrings)
	}
	p := &s.strs[0]
	switch {
	case len(b) == 0:
		*p = ""
	case len(b) > slabMaxString:
		*p = string(b)
	default:
		if len(s.bytes) < len(b) {
			s.bytes = make([]byte, slabBytes)
		}
		n := copy(s.bytes, b)
		*p = unsafe.String(&s.bytes[0], n)
		s.bytes = s.bytes[n:]
	}
	s.strs = s.strs[1:]
	return *(*any)(unsafe.Pointer(&eface{typ: stringType, data: unsafe.Pointer(p)}))
}

// boxFloatAt returns *p in an interface that points at p instead of a
// copy; p must never be written again (the lazy object's index).
func boxFloatAt(p *float64) any {
	return *(*any)(unsafe.Pointer(&eface{typ: float64Type, data: unsafe.Pointer(p)}))
}

// boxInt64At is boxFloatAt for an int64.
func boxInt64At(p *int64) any {
	return *(*any)(unsafe.Pointer(&eface{typ: int64Type, data: unsafe.Pointer(p)}))
}

package w1

import (
	"unsafe"

	"github.com/valyala/fastjson"
)

// env is the strong loop's reused expr-lang environment: one entry per
// field the program reads, refreshed from each record before the program
// runs. expr-lang reads variables as interface values, and boxing a
// float64 into an interface allocates 8 bytes; the loop avoids that the
// way the project's codec does (stages/codec/box.go): each field has one
// float64 slot and one interface value pointing at it, built once, and a
// number is written into the slot. This is sound because nothing keeps
// the environment's values past machine.Run (the program yields a bool)
// and every field is rewritten before the next run. Strings point into
// the line being processed, for the same reason. It relies on the gc
// toolchain's interface layout (type word, data word).
type env struct {
	fields []string
	slots  []envSlot
	m      map[string]any
}

type envSlot struct {
	num    *float64
	numBox any
	str    *string
	strBox any
}

type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

func typeWord(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

var (
	float64Type = typeWord(float64(0))
	stringType  = typeWord("")
)

func makeBox(typ, data unsafe.Pointer) any {
	return *(*any)(unsafe.Pointer(&eface{typ: typ, data: data}))
}

func newEnv(fields []string) *env {
	e := &env{fields: fields, slots: make([]envSlot, len(fields)), m: make(map[string]any, len(fields))}
	for i := range e.slots {
		s := &e.slots[i]
		s.num, s.str = new(float64), new(string)
		s.numBox = makeBox(float64Type, unsafe.Pointer(s.num))
		s.strBox = makeBox(stringType, unsafe.Pointer(s.str))
		e.m[fields[i]] = nil
	}
	return e
}

// load sets every field the program reads from the record v: numbers as
// float64, strings as string, booleans, null and missing fields as nil,
// objects and arrays as map[string]any / []any (the types the project's
// codec and encoding/json decode to). Only objects and arrays allocate.
func (e *env) load(v *fastjson.Value) {
	for i, f := range e.fields {
		x := v.Get(f)
		if x == nil {
			e.m[f] = nil
			continue
		}
		s := &e.slots[i]
		switch x.Type() {
		case fastjson.TypeNumber:
			n, err := x.Float64()
			if err != nil {
				e.m[f] = nil
				continue
			}
			*s.num = n
			e.m[f] = s.numBox
		case fastjson.TypeString:
			b, _ := x.StringBytes()
			*s.str = unsafe.String(unsafe.SliceData(b), len(b))
			e.m[f] = s.strBox
		default:
			e.m[f] = envValue(x)
		}
	}
}

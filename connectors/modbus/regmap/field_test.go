package regmap

import (
	"strings"
	"testing"
)

func TestParseField(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want Field
	}{
		{"holding 10", Field{Table: HoldingRegisters, Addr: 10, Type: Uint16, Len: 1, Scale: 1}},
		{"coil 3", Field{Table: Coils, Addr: 3, Type: Bool, Len: 1, Scale: 1}},
		{"di 65535", Field{Table: DiscreteInputs, Addr: 65535, Type: Bool, Len: 1, Scale: 1}},
		{"input 0 float32 scale 0.1 offset -5", Field{Table: InputRegisters, Type: Float32, Len: 2, Scale: 0.1, Offset: -5, Scaled: true}},
		{"HR 4 int32 words low bytes little", Field{Table: HoldingRegisters, Addr: 4, Type: Int32, Len: 2, Scale: 1, Words: LowWordFirst, Bytes: LittleEndian}},
		{"holding 20 string 8", Field{Table: HoldingRegisters, Addr: 20, Type: String, Len: 8, Scale: 1}},
		{"holding 0 float64", Field{Table: HoldingRegisters, Type: Float64, Len: 4, Scale: 1}},
		{"holding 65532 uint64", Field{Table: HoldingRegisters, Addr: 65532, Type: Uint64, Len: 4, Scale: 1}},
		{"holding 1 scale 2", Field{Table: HoldingRegisters, Addr: 1, Type: Uint16, Len: 1, Scale: 2, Scaled: true}},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			f, err := ParseField("x", tc.spec, Defaults{})
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Name = "x"
			if f != tc.want {
				t.Fatalf("got %+v\nwant %+v", f, tc.want)
			}
		})
	}
}

func TestParseFieldDefaults(t *testing.T) {
	f, err := ParseField("x", "holding 0 uint32", Defaults{Bytes: LittleEndian, Words: LowWordFirst})
	if err != nil || f.Bytes != LittleEndian || f.Words != LowWordFirst {
		t.Fatalf("%+v %v", f, err)
	}
	f, err = ParseField("x", "holding 0 uint32 words high bytes big", Defaults{Bytes: LittleEndian, Words: LowWordFirst})
	if err != nil || f.Bytes != BigEndian || f.Words != HighWordFirst {
		t.Fatalf("a field's own orders win over the defaults: %+v %v", f, err)
	}
}

func TestParseFieldErrors(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{"", "want TABLE ADDRESS"},
		{"holding", "want TABLE ADDRESS"},
		{"holdng 1", `unknown table "holdng": want coil, discrete, holding or input (did you mean "holding"?)`},
		{"holding -1", `address "-1": want a whole number from 0 to 65535`},
		{"holding 65536", "from 0 to 65535"},
		{"holding 1 flaot32", `unknown type "flaot32"`},
		{"holding 1 flaot32", `(did you mean "float32"?)`},
		{"coil 1 uint16", "a coil holds one bit: its type is bool, not uint16"},
		{"holding 1 bool", "bool is for coil and discrete fields"},
		{"holding 1 string", "a string needs its length in registers"},
		{"holding 1 string 0", "want a number of registers from 1 to 123"},
		{"holding 1 string 124", "from 1 to 123"},
		{"holding 1 int16 2", "a length applies to string fields only: int16 is 1 register(s) wide"},
		{"holding 65535 float32", "runs past the last address 65535"},
		{"holding 1 int16 scal 2", `unknown option "scal"`},
		{"holding 1 int16 scal 2", `(did you mean "scale"?)`},
		{"holding 1 int16 scale", "option scale needs a value"},
		{"holding 1 int16 scale x", `scale "x": want a number`},
		{"holding 1 int16 scale 0", "scale 0"},
		{"holding 1 int16 scale 1 scale 2", "option scale given twice"},
		{"holding 1 uint32 words middle", `words "middle": want high`},
		{"holding 1 uint32 bytes big-endian", `bytes "big-endian": want big or little`},
		{"holding 1 int16 words low", "words orders the registers of a wider value: int16 is one register"},
		{"holding 1 string 4 scale 2", "scale and offset apply to numbers, not string"},
		{"coil 1 scale 2", "scale and offset apply to numbers, not bool"},
		{"coil 1 bytes little", "bytes applies to registers, not bits"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			_, err := ParseField("x", tc.spec, Defaults{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func FuzzParseField(f *testing.F) {
	for _, s := range []string{"holding 10 float32 scale 0.1", "coil 3", "input 0 string 4", "hr 1 int64 words low bytes little offset 3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		fl, err := ParseField("x", spec, Defaults{})
		if err != nil {
			return
		}
		if fl.Len < 1 || fl.End() > 1<<16 || fl.Table < Coils || fl.Table > InputRegisters {
			t.Fatalf("accepted an impossible field %+v from %q", fl, spec)
		}
		if fl.Table.Bits() != (fl.Type == Bool) {
			t.Fatalf("type %s in table %s from %q", fl.Type, fl.Table, spec)
		}
	})
}

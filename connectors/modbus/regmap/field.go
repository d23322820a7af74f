package regmap

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Table is one of the four Modbus data tables.
type Table uint8

// The Modbus tables.
const (
	Coils            Table = iota + 1 // read/write bits (FC 1, 5, 15)
	DiscreteInputs                    // read-only bits (FC 2)
	HoldingRegisters                  // read/write registers (FC 3, 6, 16)
	InputRegisters                    // read-only registers (FC 4)
)

var tableNames = [...]string{"", "coil", "discrete", "holding", "input"}

// String returns the table's name as written in a field declaration.
func (t Table) String() string {
	if int(t) < len(tableNames) {
		return tableNames[t]
	}
	return "table"
}

// Bits reports whether the table holds bits (coils, discrete inputs).
func (t Table) Bits() bool { return t == Coils || t == DiscreteInputs }

// Writable reports whether a client may write the table (coils, holding
// registers).
func (t Table) Writable() bool { return t == Coils || t == HoldingRegisters }

// tableWords are the accepted spellings of each table.
var tableWords = map[string]Table{
	"coil": Coils, "coils": Coils, "co": Coils,
	"discrete": DiscreteInputs, "discrete_input": DiscreteInputs, "discrete_inputs": DiscreteInputs, "di": DiscreteInputs,
	"holding": HoldingRegisters, "holding_register": HoldingRegisters, "holding_registers": HoldingRegisters, "hr": HoldingRegisters,
	"input": InputRegisters, "input_register": InputRegisters, "input_registers": InputRegisters, "ir": InputRegisters,
}

// Type is the type of a field's value.
type Type uint8

// Field types.
const (
	Bool Type = iota + 1
	Int16
	Uint16
	Int32
	Uint32
	Int64
	Uint64
	Float32
	Float64
	String
)

var typeNames = [...]string{"", "bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"}

// String returns the type's name.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "type"
}

// registers is how many registers a value of the type spans (0 for bool
// and string: bits, and a declared length).
func (t Type) registers() int {
	switch t {
	case Int16, Uint16:
		return 1
	case Int32, Uint32, Float32:
		return 2
	case Int64, Uint64, Float64:
		return 4
	}
	return 0
}

func typeOf(s string) (Type, bool) {
	for i, n := range typeNames {
		if i > 0 && n == s {
			return Type(i), true
		}
	}
	return 0, false
}

// ByteOrder is the order of the two bytes within each register.
type ByteOrder uint8

// Byte orders.
const (
	BigEndian    ByteOrder = iota // high byte first: the Modbus standard
	LittleEndian                  // low byte first
)

// WordOrder is the order of the registers of a multi-register value.
type WordOrder uint8

// Word orders.
const (
	HighWordFirst WordOrder = iota // most significant register at the lowest address
	LowWordFirst                   // least significant register first ("word swapped")
)

// Defaults are what a field declaration does not say.
type Defaults struct {
	Bytes ByteOrder
	Words WordOrder
}

// Field is one named value in a register map.
type Field struct {
	// Name is the field's name in the record's JSON object.
	Name  string
	Table Table
	// Addr is the 0-based address of the field's first register or bit.
	Addr uint16
	Type Type
	// Len is the field's width in registers (1 for a bit).
	Len   int
	Bytes ByteOrder
	Words WordOrder
	// Scale and Offset map the raw value: value = raw*Scale + Offset.
	// Scaled is set when either was given; the value is then a float.
	Scale, Offset float64
	Scaled        bool
}

// End is the address after the field's last register or bit.
func (f Field) End() int { return int(f.Addr) + f.Len }

// Span renders the field's location: "holding 10-11", "coil 3".
func (f Field) Span() string {
	if f.Len == 1 {
		return fmt.Sprintf("%s %d", f.Table, f.Addr)
	}
	return fmt.Sprintf("%s %d-%d", f.Table, f.Addr, f.End()-1)
}

// MaxStringRegisters bounds a string field (the most a write can carry).
const MaxStringRegisters = MaxWriteRegisters

// ParseField parses a field declaration:
//
//	TABLE ADDRESS [TYPE [LENGTH]] [bytes big|little] [words high|low] [scale X] [offset Y]
//
// TABLE is coil, discrete, holding or input (also hr, ir, di, co);
// ADDRESS is 0-based (0 to 65535); TYPE defaults to bool for coils and
// discrete inputs and to uint16 for registers; a string takes its LENGTH
// in registers (two characters each). Errors say what is wrong and
// suggest the closest word for a misspelt table, type or option.
func ParseField(name, spec string, d Defaults) (Field, error) {
	f := Field{Name: name, Bytes: d.Bytes, Words: d.Words, Scale: 1}
	w := strings.Fields(spec)
	if len(w) < 2 {
		return f, errors.New("want TABLE ADDRESS [TYPE] [options], e.g. \"holding 10 float32 scale 0.1\"")
	}
	tw := strings.ToLower(w[0])
	t, ok := tableWords[tw]
	if !ok {
		return f, fmt.Errorf("unknown table %q: want coil, discrete, holding or input%s", w[0], pipeline.DidYouMean(tw, []string{"coil", "discrete", "holding", "input"}))
	}
	f.Table = t
	a, err := strconv.ParseUint(w[1], 10, 32)
	if err != nil || a > math.MaxUint16 {
		return f, fmt.Errorf("address %q: want a whole number from 0 to 65535", w[1])
	}
	f.Addr = uint16(a)
	rest := w[2:]
	f.Type = Uint16
	if t.Bits() {
		f.Type = Bool
	}
	if len(rest) > 0 {
		if ty, ok := typeOf(strings.ToLower(rest[0])); ok {
			f.Type = ty
			rest = rest[1:]
		} else if !isOption(rest[0]) {
			return f, fmt.Errorf("unknown type %q: want %s%s", rest[0], strings.Join(typeNames[1:], ", "), pipeline.DidYouMean(strings.ToLower(rest[0]), typeNames[1:]))
		}
	}
	switch {
	case t.Bits() && f.Type != Bool:
		return f, fmt.Errorf("a %s holds one bit: its type is bool, not %s", t, f.Type)
	case !t.Bits() && f.Type == Bool:
		return f, fmt.Errorf("%s registers are 16 bits wide: bool is for coil and discrete fields (use uint16)", t)
	}
	f.Len = max(f.Type.registers(), 1)
	if f.Type == String {
		if len(rest) == 0 {
			return f, fmt.Errorf("a string needs its length in registers: \"%s %d string 8\" is 16 characters", t, f.Addr)
		}
		n, err := strconv.Atoi(rest[0])
		if err != nil || n < 1 || n > MaxStringRegisters {
			return f, fmt.Errorf("string length %q: want a number of registers from 1 to %d", rest[0], MaxStringRegisters)
		}
		f.Len, rest = n, rest[1:]
	} else if len(rest) > 0 && isNumber(rest[0]) {
		return f, fmt.Errorf("a length applies to string fields only: %s is %d register(s) wide", f.Type, f.Len)
	}
	if err := f.options(rest); err != nil {
		return f, err
	}
	if f.End() > 1<<16 {
		return f, fmt.Errorf("%s %s at %d runs past the last address 65535", f.Type, t, f.Addr)
	}
	return f, nil
}

var optionNames = []string{"bytes", "words", "scale", "offset"}

func isOption(s string) bool {
	for _, o := range optionNames {
		if strings.EqualFold(s, o) {
			return true
		}
	}
	return false
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

func (f *Field) options(w []string) error {
	seen := map[string]bool{}
	for len(w) > 0 {
		o := strings.ToLower(w[0])
		if !isOption(o) {
			return fmt.Errorf("unknown option %q: want bytes, words, scale or offset%s", w[0], pipeline.DidYouMean(o, optionNames))
		}
		if len(w) < 2 {
			return fmt.Errorf("option %s needs a value", o)
		}
		if seen[o] {
			return fmt.Errorf("option %s given twice", o)
		}
		seen[o] = true
		v := strings.ToLower(w[1])
		w = w[2:]
		switch o {
		case "bytes":
			switch v {
			case "big":
				f.Bytes = BigEndian
			case "little":
				f.Bytes = LittleEndian
			default:
				return fmt.Errorf("bytes %q: want big or little%s", v, pipeline.DidYouMean(v, []string{"big", "little"}))
			}
		case "words":
			switch v {
			case "high":
				f.Words = HighWordFirst
			case "low":
				f.Words = LowWordFirst
			default:
				return fmt.Errorf("words %q: want high (most significant register first) or low%s", v, pipeline.DidYouMean(v, []string{"high", "low"}))
			}
		case "scale", "offset":
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("%s %q: want a number", o, v)
			}
			if o == "scale" {
				if x == 0 {
					return errors.New("scale 0 would map every value to the offset")
				}
				f.Scale = x
			} else {
				f.Offset = x
			}
			f.Scaled = true
		}
	}
	switch {
	case f.Scaled && (f.Type == Bool || f.Type == String):
		return fmt.Errorf("scale and offset apply to numbers, not %s", f.Type)
	case seen["words"] && f.Len == 1 && f.Type != String:
		return fmt.Errorf("words orders the registers of a wider value: %s is one register", f.Type)
	case seen["bytes"] && f.Type == Bool:
		return errors.New("bytes applies to registers, not bits")
	}
	return nil
}

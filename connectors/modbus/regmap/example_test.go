package regmap_test

import (
	"fmt"

	"github.com/aimdb-dev/aimdb-flow/connectors/modbus/regmap"
)

// ExampleParseField reads a word-swapped float32 as a device sends it.
func ExampleParseField() {
	f, err := regmap.ParseField("temp", "holding 10 float32 words low", regmap.Defaults{})
	if err != nil {
		fmt.Println(err)
		return
	}
	v, _ := f.AppendRegs(nil, []uint16{0x0000, 0x41AC})
	fmt.Println(f.Span(), string(v))
	// Output: holding 10-11 21.5
}

// ExampleMap_Reads plans one poll: adjacent fields share a request.
func ExampleMap_Reads() {
	var fields []regmap.Field
	for name, spec := range map[string]string{"a": "holding 0 float32", "b": "holding 2", "c": "holding 10", "d": "coil 4"} {
		f, _ := regmap.ParseField(name, spec, regmap.Defaults{})
		fields = append(fields, f)
	}
	m, _ := regmap.NewMap(fields)
	for _, b := range m.Reads(0, 0, 0) {
		fmt.Println(b.Table, b.Start, b.Count)
	}
	// Output:
	// coil 4 1
	// holding 0 3
	// holding 10 1
}

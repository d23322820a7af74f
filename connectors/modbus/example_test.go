package modbus_test

import (
	"fmt"

	"github.com/aimdb-dev/aimdb-flow/connectors/modbus"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Example declares a client connector and a polled register map as a
// .flow file would, and shows how the fields are laid out and read.
func Example() {
	b, err := modbus.Factory("modbus://127.0.0.1:5020", pipeline.Params{"unit": "3", "timeout": "500ms"})
	if err != nil {
		fmt.Println(err)
		return
	}
	opts, err := b.(*modbus.Builder).ParseLinkOptions(pipeline.Inbound, "boiler", pipeline.Params{
		"interval":       "1s",
		"field.temp":     "input 0 float32",
		"field.pressure": "input 2 int16 scale 0.01",
		"field.burner":   "coil 0",
		"field.serial":   "holding 100 string 4",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range opts.(*modbus.Poll).Fields {
		fmt.Printf("%-8s %-16s %s\n", f.Name, f.Span(), f.Type)
	}
	// Output:
	// burner   coil 0           bool
	// pressure input 2          int16
	// serial   holding 100-103  string
	// temp     input 0-1        float32
}

package dpt_test

import (
	"fmt"

	"github.com/aimdb-dev/aimdb-flow/connectors/knx/dpt"
)

func ExampleType_Decode() {
	t, _, _ := dpt.Lookup("9.001")
	v, _ := t.Decode([]byte{0x0c, 0x1a})
	fmt.Println(t.Name, v, t.Unit)

	b, _ := t.Encode(21.5)
	fmt.Printf("% x\n", b)

	_, err := t.Encode(1e6)
	fmt.Println(err)
	// Output:
	// temperature 21 °C
	// 0c 33
	// dpt 9.001: does not fit: 1e+06 is out of the 2-byte float range -671088.64 to 670760.96
}

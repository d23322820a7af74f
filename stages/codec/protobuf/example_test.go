package protobuf_test

import (
	"context"
	"fmt"

	"github.com/aimdb-dev/aimdb-flow/stages/codec/protobuf"
)

func Example() {
	c, err := protobuf.Load(context.Background(), "testdata/reading.proto", "Reading")
	if err != nil {
		fmt.Println(err)
		return
	}
	p, _ := c.Encode(map[string]any{"device": "d1", "temp": 26.5})
	v, _ := c.Decode(p)
	fmt.Println(v)
	// Output: map[device:d1 temp:26.5]
}

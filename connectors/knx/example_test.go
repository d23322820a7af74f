package knx_test

import (
	"fmt"

	"github.com/aimdb-dev/aimdb-flow/connectors/knx"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// A connector declaration and its links are checked before anything
// connects; every mistake is reported at once.
func ExampleFactory() {
	b, err := knx.Factory("knx://192.168.1.10", pipeline.Params{"heartbeat": "30s", "read_on_start": "true"})
	fmt.Println(b.Scheme(), err)

	lp := b.(pipeline.LinkOptionParser)
	opts, err := lp.ParseLinkOptions(pipeline.Inbound, "1/2/*", pipeline.Params{"dpt": "9.001"})
	fmt.Printf("%+v %v\n", opts, err)

	_, err = lp.ParseLinkOptions(pipeline.Outbound, "1/2/300", pipeline.Params{"dpt": "9.01x", "servce": "write"})
	fmt.Println(err)

	_, err = knx.Factory("knx://192.168.1.10", pipeline.Params{"heartbeat": "30"})
	fmt.Println(err)
	// Output:
	// knx <nil>
	// {DPT:9.001} <nil>
	// knx destination: group address "1/2/300": level 3 is 300, want 0 to 255
	// dpt "9.01x": want a datapoint type such as 1.001, 9.001 or 16.000
	// servce: unknown outbound link setting (did you mean "service"?)
	// heartbeat "30": a duration needs a unit: write 30s for seconds (or 30ms, 30m, ...)
}

package opcua_test

import (
	"fmt"

	"github.com/aimdb-dev/aimdb-flow/connectors/opcua"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// A connector declaration and an inbound link, as the DSL reads them.
func Example() {
	b, err := opcua.Factory("opc.tcp://127.0.0.1:4840", pipeline.Params{
		"security_policy": "Basic256Sha256", "username": "flow", "password": "s3cret",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	opts, err := b.(pipeline.LinkOptionParser).ParseLinkOptions(pipeline.Inbound, "ns=2;s=Machine/Temp",
		pipeline.Params{"publishing_interval": "500ms", "deadband": "0.5"})
	fmt.Printf("%+v %v\n", opts, err)
	// Output:
	// {PublishingInterval:500ms SamplingInterval:0s QueueSize:10 Deadband:0.5 DeadbandPercent:false ValueOnly:false DispatchBad:false SkipInitial:false MaxValue:1048576} <nil>
}

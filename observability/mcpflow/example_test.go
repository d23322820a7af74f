package mcpflow_test

import (
	"fmt"
	"time"

	"github.com/aimdb-dev/aimdb-flow/observability/api"
	"github.com/aimdb-dev/aimdb-flow/observability/mcpflow"
)

// Explain reads a graph as the records API returns it and says why a
// record does not flow.
func ExampleExplain() {
	g := api.Graph{Running: true, Ready: false,
		Connectors: []api.Connector{{Name: "mqtt", Scheme: "mqtt", Ready: false, NotReady: "connection refused"}},
		Records: []api.Record{{Name: "sensor.temp", Buffer: api.Buffer{Kind: "queue", Capacity: 1024},
			Writer: api.Endpoint{Kind: "link", Name: "mqtt://sensors/+/temp"}, Readers: []api.Endpoint{{Kind: "pipeline", Name: "alerts"}}}},
		Links: []api.Link{{Direction: "in", Record: "sensor.temp", Link: "mqtt://sensors/+/temp", Connector: "mqtt"}},
	}
	ex, err := mcpflow.Explain(g, "sensor.temp", time.Now())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ex.Summary)
	for _, f := range ex.Findings {
		fmt.Println("-", f)
	}
	// Output:
	// sensor.temp is not flowing: nothing has been written to it
	// - its inbound link mqtt://sensors/+/temp cannot receive: connector mqtt is not ready (connection refused)
	// - its inbound link mqtt://sensors/+/temp has received nothing yet: is anything published to that address?
}

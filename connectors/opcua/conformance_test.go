package opcua

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/conntest"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// TestConformance runs the connector conformance suite against
// node-opcua-server: Publish writes a String variable (Topic/tN), the
// inbound link subscribes to the same variable with `payload value`, so
// what was written comes back as the data change. The outage kills the
// server (SIGKILL) and starts it again on the same port.
func TestConformance(t *testing.T) {
	var n atomic.Int32
	srv := startServer(t)
	conntest.Run(t, conntest.Features{
		NoKey:        "an OPC UA value has no key",
		NoHeaders:    "an OPC UA value carries no headers",
		NoAck:        "gopcua acknowledges publish responses itself; there is no per-value ack",
		NoRedelivery: "no per-value ack, nothing to redeliver",
		NoBlocking:   "the suite cannot stall the server's write service",
		NotFinite:    "a subscription is a live stream",
		BadLinks: []conntest.BadLink{
			{Name: "not a node id", Dir: pipeline.Inbound, Address: "Machine/Temp", Want: "not a node id"},
			{Name: "unknown setting", Dir: pipeline.Inbound, Address: "ns=2;s=X", Params: pipeline.Params{"queue_sise": "3"}, Want: `did you mean "queue_size"`},
			{Name: "bad type", Dir: pipeline.Outbound, Address: "ns=2;s=X", Params: pipeline.Params{"type": "Doubel"}, Want: "unknown OPC UA type"},
			{Name: "inbound setting on a to", Dir: pipeline.Outbound, Address: "ns=2;s=X", Params: pipeline.Params{"queue_size": "3"}, Want: "queue_size"},
		},
		Timeout: 30 * time.Second,
	}, func(t *testing.T) conntest.Peer {
		b := New(Config{Endpoint: srv.url(), Backoff: pipeline.Backoff{Min: 10 * time.Millisecond, Max: 200 * time.Millisecond}})
		return conntest.Peer{
			Builder:  b,
			Topic:    fmt.Sprintf("ns=2;s=Topic/t%d", n.Add(1)%40),
			InParams: pipeline.Params{"payload": "value", "initial_value": "skip", "sampling_interval": "0", "queue_size": "1000", "publishing_interval": "20ms"},
			Outage: func(t *testing.T) func() {
				srv.stop()
				return srv.restart
			},
		}
	})
}

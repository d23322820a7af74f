package ws

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/conntest"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// TestConformance runs the connector conformance suite against the node
// `ws` hub (testdata/hub.js): what the connector publishes to a path is
// relayed by the hub to every client on that path, the connector's own
// inbound link included. The outage kills the hub (SIGKILL) and starts it
// again on the same port.
func TestConformance(t *testing.T) {
	var n atomic.Int32
	conntest.Run(t, conntest.Features{
		NoKey:        "a WebSocket message has no key",
		NoHeaders:    "a WebSocket message carries no headers (only the text/binary type)",
		NoAck:        "WebSocket has no acknowledgements",
		NoRedelivery: "WebSocket has no acknowledgements, so nothing is redelivered",
		NoBlocking:   "Publish returns once the message is in the socket's buffers: the suite cannot stall the hub's reads",
		NotFinite:    "a WebSocket connection is a live stream",
		BadLinks: []conntest.BadLink{
			{Name: "unknown setting", Dir: pipeline.Inbound, Address: "in", Params: pipeline.Params{"subscrbe": "x"},
				Want: `did you mean "subscribe"`},
			{Name: "message type", Dir: pipeline.Outbound, Address: "out", Params: pipeline.Params{"message": "json"},
				Want: "message"},
			{Name: "leading slash", Dir: pipeline.Inbound, Address: "/abs", Want: "without a leading slash"},
			{Name: "inbound setting on a to", Dir: pipeline.Outbound, Address: "out", Params: pipeline.Params{"subscribe": "x"},
				Want: "subscribe"},
		},
		Timeout: 15 * time.Second,
	}, func(t *testing.T) conntest.Peer {
		h := startHub(t)
		b := New(Config{URL: h.url(), PingInterval: 50 * time.Millisecond,
			Backoff: pipeline.Backoff{Min: time.Millisecond, Max: 20 * time.Millisecond}})
		return conntest.Peer{
			Builder: b,
			Topic:   fmt.Sprintf("conntest/%d", n.Add(1)),
			Outage: func(t *testing.T) func() {
				h.stop()
				return h.restart
			},
		}
	})
}

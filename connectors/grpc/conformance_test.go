package grpcconn

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/conntest"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// TestConformance runs the conformance suite over a real gRPC hop: one
// connector instance is a server (its inbound link) and a client
// publishing to it (its outbound link). Publish returns when the
// server's Ack arrived, which it sends from the envelope's ack callback,
// so Publish's return is the acknowledgement and a stalled dispatcher
// blocks it.
func TestConformance(t *testing.T) {
	var n atomic.Int32
	conntest.Run(t, conntest.Features{
		NoOutage:     "the pair lives in one process; TestChainKillReceiver kills the receiving instance instead",
		NotFinite:    "a gRPC stream is live",
		NoRedelivery: "a nack travels back as a failed Ack (Publish returns the error); the sending instance's runner redelivers from its own source (TestChainKillReceiver)",
		BadLinks: []conntest.BadLink{
			{Name: "setting", Dir: pipeline.Inbound, Address: "t", Params: pipeline.Params{"qos": "1"}, Want: "unknown inbound link setting"},
			{Name: "no topic", Dir: pipeline.Outbound, Address: "", Want: "needs a topic"},
		},
		Timeout: 20 * time.Second,
	}, func(t *testing.T) conntest.Peer {
		return conntest.Peer{
			Builder: newPair(Config{Backoff: pipeline.Backoff{Min: time.Millisecond, Max: 20 * time.Millisecond}}),
			Topic:   fmt.Sprintf("conntest/%d", n.Add(1)),
		}
	})
}

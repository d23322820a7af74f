package httpconn_test

import (
	"net"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/conntest"
	httpconn "github.com/aimdb-dev/aimdb-flow/connectors/httpconn"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// TestConformance runs the connector conformance suite over real HTTP on
// loopback: the connector's webhook sink posts to its own ingest server,
// which answers only once every ack share was released (wait ack), so the
// suite sees the source's acknowledgement as Publish returning, and a nack
// (502) as a retry, that is a redelivery.
func TestConformance(t *testing.T) {
	conntest.Run(t, conntest.Features{
		NoOutage:  "the ingest server is the connector itself; there is no separate peer to take down",
		NotFinite: "an ingest server serves until cancelled",
		BadLinks: []conntest.BadLink{
			{Name: "unknown inbound setting", Dir: pipeline.Inbound, Address: "/in", Params: pipeline.Params{"bogus": "1"}, Want: "bogus: unknown inbound link setting"},
			{Name: "no path", Dir: pipeline.Inbound, Address: "", Want: "want a request path"},
			{Name: "path with a query", Dir: pipeline.Inbound, Address: "/in?x=1", Want: "must be a plain path"},
			{Name: "empty methods", Dir: pipeline.Inbound, Address: "/in", Params: pipeline.Params{"methods": ""}, Want: "methods: empty"},
			{Name: "bad method", Dir: pipeline.Outbound, Address: "out", Params: pipeline.Params{"method": "NOT A METHOD"}, Want: "not a valid HTTP method"},
			{Name: "fragment in destination", Dir: pipeline.Outbound, Address: "out#frag", Want: "must not contain '#'"},
			{Name: "unknown outbound setting", Dir: pipeline.Outbound, Address: "out", Params: pipeline.Params{"retries": "3"}, Want: "retries: unknown outbound link setting"},
		},
	}, func(t *testing.T) conntest.Peer {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		b, err := httpconn.New("http://"+ln.Addr().String(), httpconn.Config{
			Listener:  ln,
			Wait:      httpconn.WaitAck,
			KeyHeader: "X-Conntest-Key",
			Backoff:   pipeline.Backoff{Min: time.Millisecond, Max: 10 * time.Millisecond},
		})
		if err != nil {
			t.Fatal(err)
		}
		return conntest.Peer{Builder: b, Topic: "conntest/in"}
	})
}

package mem_test

import (
	"testing"

	"github.com/aimdb-dev/aimdb-flow/connectors/conntest"
	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// TestConformance runs the connector conformance suite against a fresh
// bus per subtest.
func TestConformance(t *testing.T) {
	conntest.Run(t, conntest.Features{
		NoAck:        "delivery is synchronous and sets no ack handle: Publish returns once every subscriber's dispatcher took the message",
		NoRedelivery: "no ack handle, so nothing to redeliver",
		NoOutage:     "an in-process bus has no peer to take down",
		NotFinite:    "bus topics are live: Serve runs until cancelled",
		BadLinks: []conntest.BadLink{
			{Name: "inbound setting", Dir: pipeline.Inbound, Address: "a/b", Params: pipeline.Params{"qos": "1"}, Want: "takes no link options"},
			{Name: "outbound setting", Dir: pipeline.Outbound, Address: "a/b", Params: pipeline.Params{"retain": "true"}, Want: "takes no link options"},
			{Name: "misplaced multi-level wildcard", Dir: pipeline.Inbound, Address: "a/#/b", Want: "'#' must be the last level"},
			{Name: "partial-level wildcard", Dir: pipeline.Inbound, Address: "a/b+", Want: "must occupy a whole level"},
			{Name: "empty filter", Dir: pipeline.Inbound, Address: "", Want: "empty topic filter"},
		},
	}, func(t *testing.T) conntest.Peer {
		return conntest.Peer{Builder: mem.New(nil), Topic: "conntest/readings"}
	})
}
func TestFactory(t *testing.T) {
	tests := []struct {
		p       pipeline.Params
		wantErr string
	}{
		{nil, ""},
		{pipeline.Params{"size": "3"}, "size: unknown setting (none are accepted here)"},
	}
	for _, tc := range tests {
		b, err := mem.Factory("mem://", tc.p)
		switch {
		case tc.wantErr == "" && (err != nil || b.Scheme() != "mem"):
			t.Errorf("%v: %v, %v", tc.p, b, err)
		case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
			t.Errorf("%v: err %v, want %q", tc.p, err, tc.wantErr)
		}
	}
}

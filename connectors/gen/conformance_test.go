package gen_test

import (
	"strconv"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/connectors/conntest"
	"github.com/aimdb-dev/aimdb-flow/connectors/gen"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// TestConformance runs the connector conformance suite on a finite
// generator link.
func TestConformance(t *testing.T) {
	const count = 25
	var expect []conntest.Message
	for i := 1; i <= count; i++ {
		expect = append(expect, conntest.Message{Payload: []byte(`{"seq":` + strconv.Itoa(i) + `}`)})
	}
	conntest.Run(t, conntest.Features{
		NoPublish:    "gen is a source only",
		NoKey:        "generated messages have no key",
		NoHeaders:    "generated messages have no headers",
		NoAck:        "generated messages need no acknowledgement",
		NoRedelivery: "nothing to redeliver",
		NoBlocking:   "gen is a source only",
		NoOutage:     "a generator has no peer",
		BadLinks: []conntest.BadLink{
			{Name: "outbound", Dir: pipeline.Outbound, Address: "x", Want: "source only"},
			{Name: "rate not a number", Dir: pipeline.Inbound, Address: "x", Params: pipeline.Params{"rate": "fast"}, Want: "rate"},
			{Name: "negative count", Dir: pipeline.Inbound, Address: "x", Params: pipeline.Params{"count": "-1"}, Want: "want a whole number of at least 0"},
			{Name: "unknown setting", Dir: pipeline.Inbound, Address: "x", Params: pipeline.Params{"bogus": "1"}, Want: "bogus: unknown inbound link setting"},
			{Name: "bad template", Dir: pipeline.Inbound, Address: "x", Params: pipeline.Params{"template": "{{rand}}"}, Want: `unknown function "rand"`},
		},
	}, func(t *testing.T) conntest.Peer {
		return conntest.Peer{
			Builder:  gen.New(),
			Topic:    "readings",
			InParams: pipeline.Params{"count": strconv.Itoa(count), "template": `{"seq":{{seq}}}`},
			Expect:   expect,
		}
	})
}

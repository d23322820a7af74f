package knx

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/conntest"
	"github.com/aimdb-dev/aimdb-flow/connectors/knx/internal/knxdtest"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// TestConformance runs the connector conformance suite against knxd.
// A tunnel client does not receive its own telegrams from the gateway,
// so the suite's publish-and-serve-through-one-instance round trip uses
// the echo setting: each telegram knxd confirmed (L_Data.con) is
// dispatched to the connector's own matching links. That the telegrams
// reach other bus clients, and theirs reach the connector, is
// TestRecordsToBus and TestBusToRecords (knxtool on the other side).
// Block stops knxd (SIGSTOP): no TUNNELLING_ACK, no confirmation.
// Outage stops knxd and starts it again on the same port.
func TestConformance(t *testing.T) {
	knxdtest.Require(t)
	d := knxdtest.Start(t)
	var n atomic.Int32
	conntest.Run(t, conntest.Features{
		NoKey:        "a group telegram carries a group address and a value, no key",
		NoHeaders:    "headers do not travel on KNX; inbound envelopes get knx_group, knx_source and knx_service from the telegram",
		NoAck:        "a group telegram has no end-to-end acknowledgement: the tunnel ACK answers its receipt, before dispatch",
		NoRedelivery: "no acknowledgement, so nothing is redelivered (KNX group communication is at-most-once)",
		NotFinite:    "the bus is live: Serve runs until cancelled",
		BadLinks: []conntest.BadLink{
			{Name: "unknown setting", Dir: pipeline.Inbound, Address: "1/2/3", Params: pipeline.Params{"qos": "1"},
				Want: "qos: unknown inbound link setting (known: dpt)"},
			{Name: "bad dpt", Dir: pipeline.Inbound, Address: "1/2/3", Params: pipeline.Params{"dpt": "nine"},
				Want: `dpt "nine": want a datapoint type`},
			{Name: "address out of range", Dir: pipeline.Inbound, Address: "1/2/300", Want: "level 3 is 300, want 0 to 255"},
			{Name: "not an address", Dir: pipeline.Inbound, Address: "lights", Want: "not a number or *"},
			{Name: "wildcard destination", Dir: pipeline.Outbound, Address: "1/2/*", Want: "wildcard not allowed"},
			{Name: "bad service", Dir: pipeline.Outbound, Address: "1/2/3", Params: pipeline.Params{"service": "read"},
				Want: "service \"read\": want write or response"},
		},
		Timeout: 20 * time.Second,
		Quiet:   300 * time.Millisecond,
	}, func(t *testing.T) conntest.Peer {
		cfg := testConfig(t, d.Endpoint())
		cfg.Echo = true
		// The specification's ACK timeout (1s), and heartbeats that
		// outlast the suite's stalls (Block): the stalled publish ends by
		// its context, not by the loss of the tunnel.
		cfg.AckTimeout, cfg.Heartbeat, cfg.HeartbeatTimeout = time.Second, time.Second, time.Second
		i := n.Add(1)
		return conntest.Peer{
			Builder: New(cfg),
			Topic:   fmt.Sprintf("7/%d/%d", i/256, i%256),
			Block: func(t *testing.T) func() {
				return d.Pause()
			},
			Outage: func(t *testing.T) func() {
				d.Stop()
				return d.Up
			},
		}
	})
}

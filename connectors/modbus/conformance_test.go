package modbus_test

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/conntest"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Why parts of the contract do not apply to Modbus, for every
// configuration below.
const (
	noQueue = "a register holds state, not a queue: a poll sees only the latest of several writes, so publish-then-serve round trips " +
		"cannot be exactly-once (TestWriteAndReadBack checks the write-then-poll path one value at a time)"
	noKey      = "Modbus carries register values only: no key"
	noHeaders  = "Modbus carries register values only: no headers (no trace context crosses the hop)"
	noAck      = "a polled value has nothing to acknowledge to the device"
	noRedeliv  = "a polled value has nothing to acknowledge, so nothing is redelivered (the next poll reads the current value)"
	notFinite  = "polling runs until cancelled"
	noBlocking = "PublishHonoursContext needs Serve to see what Publish wrote; TestPublishHonoursContext pauses the pymodbus peer (SIGSTOP) instead"
)

var badLinks = []conntest.BadLink{
	{Name: "no fields", Dir: pipeline.Inbound, Address: "m", Params: pipeline.Params{"interval": "1s"}, Want: "needs at least one field"},
	{Name: "unknown type", Dir: pipeline.Inbound, Address: "m", Params: pipeline.Params{"field.t": "holding 0 flaot32"}, Want: `(did you mean "float32"?)`},
	{Name: "overlap", Dir: pipeline.Inbound, Address: "m", Params: pipeline.Params{"field.a": "holding 0 float32", "field.b": "holding 1"}, Want: "field.b: holding 1 overlaps field a (holding 0-1)"},
	{Name: "misspelt setting", Dir: pipeline.Inbound, Address: "m", Params: pipeline.Params{"field.a": "coil 1", "intervall": "1s"}, Want: `intervall: unknown inbound link setting (did you mean "interval"?)`},
	{Name: "bad interval", Dir: pipeline.Inbound, Address: "m", Params: pipeline.Params{"field.a": "coil 1", "interval": "10"}, Want: "a duration needs a unit"},
	{Name: "read-only write", Dir: pipeline.Outbound, Address: "m", Params: pipeline.Params{"field.a": "input 1"}, Want: "input 1 is read-only"},
	{Name: "poll setting on a to link", Dir: pipeline.Outbound, Address: "m", Params: pipeline.Params{"field.a": "coil 1", "interval": "1s"}, Want: "interval: unknown outbound link setting"},
	{Name: "no name", Dir: pipeline.Outbound, Address: "", Params: pipeline.Params{"field.a": "coil 1"}, Want: "a modbus link needs a name"},
}

var nPeer atomic.Int32

// TestConformanceSource runs the suite on the polling side against the
// pymodbus server: the peer holds one value, the source dispatches it
// once (emit change), and an outage is the peer killed and started again.
func TestConformanceSource(t *testing.T) {
	needPymodbus(t)
	conntest.Run(t, conntest.Features{
		NoPublish: "the source side alone: " + noQueue, NoKey: noKey, NoHeaders: noHeaders,
		NoAck: noAck, NoRedelivery: noRedeliv, NotFinite: notFinite, BadLinks: badLinks,
		Timeout: 20 * time.Second,
	}, func(t *testing.T) conntest.Peer {
		peer := startTCPPeer(t, "hr:0:0,7", "hr:2:26729") // uint32 7, "hi"
		b := builder(t, peer.url(), pipeline.Params{"reconnect_min": "10ms", "reconnect_max": "100ms", "timeout": "500ms"})
		return conntest.Peer{
			Builder:  b,
			Topic:    "meter-" + strconv.Itoa(int(nPeer.Add(1))),
			InParams: pipeline.Params{"field.n": "holding 0 uint32", "field.s": "holding 2 string 1", "interval": "10ms"},
			Expect:   []conntest.Message{{Payload: []byte(`{"n":7,"s":"hi"}`)}},
			Outage: func(*testing.T) func() {
				peer.stop()
				return peer.start
			},
		}
	})
}

// TestConformanceSink runs the suite on the writing side against the
// pymodbus server: each suite message (a JSON object with seq and text)
// is written to holding registers.
func TestConformanceSink(t *testing.T) {
	needPymodbus(t)
	conntest.Run(t, conntest.Features{
		NoServe: "the sink side alone: " + noQueue, NoKey: noKey, NoHeaders: noHeaders,
		NoAck: noAck, NoRedelivery: noRedeliv, NotFinite: notFinite, NoBlocking: noBlocking, BadLinks: badLinks,
		Timeout: 20 * time.Second,
	}, func(t *testing.T) conntest.Peer {
		peer := startTCPPeer(t)
		b := builder(t, peer.url(), nil)
		return conntest.Peer{
			Builder:   b,
			Topic:     "panel-" + strconv.Itoa(int(nPeer.Add(1))),
			InParams:  pipeline.Params{"field.seq": "holding 0 uint32"},
			OutParams: pipeline.Params{"field.seq": "holding 0 uint32", "field.text": "holding 2 string 12"},
		}
	})
}

// TestConformanceServer runs the suite on a server-mode connector: its to
// links update the served registers.
func TestConformanceServer(t *testing.T) {
	conntest.Run(t, conntest.Features{
		NoServe: "a server's from links are fed by Modbus clients' writes, not by its own Publish (TestServerClientWrites)", NoKey: noKey, NoHeaders: noHeaders,
		NoAck: noAck, NoRedelivery: noRedeliv, NotFinite: notFinite, NoBlocking: "Publish updates the register image in memory: nothing to stall",
		BadLinks: []conntest.BadLink{
			{Name: "unit on a server link", Dir: pipeline.Outbound, Address: "m", Params: pipeline.Params{"field.a": "coil 1", "unit": "2"}, Want: "unit: unknown outbound link setting"},
			{Name: "server from link on an input register", Dir: pipeline.Inbound, Address: "m", Params: pipeline.Params{"field.a": "input 1"}, Want: "read-only for Modbus clients"},
			{Name: "poll setting on a server from link", Dir: pipeline.Inbound, Address: "m", Params: pipeline.Params{"field.a": "coil 1", "interval": "1s"}, Want: "interval: unknown inbound link setting"},
		},
	}, func(t *testing.T) conntest.Peer {
		b := builder(t, fmt.Sprintf("modbus://127.0.0.1:%d", freePort(t)), pipeline.Params{"mode": "server"})
		return conntest.Peer{
			Builder:   b,
			Topic:     "state",
			InParams:  pipeline.Params{"field.seq": "holding 100 uint32"},
			OutParams: pipeline.Params{"field.seq": "holding 0 uint32", "field.text": "holding 2 string 12"},
		}
	})
}

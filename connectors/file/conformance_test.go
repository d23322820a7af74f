package file_test

import (
	"path/filepath"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/connectors/conntest"
	"github.com/aimdb-dev/aimdb-flow/connectors/file"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// TestConformance runs the connector conformance suite against the real
// file system: each subtest writes a fresh file through Publish and reads
// it back through a second connector instance.
func TestConformance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.jsonl")
	conntest.Run(t, conntest.Features{
		Stored:       true,
		NoKey:        "a line holds only the payload",
		NoHeaders:    "a line holds only the payload",
		NoAck:        "file sources set no ack handle: a line that was read is not read again",
		NoRedelivery: "no ack handle, so nothing to redeliver",
		NoBlocking:   "Publish appends to a local buffer and never waits for the file system",
		NoOutage:     "a local file system cannot be taken down by the test",
		BadLinks: []conntest.BadLink{
			{Name: "follow not a bool", Dir: pipeline.Inbound, Address: path, Params: pipeline.Params{"follow": "maybe"}, Want: "follow"},
			{Name: "follow outbound", Dir: pipeline.Outbound, Address: path, Params: pipeline.Params{"follow": "true"}, Want: "follow: unknown outbound link setting"},
			{Name: "unknown setting", Dir: pipeline.Inbound, Address: path, Params: pipeline.Params{"bogus": "1"}, Want: "bogus: unknown inbound link setting (known: follow)"},
			{Name: "no path", Dir: pipeline.Inbound, Address: "", Want: "needs a path"},
		},
	}, func(t *testing.T) conntest.Peer {
		return conntest.Peer{Builder: file.New(), Topic: filepath.Join(t.TempDir(), "conntest.jsonl")}
	})
}

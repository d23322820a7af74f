package kafka_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kafka"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
	"github.com/aimdb-dev/aimdb-flow/tests/kafkatest"
	"github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kfake"
)

// TestSASLSCRAM runs a consume -> produce pipeline against a cluster that
// requires SCRAM-SHA-256, configured through the DSL factory settings; a
// wrong password keeps the connector not-ready with an authentication error.
func TestSASLSCRAM(t *testing.T) {
	mech, err := scram.Mechanism(scram.SHA256, "admin", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	cl := kafkatest.Start(t, kafkatest.Options{SASL: mech, Topics: map[string]int{"s-in": 1, "s-out": 1},
		Extra: []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "admin", "s3cret")}})
	cl.Produce(t, "s-in", kafkatest.Msg("k", "v1"), kafkatest.Msg("k", "v2"))

	params := pipeline.Params{"group": "sasl", "sasl": "scram-sha-256", "username": "admin", "password": "s3cret",
		"commit_interval": "100ms", "session_timeout": "2s", "heartbeat_interval": "200ms"}
	b, err := kafka.Factory(cl.Endpoint(), params)
	if err != nil {
		t.Fatal(err)
	}
	g := pipeline.New().Connector("kafka", b)
	g.Record("in").From("kafka://s-in", codec.Raw{})
	g.Pipeline("p").From("in").To("kafka://s-out", codec.Raw{})
	run := start(t, g, 5*time.Second)
	out := cl.Consume(t, "s-out", 2, 20*time.Second)
	if string(out[0].Value) != "v1" || string(out[1].Value) != "v2" {
		t.Fatalf("got %q %q", out[0].Value, out[1].Value)
	}
	run.stop(t, false)

	bad, err := kafka.Factory(cl.Endpoint(), pipeline.Params{"sasl": "scram-sha-256", "username": "admin", "password": "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := bad.Build(context.Background(), pipeline.BuildEnv{Name: "kafka", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	waitFor(t, "an authentication error", 10*time.Second, func() bool {
		err := c.(pipeline.Readiness).Ready()
		return err != nil && strings.Contains(err.Error(), "SASL")
	})
	t.Logf("wrong password: %v", c.(pipeline.Readiness).Ready())
}

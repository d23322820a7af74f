package metrics_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kafka"
	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/observability/metrics"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
	"github.com/aimdb-dev/aimdb-flow/tests/kafkatest"
)

// TestReadinessFollowsKafka stops and restarts the (in-process, wire
// protocol) Kafka cluster under a running graph.
func TestReadinessFollowsKafka(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"in": 1}, Persist: true})
	cfg := kafka.Config{Brokers: cl.Addrs(), Group: "metrics-ready", CommitInterval: 100 * time.Millisecond,
		SessionTimeout: 2 * time.Second, RebalanceTimeout: 3 * time.Second, HeartbeatInterval: 200 * time.Millisecond,
		RevokeTimeout: 2 * time.Second}
	b, err := kafka.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g := pipeline.New().Connector("", b).Connector("", mem.New(nil))
	g.Record("in").From("kafka://in", codec.JSON{})
	g.Pipeline("p").From("in").To("mem://out", codec.JSON{})
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{Logger: quiet, DrainTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(metrics.Handler(r))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	state := func() (int, string, float64) {
		code, body := get(t, srv.URL+"/readyz")
		_, m := get(t, srv.URL+"/metrics")
		s := parseExposition(t, strings.NewReader(m))
		return code, body, s.get(t, "aimdb_flow_connector_ready", "connector", "kafka", "scheme", "kafka")
	}
	waitUntil(t, 20*time.Second, "ready with the cluster up", func() bool {
		code, _, up := state()
		return code == http.StatusOK && up == 1
	})
	cl.Stop()
	waitUntil(t, 20*time.Second, "not ready with the cluster down", func() bool {
		code, body, up := state()
		return code == http.StatusServiceUnavailable && strings.Contains(body, "connector kafka") && up == 0
	})
	cl.Restart()
	waitUntil(t, 30*time.Second, "ready again after the cluster came back", func() bool {
		code, _, up := state()
		return code == http.StatusOK && up == 1
	})
}

package metrics_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/connectors/mqtt"
	"github.com/aimdb-dev/aimdb-flow/observability/metrics"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
	"github.com/aimdb-dev/aimdb-flow/tests/mqtttest"
)

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReadinessFollowsMosquitto stops and restarts a real mosquitto under
// a running graph: /readyz and aimdb_flow_connector_ready follow it.
func TestReadinessFollowsMosquitto(t *testing.T) {
	br := mqtttest.Start(t, mqtttest.Options{})
	b, err := mqtt.New(mqtt.Config{URL: br.URL(), ClientID: "metrics-ready"})
	if err != nil {
		t.Fatal(err)
	}
	g := pipeline.New().Connector("", b).Connector("", mem.New(nil))
	g.Record("in").From("mqtt://sensors/#", codec.JSON{})
	g.Pipeline("p").From("in").To("mem://out", codec.JSON{})
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{Logger: quiet})
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
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	state := func() (int, string, float64) {
		code, body := get(t, srv.URL+"/readyz")
		_, m := get(t, srv.URL+"/metrics")
		s := parseExposition(t, strings.NewReader(m))
		return code, body, s.get(t, "aimdb_flow_connector_ready", "connector", "mqtt", "scheme", "mqtt")
	}
	waitUntil(t, 10*time.Second, "ready with the broker up", func() bool {
		code, _, up := state()
		return code == http.StatusOK && up == 1
	})
	br.Stop()
	waitUntil(t, 10*time.Second, "not ready with the broker down", func() bool {
		code, body, up := state()
		return code == http.StatusServiceUnavailable && strings.Contains(body, "connector mqtt") && up == 0
	})
	if code, _ := get(t, srv.URL+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d while the broker is down, want 200 (the process is alive)", code)
	}
	br.Restart()
	waitUntil(t, 15*time.Second, "ready again after the broker came back", func() bool {
		code, _, up := state()
		return code == http.StatusOK && up == 1
	})
}

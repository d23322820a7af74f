package metrics_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/observability/metrics"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// Serving /metrics, /healthz and /readyz for a runner (the CLI mounts the
// handler on its --http address). Before Run the process is alive but not
// ready.
func ExampleHandler() {
	g := pipeline.New().Connector("", mem.New(nil))
	g.Record("sensor.temp").From("mem://sensors/+/temp", codec.JSON{})
	g.Pipeline("alerts").From("sensor.temp").To("mem://alerts", codec.JSON{})
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(metrics.Handler(r))
	defer srv.Close()

	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s %d %s", path, resp.StatusCode, body)
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "aimdb_flow_pipeline_in_total") || strings.HasPrefix(line, "aimdb_flow_connector_ready") {
			fmt.Println(line)
		}
	}
	// Output:
	// /healthz 200 ok
	// /readyz 503 not ready: not running
	// aimdb_flow_connector_ready{connector="mem",scheme="mem"} 0
	// aimdb_flow_pipeline_in_total{pipeline="alerts"} 0
}

package metrics_test

import (
	"context"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/observability/metrics"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// TestHopAllocs: a measured hop costs its span (one allocation) and
// nothing else, whatever the scrape side does.
func TestHopAllocs(t *testing.T) {
	lat := metrics.NewLatency(nil)
	info := &pipeline.HopInfo{Hop: pipeline.HopStage, Pipeline: "p", Stage: "1:map"}
	env := &pipeline.Envelope{}
	ctx := context.Background()
	lat.StartHop(ctx, env, info).End(nil) // create the histogram
	if n := testing.AllocsPerRun(200, func() { lat.StartHop(ctx, env, info).End(nil) }); n > 1 {
		t.Fatalf("a hop allocates %v times, want at most 1", n)
	}
}

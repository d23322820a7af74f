// Package flowrun runs a .flow text on the real runner for connector
// tests: written to a file, loaded through the DSL (dsl.LoadFiles, with
// the default registry), run until the test ends.
package flowrun

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Start writes src to a .flow file in a temporary directory, loads it,
// runs the graph and waits up to ready for it to report ready. When the
// test ends the run is cancelled and its error, if any, reported. The
// returned context ends with the run.
func Start(t testing.TB, src string, ready time.Duration) (*pipeline.Runner, context.Context) {
	t.Helper()
	flow := filepath.Join(t.TempDir(), "test.flow")
	if err := os.WriteFile(flow, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := dsl.LoadFiles(dsl.Options{}, flow)
	if err != nil {
		t.Fatal(err)
	}
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	deadline := time.Now().Add(ready)
	for r.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready after %v: %v", ready, r.Ready())
		}
		time.Sleep(5 * time.Millisecond) // readiness has no change notification
	}
	return r, ctx
}

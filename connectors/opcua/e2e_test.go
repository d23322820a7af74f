package opcua_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/opcua"
	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// A .flow pipeline through the runner against node-opcua-server: a
// temperature above 80 set on the server switches Machine/On off, by a
// write the pipeline makes.
func TestFlowAgainstServer(t *testing.T) {
	srv := opcua.StartServer(t)
	flow := filepath.Join(t.TempDir(), "opcua.flow")
	src := `connector plc "` + srv.URL() + `"
record temp {
  from "plc://ns=2;s=Machine/Temp" decode json initial_value skip publishing_interval 50ms
}
pipeline overheat {
  from temp
  filter ` + "`value > 80.0`" + `
  map ` + "`" + `{"value": false}` + "`" + `
  to "plc://ns=2;s=Machine/On" encode json
}
`
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
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for r.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", r.Ready())
		}
		time.Sleep(5 * time.Millisecond) // readiness has no change notification
	}
	srv.Set("Machine/On", "Boolean", true, "")
	srv.WaitWrite("Machine/On=true")
	srv.Set("Machine/Temp", "Double", 85.5, "")
	srv.WaitWrite("Machine/On=false")
}

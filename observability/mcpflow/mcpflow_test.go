package mcpflow_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/observability/api"
	"github.com/aimdb-dev/aimdb-flow/observability/mcpflow"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

const flow = `
connector gen "gen://"

record sensor.temp {
  from "gen://temp" decode json rate 200 template ` + "`" + `{"device":"d-1","temp":{{float 15 40}}}` + "`" + `
  buffer ring 64
}
record setpoint {
  settable
  buffer latest
}
record applied {
  buffer latest
}
record cold {
  buffer latest
}
pipeline apply {
  from setpoint
  into applied
}
pipeline never {
  from sensor.temp
  filter ` + "`temp > 1000`" + `
  into cold
}
`

const token = "mcp-token"

// session runs flow on a real runner behind the records API and connects
// an MCP client (the SDK's own) to an mcpflow server for it.
func session(t *testing.T, opts mcpflow.Options) (*mcp.ClientSession, *pipeline.Runner) {
	t.Helper()
	g, err := dsl.Load(dsl.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, dsl.Source{Name: "t.flow", Src: []byte(flow)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{DrainTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	hs := httptest.NewServer(api.New(r, api.Options{Token: token}))
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		cancel()
		<-done
	})
	deadline := time.Now().Add(15 * time.Second)
	for !r.Running() || r.Stats().Pipelines["never"].In < 5 {
		if time.Now().After(deadline) {
			t.Fatal("the graph did not run")
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv := mcpflow.New(&api.Client{BaseURL: hs.URL, Token: token}, opts)
	st, ct := mcp.NewInMemoryTransports()
	ss, err := srv.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "v0"}, nil)
	cs, err := client.Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close(); ss.Wait() })
	return cs, r
}

// call calls a tool and returns its text and whether it is an error.
func call(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) (string, bool) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String(), res.IsError
}

func TestTools(t *testing.T) {
	cs, r := session(t, mcpflow.Options{})
	ctx := context.Background()
	list, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range list.Tools {
		names = append(names, tl.Name)
	}
	got := strings.Join(names, " ")
	for _, want := range []string{"list_records", "read_record", "watch_record", "read_graph", "read_stats", "explain_record", "validate_flow"} {
		if !strings.Contains(got, want) {
			t.Errorf("tools %s lack %s", got, want)
		}
	}
	if strings.Contains(got, "set_record") {
		t.Errorf("set_record offered without AllowSet: %s", got)
	}

	out, isErr := call(t, cs, "list_records", nil)
	var recs []api.Record
	if isErr || json.Unmarshal([]byte(out), &recs) != nil || len(recs) != 4 {
		t.Fatalf("list_records: %s", out)
	}
	out, isErr = call(t, cs, "read_record", map[string]any{"name": "sensor.temp"})
	if isErr || !strings.Contains(out, `"device": "d-1"`) {
		t.Errorf("read_record: %s", out)
	}
	out, isErr = call(t, cs, "read_record", map[string]any{"name": "nope"})
	if !isErr || !strings.Contains(out, `unknown record "nope"`) {
		t.Errorf("read_record of an unknown record: %v %s", isErr, out)
	}
	out, isErr = call(t, cs, "watch_record", map[string]any{"pattern": "sensor.*", "seconds": 30, "max": 3})
	var w struct {
		Records []string
		Values  []api.Event
		Stopped string
	}
	if isErr || json.Unmarshal([]byte(out), &w) != nil || len(w.Values) != 3 || w.Stopped != "after 3 values" || w.Records[0] != "sensor.temp" {
		t.Errorf("watch_record: %s", out)
	}
	out, isErr = call(t, cs, "read_graph", nil)
	if isErr || !strings.Contains(out, `"pipelines"`) || !strings.Contains(out, `"gen://temp"`) {
		t.Errorf("read_graph: %.300s", out)
	}
	out, isErr = call(t, cs, "read_stats", nil)
	if isErr || !strings.Contains(out, `"timings"`) || !strings.Contains(out, `"dead_letters"`) {
		t.Errorf("read_stats: %.300s", out)
	}
	// set_record is not there: calling it fails.
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "set_record", Arguments: map[string]any{"name": "setpoint", "value": 1}}); err == nil && !res.IsError {
		t.Error("set_record worked without AllowSet")
	}
	if _, ok := r.Latest("setpoint"); ok {
		t.Error("setpoint was set by a read-only MCP server")
	}
}

func TestExplain(t *testing.T) {
	cs, _ := session(t, mcpflow.Options{})
	tests := []struct {
		record  string
		flowing bool
		want    string
	}{
		{"sensor.temp", true, "sensor.temp is flowing"},
		{"setpoint", false, "nobody has set it yet"},
		{"applied", false, "reads record setpoint, which has not been written yet"},
		{"cold", false, "(the others were filtered out or failed)"},
	}
	for _, tc := range tests {
		out, isErr := call(t, cs, "explain_record", map[string]any{"name": tc.record})
		var ex mcpflow.Explanation
		if isErr || json.Unmarshal([]byte(out), &ex) != nil {
			t.Fatalf("explain_record %s: %s", tc.record, out)
		}
		if ex.Flowing != tc.flowing || !strings.Contains(ex.Summary+" "+strings.Join(ex.Findings, " | "), tc.want) {
			t.Errorf("explain %s: %+v, want flowing=%v and %q", tc.record, ex, tc.flowing, tc.want)
		}
	}
}

func TestValidateFlow(t *testing.T) {
	cs, _ := session(t, mcpflow.Options{})
	out, isErr := call(t, cs, "validate_flow", map[string]any{"text": flow})
	if isErr || !strings.Contains(out, `"valid": true`) {
		t.Errorf("valid flow: %s", out)
	}
	out, isErr = call(t, cs, "validate_flow", map[string]any{"text": "record r {\n  buffer ring\n}\n", "name": "bad.flow"})
	if isErr || !strings.Contains(out, `"valid": false`) || !strings.Contains(out, "bad.flow:2:") {
		t.Errorf("invalid flow: %s", out)
	}
}

func TestSetOnlyWhenAllowed(t *testing.T) {
	cs, r := session(t, mcpflow.Options{AllowSet: true})
	out, isErr := call(t, cs, "set_record", map[string]any{"name": "setpoint", "value": map[string]any{"temp": 21}})
	if isErr || !strings.Contains(out, `"temp": 21`) {
		t.Fatalf("set_record: %s", out)
	}
	if env, ok := r.Latest("setpoint"); !ok || env.Value == nil {
		t.Error("setpoint not set")
	}
	out, isErr = call(t, cs, "set_record", map[string]any{"name": "sensor.temp", "value": 1})
	if !isErr || !strings.Contains(out, "not settable") {
		t.Errorf("set_record of a non-settable record: %v %s", isErr, out)
	}
}

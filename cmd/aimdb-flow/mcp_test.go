package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/aimdb-dev/aimdb-flow/observability/api"
)

// The built binary's mcp command, driven by the SDK's own client over
// stdio, reads a running instance; set_record exists only with
// --allow-set.
func TestMCPCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildCLI(t)
	const tok = "mcp-cli-token"
	base := startRun(t, recordsFlow, nil, "--token", tok)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, allowSet := range []bool{false, true} {
		args := []string{"mcp", "--connect", base}
		if allowSet {
			args = append(args, "--allow-set")
		}
		cmd := exec.Command(bin, args...)
		cmd.Env = append(cmd.Environ(), api.TokenEnv+"="+tok)
		client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "v0"}, nil)
		cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
		if err != nil {
			t.Fatal(err)
		}
		list, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tl := range list.Tools {
			names = append(names, tl.Name)
		}
		if got := strings.Contains(strings.Join(names, " "), "set_record"); got != allowSet {
			t.Errorf("--allow-set %v: tools %v", allowSet, names)
		}
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "explain_record", Arguments: map[string]any{"name": "setpoint"}})
		if err != nil || res.IsError {
			t.Fatalf("explain_record: %v %+v", err, res)
		}
		if txt := res.Content[0].(*mcp.TextContent).Text; !strings.Contains(txt, "nobody has set it yet") {
			t.Errorf("explain_record setpoint: %s", txt)
		}
		if allowSet {
			res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "set_record", Arguments: map[string]any{"name": "setpoint", "value": 7}})
			if err != nil || res.IsError {
				t.Fatalf("set_record: %v %+v", err, res)
			}
			v, err := (&api.Client{BaseURL: base, Token: tok}).Value(ctx, "setpoint")
			if err != nil || string(v.Value) != "7" {
				t.Errorf("setpoint after set_record: %+v %v", v, err)
			}
		}
		if err := cs.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}
	r := runCLI(t, ctx, nil, "mcp")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--connect") {
		t.Errorf("mcp without --connect: %+v", r)
	}
}

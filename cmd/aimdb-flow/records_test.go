package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/observability/api"
)

const recordsFlow = `connector gen "gen://"

record sensor.temp {
  from "gen://temp" decode json rate 100 template ` + "`" + `{"device":"d-1","temp":{{float 15 40}}}` + "`" + `
  buffer ring 64
}
record setpoint {
  settable
  buffer latest
}
record applied {
  buffer latest
}
pipeline apply {
  from setpoint
  set applied ` + "`true`" + `
  into applied
}
pipeline hot {
  from sensor.temp
  filter ` + "`temp > 30`" + `
  into applied.hot
}
record applied.hot {
  buffer ring 8
}
`

// startRun runs a flow in-process with --http and the given extra flags
// until the end of the test; it returns the base URL once /readyz is 200.
func startRun(t *testing.T, src string, env map[string]string, flags ...string) string {
	t.Helper()
	dir := t.TempDir()
	p := writeFile(t, dir, "r.flow", src)
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	args := append([]string{"run", "--http", "127.0.0.1:" + port, "--status", "off"}, flags...)
	go func() { done <- runCLI(t, ctx, env, append(args, p)...) }()
	t.Cleanup(func() {
		cancel()
		select {
		case r := <-done:
			if r.code != exitOK {
				t.Errorf("run: %+v", r)
			}
		case <-time.After(20 * time.Second):
			t.Error("run did not stop")
		}
	})
	base := "http://127.0.0.1:" + port
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		select {
		case r := <-done:
			t.Fatalf("run ended: %+v", r)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz never answered 200")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRecordsCommands(t *testing.T) {
	const tok = "cli-token"
	base := startRun(t, recordsFlow, nil, "--token", tok)
	ctx := context.Background()
	withTok := map[string]string{api.TokenEnv: tok}

	r := runCLI(t, ctx, nil, "records", "ls", "--connect", base, "--token", tok)
	if r.code != exitOK || !strings.Contains(r.stdout, "RECORD") || !strings.Contains(r.stdout, "setpoint") ||
		!strings.Contains(r.stdout, "ring 64") || !strings.Contains(r.stdout, "settable") {
		t.Fatalf("records ls: %+v", r)
	}
	// The token from the environment; --json.
	r = runCLI(t, ctx, withTok, "records", "ls", "--connect", base, "--json")
	var recs []api.Record
	if r.code != exitOK || json.Unmarshal([]byte(r.stdout), &recs) != nil || len(recs) != 4 {
		t.Fatalf("records ls --json: %+v", r)
	}
	// Without the token.
	r = runCLI(t, ctx, nil, "records", "ls", "--connect", base)
	if r.code != exitProblems || !strings.Contains(r.stderr, "401") || !strings.Contains(r.stderr, "--token") {
		t.Errorf("records ls without a token: %+v", r)
	}
	r = runCLI(t, ctx, nil, "records", "ls", "--connect", base, "--token", "wrong")
	if r.code != exitProblems || !strings.Contains(r.stderr, "invalid token") {
		t.Errorf("records ls with a wrong token: %+v", r)
	}

	// watch (in the background) sees two sets.
	watched := make(chan result, 1)
	go func() {
		watched <- runCLI(t, ctx, withTok, "records", "watch", "--connect", base, "setpoint", "--count", "2", "--json")
	}()
	c := &api.Client{BaseURL: base, Token: tok}
	deadline := time.Now().Add(15 * time.Second)
	for {
		ws, err := c.Watchers(ctx)
		if err == nil && len(ws) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the watch never opened: %v %v", ws, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, v := range []string{`{"temp":21}`, `{"temp":22}`} {
		r = runCLI(t, ctx, withTok, "records", "set", "--connect", base, "setpoint", v)
		if r.code != exitOK || strings.TrimSpace(r.stdout) != "set setpoint = "+v {
			t.Fatalf("records set: %+v", r)
		}
	}
	select {
	case r = <-watched:
	case <-time.After(15 * time.Second):
		t.Fatal("records watch --count 2 did not end")
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != exitOK || len(lines) != 2 {
		t.Fatalf("records watch: %+v", r)
	}
	for i, l := range lines {
		var ev api.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Seq != uint64(i+1) || ev.Record != "setpoint" {
			t.Errorf("watch line %q: %v", l, err)
		}
	}
	r = runCLI(t, ctx, withTok, "records", "get", "--connect", base, "setpoint")
	if r.code != exitOK || !strings.Contains(r.stdout, `"temp": 22`) || !strings.Contains(r.stdout, "record  setpoint") {
		t.Errorf("records get: %+v", r)
	}
	r = runCLI(t, ctx, withTok, "records", "get", "--connect", base, "applied", "--json")
	if r.code != exitOK || !strings.Contains(r.stdout, `"applied": true`) {
		t.Errorf("records get applied --json: %+v", r)
	}
	// Errors say why.
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"set", "sensor.temp", "1"}, exitProblems, "not settable"},
		{[]string{"set", "nope", "1"}, exitProblems, `unknown record "nope"`},
		{[]string{"set", "setpoint", "on"}, exitUsage, "not a JSON value"},
		{[]string{"get", "nope"}, exitProblems, "404"},
		{[]string{"frob"}, exitUsage, "unknown subcommand"},
		{[]string{"watch"}, exitUsage, "patterns"},
	} {
		r = runCLI(t, ctx, withTok, append([]string{"records", "--connect", base}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("records %v: %+v, want exit %d and %q", tc.args, r, tc.code, tc.want)
		}
	}
	r = runCLI(t, ctx, nil, "records", "ls")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--connect") {
		t.Errorf("records ls without --connect: %+v", r)
	}

	// graph --connect: tables, or the API's JSON.
	r = runCLI(t, ctx, withTok, "graph", "--connect", base)
	for _, want := range []string{"CONNECTOR", "gen", "PIPELINE", "apply", "1:set", "LINK", "gen://temp", "running, ready"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("graph --connect lacks %q: %+v", want, r)
		}
	}
	r = runCLI(t, ctx, withTok, "graph", "--connect", base, "--json")
	var g api.Graph
	if r.code != exitOK || json.Unmarshal([]byte(r.stdout), &g) != nil || len(g.Pipelines) != 2 || g.Connectors[0].Endpoint != "gen://" {
		t.Errorf("graph --connect --json: %+v", r)
	}
	if r := runCLI(t, ctx, withTok, "graph", "--connect", base, "x.flow"); r.code != exitUsage {
		t.Errorf("graph --connect with a file: %+v", r)
	}
	// /stats is behind the token too.
	resp, err := http.Get(base + "/stats")
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/stats without the token: %v %v", resp, err)
	}
	if resp != nil {
		resp.Body.Close()
	}
}

func TestRunHTTPNeedsTokenOffLoopback(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "r.flow", recordsFlow)
	// Bounded: should the check be missing, the run ends with the context.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := runCLI(t, ctx, nil, "run", "--http", "0.0.0.0:"+freePort(t), p)
	if r.code != exitUsage || !strings.Contains(r.stderr, "needs a token") {
		t.Fatalf("non-loopback --http without a token: %+v", r)
	}
	r = runCLI(t, ctx, nil, "run", "--token", "x", p)
	if r.code != exitUsage || !strings.Contains(r.stderr, "add --http") {
		t.Fatalf("--token without --http: %+v", r)
	}
}

// The built binary talks to a running demo (pipelines/demo.flow on its
// embedded broker): records watch with a pattern, and records set refused
// without a token.
func TestRecordsBinaryAgainstDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildCLI(t)
	demo, err := os.ReadFile("../../pipelines/demo.flow")
	if err != nil {
		t.Fatal(err)
	}
	base := startRun(t, string(demo), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "records", "watch", "sensor.*", "--count", "3", "--json")
	cmd.Env = append(os.Environ(), connectEnv+"="+base)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("records watch: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 {
		t.Fatalf("records watch --count 3 printed:\n%s", out)
	}
	for _, l := range lines {
		var ev api.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Record != "sensor.temp" || !strings.Contains(string(ev.Value.Value), `"device"`) {
			t.Errorf("event %q: %v", l, err)
		}
	}
	cmd = exec.CommandContext(ctx, bin, "records", "set", "--connect", base, "readings", "1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitProblems || !strings.Contains(stderr.String(), "needs a token") {
		t.Errorf("records set without a token: %v, %s", err, stderr.String())
	}
	cmd = exec.CommandContext(ctx, bin, "records", "ls", "--connect", base)
	out, err = cmd.Output()
	if err != nil || !strings.Contains(string(out), "sensor.temp") || !strings.Contains(string(out), "queue 1024") {
		t.Errorf("records ls: %v\n%s", err, out)
	}
}

// buildCLI builds the binary for a test that execs it.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "aimdb-flow")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

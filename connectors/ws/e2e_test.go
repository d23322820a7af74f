package ws_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/ws"
	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// client runs testdata/client.js (npm ws) against url, sending msgs once
// connected; its received messages arrive on the returned channel.
func client(t *testing.T, url string, msgs ...string) <-chan string {
	t.Helper()
	cmd := exec.Command("node", append([]string{"testdata/client.js", url}, msgs...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+ws.NodeModules(t))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	sc := bufio.NewScanner(out)
	if !sc.Scan() || !strings.Contains(sc.Text(), `"open"`) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("client did not connect to %s: %q", url, sc.Text())
	}
	go func() {
		defer close(lines)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return lines
}

// A .flow pipeline between two independent WebSocket clients: readings
// sent by one (npm ws) reach the pipeline through the hub, and the alerts
// it publishes reach the other.
func TestFlowBetweenWebSocketClients(t *testing.T) {
	h := ws.StartHub(t)
	dir := t.TempDir()
	flow := filepath.Join(dir, "ws.flow")
	src := `connector hub "` + h.URL() + `" ping_interval 1s
record readings {
  from "hub://ticker" decode json subscribe ` + "`" + `{"subscribe":"ticker"}` + "`" + `
}
pipeline alerts {
  from readings
  filter ` + "`price > 10`" + `
  set alert ` + "`true`" + `
  to "hub://alerts" encode json
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
	deadline := time.Now().Add(10 * time.Second)
	for r.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", r.Ready())
		}
		time.Sleep(5 * time.Millisecond) // readiness has no change notification
	}
	alerts := client(t, h.URL()+"/alerts")
	client(t, h.URL()+"/ticker", `{"price":5}`, `{"price":12.5}`, `{"price":9}`, `{"price":30}`)
	want := []string{`{"price":12.5,"alert":true}`, `{"price":30,"alert":true}`}
	timeout := time.After(10 * time.Second)
	for _, w := range want {
		select {
		case got := <-alerts:
			if got != w {
				t.Fatalf("alert %q, want %q", got, w)
			}
		case <-timeout:
			t.Fatalf("alert %q did not arrive", w)
		}
	}
}

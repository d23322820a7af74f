package ws_test

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/ws"
	"github.com/aimdb-dev/aimdb-flow/tests/flowrun"
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
	flowrun.Start(t, src, 10*time.Second)
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

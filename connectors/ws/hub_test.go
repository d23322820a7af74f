package ws

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/tests/nodepeer"
)

// hub is the WebSocket peer of the tests: testdata/hub.js on the npm `ws`
// library, run by node (installed by scripts/ensure-ws.sh), on 127.0.0.1.
type hub struct {
	t    *testing.T
	port int
	env  []string

	mu      sync.Mutex
	cmd     *exec.Cmd
	got     []hubMsg      // every message the hub received, in order
	changed chan struct{} // closed and replaced when got grows
	wait    chan struct{}
}

// hubMsg is one message the hub received.
type hubMsg struct {
	Path   string `json:"path"`
	Data   string `json:"data"`
	Binary bool   `json:"binary"`
}

// nodeModules is where scripts/ensure-ws.sh installs ws and wscat.
func nodeModules(t *testing.T) string { return nodepeer.Modules(t) }

// startHub starts the hub on a free port; env adds environment variables
// (WS_TOKEN, BIG).
func startHub(t *testing.T, env ...string) *hub {
	t.Helper()
	h := &hub{t: t, env: append([]string{"NODE_PATH=" + nodeModules(t)}, env...), changed: make(chan struct{})}
	h.start(0)
	t.Cleanup(h.stop)
	return h
}

func (h *hub) start(port int) {
	h.t.Helper()
	cmd := exec.Command("node", "testdata/hub.js", fmt.Sprint(port))
	cmd.Env = append(os.Environ(), h.env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, 8<<20)
	if !sc.Scan() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		h.t.Fatalf("hub did not start: %v", sc.Err())
	}
	var hello struct{ Listening int }
	if err := json.Unmarshal(sc.Bytes(), &hello); err != nil || hello.Listening == 0 {
		h.t.Fatalf("hub said %q", sc.Text())
	}
	done := make(chan struct{})
	h.mu.Lock()
	h.cmd, h.port, h.wait = cmd, hello.Listening, done
	h.mu.Unlock()
	go func() {
		defer close(done)
		for sc.Scan() {
			var m hubMsg
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				h.mu.Lock()
				h.got = append(h.got, m)
				close(h.changed)
				h.changed = make(chan struct{})
				h.mu.Unlock()
			}
		}
		_ = cmd.Wait()
	}()
}

// stop kills the hub (SIGKILL: its connections end abruptly).
func (h *hub) stop() {
	h.mu.Lock()
	cmd, done := h.cmd, h.wait
	h.cmd = nil
	h.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// restart starts the hub again on the same port (node listens with
// SO_REUSEADDR: the port is free again once the old process is gone).
func (h *hub) restart() {
	h.t.Helper()
	h.start(h.port)
}

func (h *hub) url() string { return fmt.Sprintf("ws://127.0.0.1:%d", h.port) }

// received returns the messages the hub received on path so far, and a
// channel closed when it receives another.
func (h *hub) received(path string) ([]string, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, m := range h.got {
		if m.Path == path {
			out = append(out, m.Data)
		}
	}
	return out, h.changed
}

// waitReceived waits until the hub received n messages on path (or
// fails after 10s).
func (h *hub) waitReceived(path string, n int) []string {
	h.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		got, changed := h.received(path)
		if len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-timeout:
			h.t.Fatalf("hub received %d messages on %s, want %d: %s", len(got), path, n, strings.Join(got, ", "))
		}
	}
}

package opcua

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// server is the OPC UA peer of the tests: testdata/server.js on the npm
// node-opcua-server package (scripts/ensure-opcua.sh), on 127.0.0.1.
type server struct {
	t    *testing.T
	port int
	pki  string
	env  []string

	mu      sync.Mutex
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	writes  []string // "NODE=VALUE" of every client write
	changed chan struct{}
	wait    chan struct{}
}

// nodeModules is where scripts/ensure-opcua.sh installs node-opcua-server.
func nodeModules(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("AIMDB_NODE_OPCUA")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(cache, "aimdb-flow", "node-opcua")
	}
	mods := filepath.Join(dir, "node_modules")
	_, err := os.Stat(filepath.Join(mods, "node-opcua-server", "package.json"))
	_, nerr := exec.LookPath("node")
	if err != nil || nerr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("OPC UA peer missing (node: %v, node-opcua-server: %v): make deps runs scripts/ensure-opcua.sh", nerr, err)
		}
		t.Skipf("OPC UA peer missing (node: %v, node-opcua-server: %v): run scripts/ensure-opcua.sh", nerr, err)
	}
	return mods
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServer starts the server on a free port (env: OPCUA_USER ...).
func startServer(t *testing.T, env ...string) *server {
	t.Helper()
	s := &server{t: t, pki: t.TempDir(), changed: make(chan struct{}),
		env: append([]string{"NODE_PATH=" + nodeModules(t)}, env...)}
	s.start(freePort(t))
	t.Cleanup(s.stop)
	return s
}

func (s *server) start(port int) {
	s.t.Helper()
	cmd := exec.Command("node", "testdata/server.js", fmt.Sprint(port), s.pki)
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Stderr = io.Discard
	in, err := cmd.StdinPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, 64<<20)
	var hello struct{ Listening int }
	for hello.Listening == 0 {
		if !sc.Scan() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			s.t.Fatalf("OPC UA server did not start: %v", sc.Err())
		}
		_ = json.Unmarshal(sc.Bytes(), &hello)
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.stdin, s.port, s.wait = cmd, in, port, done
	s.mu.Unlock()
	go func() {
		defer close(done)
		for sc.Scan() {
			var m struct {
				Write string
				Value any
			}
			if json.Unmarshal(sc.Bytes(), &m) == nil && m.Write != "" {
				s.mu.Lock()
				s.writes = append(s.writes, fmt.Sprintf("%s=%v", m.Write, m.Value))
				close(s.changed)
				s.changed = make(chan struct{})
				s.mu.Unlock()
			}
		}
		_ = cmd.Wait()
	}()
}

// stop kills the server (SIGKILL, by PID).
func (s *server) stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.wait
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// restart starts the server again on the same port.
func (s *server) restart() {
	s.t.Helper()
	s.start(s.port)
}

func (s *server) url() string { return fmt.Sprintf("opc.tcp://127.0.0.1:%d/aimdb", s.port) }

// set drives a variable from the server side (value, type, status).
func (s *server) set(node, typ string, value any, status string) {
	s.t.Helper()
	b, _ := json.Marshal(map[string]any{"set": node, "type": typ, "value": value, "status": status})
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.stdin.Write(append(b, '\n')); err != nil {
		s.t.Fatal(err)
	}
}

// waitWrite waits until a client wrote want ("Machine/Count=42").
func (s *server) waitWrite(want string) {
	s.t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		s.mu.Lock()
		got, ch := slicesContains(s.writes, want), s.changed
		all := strings.Join(s.writes, ", ")
		s.mu.Unlock()
		if got {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			s.t.Fatalf("server saw writes %s, want %s", all, want)
		}
	}
}

func slicesContains(l []string, x string) bool {
	for _, v := range l {
		if v == x {
			return true
		}
	}
	return false
}

package modbus_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/modbus"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// python is Debian's interpreter, where python3-pymodbus is installed
// (a python3 earlier on PATH may be another installation).
const python = "/usr/bin/python3"

// need skips the test when a peer program is missing, unless CI is set:
// then a missing peer is a failure (scripts/ensure-modbus.sh installs
// them).
func need(t *testing.T, what string, check func() error) {
	t.Helper()
	if err := check(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing (run scripts/ensure-modbus.sh): %v", what, err)
		}
		t.Skipf("%s is missing (run scripts/ensure-modbus.sh): %v", what, err)
	}
}

func needPymodbus(t *testing.T) {
	need(t, "python3-pymodbus", func() error { return exec.Command(python, "-c", "import pymodbus, serial").Run() })
}

// waitFor polls cond every 10ms until it holds or d passed.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-t.C
	}
	return true
}

// freePort returns a loopback port nobody listens on (now).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// pyPeer is the pymodbus test server (testdata/peer.py), started and
// stopped by PID.
type pyPeer struct {
	t    *testing.T
	args []string
	port int // TCP; 0 for RTU

	mu  sync.Mutex
	cmd *exec.Cmd
}

// startTCPPeer starts the pymodbus server on a free loopback port with
// the given --set presets, and waits until it accepts connections.
func startTCPPeer(t *testing.T, sets ...string) *pyPeer {
	t.Helper()
	needPymodbus(t)
	p := &pyPeer{t: t, port: freePort(t)}
	p.args = []string{"--tcp", strconv.Itoa(p.port)}
	for _, s := range sets {
		p.args = append(p.args, "--set", s)
	}
	t.Cleanup(p.stop)
	p.start()
	return p
}

func (p *pyPeer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }
func (p *pyPeer) url() string  { return "modbus://" + p.addr() }

func (p *pyPeer) start() {
	p.t.Helper()
	script, _ := filepath.Abs("testdata/peer.py")
	cmd := exec.Command(python, append([]string{script}, p.args...)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.cmd = cmd
	p.mu.Unlock()
	if p.port == 0 {
		return
	}
	ok := waitFor(20*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", p.addr(), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if !ok {
		p.t.Fatalf("pymodbus peer does not listen on %s", p.addr())
	}
}

// stop kills the peer (by PID) and waits for it.
func (p *pyPeer) stop() {
	p.mu.Lock()
	cmd := p.cmd
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a paused peer must run to die
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// pause stops the peer process (SIGSTOP): it answers nothing until
// resumed.
func (p *pyPeer) pause() (resume func()) {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGSTOP)
	return func() { _ = cmd.Process.Signal(syscall.SIGCONT) }
}

// recorder is a pipeline.Dispatcher that keeps what it got.
type recorder struct {
	mu   sync.Mutex
	envs []pipeline.Envelope
	ch   chan struct{}
}

func newRecorder() *recorder { return &recorder{ch: make(chan struct{}, 1)} }

func (r *recorder) Dispatch(_ context.Context, env *pipeline.Envelope) error {
	r.mu.Lock()
	r.envs = append(r.envs, *env)
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
	return nil
}

func (r *recorder) all() []pipeline.Envelope {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]pipeline.Envelope(nil), r.envs...)
}

// waitPayload waits for a dispatched payload equal to want, returning
// whether it came within d.
func (r *recorder) waitPayload(d time.Duration, want string) bool {
	return waitFor(d, func() bool {
		for _, e := range r.all() {
			if string(e.Payload) == want {
				return true
			}
		}
		return false
	})
}

func (r *recorder) last() string {
	all := r.all()
	if len(all) == 0 {
		return ""
	}
	return string(all[len(all)-1].Payload)
}

// builder makes a modbus builder from a DSL-like endpoint and settings.
func builder(t *testing.T, endpoint string, p pipeline.Params) *modbus.Builder {
	t.Helper()
	b, err := modbus.Factory(endpoint, p)
	if err != nil {
		t.Fatal(err)
	}
	return b.(*modbus.Builder)
}

// linkOpts parses a link's settings as the graph would.
func linkOpts(t *testing.T, b *modbus.Builder, dir pipeline.Direction, addr string, p pipeline.Params) any {
	t.Helper()
	o, err := b.ParseLinkOptions(dir, addr, p)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// serve builds b with one inbound link and serves it into a recorder
// until the test ends.
func serve(t *testing.T, b *modbus.Builder, addr string, p pipeline.Params) (pipeline.Connector, *recorder) {
	t.Helper()
	opts := linkOpts(t, b, pipeline.Inbound, addr, p)
	subs := []pipeline.Subscription{{Filter: addr, Options: opts, Record: addr}}
	c, err := b.Build(context.Background(), pipeline.BuildEnv{Name: "plc", Inbound: subs})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.(pipeline.Source).Serve(ctx, subs, rec) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Serve: %v", err)
		}
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		if err := c.Close(cctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c, rec
}

// build builds b for outbound links only, closed when the test ends.
func build(t *testing.T, b *modbus.Builder) pipeline.Connector {
	t.Helper()
	c, err := b.Build(context.Background(), pipeline.BuildEnv{Name: "plc"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Close(cctx)
	})
	return c
}

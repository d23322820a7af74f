// Package knxdtest runs Debian's knxd as a KNXnet/IP tunnelling server
// for tests, over its dummy bus, and drives the bus with knxtool.
//
// knxd binds every interface on its UDP port and joins the KNX multicast
// group, with no option to bind loopback only. Main therefore re-runs the
// test binary in a private network namespace (CLONE_NEWNET, as root)
// whose only interface is lo, with the multicast route on lo: knxd, the
// connector and knxtool then share a network that is loopback and nothing
// else. Without root, knxd or ip, the tests that need knxd skip (fail
// with CI=true).
package knxdtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const envNetns = "AIMDB_KNX_NETNS"

// Main runs m inside a private network namespace (see the package doc)
// and returns the exit code. Call it from TestMain: os.Exit(knxdtest.Main(m)).
func Main(m *testing.M) int {
	switch os.Getenv(envNetns) {
	case "1": // the child: bring up loopback with a multicast route
		for _, args := range [][]string{
			{"link", "set", "lo", "multicast", "on"},
			{"link", "set", "lo", "up"},
			{"route", "add", "224.0.0.0/4", "dev", "lo", "src", "127.0.0.1"},
		} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "knxdtest: ip %s: %v\n%s", strings.Join(args, " "), err, out)
				return 1
			}
		}
		return m.Run()
	case "":
		if why := cannotIsolate(); why == "" {
			cmd := exec.Command(os.Args[0], os.Args[1:]...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
			cmd.Env = append(os.Environ(), envNetns+"=1")
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
			err := cmd.Run()
			var ee *exec.ExitError
			switch {
			case err == nil:
				return 0
			case errors.As(err, &ee):
				return ee.ExitCode()
			}
			fmt.Fprintf(os.Stderr, "knxdtest: cannot run the tests in a network namespace: %v\n", err)
			return 1
		}
	}
	return m.Run()
}

func cannotIsolate() string {
	switch {
	case os.Geteuid() != 0:
		return "not root (a private network namespace needs CAP_SYS_ADMIN)"
	case !found("ip"):
		return "ip (iproute2) not found"
	case !found("knxd") || !found("knxtool"):
		return "knxd or knxtool not found (scripts/ensure-knx.sh installs them)"
	}
	return ""
}

func found(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// Isolated reports whether the tests run in the private network namespace.
func Isolated() bool { return os.Getenv(envNetns) == "1" }

// Require skips t (or fails it with CI set) unless knxd can run here,
// isolated.
func Require(t testing.TB) {
	t.Helper()
	why := cannotIsolate()
	if why == "" && !Isolated() {
		why = "not in the private network namespace (call knxdtest.Main from TestMain)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("knxd tests cannot run: %s", why)
	}
	t.Skipf("knxd tests skipped: %s", why)
}

// Daemon is one knxd process (restartable on the same port and socket).
type Daemon struct {
	t    testing.TB
	dir  string
	port int
	sock string

	mu  sync.Mutex
	cmd *exec.Cmd
	log *os.File
}

// Start starts knxd (see Require) with a tunnelling server on a free UDP
// port of 127.0.0.1 and a local socket for knxtool; it is stopped by
// t.Cleanup.
func Start(t testing.TB) *Daemon {
	t.Helper()
	Require(t)
	dir := t.TempDir()
	l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := l.LocalAddr().(*net.UDPAddr).Port
	l.Close()
	d := &Daemon{t: t, dir: dir, port: port, sock: filepath.Join(dir, "knx.sock")}
	d.start()
	t.Cleanup(d.Stop)
	return d
}

// Endpoint is the connector endpoint of the daemon.
func (d *Daemon) Endpoint() string { return fmt.Sprintf("knx://127.0.0.1:%d", d.port) }

// URL is the knxtool address of the daemon's local socket.
func (d *Daemon) URL() string { return "local:" + d.sock }

func (d *Daemon) start() {
	d.t.Helper()
	_ = os.Remove(d.sock)
	lf, err := os.OpenFile(filepath.Join(d.dir, "knxd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		d.t.Fatal(err)
	}
	args := []string{"-e", "0.0.1", "-E", "0.0.2:8", "-u", d.sock,
		"-T", "-S", fmt.Sprintf("224.0.23.12:%d", d.port), "-b", "dummy:"}
	if tr := os.Getenv("KNXD_TRACE"); tr != "" {
		args = append([]string{"-f", "9", "-t", tr}, args...)
	}
	cmd := exec.Command("knxd", args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		d.t.Fatalf("start knxd: %v", err)
	}
	d.mu.Lock()
	d.cmd, d.log = cmd, lf
	d.mu.Unlock()
	d.waitUp()
}

// waitUp waits until knxd accepts knxtool connections (its server is up
// by then: knxd opens the local socket last).
func (d *Daemon) waitUp() {
	d.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", d.sock)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(d.dir, "knxd.log"))
			d.t.Fatalf("knxd did not come up: %v\n%s", err, b)
		}
		time.Sleep(5 * time.Millisecond) // polling for a condition, bounded
	}
}

// Stop stops knxd (SIGTERM, then SIGKILL after 2s) and waits for it.
func (d *Daemon) Stop() {
	d.mu.Lock()
	cmd, lf := d.cmd, d.log
	d.cmd, d.log = nil, nil
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	lf.Close()
}

// Restart stops knxd and starts it again on the same port.
func (d *Daemon) Restart() {
	d.t.Helper()
	d.Stop()
	d.start()
}

// Up starts a stopped knxd again on the same port and socket.
func (d *Daemon) Up() {
	d.t.Helper()
	d.start()
}

// Pause stops knxd (SIGSTOP) until the returned function resumes it.
func (d *Daemon) Pause() (resume func()) {
	d.mu.Lock()
	cmd := d.cmd
	d.mu.Unlock()
	if cmd == nil {
		return func() {}
	}
	_ = cmd.Process.Signal(syscall.SIGSTOP)
	var once sync.Once
	return func() { once.Do(func() { _ = cmd.Process.Signal(syscall.SIGCONT) }) }
}

// Log returns what knxd logged.
func (d *Daemon) Log() string {
	b, _ := os.ReadFile(filepath.Join(d.dir, "knxd.log"))
	return string(b)
}

// Write sends a GroupValueWrite from the bus with knxtool: groupswrite
// for a short value (one value of up to 6 bits), groupwrite for bytes.
func (d *Daemon) Write(ctx context.Context, ga string, short bool, data ...byte) error {
	verb := "groupwrite"
	if short {
		verb = "groupswrite"
	}
	args := []string{verb, d.URL(), ga}
	for _, b := range data {
		args = append(args, fmt.Sprintf("%x", b))
	}
	out, err := exec.CommandContext(ctx, "knxtool", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("knxtool %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// Read sends a GroupValueRead from the bus with knxtool groupread.
func (d *Daemon) Read(ctx context.Context, ga string) error {
	out, err := exec.CommandContext(ctx, "knxtool", "groupread", d.URL(), ga).CombinedOutput()
	if err != nil {
		return fmt.Errorf("knxtool groupread %s: %v: %s", ga, err, out)
	}
	return nil
}

// Listener is a running `knxtool groupsocketlisten`: every group telegram
// on the bus, one line each.
type Listener struct {
	Lines <-chan string
	cmd   *exec.Cmd
}

// Listen starts knxtool groupsocketlisten; it is stopped by t.Cleanup.
// Use Ready before relying on it.
func (d *Daemon) Listen(t testing.TB) *Listener {
	t.Helper()
	cmd := exec.Command("knxtool", "groupsocketlisten", d.URL())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
	})
	return &Listener{Lines: lines, cmd: cmd}
}

// Ready returns once the listener shows telegrams: it writes probe
// values to probeGA until one is listed (the listener connects
// asynchronously).
func (l *Listener) Ready(ctx context.Context, t testing.TB, d *Daemon, probeGA string) {
	t.Helper()
	for {
		if err := d.Write(ctx, probeGA, true, 1); err != nil {
			t.Fatal(err)
		}
		wait := time.NewTimer(100 * time.Millisecond)
		for seen := false; !seen; {
			select {
			case line, ok := <-l.Lines:
				if !ok {
					t.Fatal("knxtool groupsocketlisten ended")
				}
				if strings.Contains(line, " to "+probeGA+":") {
					wait.Stop()
					return
				}
			case <-wait.C:
				seen = true // not yet connected: probe again
			case <-ctx.Done():
				t.Fatalf("knxtool groupsocketlisten not ready: %v", ctx.Err())
			}
		}
	}
}

// Expect returns the next telegram listed for ga (a line "Write from
// 0.0.5 to 1/2/3: 0C 1A" or "Read from 0.0.5 to 1/2/3"), or fails t.
func (l *Listener) Expect(ctx context.Context, t testing.TB, ga string) string {
	t.Helper()
	for {
		select {
		case line, ok := <-l.Lines:
			if !ok {
				t.Fatal("knxtool groupsocketlisten ended")
			}
			if strings.Contains(line, " to "+ga+":") || strings.HasSuffix(strings.TrimSpace(line), " to "+ga) {
				return line
			}
		case <-ctx.Done():
			t.Fatalf("no telegram to %s on the bus: %v", ga, ctx.Err())
		}
	}
}

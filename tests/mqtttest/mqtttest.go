// Package mqtttest starts a real mosquitto broker for tests: on free
// 127.0.0.1 ports, with a generated configuration (optionally a TLS
// listener with certificates generated at test time, password
// authentication and persistence), waits until it accepts connections, can
// stop and restart it by PID, and cleans everything up with t.Cleanup.
//
//	b := mqtttest.Start(t, mqtttest.Options{TLS: true})
//	url := b.URL()       // "mqtt://127.0.0.1:PORT"
//	tls := b.TLSURL()    // "mqtts://127.0.0.1:PORT", trust b.CAFile()
//	b.Stop(); b.Restart()
//
// mosquitto must be installed (Debian: apt-get install -y mosquitto
// mosquitto-clients; the project's scripts/ensure-deps.sh does it). When it
// is missing the test is skipped, or fails when the CI environment variable
// is set.
package mqtttest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options configure the broker.
type Options struct {
	// TLS adds a second listener speaking MQTT over TLS with a server
	// certificate for 127.0.0.1/localhost signed by a CA generated for the
	// test (see Broker.CAFile).
	TLS bool
	// RequireClientCert makes the TLS listener demand a client certificate
	// signed by the test CA (see Broker.ClientCertFile).
	RequireClientCert bool
	// Users, when non-empty, disables anonymous access and accepts only
	// these username/password pairs (hashed with mosquitto_passwd).
	Users map[string]string
	// Persistence keeps sessions, subscriptions and queued QoS>0 messages
	// across Stop/Restart (mosquitto writes its database on SIGTERM).
	Persistence bool
	// ACL, when set, is written to an acl_file (mosquitto syntax; lines
	// before any "user" line apply to anonymous clients).
	ACL string
	// Extra is appended verbatim to the generated configuration.
	Extra string
	// Verbose copies mosquitto's log to the test log.
	Verbose bool
}

// Broker is a running (or stopped) mosquitto process owned by a test.
type Broker struct {
	t       testing.TB
	opts    Options
	dir     string
	conf    string
	port    int
	tlsPort int
	certs   *Certs

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *bytes.Buffer
}

// Binary returns the path of the mosquitto executable, or "" if it is not
// installed.
func Binary() string {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Require skips the test (or fails it under CI) when mosquitto is missing.
func Require(t testing.TB) string {
	t.Helper()
	bin := Binary()
	if bin == "" {
		msg := "mosquitto is not installed (apt-get install -y mosquitto mosquitto-clients, or scripts/ensure-deps.sh)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// Start writes a configuration, starts mosquitto and waits until every
// listener accepts connections. The broker is stopped when the test ends.
func Start(t testing.TB, opts Options) *Broker {
	t.Helper()
	Require(t)
	b := &Broker{t: t, opts: opts, dir: t.TempDir()}
	b.port = FreePort(t)
	if opts.TLS {
		b.tlsPort = FreePort(t)
		c, err := GenerateCerts(b.dir)
		if err != nil {
			t.Fatalf("mqtttest: certificates: %v", err)
		}
		b.certs = c
	}
	if err := b.writeConfig(); err != nil {
		t.Fatalf("mqtttest: %v", err)
	}
	t.Cleanup(b.Stop)
	b.start()
	return b
}

func (b *Broker) writeConfig() error {
	var c strings.Builder
	fmt.Fprintf(&c, "per_listener_settings false\n")
	if os.Geteuid() == 0 {
		// mosquitto started as root drops to user "mosquitto", which
		// cannot read the test's private directory.
		fmt.Fprintf(&c, "user root\n")
	}
	fmt.Fprintf(&c, "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n")
	if b.opts.Verbose {
		fmt.Fprintf(&c, "log_type information\n")
	}
	fmt.Fprintf(&c, "max_queued_messages 0\nmax_inflight_messages 0\nset_tcp_nodelay true\n")
	if b.opts.Persistence {
		fmt.Fprintf(&c, "persistence true\npersistence_location %s/\nautosave_interval 1\nautosave_on_changes false\n", b.dir)
	} else {
		fmt.Fprintf(&c, "persistence false\n")
	}
	if len(b.opts.Users) > 0 {
		pw := filepath.Join(b.dir, "passwd")
		if err := writePasswords(pw, b.opts.Users); err != nil {
			return err
		}
		fmt.Fprintf(&c, "allow_anonymous false\npassword_file %s\n", pw)
	} else {
		fmt.Fprintf(&c, "allow_anonymous true\n")
	}
	if b.opts.ACL != "" {
		acl := filepath.Join(b.dir, "acl")
		if err := os.WriteFile(acl, []byte(b.opts.ACL), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(&c, "acl_file %s\n", acl)
	}
	fmt.Fprintf(&c, "listener %d 127.0.0.1\n", b.port)
	if b.opts.TLS {
		fmt.Fprintf(&c, "listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n",
			b.tlsPort, b.certs.CAFile, b.certs.ServerCertFile, b.certs.ServerKeyFile)
		if b.opts.RequireClientCert {
			fmt.Fprintf(&c, "require_certificate true\n")
		}
	}
	c.WriteString(b.opts.Extra)
	c.WriteString("\n")
	b.conf = filepath.Join(b.dir, "mosquitto.conf")
	return os.WriteFile(b.conf, []byte(c.String()), 0o600)
}

func writePasswords(path string, users map[string]string) error {
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	var c strings.Builder
	for _, u := range names {
		fmt.Fprintf(&c, "%s:%s\n", u, users[u])
	}
	if err := os.WriteFile(path, []byte(c.String()), 0o600); err != nil {
		return err
	}
	out, err := exec.Command("mosquitto_passwd", "-U", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mosquitto_passwd -U: %v: %s", err, out)
	}
	return nil
}

func (b *Broker) start() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return
	}
	cmd := exec.Command(Binary(), "-c", b.conf)
	b.log = &bytes.Buffer{}
	cmd.Stdout = &lockedWriter{w: b.log}
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("mqtttest: start mosquitto: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	b.cmd, b.done = cmd, done
	ports := []int{b.port}
	if b.tlsPort != 0 {
		ports = append(ports, b.tlsPort)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range ports {
		for {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p), 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-done:
				b.t.Fatalf("mqtttest: mosquitto exited: %s", b.logText())
			default:
			}
			if time.Now().After(deadline) {
				b.t.Fatalf("mqtttest: mosquitto did not listen on %d: %v\n%s", p, err, b.logText())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (b *Broker) logText() string {
	if b.cmd == nil {
		return ""
	}
	lw := b.cmd.Stdout.(*lockedWriter)
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.String()
}

// Stop terminates the broker (SIGTERM, so a persistent broker saves its
// state; SIGKILL after 5 s) and waits for the process to exit. Stopping a
// stopped broker does nothing.
func (b *Broker) Stop() {
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.cmd = nil
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	if b.opts.Verbose || b.t.Failed() {
		b.t.Logf("mosquitto log:\n%s", b.log.String())
	}
}

// Kill terminates the broker with SIGKILL (no state is saved) and waits.
func (b *Broker) Kill() {
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.cmd = nil
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart starts a stopped broker again on the same ports with the same
// configuration (and, with Persistence, the saved state).
func (b *Broker) Restart() {
	b.t.Helper()
	b.start()
}

// Running reports whether the broker process is up.
func (b *Broker) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return false
	}
	select {
	case <-b.done:
		return false
	default:
		return true
	}
}

// PID returns the broker's process id (0 when stopped).
func (b *Broker) PID() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return 0
	}
	return b.cmd.Process.Pid
}

// Port is the plain MQTT listener's port.
func (b *Broker) Port() int { return b.port }

// Addr is "127.0.0.1:PORT" of the plain listener.
func (b *Broker) Addr() string { return "127.0.0.1:" + strconv.Itoa(b.port) }

// URL is "mqtt://127.0.0.1:PORT".
func (b *Broker) URL() string { return "mqtt://" + b.Addr() }

// TLSPort is the TLS listener's port (0 without Options.TLS).
func (b *Broker) TLSPort() int { return b.tlsPort }

// TLSURL is "mqtts://127.0.0.1:PORT" ("" without Options.TLS).
func (b *Broker) TLSURL() string {
	if b.tlsPort == 0 {
		return ""
	}
	return "mqtts://127.0.0.1:" + strconv.Itoa(b.tlsPort)
}

// Certs returns the generated certificates (nil without Options.TLS).
func (b *Broker) Certs() *Certs { return b.certs }

// CAFile is the PEM file of the CA that signed the server certificate
// ("" without Options.TLS).
func (b *Broker) CAFile() string {
	if b.certs == nil {
		return ""
	}
	return b.certs.CAFile
}

// Dir is the broker's private directory (config, certificates, database).
func (b *Broker) Dir() string { return b.dir }

// Log returns what mosquitto logged so far.
func (b *Broker) Log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.log == nil {
		return ""
	}
	return b.logText()
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mqtttest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

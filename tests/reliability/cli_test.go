package reliability

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/tests/mqtttest"
)

// cliProc is an `aimdb-flow run` child process.
type cliProc struct {
	t      testing.TB
	cmd    *exec.Cmd
	out    *syncBuffer // stdout and stderr
	done   chan struct{}
	err    error
	health string // base URL of --http
}

// startCLI runs `aimdb-flow run --http 127.0.0.1:PORT args...` with extra
// environment variables. The process is killed (by PID) when the test ends.
func startCLI(t testing.TB, env []string, args ...string) *cliProc {
	t.Helper()
	bin := cliBinary(t)
	port := mqtttest.FreePort(t)
	full := append([]string{"run", "--http", "127.0.0.1:" + strconv.Itoa(port), "--status", "off"}, args...)
	cmd := exec.Command(bin, full...)
	cmd.Env = append(os.Environ(), env...)
	p := &cliProc{t: t, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{}), health: "http://127.0.0.1:" + strconv.Itoa(port)}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("aimdb-flow output:\n%s", tail(p.out.String(), 8192))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "...\n" + s[len(s)-n:]
	}
	return s
}

// ready polls /readyz until it answers 200 (bounded).
func (p *cliProc) waitReady(d time.Duration) {
	p.t.Helper()
	client := &http.Client{Timeout: time.Second}
	waitFor(p.t, d, "aimdb-flow /readyz", func() bool {
		select {
		case <-p.done:
			p.t.Fatalf("aimdb-flow exited early: %v\n%s", p.err, p.out.String())
		default:
		}
		resp, err := client.Get(p.health + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// signal sends sig and waits (bounded) for the exit; it returns the exit
// code (-1 when killed by a signal).
func (p *cliProc) signal(sig syscall.Signal, d time.Duration) int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(d):
		p.t.Fatalf("aimdb-flow did not exit within %v after %v", d, sig)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		p.t.Fatal(p.err)
	}
	return 0
}

const relayFlow = `# MQTT relay used by the shutdown tests: a queue buffer and a throttle
# keep a backlog of in-flight records when the signal arrives.
connector mqtt "${MQTT_URL}" client_id "${CLIENT_ID}" session_expiry 600
    reconnect_max 300ms publish_timeout 30s

record in {
  from "mqtt://sd/in/#" decode json qos 1
  buffer queue 256
}

pipeline relay {
  from in
  filter ` + "`seq >= 0`" + `
  throttle ${RATE} per 1s
  to "mqtt://sd/out/{seq}" encode json qos 1
}
`

func writeFlow(t testing.TB, name, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// shutdownScenario streams n QoS 1 messages into a relay run by the CLI,
// signals it (sig) when the producer is a third through, then starts a
// second run with the same MQTT session which must deliver the rest. It
// returns the far end's counts.
func shutdownScenario(t *testing.T, sig syscall.Signal, n int) (*counts, int, string) {
	br := mqtttest.Start(t, mqtttest.Options{Persistence: true})
	flow := writeFlow(t, "relay.flow", relayFlow)
	env := []string{"MQTT_URL=" + br.URL(), "CLIENT_ID=sd-relay", "RATE=400"}
	far := newCounts()
	sub := newMQTTClient(t, br.URL(), clientOpts{ID: "sd-far", Subscribe: []string{"sd/out/#"}, Persistent: true})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	go sub.collect(ctx, far)

	run1 := startCLI(t, env, "--drain-timeout", "20s", flow)
	run1.waitReady(30 * time.Second)
	pub := newMQTTClient(t, br.URL(), clientOpts{ID: "sd-producer", Persistent: true})
	var produced atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	perr := make(chan error, 1)
	go func() {
		defer wg.Done()
		perr <- produceSeq(ctx, pub, "sd/in/x", n, &produced)
	}()
	waitFor(t, 60*time.Second, "producer a third through", func() bool { return produced.Load() >= int64(n/3) })
	// The throttle keeps a backlog: the far end is behind the producer.
	backlog := int(produced.Load()) - far.distinct()
	code := run1.signal(sig, 30*time.Second)
	out1 := run1.out.String()
	wg.Wait()
	if err := <-perr; err != nil {
		t.Fatal(err)
	}
	run2 := startCLI(t, env, "--drain-timeout", "20s", flow)
	run2.waitReady(30 * time.Second)
	waitFor(t, 60*time.Second, fmt.Sprintf("all %d records at the far end", n), func() bool { return far.distinct() >= n })
	if c := run2.signal(syscall.SIGTERM, 30*time.Second); c != 0 {
		t.Fatalf("second run exit code %d after SIGTERM", c)
	}
	for i := 0; i < n; i++ {
		if far.get(i) == 0 {
			t.Fatalf("seq %d lost", i)
		}
	}
	t.Logf("backlog at the signal: ~%d records; far end: %d distinct, %d duplicates", backlog, far.distinct(), far.duplicates())
	return far, code, out1
}

// TestSIGTERMDrainsAndExitsZero: SIGTERM to `aimdb-flow run` with a
// backlog of in-flight records (queue buffer + throttle): the process
// drains them to the sink, flushes the source acks and exits 0 within the
// drain timeout. A second run on the same MQTT session then delivers the
// rest: nothing is lost, and nothing is delivered twice (what the first
// run forwarded it also acknowledged).
func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	n := 1200
	if testing.Short() {
		n = 450
	}
	far, code, out := shutdownScenario(t, syscall.SIGTERM, n)
	if code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0\n%s", code, out)
	}
	if bytes.Contains([]byte(out), []byte("drain timed out")) {
		t.Fatalf("drain timed out:\n%s", out)
	}
	if d := far.duplicates(); d != 0 {
		t.Fatalf("%d duplicates after a clean shutdown: a record was forwarded but its source message not acknowledged", d)
	}
}

// TestSIGKILLRedeliversUnackedTail: SIGKILL instead (no drain at all). The
// records the first run had received but not yet forwarded were never
// acknowledged to the broker, so the second run (same client id, session
// kept) receives them again: every message arrives at least once.
func TestSIGKILLRedeliversUnackedTail(t *testing.T) {
	n := 1200
	if testing.Short() {
		n = 450
	}
	far, code, _ := shutdownScenario(t, syscall.SIGKILL, n)
	if code != -1 {
		t.Fatalf("exit code %d, want -1 (killed)", code)
	}
	t.Logf("at-least-once after SIGKILL: %d duplicates", far.duplicates())
}

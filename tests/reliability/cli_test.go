package reliability

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
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
	return p.wait(sig, d)
}

// wait waits at most d for the process to exit after sig and returns its
// exit code (-1 when killed by a signal).
func (p *cliProc) wait(sig syscall.Signal, d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.t.Fatalf("aimdb-flow did not exit within %v after %v", d, sig)
	}
	return exitCode(p.t, p.err)
}

const relayFlow = `# MQTT relay used by the shutdown tests: it reads from one broker (src)
# and publishes to another (dst), so that the test can pause the sink
# broker (SIGSTOP) and hold a deterministic backlog in the pipeline.
connector src "${SRC_URL}" client_id "${CLIENT_ID}-src" session_expiry 600s
    reconnect_max 300ms
connector dst "${DST_URL}" client_id "${CLIENT_ID}-dst"
    reconnect_max 300ms publish_timeout 30s

record in {
  from "src://sd/in/#" decode json qos 1
  buffer queue 256
}

pipeline relay {
  from in
  filter ` + "`seq >= 0`" + `
  to "dst://sd/out/{seq}" encode json qos 1
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

// cliStats is what the shutdown tests read from `/stats`.
type cliStats struct {
	Accepted  uint64 // values written into record "in" (Buffer.Pushed)
	Published uint64 // records handed to the outbound links (their Messages)
}

// Backlog is the number of records inside the pipeline: accepted but not
// yet published.
func (s cliStats) Backlog() int64 { return int64(s.Accepted) - int64(s.Published) }

// signalWithBacklog sends sig to the process and returns the pipeline's
// counters as the signal landed. For SIGTERM it waits until the CLI
// handled the signal and requires at least minBacklog records still inside
// the pipeline then (the test holds its sink, so the drain has something
// to do); for SIGKILL it returns the counters read just before.
func (p *cliProc) signalWithBacklog(sig syscall.Signal, minBacklog int64) cliStats {
	p.t.Helper()
	before := p.stats()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	if sig != syscall.SIGTERM {
		return before
	}
	p.waitOutput(30*time.Second, "signal received; draining")
	at := p.stats()
	if b := at.Backlog(); b < minBacklog {
		p.t.Fatalf("backlog when the signal was handled: %d records (%+v), want >= %d", b, at, minBacklog)
	}
	return at
}

// stats reads /stats (bounded). A failure is fatal.
func (p *cliProc) stats() cliStats {
	p.t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(p.health + "/stats")
	if err != nil {
		p.t.Fatalf("GET /stats: %v", err)
	}
	defer resp.Body.Close()
	var s struct {
		Records map[string]struct{ Buffer struct{ Pushed uint64 } }
		Links   map[string]struct {
			Direction pipeline.Direction
			Messages  uint64
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		p.t.Fatalf("decode /stats: %v", err)
	}
	in, ok := s.Records["in"]
	if !ok {
		p.t.Fatalf("/stats has no record \"in\": %+v", s.Records)
	}
	out := cliStats{Accepted: in.Buffer.Pushed}
	for _, l := range s.Links {
		if l.Direction == pipeline.Outbound {
			out.Published += l.Messages
		}
	}
	return out
}

// waitOutput waits (bounded) until the process has written s.
func (p *cliProc) waitOutput(d time.Duration, s string) {
	p.t.Helper()
	waitFor(p.t, d, fmt.Sprintf("%q in the aimdb-flow output", s), func() bool {
		return strings.Contains(p.out.String(), s)
	})
}

// minBacklog is how many records must be inside the pipeline (accepted,
// not yet published) when a shutdown test signals the process.
const minBacklog = 128

// pauseProcess stops pid with SIGSTOP and returns the function that
// resumes it (SIGCONT); the resume also runs at cleanup, so a failing test
// never leaves the process stopped.
func pauseProcess(t *testing.T, pid int) (resume func()) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %d: %v", pid, err)
	}
	resume = sync.OnceFunc(func() {
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Errorf("SIGCONT %d: %v", pid, err)
		}
	})
	t.Cleanup(resume)
	return resume
}

// mqttShutdown is the outcome of shutdownScenario.
type mqttShutdown struct {
	far        *counts
	exit       int    // first run's exit code (-1: killed by a signal)
	out1       string // first run's output
	atSignal   cliStats
	firstRun   int // distinct ids at the far end after the first run, before the second started
	n          int
	deliveredA int // ids delivered and seen at the far end before the sink was paused
}

// shutdownScenario relays n QoS 1 messages from broker src to broker dst
// through `aimdb-flow run`:
//
//  1. the first quarter is produced and reaches the far end (the run is
//     mid-stream: some ids delivered);
//  2. the sink broker is paused (SIGSTOP): the relay can publish nothing,
//     the rest is produced, and the test waits until /stats shows at least
//     minBacklog records accepted into the pipeline but not published;
//  3. the process gets sig; for SIGTERM the test waits until it logged the
//     signal and checks (with the sink still paused, so nothing can have
//     drained) that the backlog is still inside; then the sink resumes;
//  4. a second run with the same client ids (same MQTT session) delivers
//     the rest; every id must reach the far end.
func shutdownScenario(t *testing.T, sig syscall.Signal, n int) mqttShutdown {
	src := mqtttest.Start(t, mqtttest.Options{})
	dst := mqtttest.Start(t, mqtttest.Options{})
	flow := writeFlow(t, "relay.flow", relayFlow)
	env := []string{"SRC_URL=" + src.URL(), "DST_URL=" + dst.URL(), "CLIENT_ID=sd-relay"}
	res := mqttShutdown{far: newCounts(), n: n}
	far := res.far
	sub := newMQTTClient(t, dst.URL(), clientOpts{ID: "sd-far", Subscribe: []string{"sd/out/#"}, Persistent: true})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	collected := make(chan struct{})
	go func() { sub.collect(ctx, far); close(collected) }()
	defer func() { cancel(); <-collected }()

	run1 := startCLI(t, env, "--log-level", "info", "--drain-timeout", "20s", flow)
	run1.waitReady(30 * time.Second)
	pub := newMQTTClient(t, src.URL(), clientOpts{ID: "sd-producer", Persistent: true})
	var produced atomic.Int64
	a := n / 4
	if err := produceSeq(ctx, pub, "sd/in/x", a, &produced); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, fmt.Sprintf("the first %d ids at the far end", a), func() bool { return far.distinct() >= a })
	res.deliveredA = far.distinct()

	resume := pauseProcess(t, dst.PID())
	perr := make(chan error, 1)
	go func() {
		perr <- produceRange(ctx, pub, "sd/in/x", a, n, &produced)
	}()
	waitFor(t, 60*time.Second, fmt.Sprintf("a backlog of %d records in the pipeline", minBacklog), func() bool {
		return run1.stats().Backlog() >= minBacklog
	})
	// The sink is still paused: nothing can leave the pipeline until
	// resume.
	res.atSignal = run1.signalWithBacklog(sig, minBacklog)
	resume()
	res.exit = run1.wait(sig, 30*time.Second)
	res.out1 = run1.out.String()
	if err := <-perr; err != nil {
		t.Fatal(err)
	}
	// Everything the first run published (its sink confirmed it) reaches
	// the far end: wait for that many, then count what the first run
	// delivered.
	waitFor(t, 30*time.Second, fmt.Sprintf("%d ids published by the first run at the far end", res.atSignal.Published),
		func() bool { return uint64(far.distinct()) >= res.atSignal.Published })
	if sig == syscall.SIGTERM {
		// A clean stop drains: every record the pipeline had accepted
		// when the signal landed was published before the exit.
		waitFor(t, 30*time.Second, fmt.Sprintf("the %d ids accepted by the first run at the far end", res.atSignal.Accepted),
			func() bool { return uint64(far.distinct()) >= res.atSignal.Accepted })
	}
	res.firstRun = far.distinct()

	run2 := startCLI(t, env, "--drain-timeout", "20s", flow)
	run2.waitReady(30 * time.Second)
	waitAll(t, 60*time.Second, far, n)
	if c := run2.signal(syscall.SIGTERM, 30*time.Second); c != 0 {
		t.Fatalf("second run exit code %d after SIGTERM", c)
	}
	t.Logf("first run: %d ids delivered before the pause, backlog %d at the signal (%+v), %d ids at the far end after it; far end: %d distinct, %d duplicates",
		res.deliveredA, res.atSignal.Backlog(), res.atSignal, res.firstRun, far.distinct(), far.duplicates())
	return res
}

// waitAll waits (bounded) until ids 0..n-1 all reached c, else fails
// naming the missing ones.
func waitAll(t *testing.T, d time.Duration, c *counts, n int) {
	t.Helper()
	deadline := time.Now().Add(d)
	for c.distinct() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var missing []int
	for i := 0; i < n; i++ {
		if c.get(i) == 0 {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d ids lost (not delivered within %v), first %v", len(missing), n, d, missing[:min(len(missing), 10)])
	}
}

// produceRange publishes ids [from, to) like produceSeq.
func produceRange(ctx context.Context, c *mqttClient, topic string, from, to int, acked *atomic.Int64) error {
	for i := from; i < to; i++ {
		p := []byte(fmt.Sprintf(`{"seq":%d,"pad":"0123456789abcdef"}`, i))
		for !c.tryPublish(ctx, 2*time.Second, topic, p) {
			if ctx.Err() != nil {
				return fmt.Errorf("message %d never acknowledged by the broker: %w", i, ctx.Err())
			}
		}
		acked.Store(int64(i + 1))
	}
	return nil
}

// exitCode returns the exit code of a finished process (-1 when killed by
// a signal); any other error is fatal.
func exitCode(t testing.TB, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// TestSIGTERMDrainsAndExitsZero: SIGTERM to `aimdb-flow run` while at
// least minBacklog records are inside the pipeline (its sink broker
// paused): the process drains every accepted record to the sink, flushes
// the source acks and exits 0 within the drain timeout. A second run on
// the same MQTT session delivers the rest: nothing is lost, and nothing is
// delivered twice (what the first run forwarded it also acknowledged).
func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	n := 1200
	if testing.Short() {
		n = 800
	}
	res := shutdownScenario(t, syscall.SIGTERM, n)
	if res.exit != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0\n%s", res.exit, res.out1)
	}
	if strings.Contains(res.out1, "drain timed out") {
		t.Fatalf("drain timed out:\n%s", res.out1)
	}
	if res.firstRun >= n {
		t.Fatalf("the first run delivered all %d ids: the signal did not land mid-stream", n)
	}
	if d := res.far.duplicates(); d != 0 {
		t.Fatalf("%d duplicates after a clean shutdown: a record was forwarded but its source message not acknowledged", d)
	}
}

// TestSIGKILLRedeliversUnackedTail: SIGKILL instead (no drain at all),
// while at least minBacklog records are inside the pipeline. Those records
// had been received but not forwarded, so they were never acknowledged to
// the broker: the second run (same client id, session kept) receives them
// again and every id arrives at least once. Duplicates are allowed
// (at-least-once) and reported.
func TestSIGKILLRedeliversUnackedTail(t *testing.T) {
	n := 1200
	if testing.Short() {
		n = 800
	}
	res := shutdownScenario(t, syscall.SIGKILL, n)
	if res.exit != -1 {
		t.Fatalf("exit code %d, want -1 (killed)", res.exit)
	}
	// Mid-stream: the first run delivered some ids but not everything it
	// had accepted (its unacknowledged tail), which the second run had to
	// get from the broker again.
	if res.firstRun == 0 || uint64(res.firstRun) >= res.atSignal.Accepted {
		t.Fatalf("first run delivered %d ids and had accepted %d: the kill did not land mid-stream", res.firstRun, res.atSignal.Accepted)
	}
	t.Logf("at-least-once after SIGKILL: unacked tail of %d records redelivered, %d duplicates",
		int(res.atSignal.Accepted)-res.firstRun, res.far.duplicates())
}

package pipelines_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/dsl/flowtest"
	"github.com/aimdb-dev/aimdb-flow/examples/device/replay"
	"github.com/aimdb-dev/aimdb-flow/tests/mqtttest"
)

// The device build of device.flow, proven three ways: built for the host
// it talks MQTT over stdin/stdout (a TCP socket to mosquitto) and its
// alerts arrive at mosquitto_sub; built for cortex-m-qemu it runs under
// qemu-system-arm with UART1 connected to mosquitto; and in both cases its
// alerts are compared, record by record, with what the server runtime
// publishes for the same readings (the replay driver's list, fed to the
// server's sensor://temp link).

// tinygo returns the TinyGo binary, or skips the test.
func tinygo(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("tinygo"); err == nil {
		return p
	}
	if _, err := os.Stat("/opt/tinygo/bin/tinygo"); err == nil {
		return "/opt/tinygo/bin/tinygo"
	}
	t.Skip("tinygo is not installed (bash scripts/ensure-tinygo.sh installs it in /opt/tinygo): the device build cannot be tested")
	return ""
}

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// cli builds the aimdb-flow command once per test binary.
func cli(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "aimdb-flow-cli-")
		if err != nil {
			cliErr = err
			return
		}
		cliPath = filepath.Join(dir, "aimdb-flow")
		out, err := exec.Command("go", "build", "-o", cliPath, "../cmd/aimdb-flow").CombinedOutput()
		if err != nil {
			cliErr = fmt.Errorf("go build ../cmd/aimdb-flow: %v\n%s", err, out)
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliPath
}

// buildDevice runs aimdb-flow build for target with the replay driver.
func buildDevice(t *testing.T, target, out string, env ...string) {
	t.Helper()
	tg := tinygo(t)
	cmd := exec.Command(cli(t), "build", "--target", target, "--driver", "../examples/device/replay",
		"--size", "short", "-o", out, "device.flow")
	cmd.Env = append(append(os.Environ(), "PATH="+filepath.Dir(tg)+string(os.PathListSeparator)+os.Getenv("PATH")), env...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("aimdb-flow build --target %s: %v\n%s", target, err, b)
	}
	t.Logf("aimdb-flow build --target %s:\n%s", target, b)
}

// subscribe starts mosquitto_sub on the device's alert topic and returns
// its messages (payloads, in order) once it is subscribed.
func subscribe(t *testing.T, b *mqtttest.Broker, topic string) <-chan string {
	t.Helper()
	for _, tool := range []string{"mosquitto_sub", "stdbuf"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (apt-get install -y mosquitto-clients coreutils)", tool)
		}
	}
	sub := exec.Command("stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", strconv.Itoa(b.Port()),
		"-q", "1", "-v", "-d", "-t", topic)
	out, err := sub.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Process.Kill(); _ = sub.Wait() }) // by PID
	msgs, ready := make(chan string, 100), make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		acked := false
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "Client "):
				if !acked && strings.Contains(line, "received SUBACK") {
					acked = true
					close(ready)
				}
			case strings.HasPrefix(line, topic+" "):
				msgs <- strings.TrimPrefix(line, topic+" ")
			}
		}
		close(msgs)
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("mosquitto_sub did not subscribe")
	}
	return msgs
}

// summary is the device program's last console line.
type summary struct {
	published, acked, readings, failed, lost, allocs int
}

func parseSummary(t *testing.T, console string) summary {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(console), "\n")
	line := lines[len(lines)-1]
	var s summary
	if _, err := fmt.Sscanf(line, "published %d, acknowledged %d, readings %d, failed %d, lost %d, allocations after the first reading %d",
		&s.published, &s.acked, &s.readings, &s.failed, &s.lost, &s.allocs); err != nil {
		t.Fatalf("device console %q: %v", console, err)
	}
	return s
}

// collect reads n messages from mosquitto_sub.
func collect(t *testing.T, msgs <-chan string, n int) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatalf("mosquitto_sub ended after %d of %d alerts", len(got), n)
			}
			got = append(got, m)
		case <-time.After(10 * time.Second):
			t.Fatalf("mosquitto_sub received %d of %d alerts", len(got), n)
		}
	}
	return got
}

// sameAsServer runs device.flow on the server runtime (pipeline tests'
// in-process connectors: the replay readings fed to sensor://temp) and
// requires it to publish exactly the device's alerts, in order. Alerts
// are compared as decoded JSON ("value" in a pipeline test): the two JSON
// encoders may order an object's keys differently (the device keeps the
// map literal's order) and neither order is part of the record.
func sameAsServer(t *testing.T, alerts []string) {
	t.Helper()
	type msg struct {
		Value json.RawMessage `json:"value"`
	}
	in := make([]msg, len(replay.Readings))
	for i, r := range replay.Readings {
		in[i].Value = json.RawMessage(fmt.Sprintf(`{"temp":%s,"seq":%d}`, strconv.FormatFloat(r.Temp, 'g', -1, 64), r.Seq))
	}
	want := make([]msg, len(alerts))
	for i, a := range alerts {
		if !json.Valid([]byte(a)) {
			t.Fatalf("device alert %d is not JSON: %q", i, a)
		}
		want[i].Value = json.RawMessage(a)
	}
	abs, err := filepath.Abs("device.flow")
	if err != nil {
		t.Fatal(err)
	}
	suite := map[string]any{
		"pipeline": abs,
		"env":      map[string]string{"DEVICE_ID": "d-1"},
		"cases": []any{map[string]any{
			"name":   "the device's alerts, record by record",
			"input":  map[string]any{"sensor://temp": in},
			"expect": map[string]any{"mqtt://sensors/d-1/alert": want},
		}},
	}
	b, err := json.Marshal(suite)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "differential.test.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := flowtest.LoadSuite(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Run(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil))) {
		if !r.Passed() {
			t.Fatalf("the server runtime's alerts differ from the device's %d:\n  %s", len(alerts), strings.Join(r.Failures, "\n  "))
		}
	}
}

// check verifies the device's summary and compares its alerts with the
// server's.
func check(t *testing.T, console string, msgs <-chan string) {
	t.Helper()
	s := parseSummary(t, console)
	if s.readings != len(replay.Readings) || s.failed != 0 || s.lost != 0 {
		t.Fatalf("device summary %+v: want all %d readings taken", s, len(replay.Readings))
	}
	if s.published == 0 || s.acked != s.published {
		t.Fatalf("device summary %+v: every alert published at QoS 1 must be acknowledged", s)
	}
	if s.allocs != 0 {
		t.Errorf("device summary %+v: the steady state allocated", s)
	}
	alerts := collect(t, msgs, s.published)
	sameAsServer(t, alerts)
	t.Logf("%d readings, %d alerts, identical to the server's; allocations after the first reading: %d", s.readings, len(alerts), s.allocs)
}

// TestDeviceFlowDifferential builds device.flow for the host with the
// replay driver, runs it with its stdin/stdout on a TCP connection to
// mosquitto, and compares the alerts mosquitto_sub receives with the
// server runtime's.
func TestDeviceFlowDifferential(t *testing.T) {
	tinygo(t)
	bin := filepath.Join(t.TempDir(), "device")
	buildDevice(t, "host", bin)
	b := mqtttest.Start(t, mqtttest.Options{})
	msgs := subscribe(t, b, "sensors/d-1/alert")
	conn, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sock, err := conn.(*net.TCPConn).File() // the device's stdin and stdout
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a run takes ~2 s (20 readings at 10 Hz)
	defer cancel()
	dev := exec.CommandContext(ctx, bin)
	dev.Stdin, dev.Stdout = sock, sock
	var console strings.Builder
	dev.Stderr = &console
	if err := dev.Run(); err != nil {
		t.Fatalf("device: %v\n%s", err, console.String())
	}
	check(t, console.String(), msgs)
}

// TestDeviceFlowUnderQemu builds device.flow for cortex-m-qemu with the
// replay driver and runs the firmware under qemu-system-arm, its UART1
// connected by qemu to mosquitto, its UART0 the console. Set
// AIMDB_QEMU_E2E=1 (scripts/tinygo-test.sh does).
func TestDeviceFlowUnderQemu(t *testing.T) {
	if os.Getenv("AIMDB_QEMU_E2E") != "1" {
		t.Skip("set AIMDB_QEMU_E2E=1 to build device.flow for cortex-m-qemu and run it under qemu")
	}
	tinygo(t)
	if _, err := exec.LookPath("qemu-system-arm"); err != nil {
		t.Fatalf("qemu-system-arm: %v", err)
	}
	elf := filepath.Join(t.TempDir(), "device.elf")
	buildDevice(t, "cortex-m-qemu", elf)
	b := mqtttest.Start(t, mqtttest.Options{})
	msgs := subscribe(t, b, "sensors/d-1/alert")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	qemu := exec.CommandContext(ctx, "qemu-system-arm", "-machine", "lm3s6965evb", "-semihosting",
		"-display", "none", "-monitor", "none",
		"-serial", "stdio", // UART0: the console
		"-serial", "tcp:"+b.Addr()+",nodelay=on", // UART1: the MQTT link
		"-kernel", elf)
	out, err := qemu.Output()
	if err != nil {
		t.Fatalf("qemu: %v\n%s", err, out)
	}
	check(t, string(out), msgs)
}

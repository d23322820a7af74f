//go:build !tinygo

package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/tests/mqtttest"
)

// broker starts mosquitto with a retained setpoint for the device and a
// mosquitto_sub watching what the device publishes.
func broker(t *testing.T) (*mqtttest.Broker, chan string) {
	t.Helper()
	b := mqtttest.Start(t, mqtttest.Options{})
	for _, tool := range []string{"mosquitto_pub", "mosquitto_sub", "stdbuf"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install -y mosquitto-clients)", tool)
		}
	}
	port := strconv.Itoa(b.Port())
	if out, err := exec.Command("mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-r", "-q", "1",
		"-t", "devices/d-1/setpoint", "-m", `{"target":21.5}`).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, out)
	}
	sub := exec.Command("stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-q", "1", "-v", "-d",
		"-t", "alerts/d-1", "-t", "devices/d-1/status")
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
			case strings.HasPrefix(line, "Subscribed "):
			default:
				msgs <- line
			}
		}
		close(msgs)
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("mosquitto_sub did not subscribe")
	}
	return b, msgs
}

// check reads the device's summary line and what mosquitto_sub saw: the
// retained "online" status, then every alert, in order.
func check(t *testing.T, summary string, msgs chan string) {
	t.Helper()
	var published, acked int
	var setpoint string
	if err := scanSummary(summary, &published, &acked, &setpoint); err != nil {
		t.Fatalf("device summary %q: %v", summary, err)
	}
	if published < 2 || acked != published || setpoint != "21.5" {
		t.Fatalf("device summary %q", summary)
	}
	if got := next(t, msgs); got != "devices/d-1/status online" {
		t.Fatalf("first message %q, want the status", got)
	}
	for i := 1; i < published; i++ {
		got := next(t, msgs)
		if !strings.HasPrefix(got, `alerts/d-1 {"device":"d-1","temp":`) || !strings.HasSuffix(got, `"alert":true}`) {
			t.Fatalf("alert %d: %q", i, got)
		}
	}
}

// scanSummary parses "published N, acknowledged N, setpoint X".
func scanSummary(s string, published, acked *int, setpoint *string) error {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
	if len(f) != 6 || f[0] != "published" || f[2] != "acknowledged" || f[4] != "setpoint" {
		return strconv.ErrSyntax
	}
	var err error
	if *published, err = strconv.Atoi(f[1]); err != nil {
		return err
	}
	if *acked, err = strconv.Atoi(f[3]); err != nil {
		return err
	}
	*setpoint = f[5]
	return nil
}

func next(t *testing.T, msgs chan string) string {
	t.Helper()
	select {
	case m, ok := <-msgs:
		if !ok {
			t.Fatal("mosquitto_sub ended")
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("mosquitto_sub received nothing")
	}
	return ""
}

// The example under Go, over a net.Conn.
func TestExampleAgainstMosquitto(t *testing.T) {
	b, msgs := broker(t)
	conn, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var summary string
	if err := run(conn, func(s string) { summary = s }); err != nil {
		t.Fatal(err)
	}
	check(t, summary, msgs)
}

// The example built with TinyGo for a Cortex-M3 and run under
// qemu-system-arm, its second UART connected by qemu to mosquitto's TCP
// port: the firmware speaks MQTT to a real broker. Set AIMDB_QEMU_E2E=1
// (scripts/tinygo-test.sh does) with tinygo and qemu-system-arm installed.
func TestFirmwareUnderQemuAgainstMosquitto(t *testing.T) {
	if os.Getenv("AIMDB_QEMU_E2E") != "1" {
		t.Skip("set AIMDB_QEMU_E2E=1 to build the firmware with TinyGo and run it under qemu")
	}
	tinygo, err := exec.LookPath("tinygo")
	if err != nil {
		tinygo = "/opt/tinygo/bin/tinygo"
	}
	for _, tool := range []string{tinygo, "qemu-system-arm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
	}
	elf := filepath.Join(t.TempDir(), "mqtt.elf")
	if out, err := exec.Command(tinygo, "build", "-target=cortex-m-qemu", "-o", elf, ".").CombinedOutput(); err != nil {
		t.Fatalf("tinygo build: %v\n%s", err, out)
	}
	b, msgs := broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a normal run takes well under a second
	defer cancel()
	qemu := exec.CommandContext(ctx, "qemu-system-arm", "-machine", "lm3s6965evb", "-semihosting",
		"-display", "none", "-monitor", "none",
		"-serial", "stdio", // UART0: the console (println)
		"-serial", "tcp:"+b.Addr()+",nodelay=on", // UART1: the MQTT link
		"-kernel", elf)
	out, err := qemu.Output()
	if err != nil {
		t.Fatalf("qemu: %v\n%s", err, out)
	}
	check(t, strings.TrimSpace(string(out)), msgs)
}

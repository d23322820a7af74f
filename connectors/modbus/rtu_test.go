package modbus_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/modbus"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// ptyPair starts socat with two linked pseudo-terminals and returns their
// paths (symlinks in a temporary directory); socat is killed by PID when
// the test ends.
func ptyPair(t *testing.T) (peerSide, connSide string) {
	t.Helper()
	need(t, "socat", func() error { _, err := exec.LookPath("socat"); return err })
	dir := t.TempDir()
	peerSide, connSide = filepath.Join(dir, "peer"), filepath.Join(dir, "conn")
	cmd := exec.Command("socat", "pty,raw,echo=0,link="+peerSide, "pty,raw,echo=0,link="+connSide)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	if !waitFor(10*time.Second, func() bool { return exists(peerSide) && exists(connSide) }) {
		t.Fatal("socat made no pty pair")
	}
	return peerSide, connSide
}

// TestRTUPymodbus polls and writes a pymodbus RTU server over a socat
// pty pair (the serial line), with the line settings as connector
// settings.
func TestRTUPymodbus(t *testing.T) {
	needPymodbus(t)
	peerSide, connSide := ptyPair(t)
	peer := &pyPeer{t: t, args: []string{"--rtu", peerSide, "--baud", "19200", "--set", "ir:5:1234", "--set", "co:2:1"}}
	t.Cleanup(peer.stop)
	peer.start()
	b := builder(t, "modbus+rtu://"+connSide, pipeline.Params{
		"baud": "19200", "parity": "none", "stop_bits": "2", "data_bits": "8", "unit": "3", "timeout": "300ms", "reconnect_min": "10ms", "reconnect_max": "200ms",
	})
	fields := pipeline.Params{"field.level": "input 5 int16 scale 0.01", "field.pump": "coil 2", "field.sp": "holding 0"}
	in := pipeline.Params{"interval": "50ms"}
	for k, v := range fields {
		in[k] = v
	}
	c, rec := serve(t, b, "tank", in)
	// The peer opens its side after it started: polls time out until then
	// (counted, the line stays open).
	if !rec.waitPayload(20*time.Second, `{"pump":true,"sp":0,"level":12.34}`) {
		t.Fatalf("no record over RTU; got %q", rec.last())
	}
	wopts := linkOpts(t, b, pipeline.Outbound, "tank", pipeline.Params{"field.sp": "holding 0", "field.pump": "coil 2"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Publish(ctx, "tank", wopts, &pipeline.Envelope{Payload: []byte(`{"sp":55,"pump":false}`)}); err != nil {
		t.Fatalf("Publish over RTU: %v", err)
	}
	if !rec.waitPayload(20*time.Second, `{"pump":false,"sp":55,"level":12.34}`) {
		t.Fatalf("the write did not land; got %q", rec.last())
	}
	// The device goes silent (the peer is killed): polls time out,
	// counted; the line is reopened after a quiet interval (so that late
	// answers are discarded) and reports why it is not ready. The device
	// comes back: polling and writing resume.
	conn := c.(*modbus.Conn)
	before := conn.Stats().Timeouts
	peer.stop()
	if !waitFor(20*time.Second, func() bool { return conn.Stats().Timeouts >= before+2 && c.(pipeline.Readiness).Ready() != nil }) {
		t.Fatalf("silence not reported: %+v, ready: %v", conn.Stats(), c.(pipeline.Readiness).Ready())
	}
	t.Logf("silent device: %v", c.(pipeline.Readiness).Ready())
	peer.start()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	if !waitFor(30*time.Second, func() bool {
		return c.Publish(ctx2, "tank", wopts, &pipeline.Envelope{Payload: []byte(`{"sp":56}`)}) == nil
	}) {
		t.Fatal("no write after the device came back")
	}
	if !rec.waitPayload(20*time.Second, `{"pump":true,"sp":56,"level":12.34}`) {
		t.Fatalf("polling did not resume; got %q", rec.last())
	}
}

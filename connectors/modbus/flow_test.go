package modbus_test

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// hopTracer records where hops happened (pipeline.HopInfo), as a tracer
// sees them.
type hopTracer struct {
	mu   sync.Mutex
	hops []pipeline.HopInfo
}

func (h *hopTracer) StartHop(_ context.Context, _ *pipeline.Envelope, info *pipeline.HopInfo) pipeline.Span {
	h.mu.Lock()
	h.hops = append(h.hops, *info)
	h.mu.Unlock()
	return nil
}

func (h *hopTracer) saw(hop pipeline.Hop, connector string) (pipeline.HopInfo, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, i := range h.hops {
		if i.Hop == hop && i.Connector == connector {
			return i, true
		}
	}
	return pipeline.HopInfo{}, false
}

// TestBoilerFlow runs pipelines/modbus-boiler.flow end to end: pymodbus
// is the PLC (polled; its alarm coil written on an overheat), mbpoll is
// the SCADA system reading the served registers; every hop is traced
// with the connector's scheme and capabilities.
func TestBoilerFlow(t *testing.T) {
	needMbpoll(t)
	plc := startTCPPeer(t, "ir:0:17077,0", "ir:2:152", "co:0:1") // 90.5 °C, 1.52 bar, burner on
	scadaPort := freePort(t)
	env := map[string]string{"PLC_ADDR": plc.addr(), "SCADA_ADDR": "127.0.0.1:" + strconv.Itoa(scadaPort)}
	g, err := dsl.LoadFiles(dsl.Options{Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}, "../../pipelines/modbus-boiler.flow")
	if err != nil {
		t.Fatal(err)
	}
	tr := &hopTracer{}
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{DrainTimeout: 5 * time.Second, Tracer: tr,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runner: %v", err)
		}
	})
	if !waitFor(15*time.Second, func() bool { return r.Ready() == nil }) {
		t.Fatalf("runner not ready: %v", r.Ready())
	}
	read := func(port int, args ...string) string {
		out, err := mbpoll(t, port, args...)
		if v := values(out); err == nil && len(v) == 1 {
			return v[0]
		}
		return "?"
	}
	for _, tc := range []struct {
		what string
		port int
		args []string
		want string
	}{
		{"the PLC's alarm coil", plc.port, []string{"-t", "0", "-r", "11"}, "1"},
		{"SCADA's temperature", scadaPort, []string{"-t", "3:float", "-B", "-r", "1"}, "90.5"},
		{"SCADA's pressure in hundredths", scadaPort, []string{"-t", "3", "-r", "3"}, "152"},
		{"SCADA's burner input", scadaPort, []string{"-t", "1", "-r", "1"}, "1"},
	} {
		var got string
		if !waitFor(20*time.Second, func() bool { got = read(tc.port, tc.args...); return got == tc.want }) {
			t.Fatalf("%s: mbpoll %v reads %s, want %s", tc.what, tc.args, got, tc.want)
		}
	}
	recv, ok := tr.saw(pipeline.HopReceive, "plc")
	if !ok || recv.Scheme != "modbus" || !recv.Caps.Inbound || recv.Caps.Headers || recv.Caps.Topics {
		t.Fatalf("receive hop %+v", recv)
	}
	pub, ok := tr.saw(pipeline.HopPublish, "scada")
	if !ok || pub.Scheme != "modbus" || !strings.HasPrefix(pub.Link, "scada://boiler") || pub.Record != "boiler" {
		t.Fatalf("publish hop %+v", pub)
	}
}

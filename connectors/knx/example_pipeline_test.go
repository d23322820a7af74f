package knx_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/knx/internal/knxdtest"
	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// TestHeatingExampleAgainstKnxd runs pipelines/knx-heating.flow, loaded
// by the DSL with the registered connectors, against knxd: temperatures
// written on the bus with knxtool open and close the valve, as seen on
// the bus with knxtool groupsocketlisten; a malformed temperature is
// dead-lettered and the pipeline goes on.
func TestHeatingExampleAgainstKnxd(t *testing.T) {
	d := knxdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := d.Listen(t)
	l.Ready(ctx, t, d, "31/7/255")

	gateway := strings.TrimPrefix(d.Endpoint(), "knx://")
	g, err := dsl.LoadFiles(dsl.Options{Getenv: func(k string) (string, bool) {
		if k == "KNX_GATEWAY" {
			return gateway, true
		}
		return "", false
	}}, "../../pipelines/knx-heating.flow")
	if err != nil {
		t.Fatal(err)
	}
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for r.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("runner not ready: %v", r.Ready())
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, bounded
	}

	for _, tc := range []struct {
		ga    string
		value []byte // 2-byte float
		valve string
	}{
		{"1/2/3", []byte{0x07, 0x3a}, "FF"}, // 18.5 °C: open (100%)
		{"1/2/4", []byte{0x0c, 0x1a}, "00"}, // 21 °C: closed
	} {
		if err := d.Write(ctx, tc.ga, false, tc.value...); err != nil {
			t.Fatal(err)
		}
		if line := l.Expect(ctx, t, "1/3/1"); !strings.HasSuffix(strings.TrimSpace(line), ": "+tc.valve) {
			t.Errorf("after %s: bus shows %q, want the valve at %s", tc.ga, line, tc.valve)
		}
	}
	if err := d.Write(ctx, "1/2/5", false, 0x01); err != nil { // not a 2-byte float
		t.Fatal(err)
	}
	if err := d.Write(ctx, "1/2/6", false, 0x07, 0x3a); err != nil {
		t.Fatal(err)
	}
	if line := l.Expect(ctx, t, "1/3/1"); !strings.HasSuffix(strings.TrimSpace(line), ": FF") {
		t.Errorf("after the malformed value: bus shows %q, want the valve open", line)
	}
	if n := r.Stats().DeadLetters; n != 1 {
		t.Errorf("%d dead letters, want 1 (the malformed temperature)", n)
	}
}

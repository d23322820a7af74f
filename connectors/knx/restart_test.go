package knx

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/knx/internal/knxdtest"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// TestSurvivesKnxdRestart stops knxd mid-stream: readiness drops while
// it is down, the connector reconnects when it is back (a new tunnel),
// readiness returns, and telegrams flow both ways again.
func TestSurvivesKnxdRestart(t *testing.T) {
	d := knxdtest.Start(t)
	col := newCollector()
	c := serve(t, New(testConfig(t, d.Endpoint())), []pipeline.Subscription{sub(t, pipeline.Inbound, "1/2/3", nil)}, col)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Write(ctx, "1/2/3", false, 1); err != nil {
		t.Fatal(err)
	}
	col.wait(t, 1)

	for round := 1; round <= 2; round++ {
		d.Stop()
		waitReady(t, c, false)
		if err := c.Publish(ctx, "1/2/4", nil, &pipeline.Envelope{Payload: []byte{7}}); err == nil {
			t.Fatal("Publish succeeded with knxd down")
		}
		t.Logf("round %d: down: %v", round, c.Ready())
		d.Up()
		waitReady(t, c, true)
		if err := d.Write(ctx, "1/2/3", false, byte(round+1)); err != nil {
			t.Fatal(err)
		}
		envs := col.wait(t, round+1)
		if p := envs[round].Payload; len(p) != 1 || p[0] != byte(round+1) {
			t.Fatalf("after restart %d: payload % x", round, p)
		}
		l := d.Listen(t)
		l.Ready(ctx, t, d, "31/7/255")
		if err := c.Publish(ctx, "1/2/4", nil, &pipeline.Envelope{Payload: []byte{byte(round)}}); err != nil {
			t.Fatalf("Publish after restart %d: %v", round, err)
		}
		if line := l.Expect(ctx, t, "1/2/4"); !strings.HasSuffix(strings.TrimSpace(line), ": 0"+string(rune('0'+round))) {
			t.Errorf("bus shows %q", line)
		}
	}
	if s := c.Stats(); s.Sessions < 3 {
		t.Errorf("%d tunnels, want at least 3 (one per knxd start)", s.Sessions)
	}
}

// TestReadOnStart: with read_on_start the connector sends a
// GroupValueRead for each inbound address without wildcards.
func TestReadOnStart(t *testing.T) {
	d := knxdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l := d.Listen(t)
	l.Ready(ctx, t, d, "31/7/255")
	cfg := testConfig(t, d.Endpoint())
	cfg.ReadOnStart = true
	serve(t, New(cfg), []pipeline.Subscription{
		sub(t, pipeline.Inbound, "1/2/*", nil),
		sub(t, pipeline.Inbound, "5/6/7", pipeline.Params{"dpt": "9.001"}),
	}, newCollector())
	line := l.Expect(ctx, t, "5/6/7")
	if !strings.HasPrefix(line, "Read from ") {
		t.Fatalf("bus shows %q, want a read", line)
	}
	// Nothing was read for the wildcard: the next telegram listed is a
	// marker of ours.
	if err := d.Write(ctx, "31/7/254", true, 1); err != nil {
		t.Fatal(err)
	}
	if line := <-l.Lines; !strings.Contains(line, "31/7/254") {
		t.Fatalf("bus shows %q, want only the marker after the read", line)
	}
}

// TestPublishAfterServeEnds: the runner stops the sources first and then
// drains the records still on their way out; the tunnel must outlive
// Serve until Close.
func TestPublishAfterServeEnds(t *testing.T) {
	d := knxdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l := d.Listen(t)
	l.Ready(ctx, t, d, "31/7/255")
	subs := []pipeline.Subscription{sub(t, pipeline.Inbound, "1/2/3", nil)}
	pc, err := New(testConfig(t, d.Endpoint())).Build(ctx, pipeline.BuildEnv{Name: "knx", Inbound: subs})
	if err != nil {
		t.Fatal(err)
	}
	c := pc.(*Conn)
	defer c.Close(context.Background())
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Serve(sctx, subs, newCollector()) }()
	waitReady(t, c, true)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if err := c.Publish(ctx, "1/2/4", nil, &pipeline.Envelope{Payload: []byte{9}}); err != nil {
		t.Fatalf("Publish after Serve returned: %v", err)
	}
	if line := l.Expect(ctx, t, "1/2/4"); !strings.HasSuffix(strings.TrimSpace(line), ": 09") {
		t.Errorf("bus shows %q", line)
	}
}

// TestHeartbeatLossDropsReadiness stalls knxd (SIGSTOP): its socket stays
// open, so only the unanswered heartbeats show the tunnel is gone.
// Readiness drops, and returns once knxd runs again.
func TestHeartbeatLossDropsReadiness(t *testing.T) {
	d := knxdtest.Start(t)
	col := newCollector()
	c := serve(t, New(testConfig(t, d.Endpoint())), []pipeline.Subscription{sub(t, pipeline.Inbound, "1/2/3", nil)}, col)
	resume := d.Pause()
	defer resume()
	waitReady(t, c, false)
	if err := c.Ready(); !strings.Contains(err.Error(), "CONNECTIONSTATE_RESPONSE") {
		t.Errorf("not ready because %v, want the heartbeats", err)
	}
	resume()
	waitReady(t, c, true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Write(ctx, "1/2/3", false, 5); err != nil {
		t.Fatal(err)
	}
	col.wait(t, 1)
}

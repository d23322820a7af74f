package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/aimdb-dev/aimdb-flow/bench/otlpsink"
)

// TestMain lets runOne re-execute the test binary as a relay child
// ("-role NAME -broker URL"), exactly as it re-executes the command.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-role" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// broker starts mosquitto for one test (skipping when it is not installed).
func broker(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("mosquitto"); err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr != nil {
			t.Skip("mosquitto is not installed")
		}
	}
	stop, u, err := startMosquitto()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return u
}

// TestRelaysDeliverExactlyTheHotMessages runs every relay as the benchmark
// does and checks the consumer's exact accounting: every hot id arrived,
// nothing else did, and the child reported its figures.
func TestRelaysDeliverExactlyTheHotMessages(t *testing.T) {
	u := broker(t)
	const n = 2000
	for _, v := range []variant{{name: "handwritten", role: "handwritten"}, {name: "pipeline", role: "pipeline"}, {name: "pipeline-async", role: "pipeline-async"}} {
		t.Run(v.name, func(t *testing.T) {
			r, err := runOne(u, v, "unpaced", n, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.Expected != n/2 || r.Received != r.Expected || r.Lost != 0 || r.Unexpected != 0 {
				t.Fatalf("expected %d hot ids, received %d distinct, lost %d, unexpected %d", r.Expected, r.Received, r.Lost, r.Unexpected)
			}
			if r.CPUusMsg <= 0 || r.RSSMiB <= 0 || r.P99us <= 0 {
				t.Fatalf("missing figures: CPU %v µs/msg, RSS %v MiB, p99 %v µs", r.CPUusMsg, r.RSSMiB, r.P99us)
			}
		})
	}
}

// TestTracingVariantsExport checks what the tracing rows rely on: always_on
// exports spans to the receiver, always_off exports none, no tracer none.
func TestTracingVariantsExport(t *testing.T) {
	u := broker(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink, err := otlpsink.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	const n = 500
	for _, v := range tracingVariants(sink.URL()) {
		if v.name == "trace-1pct" {
			continue // sampled by trace id: a small run may export nothing
		}
		t.Run(v.name, func(t *testing.T) {
			r, err := runOne(u, v, "unpaced", n, 0, sink)
			if err != nil {
				t.Fatal(err)
			}
			if r.Lost != 0 || r.Unexpected != 0 {
				t.Fatalf("lost %d, unexpected %d", r.Lost, r.Unexpected)
			}
			switch v.name {
			case "trace-on":
				// At least one span per input record.
				if r.Spans < n {
					t.Fatalf("always_on exported %d spans for %d records", r.Spans, n)
				}
			default:
				if r.Spans != 0 {
					t.Fatalf("%s exported %d spans, want 0", v.name, r.Spans)
				}
			}
		})
	}
}

// TestHandRelayRepublishesPayloadUnchanged sends hot readings in unusual
// but valid JSON (spacing, key order, an extra field) through the hand
// relay: each output must be the input's bytes. A cold reading sent first
// fails the test if it comes out while the hot ones are awaited (the
// exhaustive check of the filter is TestRelaysDeliverExactlyTheHotMessages).
func TestHandRelayRepublishesPayloadUnchanged(t *testing.T) {
	u := broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(self, "-role", "handwritten", "-broker", u)
	child.Stderr = os.Stderr
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	child.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = child.Wait() }()
	buf := make([]byte, 6)
	if _, err := stdout.Read(buf); err != nil || string(buf) != "READY\n" {
		t.Fatalf("relay did not start: %q %v", buf, err)
	}
	go func() { _, _ = bytes.NewBuffer(nil).ReadFrom(stdout) }()

	got := make(chan []byte, 16)
	cons, err := connect(ctx, u, "w2-test-consumer", func(p *paho.Publish) { got <- p.Payload })
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Disconnect(context.Background())
	if _, err := cons.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "alerts/temp", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	prod, err := connect(ctx, u, "w2-test-producer", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Disconnect(context.Background())
	inputs := [][]byte{
		[]byte(`{"seq":1,"temp":20.5}`), // cold: filtered out
		[]byte(`{ "temp" : 26.5 , "seq":2, "note":"a\u00e9" }`),
		[]byte(`{"site":"x","temp":2.55e1,"seq":3}`),
	}
	for _, in := range inputs {
		if _, err := prod.Publish(ctx, &paho.Publish{Topic: "sensors/temp", QoS: 1, Payload: in}); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]bool{string(inputs[1]): true, string(inputs[2]): true}
	for len(want) > 0 {
		select {
		case b := <-got:
			if !want[string(b)] {
				t.Fatalf("relay published %q, want one of the hot inputs byte for byte", b)
			}
			delete(want, string(b))
		case <-ctx.Done():
			t.Fatalf("timed out; still missing %v", want)
		}
	}
}

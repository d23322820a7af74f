package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/file"
	"github.com/aimdb-dev/aimdb-flow/connectors/gen"
	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

func tempOver(limit float64) pipeline.Processor {
	return stages.FilterValue(func(m map[string]any) bool {
		t, _ := m["temp"].(float64)
		return t > limit
	})
}

func TestFileToFileFiniteRun(t *testing.T) {
	for _, workers := range []int{1, 3} {
		t.Run("workers="+string(rune('0'+workers)), func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "in.jsonl")
			out := filepath.Join(dir, "out.jsonl")
			var b strings.Builder
			for i := 0; i < 1000; i++ {
				b.WriteString(`{"device":"d-1","temp":` + []string{"10", "30"}[i%2] + `,"seq":` + itoa(i) + "}\n")
			}
			b.WriteString("not json\n")
			if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			g := pipeline.New().Connector("", file.New())
			g.Record("readings").From("file://"+in, codec.JSON{})
			g.Pipeline("hot").From("readings").
				Via(tempOver(25), stages.MapValue(func(m map[string]any) (map[string]any, error) {
					m["alert"] = true
					return m, nil
				})).
				Parallel(workers).
				To("file://"+out, codec.JSON{})
			r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := r.Run(ctx); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			if len(lines) != 500 {
				t.Fatalf("got %d lines, want 500", len(lines))
			}
			for i, l := range lines {
				want := `"seq":` + itoa(2*i+1)
				if !strings.Contains(l, want) || !strings.Contains(l, `"alert":true`) {
					t.Fatalf("line %d = %s, want %s and alert (order preserved)", i, l, want)
				}
			}
			if s := r.Stats(); s.DeadLetters != 1 {
				t.Fatalf("dead letters = %d, want 1 (the bad line)", s.DeadLetters)
			}
		})
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// TestAckFanInAndDeadLetter follows source acks through a fan-out: record
// "hot" feeds two pipelines, each with its own sink, so a hot message is
// acknowledged to the source only after both sinks confirmed it, exactly
// once; a sink that fails its confirmation nacks the source message; a sink
// that refuses the hand-off and a payload that does not decode are
// dead-lettered with provenance and then acked.
func TestAckFanInAndDeadLetter(t *testing.T) {
	c := newChanConn()
	g := pipeline.New().Connector("", c)
	g.Record("in").From("chan://in", codec.JSON{})
	g.Record("hot").WithBuffer(buffer.Config{Kind: buffer.Queue, Size: 8})
	g.Pipeline("p1").From("in").Via(tempOver(25)).Into("hot")
	g.Pipeline("p2").From("hot").To("chan://alerts/{device}", codec.JSON{})
	g.Pipeline("p3").From("hot").To("chan://copy", codec.JSON{})
	g.DeadLetterTo("chan://dlq", codec.Raw{})
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var all []*outcome

	// bothSinks waits for the two hand-offs of one message and returns
	// them by destination.
	bothSinks := func(device string) (alert, copied pubCall) {
		t.Helper()
		var gotAlert, gotCopy bool
		for range 2 {
			p := c.nextPub(t)
			switch p.dest {
			case "alerts/" + device:
				alert, gotAlert = p, true
			case "copy":
				copied, gotCopy = p, true
			default:
				t.Fatalf("unexpected publish to %q: %s", p.dest, p.payload)
			}
		}
		if !gotAlert || !gotCopy {
			t.Fatalf("want one publish to alerts/%s and one to copy", device)
		}
		return alert, copied
	}

	// 1. Both sinks confirm: acked after the second confirmation only.
	o := c.inject(t, "in", `{"device":"d-1","temp":30}`)
	all = append(all, o)
	alert, copied := bothSinks("d-1")
	alert.ack.Done()
	if o.settled() {
		t.Fatal("d-1 settled after one of its two sinks confirmed")
	}
	copied.ack.Done()
	if err := o.wait(t, "d-1"); err != nil {
		t.Fatalf("d-1 confirmed by both sinks but nacked: %v", err)
	}

	// 2. One sink fails its confirmation: nacked with that error, and
	// only once the other sink settled too.
	errSink := errors.New("broker refused the message")
	o = c.inject(t, "in", `{"device":"d-2","temp":31}`)
	all = append(all, o)
	alert, copied = bothSinks("d-2")
	copied.ack.Nack(errSink)
	if o.settled() {
		t.Fatal("d-2 settled while its alert sink still held it")
	}
	alert.ack.Done()
	if err := o.wait(t, "d-2"); !errors.Is(err, errSink) {
		t.Fatalf("d-2 outcome = %v, want the sink's error %v", err, errSink)
	}

	// 3. The copy sink refuses the hand-off: dead-lettered with the
	// pipeline, stage and link; acked once the alert sink confirmed.
	o = c.inject(t, "in", `{"device":"reject","temp":40}`)
	all = append(all, o)
	alert = c.nextPub(t)
	if alert.dest != "alerts/reject" {
		t.Fatalf("publish to %q, want alerts/reject", alert.dest)
	}
	dl := deadLetterOf(t, c.nextDead(t))
	if dl.Pipeline != "p3" || dl.Stage != "publish chan://copy" || dl.Link != "chan://copy" ||
		!strings.Contains(dl.Error, "sink rejected") || !strings.Contains(dl.Payload, `"device":"reject"`) {
		t.Fatalf("dead letter lacks provenance: %+v", dl)
	}
	if o.settled() {
		t.Fatal("reject settled while its alert sink still held it")
	}
	alert.ack.Done()
	if err := o.wait(t, "reject"); err != nil {
		t.Fatalf("dead-lettered message nacked: %v", err)
	}

	// 4. Filtered out: acked with no publish.
	o = c.inject(t, "in", `{"device":"d-4","temp":10}`)
	all = append(all, o)
	if err := o.wait(t, "d-4"); err != nil {
		t.Fatalf("filtered message nacked: %v", err)
	}

	// 5. Undecodable: dead-lettered by the receive side, then acked.
	o = c.inject(t, "in", `{bad`)
	all = append(all, o)
	dl = deadLetterOf(t, c.nextDead(t))
	if dl.Stage != "decode" || dl.Record != "in" || dl.Link != "chan://in" || dl.Payload != `{bad` || dl.Error == "" {
		t.Fatalf("decode dead letter lacks provenance: %+v", dl)
	}
	if err := o.wait(t, "bad"); err != nil {
		t.Fatalf("dead-lettered message nacked: %v", err)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-c.published:
		t.Fatalf("extra publish to %q: %s", p.dest, p.payload)
	case e := <-c.dead:
		t.Fatalf("extra dead letter: %s", e.Payload)
	default:
	}
	for i, o := range all {
		if n := o.count(); n != 1 {
			t.Errorf("message %d: ack callback ran %d times, want 1", i+1, n)
		}
	}
}

func deadLetterOf(t *testing.T, e pipeline.Envelope) pipeline.DeadLetter {
	t.Helper()
	if e.Topic != "dlq" {
		t.Fatalf("dead letter published to %q, want dlq", e.Topic)
	}
	var d pipeline.DeadLetter
	if err := json.Unmarshal(e.Payload, &d); err != nil {
		t.Fatalf("dead letter %s: %v", e.Payload, err)
	}
	return d
}

func recv(t *testing.T, ch <-chan pipeline.Envelope) pipeline.Envelope {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a message")
	}
	return pipeline.Envelope{}
}

func waitReady(t *testing.T, r *pipeline.Runner) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatal("runner not ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestGenCountFinite(t *testing.T) {
	var n atomic.Int64
	g := pipeline.New().Connector("", gen.New()).Connector("", mem.New(nil))
	g.Record("r").From("gen://x", codec.JSON{}, pipeline.WithParams(pipeline.Params{"count": "250"}))
	g.Pipeline("p").From("r").Via(stages.Tap(func(*pipeline.Envelope) { n.Add(1) })).To("mem://sink", codec.JSON{})
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 250 {
		t.Fatalf("saw %d, want 250", n.Load())
	}
}

func TestValidateReportsEverything(t *testing.T) {
	g := pipeline.New().Connector("", mem.New(nil))
	g.Record("a").From("kafka://x", codec.JSON{})
	g.Record("b").From("mem://y", nil)
	g.Pipeline("p").From("aa").Into("b")
	g.Pipeline("q").From("c")
	g.Record("c")
	g.Record("d")
	g.Pipeline("cd").From("c").Into("d")
	g.Pipeline("dc").From("d").Into("c")
	err := g.Validate()
	var ve *pipeline.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want ValidationError, got %v", err)
	}
	for _, want := range []string{`unknown connector "kafka"`, "missing codec", `unknown input record "aa" (did you mean "a"?)`,
		"already has a writer", "no output", "cycle between records"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestOversizedPayloadDeadLettered(t *testing.T) {
	bus := mem.NewBus()
	g := pipeline.New().Connector("", mem.New(bus))
	g.Record("in").From("mem://in", codec.Raw{})
	g.Pipeline("p").From("in").To("mem://out", codec.Raw{})
	g.DeadLetterTo("mem://dlq", codec.Raw{})
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{MaxPayload: 10})
	if err != nil {
		t.Fatal(err)
	}
	out, c1 := bus.Subscribe("out", 10)
	defer c1()
	dlq, c2 := bus.Subscribe("dlq", 10)
	defer c2()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	waitReady(t, r)
	for _, p := range []string{"small", "this one is far too large"} {
		e := pipeline.Envelope{Payload: []byte(p)}
		bus.Publish(ctx, "in", &e)
	}
	if got := recv(t, out); string(got.Payload) != "small" {
		t.Fatalf("out = %q", got.Payload)
	}
	d := recv(t, dlq)
	if !strings.Contains(string(d.Payload), "payload too large: 25 bytes, limit 10") {
		t.Fatalf("dead letter %s", d.Payload)
	}
	cancel()
	<-done
}

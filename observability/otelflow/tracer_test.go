package otelflow_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/observability/otelflow"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// provider returns a TracerProvider named service whose spans go to rec.
func provider(service string, rec *tracetest.SpanRecorder, sampler sdktrace.Sampler) *sdktrace.TracerProvider {
	if sampler == nil {
		sampler = sdktrace.ParentBased(sdktrace.AlwaysSample())
	}
	return sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sampler),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))))
}

func hotOnly(m map[string]any) bool {
	t, _ := m["temp"].(float64)
	return t > 25
}

func markAlert(m map[string]any) (map[string]any, error) {
	m["alert"] = true
	return m, nil
}

// graphA: mem://src/+ -> a.in -> pa (filter, map) -> mem://hop/{device}.
func graphA(bus *mem.Bus) *pipeline.Graph {
	g := pipeline.New().Connector("", mem.New(bus))
	g.Record("a.in").From("mem://src/+", codec.JSON{})
	g.Pipeline("pa").From("a.in").Via(stages.FilterValue(hotOnly), stages.MapValue(markAlert)).
		To("mem://hop/{device}", codec.JSON{})
	return g
}

// graphB: mem://hop/+ -> b.in -> pb (map) -> mem://out/{device}.
func graphB(bus *mem.Bus) *pipeline.Graph {
	g := pipeline.New().Connector("", mem.New(bus))
	g.Record("b.in").From("mem://hop/+", codec.JSON{})
	g.Pipeline("pb").From("b.in").Via(stages.MapValue(func(m map[string]any) (map[string]any, error) {
		m["seen_by_b"] = true
		return m, nil
	})).To("mem://out/{device}", codec.JSON{})
	return g
}

// start runs g with tracer until the test ends.
func start(t *testing.T, g *pipeline.Graph, tracer pipeline.Tracer) *pipeline.Runner {
	t.Helper()
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{Tracer: tracer, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for r.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("runner not ready: %v", r.Ready())
		}
		time.Sleep(2 * time.Millisecond)
	}
	return r
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

// waitSpans waits until rec holds n ended spans.
func waitSpans(t *testing.T, rec *tracetest.SpanRecorder, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		spans := rec.Ended()
		if len(spans) >= n {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d ended spans, want %d:\n%s", len(spans), n, dump(spans))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func dump(spans []sdktrace.ReadOnlySpan) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "  %s/%s span=%s parent=%s trace=%s\n", service(s), s.Name(), s.SpanContext().SpanID(), s.Parent().SpanID(), s.SpanContext().TraceID())
	}
	return b.String()
}

func service(s sdktrace.ReadOnlySpan) string {
	v, _ := s.Resource().Set().Value("service.name")
	return v.AsString()
}

// byName indexes spans by "service/name"; names are unique per service here.
func byName(t *testing.T, spans []sdktrace.ReadOnlySpan) map[string]sdktrace.ReadOnlySpan {
	t.Helper()
	m := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		k := service(s) + "/" + s.Name()
		if _, dup := m[k]; dup {
			t.Fatalf("duplicate span %s:\n%s", k, dump(spans))
		}
		m[k] = s
	}
	return m
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

func publish(t *testing.T, bus *mem.Bus, topic, payload string, headers pipeline.Headers) {
	t.Helper()
	env := pipeline.Envelope{Payload: []byte(payload), Headers: headers}
	if err := bus.Publish(context.Background(), topic, &env); err != nil {
		t.Fatal(err)
	}
}

// TestOneTraceAcrossTwoGraphs chains two runners through one mem bus (as
// two processes chained through a broker: only the envelope headers
// travel) and asserts the whole span tree of one record.
func TestOneTraceAcrossTwoGraphs(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	bus := mem.NewBus()
	out, unsub := bus.Subscribe("out/#", 10)
	defer unsub()
	start(t, graphB(bus), otelflow.New(provider("B", rec, nil)))
	start(t, graphA(bus), otelflow.New(provider("A", rec, nil)))

	publish(t, bus, "src/d-1", `{"device":"d-1","temp":30}`, nil)
	got := recv(t, out)
	if !strings.Contains(string(got.Payload), `"seen_by_b":true`) {
		t.Fatalf("output = %s", got.Payload)
	}
	spans := byName(t, waitSpans(t, rec, 13))
	if len(spans) != 13 {
		t.Fatalf("got %d spans, want 13:\n%s", len(spans), dump(rec.Ended()))
	}

	// parent -> children, as "service/name".
	tree := []struct{ child, parent string }{
		{"A/decode a.in", "A/receive"},
		{"A/buffer a.in", "A/decode a.in"},
		{"A/pa 1:filter", "A/buffer a.in"},
		{"A/pa 2:map", "A/pa 1:filter"},
		{"A/encode hop/{device}", "A/pa 2:map"},
		{"A/send hop/{device}", "A/pa 2:map"},
		{"B/receive", "A/send hop/{device}"},
		{"B/decode b.in", "B/receive"},
		{"B/buffer b.in", "B/decode b.in"},
		{"B/pb 1:map", "B/buffer b.in"},
		{"B/encode out/{device}", "B/pb 1:map"},
		{"B/send out/{device}", "B/pb 1:map"},
	}
	root := spans["A/receive"]
	if root == nil || root.Parent().IsValid() {
		t.Fatalf("A/receive must be a root span:\n%s", dump(rec.Ended()))
	}
	traceID := root.SpanContext().TraceID()
	for _, s := range spans {
		if s.SpanContext().TraceID() != traceID {
			t.Errorf("%s/%s in trace %s, want %s", service(s), s.Name(), s.SpanContext().TraceID(), traceID)
		}
	}
	for _, e := range tree {
		c, p := spans[e.child], spans[e.parent]
		if c == nil || p == nil {
			t.Fatalf("missing %s or %s:\n%s", e.child, e.parent, dump(rec.Ended()))
		}
		if c.Parent().SpanID() != p.SpanContext().SpanID() {
			t.Errorf("parent of %s = %s, want %s (%s)", e.child, c.Parent().SpanID(), p.SpanContext().SpanID(), e.parent)
		}
	}
	if !spans["B/receive"].Parent().IsRemote() {
		t.Error("B/receive's parent should be remote (extracted from headers)")
	}

	kinds := map[string]trace.SpanKind{"A/receive": trace.SpanKindConsumer, "A/send hop/{device}": trace.SpanKindProducer,
		"B/receive": trace.SpanKindConsumer, "A/pa 1:filter": trace.SpanKindInternal}
	for name, k := range kinds {
		if spans[name].SpanKind() != k {
			t.Errorf("%s kind = %v, want %v", name, spans[name].SpanKind(), k)
		}
	}
	attrs := []struct{ span, key, want string }{
		{"A/receive", "messaging.system", "mem"},
		{"A/receive", "messaging.destination.name", "src/d-1"},
		{"A/receive", "messaging.operation.type", "receive"},
		{"A/send hop/{device}", "messaging.destination.name", "hop/d-1"},
		{"A/send hop/{device}", "messaging.destination.template", "hop/{device}"},
		{"A/send hop/{device}", "messaging.operation.type", "send"},
		{"A/send hop/{device}", "messaging.system", "mem"},
		{"A/pa 2:map", "aimdb.stage", "2:map"},
		{"A/pa 2:map", "aimdb.pipeline", "pa"},
		{"B/decode b.in", "aimdb.record", "b.in"},
	}
	for _, a := range attrs {
		if got := attr(spans[a.span], a.key); got != a.want {
			t.Errorf("%s %s = %q, want %q", a.span, a.key, got, a.want)
		}
	}
	// The buffer span covers the wait between decode and the first stage.
	buf, dec, first := spans["A/buffer a.in"], spans["A/decode a.in"], spans["A/pa 1:filter"]
	if buf.StartTime().Before(dec.EndTime()) || buf.EndTime().After(first.StartTime()) {
		t.Errorf("buffer span [%v, %v] not between decode end %v and stage start %v", buf.StartTime(), buf.EndTime(), dec.EndTime(), first.StartTime())
	}
	// The output carries B's send span as traceparent.
	tp, _ := got.Headers.Get("traceparent")
	send := spans["B/send out/{device}"].SpanContext()
	if want := "00-" + send.TraceID().String() + "-" + send.SpanID().String() + "-01"; tp != want {
		t.Errorf("output traceparent = %q, want %q", tp, want)
	}
}

// TestRemoteParentAndSampling feeds records that carry a traceparent from
// an upstream producer (a device) and checks that the trace and its
// sampling decision continue.
func TestRemoteParentAndSampling(t *testing.T) {
	const traceHex = "4bf92f3577b34da6a3ce929d0e0e4736"
	const parentHex = "00f067aa0ba902b7"
	tests := []struct {
		name      string
		flags     string
		wantSpans int
	}{
		{"sampled", "01", 7},
		{"unsampled", "00", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			bus := mem.NewBus()
			out, unsub := bus.Subscribe("hop/#", 10)
			defer unsub()
			start(t, graphA(bus), otelflow.New(provider("A", rec, nil)))
			publish(t, bus, "src/d-1", `{"device":"d-1","temp":30}`, pipeline.Headers{
				{Key: "traceparent", Value: "00-" + traceHex + "-" + parentHex + "-" + tc.flags},
				{Key: "tracestate", Value: "vendor=x"},
				{Key: "other", Value: "kept"},
			})
			got := recv(t, out)
			tp, _ := got.Headers.Get("traceparent")
			if !strings.HasPrefix(tp, "00-"+traceHex+"-") || !strings.HasSuffix(tp, "-"+tc.flags) {
				t.Fatalf("output traceparent %q does not continue trace %s with flags %s", tp, traceHex, tc.flags)
			}
			if ts, _ := got.Headers.Get("tracestate"); ts != "vendor=x" {
				t.Errorf("tracestate = %q, want vendor=x", ts)
			}
			if v, _ := got.Headers.Get("other"); v != "kept" {
				t.Errorf("unrelated header lost: %v", got.Headers)
			}
			if tc.wantSpans == 0 {
				if n := len(rec.Ended()) + len(rec.Started()); n != 0 {
					t.Fatalf("unsampled record produced %d spans", n)
				}
				return
			}
			spans := byName(t, waitSpans(t, rec, tc.wantSpans))
			r := spans["A/receive"]
			if r.Parent().TraceID().String() != traceHex || r.Parent().SpanID().String() != parentHex || !r.Parent().IsRemote() {
				t.Fatalf("receive parent = %v, want remote %s/%s", r.Parent(), traceHex, parentHex)
			}
			if sp := spans["A/send hop/{device}"].SpanContext(); !strings.Contains(tp, sp.SpanID().String()) {
				t.Errorf("traceparent %q does not name the send span %s", tp, sp.SpanID())
			}
		})
	}
}

// TestRatioSampling: with a 0 ratio nothing is recorded but the unsampled
// decision still travels, so the next hop does not start a new trace.
func TestRatioSampling(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	bus := mem.NewBus()
	out, unsub := bus.Subscribe("out/#", 10)
	defer unsub()
	start(t, graphB(bus), otelflow.New(provider("B", rec, otelflow.SampleRatio(1))))
	start(t, graphA(bus), otelflow.New(provider("A", rec, otelflow.SampleRatio(0))))
	publish(t, bus, "src/d-1", `{"device":"d-1","temp":30}`, nil)
	got := recv(t, out)
	tp, ok := got.Headers.Get("traceparent")
	if !ok || !strings.HasSuffix(tp, "-00") {
		t.Fatalf("traceparent = %q, want an unsampled one", tp)
	}
	if n := len(rec.Ended()) + len(rec.Started()); n != 0 {
		t.Fatalf("%d spans recorded; B must follow A's decision not to sample:\n%s", n, dump(rec.Ended()))
	}
}

func TestFusedStageEvents(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	bus := mem.NewBus()
	out, unsub := bus.Subscribe("hop/#", 10)
	defer unsub()
	start(t, graphA(bus), otelflow.New(provider("A", rec, nil), otelflow.WithStageMode(otelflow.FusedStageEvents)))
	publish(t, bus, "src/d-1", `{"device":"d-1","temp":30}`, nil)
	recv(t, out)
	spans := byName(t, waitSpans(t, rec, 6))
	chain := spans["A/process pa"]
	if chain == nil {
		t.Fatalf("no chain span:\n%s", dump(rec.Ended()))
	}
	var events []string
	for _, e := range chain.Events() {
		events = append(events, e.Name)
	}
	if strings.Join(events, ",") != "1:filter,2:map" {
		t.Errorf("chain events = %v, want [1:filter 2:map]", events)
	}
	if p := spans["A/send hop/{device}"].Parent().SpanID(); p != chain.SpanContext().SpanID() {
		t.Errorf("send's parent = %s, want the chain span %s", p, chain.SpanContext().SpanID())
	}
	if len(spans) != 6 {
		t.Errorf("got %d spans, want 6 (receive, decode, buffer, process, encode, send):\n%s", len(spans), dump(rec.Ended()))
	}
}

// TestStageErrorAndDeadLetter: a failing stage marks its span as an error
// and the dead letter continues the record's trace.
func TestStageErrorAndDeadLetter(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	bus := mem.NewBus()
	dlq, unsub := bus.Subscribe("dlq", 10)
	defer unsub()
	g := pipeline.New().Connector("", mem.New(bus))
	g.Record("in").From("mem://src", codec.JSON{})
	g.Pipeline("p").From("in").Via(stages.Map(func(*pipeline.Envelope) error { return errors.New("boom") })).
		To("mem://never", codec.JSON{})
	g.DeadLetterTo("mem://dlq", codec.Raw{})
	start(t, g, otelflow.New(provider("A", rec, nil)))
	publish(t, bus, "src", `{"x":1}`, nil)
	d := recv(t, dlq)
	spans := byName(t, waitSpans(t, rec, 5))
	st := spans["A/p 1:map"]
	if st.Status().Code != codes.Error || !strings.Contains(st.Status().Description, "boom") {
		t.Errorf("stage status = %+v, want error boom", st.Status())
	}
	send := spans["A/send dlq"]
	if send == nil {
		t.Fatalf("no dead-letter send span:\n%s", dump(rec.Ended()))
	}
	if send.Parent().SpanID() != spans["A/buffer in"].SpanContext().SpanID() {
		t.Errorf("dead-letter send parent = %s, want the buffer span", send.Parent().SpanID())
	}
	if tp, _ := d.Headers.Get("traceparent"); !strings.Contains(tp, send.SpanContext().SpanID().String()) {
		t.Errorf("dead letter traceparent %q does not name its send span", tp)
	}
}

// TestParallelPipelineTraces runs a Parallel(3) pipeline: every record
// keeps its own trace through the workers and the ordered sequencer.
func TestParallelPipelineTraces(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	bus := mem.NewBus()
	const n = 40
	out, unsub := bus.Subscribe("hop/#", n)
	defer unsub()
	g := pipeline.New().Connector("", mem.New(bus))
	g.Record("a.in").From("mem://src/+", codec.JSON{})
	g.Pipeline("pa").From("a.in").Via(stages.FilterValue(hotOnly), stages.MapValue(markAlert)).
		Parallel(3).To("mem://hop/{device}", codec.JSON{})
	start(t, g, otelflow.New(provider("A", rec, nil)))
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			publish(t, bus, "src/x", fmt.Sprintf(`{"device":"d-%d","temp":30}`, i), nil)
		}()
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		recv(t, out)
	}
	spans := waitSpans(t, rec, 7*n)
	perTrace := map[trace.TraceID]int{}
	ids := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		perTrace[s.SpanContext().TraceID()]++
		ids[s.SpanContext().SpanID()] = s
	}
	if len(perTrace) != n {
		t.Fatalf("%d traces, want %d", len(perTrace), n)
	}
	for id, c := range perTrace {
		if c != 7 {
			t.Errorf("trace %s has %d spans, want 7", id, c)
		}
	}
	for _, s := range spans {
		if s.Name() == "receive" {
			continue
		}
		p, ok := ids[s.Parent().SpanID()]
		if !ok || p.SpanContext().TraceID() != s.SpanContext().TraceID() {
			t.Fatalf("%s has no parent in its trace", s.Name())
		}
	}
}

func TestHeaderCarrier(t *testing.T) {
	orig := pipeline.Headers{{Key: "Traceparent", Value: "old"}, {Key: "a", Value: "1"}, {Key: "traceparent", Value: "old2"}}
	h := orig
	c := otelflow.HeaderCarrier{H: &h}
	if c.Get("traceparent") != "old" {
		t.Fatalf("Get = %q", c.Get("traceparent"))
	}
	c.Set("traceparent", "new")
	if len(h) != 2 || h[0] != (pipeline.Header{Key: "a", Value: "1"}) || h[1] != (pipeline.Header{Key: "traceparent", Value: "new"}) {
		t.Fatalf("after Set: %v", h)
	}
	if orig[0].Value != "old" || orig[2].Value != "old2" {
		t.Fatalf("Set modified the shared slice: %v", orig)
	}
	if got := strings.Join(c.Keys(), ","); got != "a,traceparent" {
		t.Fatalf("Keys = %s", got)
	}
}

var quiet = slog.New(slog.DiscardHandler)

// traceGroup is what stages.Group would store in Envelope.Trace with the
// change proposed in docs/observability.md.
type traceGroup []any

func (g traceGroup) TraceInputs() []any { return g }

// groupOf batches every n inputs like stages.Batch, recording the inputs'
// trace state as a traceGroup.
type groupOf struct{ n int }

func (groupOf) Kind() string { return "group" }

func (s groupOf) Run(ctx context.Context, in <-chan pipeline.Envelope, emit pipeline.Emit) error {
	var pending []pipeline.Envelope
	for env := range in {
		pending = append(pending, env)
		if len(pending) < s.n {
			continue
		}
		out := stages.Group(pending)
		tg := make(traceGroup, len(pending))
		for i := range pending {
			tg[i] = pending[i].Trace
		}
		out.Trace = tg
		if err := emit(ctx, &out); err != nil {
			return err
		}
		pending = nil
	}
	return nil
}

// TestBatchSpanLinksInputs: three records (three traces) merged into one
// batch: the batch span links to each record's last span, continues the
// first record's trace, and parents the batch's encode and send.
func TestBatchSpanLinksInputs(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	bus := mem.NewBus()
	out, unsub := bus.Subscribe("out", 10)
	defer unsub()
	g := pipeline.New().Connector("", mem.New(bus))
	g.Record("in").From("mem://src/+", codec.JSON{})
	g.Pipeline("p").From("in").Via(stages.MapValue(markAlert), groupOf{3}).To("mem://out", codec.JSON{})
	start(t, g, otelflow.New(provider("A", rec, nil)))
	for i := 0; i < 3; i++ {
		publish(t, bus, "src/x", fmt.Sprintf(`{"device":"d-%d","temp":30}`, i), nil)
	}
	got := recv(t, out)
	if !strings.HasPrefix(string(got.Payload), "[") {
		t.Fatalf("batch output = %s", got.Payload)
	}
	spans := waitSpans(t, rec, 15)
	var maps []sdktrace.ReadOnlySpan
	var batch, send sdktrace.ReadOnlySpan
	for _, s := range spans {
		switch s.Name() {
		case "p 1:map":
			maps = append(maps, s)
		case "batch p":
			batch = s
		case "send out":
			send = s
		}
	}
	if len(maps) != 3 || batch == nil || send == nil {
		t.Fatalf("spans:\n%s", dump(spans))
	}
	linked := map[trace.SpanID]bool{}
	for _, l := range batch.Links() {
		linked[l.SpanContext.SpanID()] = true
	}
	traces := map[trace.TraceID]bool{}
	for _, m := range maps {
		traces[m.SpanContext().TraceID()] = true
		if !linked[m.SpanContext().SpanID()] {
			t.Errorf("batch span does not link to input span %s", m.SpanContext().SpanID())
		}
	}
	if len(traces) != 3 || len(batch.Links()) != 3 || attr(batch, "messaging.batch.message_count") != "3" {
		t.Fatalf("want 3 input traces and 3 links, got %d traces, %d links", len(traces), len(batch.Links()))
	}
	if !traces[batch.SpanContext().TraceID()] {
		t.Error("batch span should continue one of its inputs' traces")
	}
	if send.Parent().SpanID() != batch.SpanContext().SpanID() {
		t.Errorf("send parent = %s, want the batch span", send.Parent().SpanID())
	}
}

// TestDecodeErrorDeadLetter: a payload that fails to decode is
// dead-lettered straight from the receive: no buffer span, the decode span
// is an error, and the dead letter's send is the receive's child.
func TestDecodeErrorDeadLetter(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	bus := mem.NewBus()
	dlq, unsub := bus.Subscribe("dlq", 10)
	defer unsub()
	g := pipeline.New().Connector("", mem.New(bus))
	g.Record("in").From("mem://src", codec.JSON{})
	g.Pipeline("p").From("in").To("mem://never", codec.JSON{})
	g.DeadLetterTo("mem://dlq", codec.Raw{})
	start(t, g, otelflow.New(provider("A", rec, nil)))
	publish(t, bus, "src", `{not json`, nil)
	recv(t, dlq)
	spans := byName(t, waitSpans(t, rec, 3))
	if len(spans) != 3 || spans["A/receive"] == nil || spans["A/decode in"] == nil || spans["A/send dlq"] == nil {
		t.Fatalf("want receive, decode, send dlq:\n%s", dump(rec.Ended()))
	}
	if spans["A/decode in"].Status().Code != codes.Error {
		t.Error("decode span should be an error")
	}
	if p := spans["A/send dlq"].Parent().SpanID(); p != spans["A/receive"].SpanContext().SpanID() {
		t.Errorf("dead-letter send parent = %s, want the receive span", p)
	}
}

// TestInjectMatchesW3CPropagator: the allocation-free traceparent writer
// produces exactly what propagation.TraceContext writes.
func TestInjectMatchesW3CPropagator(t *testing.T) {
	ts, err := trace.ParseTraceState("vendor=x,other=y")
	if err != nil {
		t.Fatal(err)
	}
	tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	sid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	for _, sc := range []trace.SpanContext{
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, TraceState: ts}),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}),
	} {
		fast := &pipeline.Envelope{Trace: sc, Headers: pipeline.Headers{{Key: "tracestate", Value: "stale=1"}, {Key: "k", Value: "v"}}}
		info := &pipeline.HopInfo{Hop: pipeline.HopPublish, Link: "mem://x"}
		// A sampled parent gets a (non-recording, NeverSample) send span
		// whose context is injected; an unsampled one is injected as is.
		tp := provider("A", tracetest.NewSpanRecorder(), sdktrace.NeverSample())
		if s := otelflow.New(tp).StartHop(context.Background(), fast, info); s != nil {
			defer s.End(nil)
		}
		want := pipeline.Headers{}
		carrier := otelflow.HeaderCarrier{H: &want}
		propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), otelflow.SpanContext(fast)), carrier)
		for _, k := range []string{"traceparent", "tracestate"} {
			f, _ := fast.Headers.Get(k)
			w, _ := want.Get(k)
			if f != w {
				t.Errorf("%s = %q, want %q (W3C propagator)", k, f, w)
			}
		}
		if v, _ := fast.Headers.Get("k"); v != "v" {
			t.Errorf("other header lost: %v", fast.Headers)
		}
	}
}

func TestWithHops(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	bus := mem.NewBus()
	out, unsub := bus.Subscribe("out/#", 10)
	defer unsub()
	start(t, graphB(bus), otelflow.New(provider("B", rec, nil), otelflow.WithHops(pipeline.HopStage)))
	publish(t, bus, "hop/d-1", `{"device":"d-1","temp":30}`, nil)
	recv(t, out)
	spans := byName(t, waitSpans(t, rec, 3))
	if len(spans) != 3 {
		t.Fatalf("want receive, stage, send only:\n%s", dump(rec.Ended()))
	}
	if p := spans["B/pb 1:map"].Parent().SpanID(); p != spans["B/receive"].SpanContext().SpanID() {
		t.Errorf("stage parent = %s, want receive (decode and buffer skipped)", p)
	}
	if p := spans["B/send out/{device}"].Parent().SpanID(); p != spans["B/pb 1:map"].SpanContext().SpanID() {
		t.Errorf("send parent = %s, want the stage (encode skipped)", p)
	}
}

// TestRootRatio: the tracer's own decision for new traces; records with
// an upstream traceparent keep the upstream decision whatever the ratio.
func TestRootRatio(t *testing.T) {
	const sampledParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name        string
		ratio       float64
		headers     pipeline.Headers
		wantSpans   int
		wantPropag  bool
		wantTraceID string
	}{
		{"new trace, ratio 0", 0, nil, 0, false, ""},
		{"new trace, ratio 1", 1, nil, 7, true, ""},
		{"sampled upstream, ratio 0", 0, pipeline.Headers{{Key: "traceparent", Value: sampledParent}}, 7, true, "4bf92f3577b34da6a3ce929d0e0e4736"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			bus := mem.NewBus()
			out, unsub := bus.Subscribe("hop/#", 10)
			defer unsub()
			start(t, graphA(bus), otelflow.New(provider("A", rec, nil), otelflow.WithRootRatio(tc.ratio)))
			publish(t, bus, "src/d-1", `{"device":"d-1","temp":30}`, tc.headers)
			got := recv(t, out)
			tp, ok := got.Headers.Get("traceparent")
			if ok != tc.wantPropag || tc.wantTraceID != "" && !strings.Contains(tp, tc.wantTraceID) {
				t.Fatalf("traceparent = %q (present %v), want present %v in trace %q", tp, ok, tc.wantPropag, tc.wantTraceID)
			}
			if tc.wantSpans == 0 {
				if n := len(rec.Started()); n != 0 {
					t.Fatalf("%d spans started for an unsampled new trace", n)
				}
				return
			}
			waitSpans(t, rec, tc.wantSpans)
		})
	}
}

// TestSetupRatio: parentbased_traceidratio samples about that fraction of
// new traces (400 records at 0.5: outside [130, 270] has a probability
// below 1e-10).
func TestSetupRatio(t *testing.T) {
	exp := &countingExporter{}
	p, err := otelflow.Setup(context.Background(), otelflow.Config{SpanExporter: exp,
		Getenv: env(map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"})})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 400; i++ {
		oneHop(t, p)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := exp.n.Load(); n < 130 || n > 270 {
		t.Fatalf("%d of 400 new traces sampled at ratio 0.5", n)
	}
}

// countingExporter counts exported spans (tracetest.InMemoryExporter
// forgets them on Shutdown).
type countingExporter struct{ n atomic.Int64 }

func (c *countingExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	c.n.Add(int64(len(spans)))
	return nil
}
func (*countingExporter) Shutdown(context.Context) error { return nil }

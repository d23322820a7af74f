package otelflow_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/observability/otelflow"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

const (
	upTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	upParent = "00f067aa0ba902b7"
)

func upstream(flags string) pipeline.Headers {
	return pipeline.Headers{{Key: "traceparent", Value: "00-" + upTrace + "-" + upParent + "-" + flags}}
}

// opaque hides a sampler's identity (its description), so the tracer
// cannot recognise it and must ask it: the generic head-sampling path.
type opaque struct{ sdktrace.Sampler }

func (opaque) Description() string { return "opaque" }

// countingTracer counts the hops the runner hands the tracer; the
// embedded Tracer's HeadSampled is promoted, so the runner treats it as a
// head sampler.
type countingTracer struct {
	*otelflow.Tracer
	hops atomic.Int64
}

func (c *countingTracer) StartHop(ctx context.Context, env *pipeline.Envelope, info *pipeline.HopInfo) pipeline.Span {
	c.hops.Add(1)
	return c.Tracer.StartHop(ctx, env, info)
}

// TestHeadSamplingHonoursIncomingFlag: the head sampler decides at the
// receive hop with the incoming traceparent as remote parent, both when
// the tracer recognises the sampler and when it must ask it.
func TestHeadSamplingHonoursIncomingFlag(t *testing.T) {
	tests := []struct {
		name      string
		head      sdktrace.Sampler
		headers   pipeline.Headers
		wantSpans bool
	}{
		{"sampled parent, ParentBased(always_off)", sdktrace.ParentBased(sdktrace.NeverSample()), upstream("01"), true},
		{"unsampled parent, ParentBased(always_on)", sdktrace.ParentBased(sdktrace.AlwaysSample()), upstream("00"), false},
		{"no parent, ParentBased(always_off)", sdktrace.ParentBased(sdktrace.NeverSample()), nil, false},
		{"no parent, ParentBased(always_on)", sdktrace.ParentBased(sdktrace.AlwaysSample()), nil, true},
		{"opaque: sampled parent, ParentBased(always_off)", opaque{sdktrace.ParentBased(sdktrace.NeverSample())}, upstream("01"), true},
		{"opaque: unsampled parent, ParentBased(always_on)", opaque{sdktrace.ParentBased(sdktrace.AlwaysSample())}, upstream("00"), false},
		{"always_on ignores an unsampled parent", sdktrace.AlwaysSample(), upstream("00"), true},
		{"always_off ignores a sampled parent", sdktrace.NeverSample(), upstream("01"), false},
	}
	for _, mode := range []struct {
		name string
		opt  otelflow.Option
	}{{"spans", otelflow.WithStageMode(otelflow.StageSpans)}, {"journey", otelflow.WithStageMode(otelflow.JourneySpans)}} {
		for _, tc := range tests {
			t.Run(mode.name+"/"+tc.name, func(t *testing.T) {
				rec := tracetest.NewSpanRecorder()
				bus := mem.NewBus()
				out, unsub := bus.Subscribe("hop/#", 10)
				defer unsub()
				tr := &countingTracer{Tracer: otelflow.New(provider("A", rec, sdktrace.AlwaysSample()), mode.opt, otelflow.WithHeadSampler(tc.head))}
				start(t, graphA(bus), tr)
				publish(t, bus, "src/d-1", `{"device":"d-1","temp":30}`, tc.headers)
				got := recv(t, out)
				tp, hasTP := got.Headers.Get("traceparent")
				if !tc.wantSpans {
					// The record is not traced: no span, no hop after the
					// receive reaches the tracer, and the headers travel as
					// they came (no traceparent if none came).
					if n := len(rec.Started()); n != 0 {
						t.Fatalf("unsampled record started %d spans:\n%s", n, dump(rec.Ended()))
					}
					if n := tr.hops.Load(); n != 1 {
						t.Errorf("the runner called the tracer for %d hops of an unsampled record, want 1 (the receive)", n)
					}
					if want, came := tc.headers.Get("traceparent"); hasTP != came || tp != want {
						t.Errorf("output traceparent %q (present %v), want the incoming %q (present %v)", tp, hasTP, want, came)
					}
					return
				}
				spans := waitSpans(t, rec, 2)
				var recvSpan sdktrace.ReadOnlySpan
				for _, s := range spans {
					if s.Name() == "receive" {
						recvSpan = s
					}
					if !s.SpanContext().IsSampled() {
						t.Errorf("span %s not sampled", s.Name())
					}
				}
				if recvSpan == nil {
					t.Fatalf("no receive span:\n%s", dump(spans))
				}
				if tc.headers != nil {
					if got := recvSpan.Parent(); got.TraceID().String() != upTrace || got.SpanID().String() != upParent || !got.IsRemote() {
						t.Errorf("receive parent = %v, want remote %s/%s", got, upTrace, upParent)
					}
				}
				if !hasTP || !strings.HasSuffix(tp, "-01") || !strings.Contains(tp, recvSpan.SpanContext().TraceID().String()) {
					t.Errorf("output traceparent %q, want a sampled one in trace %s", tp, recvSpan.SpanContext().TraceID())
				}
			})
		}
	}
}

// TestUnsampledHopsAllocateNothing: a record the head sampler does not
// sample costs no allocation at any hop, whether the runner skips the
// tracer (HeadSampler) or a wrapper hands it every hop.
func TestUnsampledHopsAllocateNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations are not counted reliably under -race")
	}
	infos := []*pipeline.HopInfo{
		{Hop: pipeline.HopReceive, Connector: "c", Scheme: "mqtt"},
		{Hop: pipeline.HopDecode, Record: "r", Link: "mqtt://in/+", Connector: "c", Scheme: "mqtt"},
		{Hop: pipeline.HopStage, Pipeline: "p", Stage: "1:filter"},
		{Hop: pipeline.HopStage, Pipeline: "p", Stage: "2:map"},
		{Hop: pipeline.HopEncode, Pipeline: "p", Record: "r", Link: "mqtt://out"},
		{Hop: pipeline.HopPublish, Pipeline: "p", Record: "r", Link: "mqtt://out", Scheme: "mqtt"},
	}
	tests := []struct {
		name    string
		head    sdktrace.Sampler
		headers pipeline.Headers
	}{
		{"always_off", sdktrace.NeverSample(), nil},
		{"always_off, sampled parent", sdktrace.NeverSample(), upstream("01")},
		{"parentbased ratio 0, new trace", otelflow.SampleRatio(0), nil},
		{"parentbased always_on, unsampled parent", sdktrace.ParentBased(sdktrace.AlwaysSample()), upstream("00")},
		{"opaque ratio 0, new trace", opaque{sdktrace.TraceIDRatioBased(0)}, nil},
	}
	for _, mode := range []otelflow.StageMode{otelflow.StageSpans, otelflow.JourneySpans} {
		for _, tc := range tests {
			t.Run(fmt.Sprintf("mode %d/%s", mode, tc.name), func(t *testing.T) {
				rec := tracetest.NewSpanRecorder()
				tr := otelflow.New(provider("A", rec, sdktrace.AlwaysSample()), otelflow.WithStageMode(mode), otelflow.WithHeadSampler(tc.head))
				ctx := context.Background()
				env := &pipeline.Envelope{Topic: "in/d-1", Headers: tc.headers}
				hops := func() {
					env.Trace = nil
					for _, info := range infos {
						if s := tr.StartHop(ctx, env, info); s != nil {
							t.Fatalf("%s hop of an unsampled record returned a span", info.Hop)
						}
					}
				}
				if n := testing.AllocsPerRun(200, hops); n != 0 {
					t.Errorf("%v allocations per unsampled record, want 0", n)
				}
				if len(rec.Started()) != 0 {
					t.Errorf("%d spans started", len(rec.Started()))
				}
				if tp, _ := env.Headers.Get("traceparent"); tp != func() string { v, _ := tc.headers.Get("traceparent"); return v }() {
					t.Errorf("traceparent changed to %q", tp)
				}
			})
		}
	}
}

// TestJourneyTraceShowsEveryHop: in JourneySpans mode a sampled record
// gets a receive span and one span per pipeline, and together their
// events name every hop in order; the next process continues the trace
// from the traceparent, which names the pipeline span.
func TestJourneyTraceShowsEveryHop(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	bus := mem.NewBus()
	out, unsub := bus.Subscribe("out/#", 10)
	defer unsub()
	mode := otelflow.WithStageMode(otelflow.JourneySpans)
	start(t, graphB(bus), otelflow.New(provider("B", rec, nil), mode))
	start(t, graphA(bus), otelflow.New(provider("A", rec, nil), mode))
	publish(t, bus, "src/d-1", `{"device":"d-1","temp":30}`, nil)
	got := recv(t, out)
	spans := byName(t, waitSpans(t, rec, 4))
	if len(spans) != 4 {
		t.Fatalf("got %d spans, want 4:\n%s", len(spans), dump(rec.Ended()))
	}
	want := []struct {
		span, parent string
		events       []string
	}{
		{"A/receive", "", []string{"decode a.in"}},
		{"A/process pa", "A/receive", []string{"buffer a.in", "pa 1:filter", "pa 2:map", "encode hop/{device}", "send hop/{device}"}},
		{"B/receive", "A/process pa", []string{"decode b.in"}},
		{"B/process pb", "B/receive", []string{"buffer b.in", "pb 1:map", "encode out/{device}", "send out/{device}"}},
	}
	traceID := spans["A/receive"].SpanContext().TraceID()
	for _, w := range want {
		s := spans[w.span]
		if s == nil {
			t.Fatalf("missing span %s:\n%s", w.span, dump(rec.Ended()))
		}
		if s.SpanContext().TraceID() != traceID {
			t.Errorf("%s in trace %s, want %s", w.span, s.SpanContext().TraceID(), traceID)
		}
		if w.parent == "" {
			if s.Parent().IsValid() {
				t.Errorf("%s has parent %v, want a root", w.span, s.Parent())
			}
		} else if p := spans[w.parent]; s.Parent().SpanID() != p.SpanContext().SpanID() {
			t.Errorf("parent of %s = %s, want %s (%s)", w.span, s.Parent().SpanID(), p.SpanContext().SpanID(), w.parent)
		}
		var names []string
		for _, e := range s.Events() {
			names = append(names, e.Name)
		}
		if strings.Join(names, ", ") != strings.Join(w.events, ", ") {
			t.Errorf("%s events = %q, want %q", w.span, names, w.events)
		}
		for i := 1; i < len(s.Events()); i++ {
			if s.Events()[i].Time.Before(s.Events()[i-1].Time) {
				t.Errorf("%s: event %s before %s", w.span, s.Events()[i].Name, s.Events()[i-1].Name)
			}
		}
	}
	// The pipeline span starts when the record entered its buffer (its
	// first event) and ends after its last hop.
	p := spans["A/process pa"]
	if ev := p.Events(); !p.StartTime().Equal(ev[0].Time) || p.EndTime().Before(ev[len(ev)-1].Time) {
		t.Errorf("process span [%v, %v] does not cover its events %v .. %v", p.StartTime(), p.EndTime(), ev[0].Time, ev[len(ev)-1].Time)
	}
	tp, _ := got.Headers.Get("traceparent")
	ps := spans["B/process pb"].SpanContext()
	if wantTP := "00-" + ps.TraceID().String() + "-" + ps.SpanID().String() + "-01"; tp != wantTP {
		t.Errorf("output traceparent = %q, want %q", tp, wantTP)
	}
}

// TestHeadRatioMatchesSDK: the tracer decides a recognised
// TraceIDRatioBased head itself; its decision for a record with a parent
// must be the SDK sampler's for the same trace id.
func TestHeadRatioMatchesSDK(t *testing.T) {
	sdk := sdktrace.TraceIDRatioBased(0.5)
	tr := otelflow.New(provider("A", tracetest.NewSpanRecorder(), sdktrace.AlwaysSample()), otelflow.WithHeadSampler(sdk))
	info := &pipeline.HopInfo{Hop: pipeline.HopReceive, Scheme: "mem"}
	r := rand.New(rand.NewPCG(1, 2))
	sampled := 0
	for i := 0; i < 200; i++ {
		var tid trace.TraceID
		binary.BigEndian.PutUint64(tid[:8], r.Uint64())
		binary.BigEndian.PutUint64(tid[8:], r.Uint64())
		want := sdk.ShouldSample(sdktrace.SamplingParameters{ParentContext: context.Background(), TraceID: tid}).Decision != sdktrace.Drop
		env := &pipeline.Envelope{Headers: pipeline.Headers{{Key: "traceparent", Value: "00-" + tid.String() + "-" + upParent + "-00"}}}
		if s := tr.StartHop(context.Background(), env, info); s != nil {
			s.End(nil)
		}
		if got := !pipeline.IsNotTraced(env); got != want {
			t.Fatalf("trace %s: sampled %v, SDK says %v", tid, got, want)
		}
		if want {
			sampled++
		}
	}
	if sampled == 0 || sampled == 200 {
		t.Fatalf("%d of 200 sampled: the check compared nothing", sampled)
	}
}

// TestJourneyInto: a pipeline reading a record another pipeline writes
// (Into) gets its own span, a child of the writer's, with its own hops.
func TestJourneyInto(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	bus := mem.NewBus()
	out, unsub := bus.Subscribe("out/#", 10)
	defer unsub()
	g := pipeline.New().Connector("", mem.New(bus))
	g.Record("a.in").From("mem://src/+", codec.JSON{})
	g.Record("hot")
	g.Pipeline("p1").From("a.in").Via(stages.FilterValue(hotOnly)).Into("hot")
	g.Pipeline("p2").From("hot").Via(stages.MapValue(markAlert)).To("mem://out/{device}", codec.JSON{})
	start(t, g, otelflow.New(provider("A", rec, nil), otelflow.WithStageMode(otelflow.JourneySpans)))
	publish(t, bus, "src/d-1", `{"device":"d-1","temp":30}`, nil)
	recv(t, out)
	spans := byName(t, waitSpans(t, rec, 3))
	p1, p2 := spans["A/process p1"], spans["A/process p2"]
	if p1 == nil || p2 == nil {
		t.Fatalf("missing pipeline spans:\n%s", dump(rec.Ended()))
	}
	if p2.Parent().SpanID() != p1.SpanContext().SpanID() {
		t.Errorf("p2's parent = %s, want p1's span %s", p2.Parent().SpanID(), p1.SpanContext().SpanID())
	}
	var names []string
	for _, e := range p2.Events() {
		names = append(names, e.Name)
	}
	if want := "p2 1:map, encode out/{device}, send out/{device}"; strings.Join(names, ", ") != want {
		t.Errorf("p2 events = %q, want %q", names, want)
	}
}

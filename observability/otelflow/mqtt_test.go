package otelflow_test

import (
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/connectors/mqtt"
	"github.com/aimdb-dev/aimdb-flow/observability/otelflow"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
	"github.com/aimdb-dev/aimdb-flow/tests/mqtttest"
)

func mqttBuilder(t *testing.T, url, clientID string) *mqtt.Builder {
	return mqttBuilderB(t, url, clientID)
}

func mqttBuilderB(t testing.TB, url, clientID string) *mqtt.Builder {
	t.Helper()
	b, err := mqtt.New(mqtt.Config{URL: url, ClientID: clientID})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOneTraceThroughMosquitto: pipeline A publishes to a real mosquitto,
// pipeline B (its own connector, its own TracerProvider: another process as
// far as tracing knows) subscribes. The traceparent crosses the broker in
// an MQTT 5 user property and both halves form one trace.
func TestOneTraceThroughMosquitto(t *testing.T) {
	br := mqtttest.Start(t, mqtttest.Options{})
	rec := tracetest.NewSpanRecorder()
	bus := mem.NewBus()
	out, unsub := bus.Subscribe("out/#", 10)
	defer unsub()
	qos1 := pipeline.WithParams(pipeline.Params{"qos": "1"})

	gb := pipeline.New().Connector("", mem.New(bus)).Connector("", mqttBuilder(t, br.URL(), "otel-b"))
	gb.Record("b.in").From("mqtt://hop/+", codec.JSON{}, qos1)
	gb.Pipeline("pb").From("b.in").Via(stages.MapValue(markAlert)).To("mem://out/{device}", codec.JSON{})
	start(t, gb, otelflow.New(provider("B", rec, nil)))

	ga := pipeline.New().Connector("", mem.New(bus)).Connector("", mqttBuilder(t, br.URL(), "otel-a"))
	ga.Record("a.in").From("mem://src/+", codec.JSON{})
	ga.Pipeline("pa").From("a.in").Via(stages.FilterValue(hotOnly)).To("mqtt://hop/{device}", codec.JSON{}, qos1)
	start(t, ga, otelflow.New(provider("A", rec, nil)))

	publish(t, bus, "src/d-7", `{"device":"d-7","temp":31}`, nil)
	got := recv(t, out)
	if !strings.Contains(string(got.Payload), `"alert":true`) {
		t.Fatalf("output = %s", got.Payload)
	}
	// A: receive, decode, buffer, filter, encode, send; B: the same with map.
	spans := byName(t, waitSpans(t, rec, 12))
	send, recvB := spans["A/send hop/{device}"], spans["B/receive"]
	if send == nil || recvB == nil {
		t.Fatalf("missing spans:\n%s", dump(rec.Ended()))
	}
	if attr(send, "messaging.system") != "mqtt" || attr(recvB, "messaging.system") != "mqtt" || attr(recvB, "messaging.destination.name") != "hop/d-7" {
		t.Errorf("messaging attributes: send %v, receive %v", send.Attributes(), recvB.Attributes())
	}
	if recvB.Parent().SpanID() != send.SpanContext().SpanID() || !recvB.Parent().IsRemote() {
		t.Fatalf("B/receive parent = %s (remote %v), want A's send span %s", recvB.Parent().SpanID(), recvB.Parent().IsRemote(), send.SpanContext().SpanID())
	}
	traceID := spans["A/receive"].SpanContext().TraceID()
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID() != traceID {
			t.Errorf("%s/%s in another trace", service(s), s.Name())
		}
	}
	if p := spans["B/buffer b.in"].Parent().SpanID(); p != spans["B/decode b.in"].SpanContext().SpanID() {
		t.Errorf("B/buffer parent = %s, want B/decode", p)
	}
	if p := spans["B/send out/{device}"].Parent().SpanID(); p != spans["B/pb 1:map"].SpanContext().SpanID() {
		t.Errorf("B/send parent = %s, want B/pb 1:map", p)
	}
}

package otelflow_test

import (
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/observability/otelflow"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
	"github.com/aimdb-dev/aimdb-flow/tests/kafkatest"
	"github.com/aimdb-dev/aimdb-flow/tests/mqtttest"
)

// TestJourneyThroughBrokers: with what Setup installs (head sampling,
// JourneySpans), the W3C trace context still crosses mosquitto (MQTT 5
// user property) and Kafka (record header): B's receive is a remote child
// of A's pipeline span, in one trace.
func TestJourneyThroughBrokers(t *testing.T) {
	tests := []struct {
		name   string
		system string
		conns  func(t *testing.T) (a, b pipeline.Builder, link string, params pipeline.Params)
	}{
		{"mosquitto", "mqtt", func(t *testing.T) (pipeline.Builder, pipeline.Builder, string, pipeline.Params) {
			br := mqtttest.Start(t, mqtttest.Options{})
			return mqttBuilder(t, br.URL(), "jour-a"), mqttBuilder(t, br.URL(), "jour-b"), "mqtt://hop/d-5", pipeline.Params{"qos": "1"}
		}},
		{"kafka", "kafka", func(t *testing.T) (pipeline.Builder, pipeline.Builder, string, pipeline.Params) {
			cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"hop": 1}})
			return kafkaBuilder(t, cl, "jour-a"), kafkaBuilder(t, cl, "jour-b"), "kafka://hop", nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ca, cb, link, params := tc.conns(t)
			var in []pipeline.InOption
			var outOpts []pipeline.OutOption
			if params != nil {
				in, outOpts = []pipeline.InOption{pipeline.WithParams(params)}, []pipeline.OutOption{pipeline.WithParams(params)}
			}
			rec := tracetest.NewSpanRecorder()
			bus := mem.NewBus()
			out, unsub := bus.Subscribe("out/#", 10)
			defer unsub()
			tracer := func(svc string) pipeline.Tracer {
				return otelflow.New(provider(svc, rec, sdktrace.AlwaysSample()), otelflow.WithStageMode(otelflow.JourneySpans),
					otelflow.WithHeadSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
			}
			gb := pipeline.New().Connector("", mem.New(bus)).Connector("", cb)
			gb.Record("b.in").From(link, codec.JSON{}, in...)
			gb.Pipeline("pb").From("b.in").Via(stages.MapValue(markAlert)).To("mem://out/{device}", codec.JSON{})
			start(t, gb, tracer("B"))
			ga := pipeline.New().Connector("", mem.New(bus)).Connector("", ca)
			ga.Record("a.in").From("mem://src/+", codec.JSON{})
			ga.Pipeline("pa").From("a.in").Via(stages.FilterValue(hotOnly)).To(link, codec.JSON{}, outOpts...)
			start(t, ga, tracer("A"))

			publish(t, bus, "src/d-5", `{"device":"d-5","temp":31}`, nil)
			select {
			case <-out:
			case <-time.After(20 * time.Second):
				t.Fatal("timed out waiting for the record through the broker")
			}
			spans := byName(t, waitSpans(t, rec, 4))
			pa, recvB := spans["A/process pa"], spans["B/receive"]
			if pa == nil || recvB == nil || spans["B/process pb"] == nil {
				t.Fatalf("missing spans:\n%s", dump(rec.Ended()))
			}
			if recvB.Parent().SpanID() != pa.SpanContext().SpanID() || !recvB.Parent().IsRemote() {
				t.Fatalf("B/receive parent = %s (remote %v), want A's pipeline span %s", recvB.Parent().SpanID(), recvB.Parent().IsRemote(), pa.SpanContext().SpanID())
			}
			if got := attr(recvB, "messaging.system"); got != tc.system {
				t.Errorf("B/receive messaging.system = %q, want %q", got, tc.system)
			}
			traceID := spans["A/receive"].SpanContext().TraceID()
			for _, s := range rec.Ended() {
				if s.SpanContext().TraceID() != traceID {
					t.Errorf("%s/%s in another trace", service(s), s.Name())
				}
			}
		})
	}
}

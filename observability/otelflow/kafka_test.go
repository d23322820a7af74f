package otelflow_test

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/aimdb-dev/aimdb-flow/connectors/kafka"
	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/observability/otelflow"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
	"github.com/aimdb-dev/aimdb-flow/tests/kafkatest"
)

func kafkaBuilder(t *testing.T, cl *kafkatest.Cluster, group string) *kafka.Builder {
	t.Helper()
	cfg := kafka.Config{Brokers: cl.Addrs(), Group: group, CommitInterval: 100 * time.Millisecond,
		SessionTimeout: 2 * time.Second, RebalanceTimeout: 3 * time.Second, HeartbeatInterval: 200 * time.Millisecond,
		RevokeTimeout: 2 * time.Second}
	cfg.Writer.Linger = 2 * time.Millisecond
	b, err := kafka.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOneTraceThroughKafka: pipeline A produces to an in-process Kafka
// cluster (kfake, spoken to over the wire protocol), pipeline B consumes
// in a consumer group. The traceparent travels as a Kafka record header.
func TestOneTraceThroughKafka(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"hop": 2}})
	rec := tracetest.NewSpanRecorder()
	bus := mem.NewBus()
	out, unsub := bus.Subscribe("out/#", 10)
	defer unsub()

	gb := pipeline.New().Connector("", mem.New(bus)).Connector("", kafkaBuilder(t, cl, "otel-b"))
	gb.Record("b.in").From("kafka://hop", codec.JSON{})
	gb.Pipeline("pb").From("b.in").Via(stages.MapValue(markAlert)).To("mem://out/{device}", codec.JSON{})
	start(t, gb, otelflow.New(provider("B", rec, nil)))

	ga := pipeline.New().Connector("", mem.New(bus)).Connector("", kafkaBuilder(t, cl, "otel-a"))
	ga.Record("a.in").From("mem://src/+", codec.JSON{})
	ga.Pipeline("pa").From("a.in").Via(stages.FilterValue(hotOnly)).To("kafka://hop", codec.JSON{})
	start(t, ga, otelflow.New(provider("A", rec, nil)))

	publish(t, bus, "src/d-9", `{"device":"d-9","temp":33}`, nil)
	var got pipeline.Envelope
	select {
	case got = <-out:
	case <-time.After(20 * time.Second):
		t.Fatal("timed out waiting for the record through Kafka")
	}
	if !strings.Contains(string(got.Payload), `"alert":true`) {
		t.Fatalf("output = %s", got.Payload)
	}
	spans := byName(t, waitSpans(t, rec, 12))
	send, recvB := spans["A/send hop"], spans["B/receive"]
	if send == nil || recvB == nil {
		t.Fatalf("missing spans:\n%s", dump(rec.Ended()))
	}
	if recvB.Parent().SpanID() != send.SpanContext().SpanID() || !recvB.Parent().IsRemote() {
		t.Fatalf("B/receive parent = %s, want A's send span %s:\n%s", recvB.Parent().SpanID(), send.SpanContext().SpanID(), dump(rec.Ended()))
	}
	traceID := spans["A/receive"].SpanContext().TraceID()
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID() != traceID {
			t.Errorf("%s/%s in another trace", service(s), s.Name())
		}
	}
	checks := []struct{ span, key, want string }{
		{"A/send hop", "messaging.system", "kafka"},
		{"A/send hop", "messaging.destination.name", "hop"},
		{"B/receive", "messaging.system", "kafka"},
		{"B/receive", "messaging.destination.name", "hop"},
	}
	for _, c := range checks {
		if v := attr(spans[c.span], c.key); v != c.want {
			t.Errorf("%s %s = %q, want %q", c.span, c.key, v, c.want)
		}
	}
	if v := attr(recvB, "messaging.destination.partition.id"); v != "0" && v != "1" {
		t.Errorf("B/receive partition = %q, want a partition of hop (0 or 1)", v)
	}
	if attr(recvB, "messaging.kafka.offset") != "0" {
		t.Error("B/receive lacks messaging.kafka.offset")
	}
}

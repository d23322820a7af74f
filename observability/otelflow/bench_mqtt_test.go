package otelflow_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/aimdb-dev/aimdb-flow/connectors/mqtt"
	"github.com/aimdb-dev/aimdb-flow/observability/otelflow"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
	"github.com/aimdb-dev/aimdb-flow/tests/mqtttest"
)

// runBench starts g and returns its runner and a stop function.
func runBench(b *testing.B, g *pipeline.Graph, tracer pipeline.Tracer, before func(*pipeline.Runner)) (*pipeline.Runner, func()) {
	b.Helper()
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{Tracer: tracer, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	if before != nil {
		before(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for r.Ready() != nil {
		if time.Now().After(deadline) {
			b.Fatalf("not ready: %v", r.Ready())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return r, func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("run: %v", err)
		}
	}
}

// BenchmarkMQTTRelayTracing is W2's shape (an MQTT relay through a real
// mosquitto: QoS 1 in, JSON decode, filter, JSON encode, QoS 1 out) with
// the relay's tracing off, always sampled, and 1% sampled. Producer and
// consumer are aimdb-flow graphs in the same process (identical across
// variants), so cpu-us/msg differences are the relay's tracing cost. Each
// iteration is a round running every variant once; the figures are
// medians over rounds (cpu-x: CPU relative to "off" in the same round).
func BenchmarkMQTTRelayTracing(b *testing.B) {
	br := mqtttest.Start(b, mqtttest.Options{})
	const n = 4000
	qos1 := pipeline.WithParams(pipeline.Params{"qos": "1"})

	prod := pipeline.New().Connector("", mqttBuilderB(b, br.URL(), "bench-prod"))
	prod.Record("src").To("mqtt://sensors/temp", codec.Raw{}, qos1)
	pr, stopProd := runBench(b, prod, nil, nil)
	defer stopProd()
	w, err := pr.Writer("src")
	if err != nil {
		b.Fatal(err)
	}

	cons := pipeline.New().Connector("", mqttBuilderB(b, br.URL(), "bench-cons"))
	cons.Record("sink").From("mqtt://alerts/temp", codec.Raw{}, qos1)
	var sink interface {
		Recv(context.Context) (pipeline.Envelope, error)
	}
	_, stopCons := runBench(b, cons, nil, func(r *pipeline.Runner) {
		rd, err := r.Subscribe("sink")
		if err != nil {
			b.Fatal(err)
		}
		sink = rd
	})
	defer stopCons()

	payloads := make([][]byte, n)
	hot := 0
	for i := range payloads {
		t := 20 + i%10
		if t > 25 {
			hot++
		}
		payloads[i] = []byte(`{"device":"d-` + strconv.Itoa(i%50) + `","temp":` + strconv.Itoa(t) + `.5,"seq":` + strconv.Itoa(i) + `}`)
	}

	tp := func(s sdktrace.Sampler) *sdktrace.TracerProvider {
		return sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}), sdktrace.WithSampler(s))
	}
	always, rooted := tp(sdktrace.AlwaysSample()), tp(sdktrace.ParentBased(sdktrace.AlwaysSample()))
	defer func() { _ = always.Shutdown(context.Background()) }()
	defer func() { _ = rooted.Shutdown(context.Background()) }()
	variants := []struct {
		name   string
		tracer pipeline.Tracer
	}{
		{"off", nil},
		{"otel-always", otelflow.New(always)},
		{"otel-ratio-1pct", otelflow.New(rooted, otelflow.WithRootRatio(0.01))},
	}
	ctx := context.Background()
	cpu := make([][]float64, len(variants))
	wall := make([][]float64, len(variants))
	round := 0
	for b.Loop() {
		round++
		for i, v := range variants {
			// A fresh relay per run (no session left behind), started
			// outside the measured time.
			relay := pipeline.New().Connector("", mqttRelayBuilder(b, br.URL(), "bench-relay-"+strconv.Itoa(round)+"-"+strconv.Itoa(i)))
			relay.Record("in").From("mqtt://sensors/temp", codec.JSON{}, qos1)
			relay.Pipeline("relay").From("in").Via(stages.FilterValue(hotOnly)).To("mqtt://alerts/temp", codec.JSON{}, qos1)
			_, stop := runBench(b, relay, v.tracer, nil)
			t0, c0 := time.Now(), cpuTime()
			for _, p := range payloads {
				if err := w.Write(ctx, &pipeline.Envelope{Payload: p}); err != nil {
					b.Fatal(err)
				}
			}
			rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			for got := 0; got < hot; got++ {
				env, err := sink.Recv(rctx)
				if err != nil {
					cancel()
					b.Fatalf("%s: after %d of %d: %v", v.name, got, hot, err)
				}
				env.Ack.Done()
			}
			cancel()
			wall[i] = append(wall[i], float64(time.Since(t0)))
			cpu[i] = append(cpu[i], float64(cpuTime()-c0))
			stop()
		}
	}
	for i, v := range variants {
		var cr []float64
		for r := range cpu[i] {
			cr = append(cr, cpu[i][r]/cpu[0][r])
		}
		b.ReportMetric(median(cpu[i])/n/1e3, v.name+"-cpu-us/msg")
		b.ReportMetric(n/(median(wall[i])/1e9), v.name+"-msgs/s")
		if i > 0 {
			b.ReportMetric(median(cr), v.name+"-cpu-x")
		}
	}
}

func mqttRelayBuilder(t testing.TB, url, clientID string) *mqtt.Builder {
	t.Helper()
	b, err := mqtt.New(mqtt.Config{URL: url, ClientID: clientID, SessionExpiry: -1})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

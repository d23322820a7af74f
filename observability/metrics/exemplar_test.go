package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/observability/metrics"
	"github.com/aimdb-dev/aimdb-flow/observability/otelflow"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

var exemplarRE = regexp.MustCompile(`^aimdb_flow_hop_duration_seconds_bucket\{.*hop="([a-z]+)".*\} \S+ # \{trace_id="([0-9a-f]{32})"\} \S+ \S+$`)

// TestExemplars: with tracing on and a sampled record, the hop histograms
// carry the record's trace id as exemplars in OpenMetrics output; with
// tracing off or the record not sampled, there are none; the text format
// never has them.
func TestExemplars(t *testing.T) {
	tests := []struct {
		name    string
		sampler sdktrace.Sampler // nil: tracing off
		want    bool
	}{
		{"tracing-off", nil, false},
		{"not-sampled", sdktrace.NeverSample(), false},
		{"sampled", sdktrace.AlwaysSample(), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			var next pipeline.Tracer
			if tc.sampler != nil {
				tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(tc.sampler))
				defer func() { _ = tp.Shutdown(context.Background()) }()
				next = otelflow.New(tp)
			}
			lat := metrics.NewLatency(next)
			bus := mem.NewBus()
			alerts, unsub := bus.Subscribe("alerts/#", 10)
			defer unsub()
			r, err := pipeline.NewRunner(testGraph(bus), pipeline.RunOptions{Tracer: lat, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(metrics.Handler(r, metrics.WithLatency(lat)))
			defer srv.Close()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			waitReady(t, srv.URL)
			e := pipeline.Envelope{Payload: []byte(`{"device":"d-1","temp":30}`)}
			if err := bus.Publish(ctx, "src/x", &e); err != nil {
				t.Fatal(err)
			}
			select {
			case <-alerts:
			case <-time.After(5 * time.Second):
				t.Fatal("timed out waiting for the alert")
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}

			traces := map[string]bool{}
			for _, s := range exp.GetSpans() {
				traces[s.SpanContext.TraceID().String()] = true
			}
			om := scrapeAccept(t, srv.URL, "application/openmetrics-text; version=1.0.0")
			hops := map[string]bool{}
			for _, line := range strings.Split(om, "\n") {
				m := exemplarRE.FindStringSubmatch(line)
				if m == nil {
					if strings.Contains(line, "trace_id") {
						t.Errorf("malformed exemplar line %q", line)
					}
					continue
				}
				if !traces[m[2]] {
					t.Errorf("exemplar trace_id %s is not a trace of an exported span (%v)", m[2], traces)
				}
				hops[m[1]] = true
			}
			if tc.want && (!hops["stage"] || !hops["publish"]) {
				t.Errorf("want exemplars on the stage and publish hops, got %v:\n%s", hops, om)
			}
			if !tc.want && len(hops) > 0 {
				t.Errorf("want no exemplars, got them on %v", hops)
			}
			if txt := scrapeAccept(t, srv.URL, ""); strings.Contains(txt, "trace_id") {
				t.Errorf("text format carries exemplars:\n%s", txt)
			}
		})
	}
}

func scrapeAccept(t *testing.T, url, accept string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

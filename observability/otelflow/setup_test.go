package otelflow_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/aimdb-dev/aimdb-flow/observability/otelflow"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// oneHop records one receive span through p's tracer.
func oneHop(t *testing.T, p *otelflow.Provider) {
	t.Helper()
	e := &pipeline.Envelope{Topic: "sensors/x"}
	tr := p.PipelineTracer()
	if tr == nil {
		t.Fatal("tracing unexpectedly off")
	}
	if s := tr.StartHop(context.Background(), e, &pipeline.HopInfo{Hop: pipeline.HopReceive, Connector: "mqtt", Scheme: "mqtt"}); s != nil {
		s.End(nil)
	}
}

func TestSetupOff(t *testing.T) {
	tests := []struct {
		name string
		cfg  otelflow.Config
		vars map[string]string
	}{
		{"nothing asked", otelflow.Config{}, nil},
		{"exporter none", otelflow.Config{}, map[string]string{"OTEL_TRACES_EXPORTER": "none"}},
		{"config none wins over env", otelflow.Config{Exporter: "none"}, map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}},
		{"sdk disabled", otelflow.Config{Exporter: "console"}, map[string]string{"OTEL_SDK_DISABLED": "true"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Getenv = env(tc.vars)
			p, err := otelflow.Setup(context.Background(), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if p.Enabled() || p.PipelineTracer() != nil {
				t.Fatal("tracing should be off (and PipelineTracer an untyped nil)")
			}
			if err := p.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSetupErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  otelflow.Config
		vars map[string]string
		want string
	}{
		{"unknown exporter", otelflow.Config{Exporter: "zipkin"}, nil, `unknown traces exporter "zipkin"`},
		{"unknown protocol", otelflow.Config{Exporter: "otlp", Protocol: "carrier-pigeon"}, nil, `unknown OTLP protocol`},
		{"bad sampler", otelflow.Config{Exporter: "console", Writer: io.Discard}, map[string]string{"OTEL_TRACES_SAMPLER": "sometimes"}, "unsupported OTEL_TRACES_SAMPLER"},
		{"bad ratio", otelflow.Config{Exporter: "console", Writer: io.Discard}, map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "want a ratio in [0,1]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Getenv = env(tc.vars)
			_, err := otelflow.Setup(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSetupConsoleAndSampler(t *testing.T) {
	tests := []struct {
		name  string
		vars  map[string]string
		spans bool
	}{
		{"default sampler", map[string]string{"OTEL_TRACES_EXPORTER": "console"}, true},
		{"always_off", map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "always_off"}, false},
		{"ratio 0", map[string]string{"OTEL_TRACES_EXPORTER": "stdout", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			p, err := otelflow.Setup(context.Background(), otelflow.Config{Writer: &buf, ServiceName: "edge-7", Getenv: env(tc.vars)})
			if err != nil {
				t.Fatal(err)
			}
			oneHop(t, p)
			if err := p.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			if got := strings.Contains(out, `"Name":"receive"`); got != tc.spans {
				t.Fatalf("span exported = %v, want %v:\n%s", got, tc.spans, out)
			}
			if tc.spans && !strings.Contains(out, `"Value":"edge-7"`) {
				t.Fatalf("service name not in resource:\n%s", out)
			}
		})
	}
}

// TestSetupOTLPHTTP exports to a real HTTP server speaking OTLP/HTTP.
func TestSetupOTLPHTTP(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	var spans []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		paths = append(paths, r.URL.Path)
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					spans = append(spans, s.Name)
				}
			}
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		_, _ = w.Write(b)
	}))
	defer srv.Close()
	p, err := otelflow.Setup(context.Background(), otelflow.Config{Exporter: "otlp", Endpoint: srv.URL, Getenv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	oneHop(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) == 0 || paths[0] != "/v1/traces" || strings.Join(spans, ",") != "receive" {
		t.Fatalf("collector saw paths %v spans %v, want /v1/traces and [receive]", paths, spans)
	}
}

type traceCollector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []string
}

func (c *traceCollector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				c.spans = append(c.spans, s.Name)
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// TestSetupOTLPGRPC exports to a real gRPC server speaking OTLP/gRPC; the
// protocol and endpoint come from the standard environment variables.
func TestSetupOTLPGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	col := &traceCollector{}
	coltracepb.RegisterTraceServiceServer(gs, col)
	go func() { _ = gs.Serve(ln) }()
	defer gs.Stop()

	p, err := otelflow.Setup(context.Background(), otelflow.Config{Endpoint: ln.Addr().String(), Insecure: true,
		Getenv: env(map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})})
	if err != nil {
		t.Fatal(err)
	}
	oneHop(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if strings.Join(col.spans, ",") != "receive" {
		t.Fatalf("collector got %v, want [receive]", col.spans)
	}
}

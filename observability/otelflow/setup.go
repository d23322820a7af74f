package otelflow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// DefaultServiceName is the service.name used when neither Config nor
// OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES name the service.
const DefaultServiceName = "aimdb-flow"

// Config configures Setup. Every empty field falls back to the standard
// OpenTelemetry environment variable, then to a default:
//
//	Exporter     OTEL_TRACES_EXPORTER               "otlp" | "console" (or "stdout") | "none"
//	Protocol     OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
//	             OTEL_EXPORTER_OTLP_PROTOCOL        "http/protobuf" (default) | "grpc"
//	Endpoint     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
//	             OTEL_EXPORTER_OTLP_ENDPOINT        (read by the OTLP exporters)
//	Sampler      OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG   default parentbased_always_on
//	ServiceName  OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES    default "aimdb-flow"
//	Block        AIMDB_OTEL_BSP_BLOCK=true                      default false
//
// Tracing is off unless asked for: by Config.Exporter, OTEL_TRACES_EXPORTER
// or an OTLP endpoint variable. OTEL_SDK_DISABLED=true turns it off whatever
// else is set.
type Config struct {
	// Exporter is "otlp", "console" (alias "stdout") or "none".
	Exporter string
	// Protocol is the OTLP transport: "http/protobuf" or "grpc".
	Protocol string
	// Endpoint is the OTLP collector: a URL ("http://127.0.0.1:4318"; for
	// HTTP an empty path means /v1/traces) or host:port. Empty: the
	// exporters read the OTEL_EXPORTER_OTLP_* endpoint variables.
	Endpoint string
	// Insecure disables TLS for a host:port Endpoint (a URL says it with
	// its scheme).
	Insecure bool
	// ServiceName overrides the service.name resource attribute.
	ServiceName string
	// Ratio, in (0,1], samples that fraction of new traces (records
	// arriving without trace context), parent-based for the others: the
	// same policy as OTEL_TRACES_SAMPLER=parentbased_traceidratio. 0: not
	// set.
	Ratio float64
	// Sampler overrides Ratio and OTEL_TRACES_SAMPLER.
	//
	// Whatever the source, the sampler is a head sampler
	// (WithHeadSampler): the Tracer asks it once per record, at the
	// receive hop, so a record not sampled costs almost nothing, and the
	// SDK (sampling AlwaysSample) records every span of a sampled record.
	Sampler sdktrace.Sampler
	// SpanExporter, when set, is used instead of Exporter (tests, custom
	// exporters). It is batched like the others.
	SpanExporter sdktrace.SpanExporter
	// Block makes a full span queue block the recording goroutine instead
	// of dropping the span (the SDK's default, which keeps the pipeline's
	// pace when the exporter cannot keep up, but loses spans silently).
	// Also set by AIMDB_OTEL_BSP_BLOCK=true. Benchmarks that claim "every
	// record traced and exported" need it.
	Block bool
	// Writer receives the console exporter's output (default os.Stdout).
	Writer io.Writer
	// Options configure the Tracer.
	Options []Option
	// Getenv looks up environment variables (default os.Getenv).
	Getenv func(string) string
}

// SampleRatio returns the sampler for "trace this fraction of records":
// parent-based, so a record arriving with a sampled (or unsampled)
// traceparent keeps its upstream decision, and new traces are sampled by
// trace id with probability ratio.
func SampleRatio(ratio float64) sdktrace.Sampler {
	return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))
}

// Provider is a configured tracing setup. A Provider with tracing off has a
// nil TracerProvider, and PipelineTracer returns nil.
type Provider struct {
	// TracerProvider is the SDK provider (nil when tracing is off).
	TracerProvider *sdktrace.TracerProvider
	// Tracer is the pipeline hook (nil when tracing is off).
	Tracer *Tracer
}

// PipelineTracer returns the value for pipeline.RunOptions.Tracer: the
// Tracer, or an untyped nil when tracing is off (so the runner skips every
// hook).
func (p *Provider) PipelineTracer() pipeline.Tracer {
	if p == nil || p.Tracer == nil {
		return nil
	}
	return p.Tracer
}

// Enabled reports whether tracing is on.
func (p *Provider) Enabled() bool { return p != nil && p.Tracer != nil }

// Shutdown flushes the spans still queued and stops the exporter.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil || p.TracerProvider == nil {
		return nil
	}
	return p.TracerProvider.Shutdown(ctx)
}

// Setup builds a TracerProvider with a batching exporter from cfg and the
// OTEL_* environment, and a Tracer on it. It does not touch the global
// OpenTelemetry provider. Call Shutdown on exit to flush.
func Setup(ctx context.Context, cfg Config) (*Provider, error) {
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	exporter := strings.ToLower(strings.TrimSpace(cfg.Exporter))
	if exporter == "" {
		exporter = strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")))
		if i := strings.IndexByte(exporter, ','); i >= 0 {
			exporter = strings.TrimSpace(exporter[:i]) // one exporter supported
		}
	}
	if exporter == "" && (cfg.Endpoint != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "") {
		exporter = "otlp"
	}
	if cfg.SpanExporter != nil {
		exporter = "custom"
	}
	if exporter == "" || exporter == "none" || strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return &Provider{}, nil
	}

	var exp sdktrace.SpanExporter
	var err error
	switch exporter {
	case "custom":
		exp = cfg.SpanExporter
	case "console", "stdout":
		w := cfg.Writer
		if w == nil {
			w = os.Stdout
		}
		exp, err = stdouttrace.New(stdouttrace.WithWriter(w))
	case "otlp":
		exp, err = otlpExporter(ctx, cfg, getenv)
	default:
		return nil, fmt.Errorf("otelflow: unknown traces exporter %q (want otlp, console or none)", exporter)
	}
	if err != nil {
		return nil, fmt.Errorf("otelflow: %s exporter: %w", exporter, err)
	}

	// Head sampling: the Tracer decides once per record, at its receive
	// hop, with the configured sampler; the SDK samples every span of a
	// record the Tracer traces.
	head := cfg.Sampler
	if head == nil {
		if cfg.Ratio > 0 {
			head = SampleRatio(min(cfg.Ratio, 1))
		} else if head, err = samplerFromEnv(getenv); err != nil {
			_ = exp.Shutdown(ctx)
			return nil, err
		}
	}
	// Two spans per record and process (JourneySpans) unless
	// cfg.Options choose another mode.
	opts := append(append([]Option{WithStageMode(JourneySpans)}, cfg.Options...), WithHeadSampler(head))
	sampler := sdktrace.AlwaysSample()
	res, err := buildResource(ctx, cfg.ServiceName)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("otelflow: resource: %w", err)
	}
	var bopts []sdktrace.BatchSpanProcessorOption
	if cfg.Block || strings.EqualFold(strings.TrimSpace(getenv("AIMDB_OTEL_BSP_BLOCK")), "true") {
		bopts = append(bopts, sdktrace.WithBlocking())
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, bopts...), sdktrace.WithSampler(sampler), sdktrace.WithResource(res))
	return &Provider{TracerProvider: tp, Tracer: New(tp, opts...)}, nil
}

func otlpExporter(ctx context.Context, cfg Config, getenv func(string) string) (sdktrace.SpanExporter, error) {
	proto := strings.ToLower(strings.TrimSpace(cfg.Protocol))
	if proto == "" {
		proto = strings.ToLower(strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")))
	}
	if proto == "" {
		proto = strings.ToLower(strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_PROTOCOL")))
	}
	isURL := strings.Contains(cfg.Endpoint, "://")
	switch proto {
	case "", "http/protobuf", "http":
		var opts []otlptracehttp.Option
		switch {
		case isURL:
			u, err := url.Parse(cfg.Endpoint)
			if err != nil {
				return nil, fmt.Errorf("endpoint: %w", err)
			}
			if u.Path == "" || u.Path == "/" {
				u.Path = "/v1/traces" // a base URL, like OTEL_EXPORTER_OTLP_ENDPOINT
			}
			opts = append(opts, otlptracehttp.WithEndpointURL(u.String()))
		case cfg.Endpoint != "":
			opts = append(opts, otlptracehttp.WithEndpoint(cfg.Endpoint))
		}
		if cfg.Insecure && !isURL {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		return otlptracehttp.New(ctx, opts...)
	case "grpc":
		var opts []otlptracegrpc.Option
		switch {
		case isURL:
			opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
		case cfg.Endpoint != "":
			opts = append(opts, otlptracegrpc.WithEndpoint(cfg.Endpoint))
		}
		if cfg.Insecure && !isURL {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		return otlptracegrpc.New(ctx, opts...)
	}
	return nil, fmt.Errorf("unknown OTLP protocol %q (want http/protobuf or grpc)", proto)
}

// samplerFromEnv parses OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
// as the OpenTelemetry specification defines them.
func samplerFromEnv(getenv func(string) string) (sdktrace.Sampler, error) {
	name := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER")))
	arg := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG"))
	ratio := 1.0
	if arg != "" && strings.Contains(name, "traceidratio") {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("otelflow: OTEL_TRACES_SAMPLER_ARG=%q: want a ratio in [0,1]", arg)
		}
		ratio = r
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	case "parentbased_traceidratio":
		return SampleRatio(ratio), nil
	}
	return nil, errors.New("otelflow: unsupported OTEL_TRACES_SAMPLER " + strconv.Quote(name))
}

// buildResource merges, later winning: the SDK's telemetry attributes, the
// default service name, OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME, and
// an explicit service name.
func buildResource(ctx context.Context, service string) (*resource.Resource, error) {
	opts := []resource.Option{
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(DefaultServiceName)),
		resource.WithFromEnv(),
	}
	if service != "" {
		opts = append(opts, resource.WithAttributes(semconv.ServiceName(service)))
	}
	return resource.New(ctx, opts...)
}

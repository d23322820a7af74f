// Package otlpsink is a discarding OTLP/HTTP trace receiver for benchmarks:
// it accepts POST /v1/traces (protobuf or JSON), counts the spans it was
// sent and throws them away, so a measured process pays the full cost of
// exporting over the wire while the receiver's own work stays outside it.
//
// The harness runs the receiver in its own process and points the measured
// child at it with OTEL_EXPORTER_OTLP_ENDPOINT=Sink.URL().
package otlpsink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Sink is a running receiver. Its methods are safe for concurrent use.
type Sink struct {
	srv      *http.Server
	ln       net.Listener
	spans    atomic.Int64
	requests atomic.Int64
	bad      atomic.Int64
}

// Start listens on a free 127.0.0.1 port and serves until ctx ends or Close.
func Start(ctx context.Context) (*Sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("otlpsink: listen: %w", err)
	}
	s := &Sink{ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", s.traces)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		_ = s.Close()
	}()
	return s, nil
}

// URL is the endpoint to set as OTEL_EXPORTER_OTLP_ENDPOINT (http://host:port).
func (s *Sink) URL() string { return "http://" + s.ln.Addr().String() }

// Spans is the number of spans received so far.
func (s *Sink) Spans() int64 { return s.spans.Load() }

// Requests is the number of export requests received so far.
func (s *Sink) Requests() int64 { return s.requests.Load() }

// Bad is the number of requests that could not be decoded.
func (s *Sink) Bad() int64 { return s.bad.Load() }

// Reset zeroes the counters (between measured runs).
func (s *Sink) Reset() { s.spans.Store(0); s.requests.Store(0); s.bad.Store(0) }

// Close stops the receiver.
func (s *Sink) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Sink) traces(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		s.bad.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	isJSON := r.Header.Get("Content-Type") == "application/json"
	if isJSON {
		err = protojson.Unmarshal(body, &req)
	} else {
		err = proto.Unmarshal(body, &req)
	}
	if err != nil {
		s.bad.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var n int64
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += int64(len(ss.GetSpans()))
		}
	}
	s.spans.Add(n)
	resp, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(resp)
}

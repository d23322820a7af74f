// Package httpconn is the HTTP connector (schemes http and https). It is
// both a webhook publisher sink and an ingest source:
//
//   - Outbound links POST (or the configured method) each encoded record to
//     the endpoint URL joined with the link's destination:
//     `connector hooks "https://api.example.com"` with
//     `to "hooks://v1/alerts/{device}"` sends to
//     https://api.example.com/v1/alerts/d-1. Retryable failures
//     (connection errors, timeouts, 408, 429, 5xx) are retried with
//     exponential backoff and jitter, honouring Retry-After; other 4xx
//     are final and returned as a *StatusError whose message carries the
//     status and a body excerpt, so the runner dead-letters them. One
//     keep-alive http.Client per connector; MaxConcurrency bounds the
//     requests in flight.
//   - Inbound links make the connector listen on the endpoint's address
//     (`connector ingest "http://127.0.0.1:8080"`) and serve each link's
//     path (`from "ingest:///ingest/sensor" decode json`): a request body
//     becomes one message, routed through the runner's dispatcher. The
//     answer is 202 once every record fed by the path took it into its
//     buffer (200 after all sinks acknowledged, with wait ack), 503 when
//     backpressure refuses it within AcceptTimeout, 401/404/405/413 for
//     bad requests.
//
// The package name avoids clashing with net/http; the import path is
// github.com/aimdb-dev/aimdb-flow/connectors/httpconn.
package httpconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Builder builds an HTTP connector for one endpoint.
type Builder struct {
	scheme    string
	ep        pipeline.Endpoint
	cfg       Config
	clientTLS *tls.Config // built once by New (kit.TLSConfig)

	mu    sync.Mutex
	built *conn
}

// Factory is the pipeline.Factory for the "http" and "https" schemes:
// endpoint is the base URL of outbound links and the listen address of
// inbound ones; params are parsed by ParseConfig.
func Factory(endpoint string, params pipeline.Params) (pipeline.Builder, error) {
	cfg, err := ParseConfig(params)
	if err != nil {
		return nil, err
	}
	return New(endpoint, cfg)
}

// New returns a builder for endpoint ("http://host:port/base" or https)
// configured by cfg. Configuration mistakes are all reported at once.
func New(endpoint string, cfg Config) (*Builder, error) {
	ep, err := pipeline.ParseEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	var errs []error
	if ep.Scheme != "http" && ep.Scheme != "https" {
		errs = append(errs, fmt.Errorf("endpoint %q: scheme must be http or https", ep.Redacted()))
	}
	if ep.Host == "" {
		errs = append(errs, fmt.Errorf("endpoint %q: missing host", ep.Redacted()))
	}
	if ep.Fragment != "" {
		errs = append(errs, fmt.Errorf("endpoint %q: fragments are not sent to servers", ep.Redacted()))
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		errs = append(errs, err)
	}
	clientTLS, err := kit.TLSConfig(cfg.TLS)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Builder{scheme: ep.Scheme, ep: ep, cfg: cfg, clientTLS: clientTLS}, nil
}

// Scheme implements pipeline.Builder ("http" or "https").
func (b *Builder) Scheme() string { return b.scheme }

// Caps implements pipeline.CapsDeclarer: ingest paths inbound, requests
// outbound, headers both ways.
func (b *Builder) Caps() pipeline.Caps {
	return pipeline.Caps{Inbound: true, Outbound: true, Headers: true}
}

// Config returns the effective configuration (defaults applied).
func (b *Builder) Config() Config { return b.cfg }

// Addr returns the address the ingest server listens on once the
// connector was built with inbound links (useful with port 0), else nil.
func (b *Builder) Addr() net.Addr {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.built == nil || b.built.ln == nil {
		return nil
	}
	return b.built.ln.Addr()
}

// ParseLinkOptions implements pipeline.LinkOptionParser: outbound links
// take method, content_type and header_<Name>; inbound links take methods.
func (b *Builder) ParseLinkOptions(dir pipeline.Direction, addr string, p pipeline.Params) (any, error) {
	if dir == pipeline.Inbound {
		return parseIn(addr, p)
	}
	if strings.Contains(addr, "#") {
		return nil, errors.New("destination must not contain '#'")
	}
	return parseOut(p)
}

// Build implements pipeline.Builder. With inbound links it binds the
// listen socket now (a port in use fails the run at once); serving starts
// in Serve.
func (b *Builder) Build(_ context.Context, env pipeline.BuildEnv) (pipeline.Connector, error) {
	log := env.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &conn{cfg: b.cfg, ep: b.ep, log: log, sem: make(chan struct{}, b.cfg.MaxConcurrency),
		forward: kit.NewHeaderFilter(b.cfg.ForwardHeaders...)}
	c.base = *b.ep.URL
	c.base.User = nil
	if u := b.ep.User; u != nil {
		c.user = u.Username()
		c.pass, c.hasPass = u.Password()
	}
	if b.cfg.TLS.InsecureSkipVerify {
		log.Warn("TLS certificate verification disabled (insecure_skip_verify true)", "endpoint", b.ep.Redacted())
	}
	c.transport = &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4 * b.cfg.MaxConcurrency,
		MaxIdleConnsPerHost:   b.cfg.MaxConcurrency,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       b.clientTLS.Clone(),
	}
	c.client = &http.Client{Transport: c.transport, CheckRedirect: keepMethodRedirects}
	if len(env.Inbound) > 0 {
		if err := c.listen(env.Inbound); err != nil {
			return nil, err
		}
	}
	b.mu.Lock()
	b.built = c
	b.mu.Unlock()
	return c, nil
}

// keepMethodRedirects follows only redirects that keep the method and body
// (307, 308): a 301/302/303 would turn the POST into a body-less GET and
// silently lose the record, so it is returned as a failure instead.
func keepMethodRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("stopped after 5 redirects")
	}
	if req.Method != via[0].Method {
		return http.ErrUseLastResponse
	}
	return nil
}

// conn is a built HTTP connector.
type conn struct {
	cfg       Config
	ep        pipeline.Endpoint
	base      url.URL
	user      string
	pass      string
	hasPass   bool
	log       *slog.Logger
	transport *http.Transport
	client    *http.Client

	sem     chan struct{} // bounds requests in flight
	waiting atomic.Int64  // publishers blocked on sem (for tests and stats)

	sent, retries, failed            atomic.Uint64
	accepted, busy, rejected, unconf atomic.Uint64

	// ingest
	forward kit.HeaderFilter // request headers copied into envelopes
	ln      net.Listener
	routes  map[string]*ingestRoute
	serving atomic.Bool
	served  atomic.Bool
	wantIn  bool
	// dispatchMu: handlers hold it shared while dispatching; Serve takes
	// it exclusively to set stopped before returning.
	dispatchMu sync.RWMutex
	stopped    bool
}

// Ready implements pipeline.Readiness: a connector with inbound links is
// ready once its server is serving; an outbound-only one always is (it
// connects per request).
func (c *conn) Ready() error {
	if c.wantIn && !c.serving.Load() {
		return errors.New("ingest server not serving")
	}
	return nil
}

// Close implements pipeline.Connector.
func (c *conn) Close(context.Context) error {
	if c.ln != nil && !c.served.Load() {
		c.ln.Close()
	}
	c.transport.CloseIdleConnections()
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Stats are the connector's counters.
type Stats struct {
	// Webhook sink.
	Sent     uint64 // records the server accepted (2xx)
	Retries  uint64 // attempts after the first
	Failed   uint64 // publishes that finally failed (dead-lettered or nacked by the runner)
	InFlight int    // requests in flight now
	Waiting  int64  // publishes waiting for a max_concurrency slot now
	// Ingest source.
	Accepted    uint64 // requests answered 202 (or 200 with wait ack)
	Busy        uint64 // requests refused with 503 (backpressure, shutdown)
	Rejected    uint64 // requests answered 400/401/404/405/413/415
	Unconfirmed uint64 // wait ack: 502 or 504
}

// Stats returns the counters of the connector built last (zero before
// Build).
func (b *Builder) Stats() Stats {
	b.mu.Lock()
	c := b.built
	b.mu.Unlock()
	if c == nil {
		return Stats{}
	}
	return Stats{Sent: c.sent.Load(), Retries: c.retries.Load(), Failed: c.failed.Load(),
		InFlight: len(c.sem), Waiting: c.waiting.Load(),
		Accepted: c.accepted.Load(), Busy: c.busy.Load(), Rejected: c.rejected.Load(), Unconfirmed: c.unconf.Load()}
}

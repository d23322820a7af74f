package httpconn

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// WaitMode tells the ingest source when to answer a request.
type WaitMode uint8

const (
	// WaitAccept answers 202 Accepted as soon as every record the path
	// feeds has taken the message into its buffer (the default).
	WaitAccept WaitMode = iota
	// WaitAck answers 200 OK only after every sink the message reached has
	// acknowledged it (502 if one rejected it, 504 if AckTimeout passed).
	// End-to-end confirmation needs lossless (queue) buffers on the way;
	// a lossy buffer acknowledges as soon as it is written.
	WaitAck
)

// Config configures an HTTP connector. The zero value works: every field
// has a default. Outbound settings apply to links the connector publishes
// to, inbound settings to the ingest server it runs when it has inbound
// links.
type Config struct {
	// ---- outbound (webhook sink) ----

	// Method is the request method (default POST).
	Method string
	// Timeout bounds each attempt, including reading the response
	// (default 10s).
	Timeout time.Duration
	// Retries is the number of further attempts after a retryable failure
	// (connection error, timeout, 408, 429, 5xx except 501/505). Default 3;
	// NoRetry disables retries.
	Retries int
	// NoRetry disables retries (Retries is ignored).
	NoRetry bool
	// Backoff spaces retries (defaults 100ms .. 5s, factor 2, jitter). A
	// Retry-After header on 429/503 replaces the computed delay (capped at
	// MaxRetryAfter).
	Backoff pipeline.Backoff
	// MaxRetryAfter caps how long a Retry-After header may make a retry
	// wait (default 60s).
	MaxRetryAfter time.Duration
	// MaxConcurrency bounds the requests in flight at once over all links
	// of the connector (default 16).
	MaxConcurrency int
	// Header holds static request headers (API keys arrive here
	// ${ENV}-interpolated; they are never logged).
	Header http.Header
	// BearerToken, if set, is sent as "Authorization: Bearer <token>".
	BearerToken kit.Secret
	// ContentType overrides the Content-Type of every request. Without it a
	// content-type envelope header is used, else application/json.
	ContentType string
	// KeyHeader names the header carrying env.Key (outbound) and the
	// header whose value becomes env.Key (inbound). Empty: not used.
	KeyHeader string
	// NoEnvelopeHeaders stops sending the envelope's headers (trace
	// context, forwarded headers) as request headers.
	NoEnvelopeHeaders bool
	// TLS are the TLS settings (see kit.TLS): CAFile is the PEM bundle of
	// the CAs trusted for https servers (instead of the system roots);
	// CertFile and KeyFile are the client certificate for outbound https
	// (mTLS) and the server certificate of an https ingest listener;
	// InsecureSkipVerify disables server certificate verification (tests
	// only; a warning is logged).
	TLS kit.TLS

	// ---- inbound (ingest server) ----

	// Token, if set, is the bearer token every ingest request must carry
	// ("Authorization: Bearer <token>", compared in constant time).
	Token kit.Secret
	// MaxBody limits a request body (default 1 MiB); larger requests get
	// 413.
	MaxBody int64
	// Wait selects when a request is answered (default WaitAccept).
	Wait WaitMode
	// AcceptTimeout is how long a request may wait for a full buffer
	// before it is refused with 503 (default 1s).
	AcceptTimeout time.Duration
	// AckTimeout bounds the wait for the sinks in WaitAck mode (default
	// 30s; then 504).
	AckTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown of the ingest server
	// (default 10s).
	ShutdownTimeout time.Duration
	// ForwardHeaders selects the request headers copied into env.Headers
	// (names lower-cased). Entries are header names or prefixes ending in
	// "*"; "*" alone forwards everything. Authorization, Cookie and
	// hop-by-hop headers are never forwarded. Nil means the default list
	// DefaultForwardHeaders; an empty non-nil slice forwards nothing.
	ForwardHeaders []string
	// Listener, if set, is used by the ingest server instead of listening
	// on the endpoint's address (the endpoint's scheme still decides
	// http/https).
	Listener net.Listener
}

// DefaultForwardHeaders are the request headers the ingest server copies
// into env.Headers by default: W3C trace context, the content type and
// every X- header.
var DefaultForwardHeaders = []string{"traceparent", "tracestate", "baggage", "content-type", "x-*"}

// Defaults.
const (
	DefaultTimeout        = 10 * time.Second
	DefaultRetries        = 3
	DefaultMaxConcurrency = 16
	DefaultMaxBody        = 1 << 20
	DefaultAcceptTimeout  = time.Second
	DefaultAckTimeout     = 30 * time.Second
)

func (c *Config) setDefaults() {
	if c.Method == "" {
		c.Method = http.MethodPost
	}
	c.Method = strings.ToUpper(c.Method)
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.NoRetry {
		c.Retries = 0
	} else if c.Retries == 0 {
		c.Retries = DefaultRetries
	}
	if c.Backoff.Min <= 0 {
		c.Backoff.Min = 100 * time.Millisecond
	}
	if c.Backoff.Max <= 0 {
		c.Backoff.Max = 5 * time.Second
	}
	if c.MaxRetryAfter <= 0 {
		c.MaxRetryAfter = time.Minute
	}
	if c.MaxConcurrency <= 0 {
		c.MaxConcurrency = DefaultMaxConcurrency
	}
	if c.MaxBody <= 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.AcceptTimeout <= 0 {
		c.AcceptTimeout = DefaultAcceptTimeout
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.ForwardHeaders == nil {
		c.ForwardHeaders = DefaultForwardHeaders
	}
	fh := make([]string, len(c.ForwardHeaders))
	for i, h := range c.ForwardHeaders {
		fh[i] = strings.ToLower(strings.TrimSpace(h))
	}
	c.ForwardHeaders = fh
}

// validate checks what the Go API can get wrong; each problem names the
// setting it corresponds to (ParseConfig checks the same while reading, so
// a .flow file gets each problem once, at its setting).
func (c *Config) validate() error {
	var errs kit.Errors
	bad := func(key, value, format string, args ...any) {
		errs = append(errs, &kit.Error{Key: key, Value: value, Err: fmt.Errorf(format, args...)})
	}
	if !kit.ValidHTTPToken(c.Method) {
		bad("method", c.Method, "not a valid HTTP method")
	}
	if c.Retries < 0 {
		bad("retries", strconv.Itoa(c.Retries), "must not be negative")
	}
	if c.Backoff.Max < c.Backoff.Min {
		bad("backoff_max", kit.FormatDuration(c.Backoff.Max), "is below backoff %s", kit.FormatDuration(c.Backoff.Min))
	}
	for _, k := range slices.Sorted(maps.Keys(c.Header)) {
		vs := c.Header[k]
		key := "header_" + strings.ReplaceAll(k, "-", "_")
		if !kit.ValidHTTPToken(k) {
			bad(key, "", "invalid header name %q", k)
		}
		for _, v := range vs {
			if !kit.ValidHTTPHeaderValue(v) {
				bad(key, "", "invalid value (control characters)")
			}
		}
	}
	if c.KeyHeader != "" && !kit.ValidHTTPToken(c.KeyHeader) {
		bad("key_header", c.KeyHeader, "not a valid header name")
	}
	if c.ContentType != "" && !kit.ValidHTTPHeaderValue(c.ContentType) {
		bad("content_type", "", "invalid value (control characters)")
	}
	if !kit.ValidHTTPHeaderValue(c.BearerToken.Value()) {
		bad("bearer", "", "invalid characters")
	}
	if !kit.ValidHTTPHeaderValue(c.Token.Value()) {
		bad("token", "", "invalid characters")
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// ParseConfig turns DSL settings (`connector hooks "https://..." timeout
// 5s retries 5 header_X_Api_Key "${KEY}"`) into a Config with the shared
// settings reader (connectors/kit: one grammar for durations, sizes and
// booleans; the TLS settings of kit.ReadTLS). Every mistake is reported,
// each as a *kit.Error naming its setting.
func ParseConfig(p pipeline.Params) (Config, error) {
	var c Config
	s := kit.Read(p)
	if m := s.String("method", ""); m != "" {
		if c.Method = strings.ToUpper(m); !kit.ValidHTTPToken(c.Method) {
			s.Errorf("method", "not a valid HTTP method")
			c.Method = ""
		}
	}
	c.Timeout = s.Duration("timeout", 0)
	if s.Has("retries") {
		c.Retries = s.Int("retries", DefaultRetries, 0, math.MaxInt)
		c.NoRetry = c.Retries == 0
	}
	c.Backoff.Min = s.Duration("backoff", 0)
	c.Backoff.Max = s.Duration("backoff_max", 0)
	c.MaxRetryAfter = s.Duration("max_retry_after", 0)
	c.MaxConcurrency = s.Int("max_concurrency", 0, 1, math.MaxInt)
	for _, h := range s.Prefixed("header_", "header_<Name>") {
		name := textproto.CanonicalMIMEHeaderKey(strings.ReplaceAll(h.Name, "_", "-"))
		switch {
		case h.Name == "":
			s.Errorf(h.Key, "want header_<Name>, e.g. header_X_Api_Key")
		case !kit.ValidHTTPToken(name):
			s.Errorf(h.Key, "invalid header name %q", name)
		case !kit.ValidHTTPHeaderValue(h.Value):
			// The value may be a secret: say what is wrong, not what it is.
			s.Fail(&kit.Error{Key: h.Key, Err: errors.New("invalid value (control characters)")})
		default:
			if c.Header == nil {
				c.Header = http.Header{}
			}
			c.Header.Add(name, h.Value)
		}
	}
	c.BearerToken = s.Secret("bearer")
	if !kit.ValidHTTPHeaderValue(c.BearerToken.Value()) {
		s.Errorf("bearer", "invalid characters")
		c.BearerToken = kit.Secret{}
	}
	c.ContentType = s.String("content_type", "")
	if !kit.ValidHTTPHeaderValue(c.ContentType) {
		s.Errorf("content_type", "invalid value (control characters)")
		c.ContentType = ""
	}
	c.KeyHeader = s.String("key_header", "")
	if c.KeyHeader != "" && !kit.ValidHTTPToken(c.KeyHeader) {
		s.Errorf("key_header", "not a valid header name")
		c.KeyHeader = ""
	}
	c.NoEnvelopeHeaders = !s.Bool("envelope_headers", true)
	c.TLS = kit.ReadTLS(s)

	c.Token = s.Secret("token")
	if !kit.ValidHTTPHeaderValue(c.Token.Value()) {
		s.Errorf("token", "invalid characters")
		c.Token = kit.Secret{}
	}
	c.MaxBody = s.SizeIn("max_body", 0, 1, math.MaxInt64)
	c.Wait = kit.Choose(s, "wait", WaitAccept,
		kit.Choice[WaitMode]{Name: "accept", Value: WaitAccept}, kit.Choice[WaitMode]{Name: "ack", Value: WaitAck})
	c.AcceptTimeout = s.Duration("accept_timeout", 0)
	c.AckTimeout = s.Duration("ack_timeout", 0)
	c.ShutdownTimeout = s.Duration("shutdown_timeout", 0)
	if fh := s.List("forward_headers", nil); fh != nil {
		c.ForwardHeaders = fh
	}
	if c.Backoff.Max > 0 && c.Backoff.Max < c.Backoff.Min {
		s.Errorf("backoff_max", "is below backoff %s", kit.FormatDuration(c.Backoff.Min))
		c.Backoff.Max = c.Backoff.Min
	}
	return c, s.Err()
}

// Link options.

// Out are the typed options of an outbound link
// (`to "hooks://v1/alerts/{device}" method PUT header_X_Kind "alert"`);
// they override the connector's settings for that link.
type Out struct {
	Method      string
	ContentType string
	Header      http.Header
}

// In are the typed options of an inbound link
// (`from "ingest:///ingest/sensor" decode json methods "POST,PUT"`).
type In struct {
	// Path is the request path served (the link address, with a leading
	// slash added when missing).
	Path string
	// Methods accepted on the path (default POST).
	Methods []string
}

func parseOut(p pipeline.Params) (*Out, error) {
	o := &Out{}
	s := kit.ReadLink(pipeline.Outbound, p)
	if m := s.String("method", ""); m != "" {
		if o.Method = strings.ToUpper(m); !kit.ValidHTTPToken(o.Method) {
			s.Errorf("method", "not a valid HTTP method")
		}
	}
	if o.ContentType = s.String("content_type", ""); !kit.ValidHTTPHeaderValue(o.ContentType) {
		s.Errorf("content_type", "invalid value (control characters)")
	}
	for _, h := range s.Prefixed("header_", "header_<Name>") {
		name := textproto.CanonicalMIMEHeaderKey(strings.ReplaceAll(h.Name, "_", "-"))
		if h.Name == "" || !kit.ValidHTTPToken(name) || !kit.ValidHTTPHeaderValue(h.Value) {
			s.Fail(&kit.Error{Key: h.Key, Err: errors.New("invalid header (want header_<Name> \"value\" without control characters)")})
			continue
		}
		if o.Header == nil {
			o.Header = http.Header{}
		}
		o.Header.Add(name, h.Value)
	}
	return o, s.Err()
}

func parseIn(addr string, p pipeline.Params) (*In, error) {
	path := addr
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	var errs []error
	if addr == "" {
		errs = append(errs, errors.New(`want a request path, e.g. "ingest:///ingest/sensor.temp"`))
	}
	if strings.ContainsAny(path, "?#{}*+ ") {
		errs = append(errs, fmt.Errorf("path %q: must be a plain path (no query, placeholders or wildcards)", path))
	}
	o := &In{Path: path, Methods: []string{http.MethodPost}}
	s := kit.ReadLink(pipeline.Inbound, p)
	s.Alias("methods", "method")
	if ms := s.List("methods", nil); ms != nil {
		o.Methods = nil
		for _, m := range ms {
			m = strings.ToUpper(m)
			if !kit.ValidHTTPToken(m) {
				s.Errorf("methods", "%q is not a valid HTTP method", m)
			}
			o.Methods = append(o.Methods, m)
		}
		if len(o.Methods) == 0 {
			s.Errorf("methods", "empty (want e.g. \"POST, PUT\")")
		}
	}
	errs = append(errs, s.Err())
	return o, errors.Join(errs...)
}

package httpconn

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"sort"
	"strconv"
	"strings"
	"time"

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
	BearerToken string
	// ContentType overrides the Content-Type of every request. Without it a
	// content-type envelope header is used, else application/json.
	ContentType string
	// KeyHeader names the header carrying env.Key (outbound) and the
	// header whose value becomes env.Key (inbound). Empty: not used.
	KeyHeader string
	// NoEnvelopeHeaders stops sending the envelope's headers (trace
	// context, forwarded headers) as request headers.
	NoEnvelopeHeaders bool
	// CAFile adds a PEM CA bundle for verifying https servers.
	CAFile string
	// CertFile and KeyFile: the client certificate for outbound https
	// (mTLS), and the server certificate of an https ingest listener.
	CertFile, KeyFile string
	// InsecureSkipVerify disables server certificate verification (tests
	// only; a warning is logged).
	InsecureSkipVerify bool

	// ---- inbound (ingest server) ----

	// Token, if set, is the bearer token every ingest request must carry
	// ("Authorization: Bearer <token>", compared in constant time).
	Token string
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

func (c *Config) validate() error {
	var errs []error
	if !validToken(c.Method) {
		errs = append(errs, fmt.Errorf("method %q is not a valid HTTP method", c.Method))
	}
	if c.Retries < 0 {
		errs = append(errs, errors.New("retries must not be negative"))
	}
	if c.Backoff.Max < c.Backoff.Min {
		errs = append(errs, fmt.Errorf("backoff_max %v is below backoff %v", c.Backoff.Max, c.Backoff.Min))
	}
	for k, vs := range c.Header {
		if !validToken(k) {
			errs = append(errs, fmt.Errorf("header %q: invalid name", k))
		}
		for _, v := range vs {
			if !validHeaderValue(v) {
				errs = append(errs, fmt.Errorf("header %q: invalid value (control characters)", k))
			}
		}
	}
	if c.KeyHeader != "" && !validToken(c.KeyHeader) {
		errs = append(errs, fmt.Errorf("key_header %q: invalid header name", c.KeyHeader))
	}
	if c.ContentType != "" && !validHeaderValue(c.ContentType) {
		errs = append(errs, errors.New("content_type: invalid value"))
	}
	if !validHeaderValue(c.BearerToken) || !validHeaderValue(c.Token) {
		errs = append(errs, errors.New("bearer/token: invalid characters"))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("cert_file and key_file go together"))
	}
	return errors.Join(errs...)
}

// connector-level parameter names, for error messages.
var knownParams = []string{
	"method", "timeout", "retries", "backoff", "backoff_max", "max_retry_after", "max_concurrency",
	"header_<Name>", "bearer", "content_type", "key_header", "envelope_headers",
	"ca_file", "cert_file", "key_file", "insecure",
	"token", "max_body", "wait", "accept_timeout", "ack_timeout", "shutdown_timeout", "forward_headers",
}

// ParseParams turns DSL settings (`connector hooks "https://..." timeout
// 5s retries 5 header_X_Api_Key "${KEY}"`) into a Config. Every mistake is
// reported, not just the first.
func ParseParams(p pipeline.Params) (Config, error) {
	var c Config
	var errs []error
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic error order
	for _, k := range keys {
		v := p[k]
		var err error
		switch {
		case k == "method":
			c.Method = strings.ToUpper(v)
		case k == "timeout":
			c.Timeout, err = parseDuration(v)
		case k == "retries":
			var n int
			n, err = strconv.Atoi(v)
			if err == nil && n < 0 {
				err = errors.New("must not be negative")
			}
			c.Retries, c.NoRetry = n, n == 0
		case k == "backoff":
			c.Backoff.Min, err = parseDuration(v)
		case k == "backoff_max":
			c.Backoff.Max, err = parseDuration(v)
		case k == "max_retry_after":
			c.MaxRetryAfter, err = parseDuration(v)
		case k == "max_concurrency":
			c.MaxConcurrency, err = strconv.Atoi(v)
			if err == nil && c.MaxConcurrency < 1 {
				err = errors.New("must be at least 1")
			}
		case strings.HasPrefix(k, "header_"):
			name := strings.ReplaceAll(strings.TrimPrefix(k, "header_"), "_", "-")
			if name == "" {
				err = errors.New("want header_<Name>, e.g. header_X_Api_Key")
				break
			}
			if c.Header == nil {
				c.Header = http.Header{}
			}
			c.Header.Add(textproto.CanonicalMIMEHeaderKey(name), v)
		case k == "bearer":
			c.BearerToken = v
		case k == "content_type":
			c.ContentType = v
		case k == "key_header":
			c.KeyHeader = v
		case k == "envelope_headers":
			var b bool
			b, err = strconv.ParseBool(v)
			c.NoEnvelopeHeaders = !b
		case k == "ca_file":
			c.CAFile = v
		case k == "cert_file":
			c.CertFile = v
		case k == "key_file":
			c.KeyFile = v
		case k == "insecure":
			c.InsecureSkipVerify, err = strconv.ParseBool(v)
		case k == "token":
			c.Token = v
		case k == "max_body":
			c.MaxBody, err = ParseSize(v)
		case k == "wait":
			switch strings.ToLower(v) {
			case "accept":
				c.Wait = WaitAccept
			case "ack":
				c.Wait = WaitAck
			default:
				err = errors.New(`want "accept" or "ack"`)
			}
		case k == "accept_timeout":
			c.AcceptTimeout, err = parseDuration(v)
		case k == "ack_timeout":
			c.AckTimeout, err = parseDuration(v)
		case k == "shutdown_timeout":
			c.ShutdownTimeout, err = parseDuration(v)
		case k == "forward_headers":
			c.ForwardHeaders = parseList(v)
		default:
			err = fmt.Errorf("unknown setting (known: %s)", strings.Join(knownParams, ", "))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
	}
	return c, errors.Join(errs...)
}

// parseList splits "a, b c" into its entries; "none" is the empty list.
func parseList(s string) []string {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	out := []string{}
	for _, x := range f {
		if strings.EqualFold(x, "none") {
			continue
		}
		out = append(out, strings.ToLower(x))
	}
	return out
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want a duration like 500ms or 10s: %w", err)
	}
	if d < 0 {
		return 0, errors.New("must not be negative")
	}
	return d, nil
}

// ParseSize parses a byte size: "1048576", "512KiB", "1MiB", "1MB", "64kB".
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') {
		i--
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a number of bytes with an optional unit (KiB, MiB, kB, MB)", s)
	}
	mult := map[string]int64{"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "kb": 1000,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1000_000, "g": 1 << 30, "gib": 1 << 30, "gb": 1000_000_000}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("size %q: unknown unit %q (KiB, MiB, GiB, kB, MB, GB)", s, unit)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return n * mult, nil
}

// validToken reports whether s is an HTTP token (header name, method).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// validHeaderValue rejects control characters other than tab (header
// injection).
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// Link options.

// SinkOptions are the typed options of an outbound link
// (`to "hooks://v1/alerts/{device}" method PUT header_X_Kind "alert"`);
// they override the connector's settings for that link.
type SinkOptions struct {
	Method      string
	ContentType string
	Header      http.Header
}

// IngestOptions are the typed options of an inbound link
// (`from "ingest:///ingest/sensor" decode json methods "POST,PUT"`).
type IngestOptions struct {
	// Path is the request path served (the link address, with a leading
	// slash added when missing).
	Path string
	// Methods accepted on the path (default POST).
	Methods []string
}

func parseSinkOptions(p pipeline.Params) (*SinkOptions, error) {
	o := &SinkOptions{}
	var errs []error
	for k, v := range p {
		switch {
		case k == "method":
			o.Method = strings.ToUpper(v)
			if !validToken(o.Method) {
				errs = append(errs, fmt.Errorf("method %q is not a valid HTTP method", v))
			}
		case k == "content_type":
			o.ContentType = v
			if !validHeaderValue(v) {
				errs = append(errs, errors.New("content_type: invalid value"))
			}
		case strings.HasPrefix(k, "header_"):
			name := textproto.CanonicalMIMEHeaderKey(strings.ReplaceAll(strings.TrimPrefix(k, "header_"), "_", "-"))
			if !validToken(name) || !validHeaderValue(v) {
				errs = append(errs, fmt.Errorf("%s: invalid header", k))
				continue
			}
			if o.Header == nil {
				o.Header = http.Header{}
			}
			o.Header.Add(name, v)
		default:
			errs = append(errs, fmt.Errorf("%s: unknown link setting (known: method, content_type, header_<Name>)", k))
		}
	}
	return o, errors.Join(errs...)
}

func parseIngestOptions(addr string, p pipeline.Params) (*IngestOptions, error) {
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
	o := &IngestOptions{Path: path, Methods: []string{http.MethodPost}}
	for k, v := range p {
		switch k {
		case "methods", "method":
			o.Methods = nil
			for _, m := range parseList(v) {
				m = strings.ToUpper(m)
				if !validToken(m) {
					errs = append(errs, fmt.Errorf("%s: %q is not a valid HTTP method", k, m))
				}
				o.Methods = append(o.Methods, m)
			}
			if len(o.Methods) == 0 {
				errs = append(errs, fmt.Errorf("%s: empty", k))
			}
		default:
			errs = append(errs, fmt.Errorf("%s: unknown link setting (known: methods)", k))
		}
	}
	return o, errors.Join(errs...)
}

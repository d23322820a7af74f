package httpconn

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// excerptLen is how much of an error response body a StatusError keeps.
const excerptLen = 256

// StatusError is a request the server finally rejected: a non-retryable
// status (4xx other than 408/429, 501, 505, an unfollowed redirect) or a
// retryable one that persisted through every retry. Its message carries
// the method, the URL (credentials removed), the status and an excerpt of
// the response body, so a dead letter explains itself.
type StatusError struct {
	Method   string
	URL      string
	Code     int
	Status   string // "422 Unprocessable Entity"
	Body     string // excerpt of the response body (at most 256 bytes)
	Attempts int
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s", e.Method, e.URL, e.Status)
	if e.Body != "" {
		b.WriteString(": ")
		b.WriteString(e.Body)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d attempts)", e.Attempts)
	}
	return b.String()
}

// Retryable reports whether the status is worth retrying.
func (e *StatusError) Retryable() bool { return retryableStatus(e.Code) }

func retryableStatus(code int) bool {
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests:
		return true
	case code == http.StatusNotImplemented, code == http.StatusHTTPVersionNotSupported:
		return false
	}
	return code >= 500
}

// Publish implements pipeline.Connector: it sends env.Payload to the
// endpoint joined with dest, retrying retryable failures, and returns nil
// once the server answered 2xx.
func (c *conn) Publish(ctx context.Context, dest string, opts any, env *pipeline.Envelope) error {
	so := sinkOptions(opts)
	err := c.publish(ctx, dest, so, env)
	if err != nil {
		c.failed.Add(1)
	} else {
		c.sent.Add(1)
	}
	return err
}

func (c *conn) publish(ctx context.Context, dest string, so *Out, env *pipeline.Envelope) error {
	target, err := c.target(dest)
	if err != nil {
		return err
	}
	method := c.cfg.Method
	if so.Method != "" {
		method = so.Method
	}
	bo := c.cfg.Backoff // a copy: the attempt counter is per record
	var last error
	for attempt := 1; ; attempt++ {
		retryAfter, err := c.attempt(ctx, method, target, so, env)
		if err == nil {
			return nil
		}
		var se *StatusError
		if errors.As(err, &se) {
			se.Attempts = attempt
		}
		if ctx.Err() != nil {
			if last != nil {
				// Report what kept failing, not only the deadline.
				return fmt.Errorf("%w (gave up: %w)", last, ctx.Err())
			}
			return err
		}
		last = err
		if !retryable(err) || attempt > c.cfg.Retries {
			if se == nil && attempt > 1 {
				return fmt.Errorf("%w (after %d attempts)", last, attempt)
			}
			return last
		}
		c.retries.Add(1)
		delay := bo.Next()
		if retryAfter >= 0 {
			delay = min(retryAfter, c.cfg.MaxRetryAfter)
		}
		c.log.Debug("webhook attempt failed; retrying", "attempt", attempt, "delay", delay, "error", err)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up: %w)", last, ctx.Err())
		}
	}
}

// attemptError is a failed attempt that got no response.
type attemptError struct {
	err       error
	retryable bool
}

func (e *attemptError) Error() string { return e.err.Error() }
func (e *attemptError) Unwrap() error { return e.err }

func retryable(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Retryable()
	}
	var ae *attemptError
	return errors.As(err, &ae) && ae.retryable
}

// attempt makes one request. retryAfter is the server's Retry-After in a
// 429/503 answer, or -1.
func (c *conn) attempt(ctx context.Context, method string, target *url.URL, so *Out, env *pipeline.Envelope) (retryAfter time.Duration, err error) {
	retryAfter = -1
	c.waiting.Add(1)
	select {
	case c.sem <- struct{}{}:
		c.waiting.Add(-1)
	case <-ctx.Done():
		c.waiting.Add(-1)
		return retryAfter, ctx.Err()
	}
	defer func() { <-c.sem }()

	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	shown := safeURL(target)
	req, err := http.NewRequestWithContext(actx, method, target.String(), bytes.NewReader(env.Payload))
	if err != nil {
		return retryAfter, fmt.Errorf("%s %s: %w", method, shown, err)
	}
	c.setHeaders(req, so, env)
	resp, err := c.client.Do(req)
	if err != nil {
		// Rebuild the message without the query string (may hold secrets).
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s %s: %w", method, shown, ue.Err)
		}
		if ctx.Err() != nil {
			return retryAfter, err
		}
		// Connection refused/reset, DNS, per-attempt timeout: retry. A
		// certificate the server cannot fix by itself is final.
		var cve *tls.CertificateVerificationError
		var uae x509.UnknownAuthorityError
		var hne x509.HostnameError
		var cie x509.CertificateInvalidError
		final := errors.As(err, &cve) || errors.As(err, &uae) || errors.As(err, &hne) || errors.As(err, &cie)
		return retryAfter, &attemptError{err: err, retryable: !final}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// Drain (bounded) so the connection goes back to the pool.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return retryAfter, nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return retryAfter, &StatusError{Method: method, URL: shown, Code: resp.StatusCode,
		Status: resp.Status, Body: excerpt(body)}
}

func (c *conn) setHeaders(req *http.Request, so *Out, env *pipeline.Envelope) {
	h := req.Header
	ct := "application/json"
	if !c.cfg.NoEnvelopeHeaders {
		if v, ok := kit.ToHTTP(h, env.Headers); ok {
			ct = v
		}
	}
	for k, vs := range c.cfg.Header {
		h[k] = append([]string(nil), vs...)
	}
	for k, vs := range so.Header {
		h[k] = append([]string(nil), vs...)
	}
	if c.cfg.KeyHeader != "" && len(env.Key) > 0 {
		if k := string(env.Key); kit.ValidHTTPHeaderValue(k) {
			h.Set(c.cfg.KeyHeader, k)
		}
	}
	switch {
	case so.ContentType != "":
		ct = so.ContentType
	case c.cfg.ContentType != "":
		ct = c.cfg.ContentType
	}
	h.Set("Content-Type", ct)
	if c.cfg.BearerToken.IsSet() {
		h.Set("Authorization", "Bearer "+c.cfg.BearerToken.Value())
	} else if c.user != "" || c.hasPass {
		req.SetBasicAuth(c.user, c.pass)
	}
}

func sinkOptions(opts any) *Out {
	switch o := opts.(type) {
	case *Out:
		if o != nil {
			return o
		}
	case Out:
		return &o
	}
	return &Out{}
}

// target joins the endpoint URL and a rendered destination. Characters
// not allowed in a URL are percent-encoded; "." and ".." path segments are
// refused so a field value cannot climb out of the configured base path.
func (c *conn) target(dest string) (*url.URL, error) {
	u := c.base // copy
	if dest == "" {
		return &u, nil
	}
	p, q, _ := strings.Cut(escapeDest(dest), "?")
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." || strings.EqualFold(seg, "%2e") || strings.EqualFold(seg, "%2e%2e") {
			return nil, fmt.Errorf("destination %q: dot path segments are not allowed", dest)
		}
	}
	joined := strings.TrimSuffix(u.EscapedPath(), "/") + "/" + strings.TrimPrefix(p, "/")
	pu, err := url.Parse(joined)
	if err != nil {
		return nil, fmt.Errorf("destination %q: %w", dest, err)
	}
	u.Path, u.RawPath = pu.Path, pu.RawPath
	switch {
	case q != "" && u.RawQuery != "":
		u.RawQuery += "&" + q
	case q != "":
		u.RawQuery = q
	}
	return &u, nil
}

// escapeDest percent-encodes bytes that may not appear in a URL path or
// query as written (spaces, controls, non-ASCII, '#', '%' not starting an
// escape), leaving the URL's own delimiters in place.
func escapeDest(s string) string {
	const hex = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(s); i++ {
		ch := s[i]
		ok := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' ||
			strings.IndexByte("-._~!$&'()*+,;=:@/?", ch) >= 0
		if ch == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]) {
			ok = true
		}
		if ok {
			if b != nil {
				b = append(b, ch)
			}
			continue
		}
		if b == nil {
			b = append(make([]byte, 0, len(s)+8), s[:i]...)
		}
		b = append(b, '%', hex[ch>>4], hex[ch&15])
	}
	if b == nil {
		return s
	}
	return string(b)
}

func ishex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// safeURL renders u for errors and dead letters: no user info, and query
// values masked (API keys often travel there); keys stay for debugging.
func safeURL(u *url.URL) string {
	v := *u
	v.User = nil
	if v.RawQuery != "" {
		q, err := url.ParseQuery(v.RawQuery)
		if err != nil {
			v.RawQuery = "xxxxx"
		} else {
			for k := range q {
				q[k] = []string{"xxxxx"}
			}
			v.RawQuery = q.Encode()
		}
	}
	return v.String()
}

// parseRetryAfter reads a Retry-After value (delay-seconds or an HTTP
// date); -1 when absent or malformed.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return -1
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return -1
		}
		if n > 86400 {
			n = 86400
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
		return 0
	}
	return -1
}

// excerpt renders the start of a response body for an error message: valid
// UTF-8, whitespace collapsed, at most excerptLen bytes.
func excerpt(body []byte) string {
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(body), "\uFFFD")), " ")
	if len(s) <= excerptLen {
		return s
	}
	cut := excerptLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

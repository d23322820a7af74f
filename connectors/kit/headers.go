package kit

import (
	"net/http"
	"slices"
	"strings"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// ContentTypeHeader is the envelope header that carries a message's
// content type. Protocols with a content-type field of their own (HTTP,
// MQTT 5) map it to that field rather than to a header.
const ContentTypeHeader = "content-type"

// FromPairs converts a protocol's header list (MQTT 5 user properties,
// Kafka record headers) into envelope headers, in order; kv returns an
// entry's key and value. extra reserves room for headers the caller
// appends (e.g. the content type). It allocates once, and not at all for
// an empty list with no extra room.
func FromPairs[T any](src []T, extra int, kv func(T) (key, value string)) pipeline.Headers {
	if len(src)+extra == 0 {
		return nil
	}
	out := make(pipeline.Headers, len(src), len(src)+extra)
	for i, e := range src {
		out[i].Key, out[i].Value = kv(e)
	}
	return out
}

// AppendPairs appends envelope headers to a protocol's header list, in
// order, leaving out those skip reports (nil keeps all); mk builds one
// entry.
func AppendPairs[T any](dst []T, hs pipeline.Headers, skip func(key string) bool, mk func(key, value string) T) []T {
	for _, h := range hs {
		if skip != nil && skip(h.Key) {
			continue
		}
		dst = append(dst, mk(h.Key, h.Value))
	}
	return dst
}

// IsContentType reports whether key is ContentTypeHeader (in any case).
func IsContentType(key string) bool { return strings.EqualFold(key, ContentTypeHeader) }

// HeaderFilter selects headers by name, case-insensitively: an entry is a
// name ("traceparent"), a prefix ending in "*" ("x-*"), or "*" for every
// header. The zero value selects nothing.
type HeaderFilter []string

// NewHeaderFilter returns a filter of patterns (lower-cased, trimmed).
func NewHeaderFilter(patterns ...string) HeaderFilter {
	f := make(HeaderFilter, 0, len(patterns))
	for _, p := range patterns {
		if p = strings.ToLower(strings.TrimSpace(p)); p != "" {
			f = append(f, p)
		}
	}
	return f
}

// Allows reports whether the filter selects key.
func (f HeaderFilter) Allows(key string) bool {
	lk := strings.ToLower(key)
	for _, a := range f {
		if a == "*" || a == lk {
			return true
		}
		if p, ok := strings.CutSuffix(a, "*"); ok && strings.HasPrefix(lk, p) {
			return true
		}
	}
	return false
}

// FromHTTP copies the request headers allow selects into envelope headers
// with lower-case names (the form W3C trace context and MQTT 5 user
// properties use), sorted by name (values of one name keep their order).
// Hop-by-hop headers and credentials (see HTTPNeverForward) are never
// copied.
func FromHTTP(h http.Header, allow HeaderFilter) pipeline.Headers {
	if len(allow) == 0 {
		return nil
	}
	var out pipeline.Headers
	for k, vs := range h {
		lk := strings.ToLower(k)
		if HTTPNeverForward(lk) || !allow.Allows(lk) {
			continue
		}
		for _, v := range vs {
			out = append(out, pipeline.Header{Key: lk, Value: v})
		}
	}
	// Map iteration order is random: sort for stable envelopes.
	slices.SortStableFunc(out, func(a, b pipeline.Header) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// ToHTTP adds envelope headers to dst as request headers and returns the
// content-type header's value (not added: the caller decides the
// Content-Type). Hop-by-hop headers, credentials (HTTPNeverForward) and
// entries whose name or value is not valid in HTTP (control characters:
// header injection) are left out.
func ToHTTP(dst http.Header, hs pipeline.Headers) (contentType string, ok bool) {
	for _, kv := range hs {
		if !ValidHTTPToken(kv.Key) || !ValidHTTPHeaderValue(kv.Value) || HTTPNeverForward(kv.Key) {
			continue
		}
		if IsContentType(kv.Key) {
			contentType, ok = kv.Value, true
			continue
		}
		dst.Add(kv.Key, kv.Value)
	}
	return contentType, ok
}

// HTTPNeverForward reports whether an HTTP header must not travel between
// an envelope and a request: hop-by-hop headers, framing, and credentials
// (the connector's own settings decide those).
func HTTPNeverForward(key string) bool {
	switch strings.ToLower(key) {
	case "host", "content-length", "connection", "keep-alive", "te", "trailer", "transfer-encoding",
		"upgrade", "proxy-connection", "proxy-authorization", "proxy-authenticate", "authorization", "cookie":
		return true
	}
	return false
}

// ValidHTTPToken reports whether s is an HTTP token (a header name, a
// method).
func ValidHTTPToken(s string) bool {
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

// ValidHTTPHeaderValue rejects control characters other than tab (header
// injection).
func ValidHTTPHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

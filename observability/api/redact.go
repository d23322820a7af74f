package api

import (
	"net/url"
	"strings"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// redacted replaces every secret the API would otherwise show.
const redacted = "REDACTED"

// secretWords are the parts of header and query parameter names that mark
// a credential.
var secretWords = []string{"pass", "secret", "token", "auth", "key", "cookie", "credential", "sasl", "signature", "sig"}

func secretName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// redactURL returns an endpoint URL without its password (the user name
// stays) and with the values of credential-like query parameters
// replaced. A URL that does not parse is not shown at all.
func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return redacted
	}
	changed := false
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), redacted)
			changed = true
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			if secretName(k) {
				q[k] = []string{redacted}
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	if u.Fragment != "" {
		u.Fragment = ""
		changed = true
	}
	if !changed {
		return raw // as written: re-encoding would change "gen://" to "gen:"
	}
	return u.String()
}

// redactHeaders copies hs, replacing the values of credential-like names.
func redactHeaders(hs pipeline.Headers) []Header {
	if len(hs) == 0 {
		return nil
	}
	out := make([]Header, len(hs))
	for i, h := range hs {
		out[i] = Header{Key: h.Key, Value: h.Value}
		if secretName(h.Key) {
			out[i].Value = redacted
		}
	}
	return out
}

package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// tokenCheck compares bearer tokens with the configured one in constant
// time: both are hashed first, so neither the length nor the content of
// the configured token leaks through timing.
type tokenCheck struct {
	set  bool
	hash [sha256.Size]byte
}

func newTokenCheck(token string) tokenCheck {
	if token == "" {
		return tokenCheck{}
	}
	return tokenCheck{set: true, hash: sha256.Sum256([]byte(token))}
}

// ok reports whether got is the token.
func (t tokenCheck) ok(got string) bool {
	h := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(h[:], t.hash[:]) == 1
}

// bearer returns the token of an "Authorization: Bearer TOKEN" header,
// or, for a WebSocket handshake (browsers cannot set headers on one), of
// a "bearer.TOKEN" subprotocol offered beside WSProtocol.
func bearer(req *http.Request) (string, bool) {
	if tok, ok := wsBearer(req); ok {
		return tok, true
	}
	a := req.Header.Get("Authorization")
	scheme, tok, found := strings.Cut(a, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// authorized checks the token when one is configured, answering 401
// itself when it is missing or wrong.
func (s *Server) authorized(w http.ResponseWriter, req *http.Request) bool {
	if !s.tok.set {
		return true
	}
	tok, ok := bearer(req)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="aimdb-flow"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "missing token: send Authorization: Bearer TOKEN")
		return false
	}
	if !s.tok.ok(tok) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="aimdb-flow", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "invalid token")
		return false
	}
	return true
}

// mayWrite answers 403 itself unless the server accepts sets (a token is
// configured, and so was checked by authorized, and it is not read-only).
func (s *Server) mayWrite(w http.ResponseWriter) bool {
	if e := s.writeRefusal(); e != nil {
		writeJSON(w, http.StatusForbidden, e)
		return false
	}
	return true
}

// writeRefusal is why the server accepts no sets, or nil when it does.
func (s *Server) writeRefusal() *Error {
	switch {
	case s.opts.ReadOnly:
		return &Error{Code: "read_only", Message: "the API is read-only"}
	case !s.tok.set:
		return &Error{Code: "set_needs_token", Message: "setting values needs a token: start the instance with --token or AIMDB_FLOW_TOKEN"}
	}
	return nil
}

// Protect returns h behind the server's token check: with a token
// configured, a request without it gets 401. The CLI puts /stats behind
// it.
func (s *Server) Protect(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if s.authorized(w, req) {
			h.ServeHTTP(w, req)
		}
	})
}

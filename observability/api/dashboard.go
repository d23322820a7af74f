package api

import (
	_ "embed"
	"net/http"
)

// dashboardHTML is the live dashboard: one self-contained page (no CDN,
// works offline) that draws the graph with live rates from
// GET /api/v1/graph and follows a record over the /ws/ endpoint.
//
//go:embed dashboard.html
var dashboardHTML []byte

// dashboard serves GET /. The page itself needs no token (it holds no
// data); its requests do, and it asks for the token when they get 401.
func (s *Server) dashboard(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// Only this instance's own API, no inline code from elsewhere, no
	// framing by other sites.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(dashboardHTML)
}

// Dashboard is the handler of the dashboard page, for mounting at GET /.
func (s *Server) Dashboard() http.Handler { return http.HandlerFunc(s.dashboard) }

package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/aimdb-dev/aimdb-flow/observability/metrics"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Defaults of Options.
const (
	DefaultMaxBody      = 1 << 20
	DefaultWatchBuffer  = 256
	MaxWatchBuffer      = 65536
	DefaultMaxWatchers  = 64
	DefaultWriteTimeout = 10 * time.Second
	// maxPatterns bounds the patterns of one watch request.
	maxPatterns = 64
)

// Options configure a Server.
type Options struct {
	// Token, when set, is required on every request (Authorization:
	// Bearer TOKEN). Setting values always needs it: without a token the
	// API is read-only.
	Token string
	// ReadOnly refuses every set, token or not.
	ReadOnly bool
	// MaxBody bounds a request body in bytes (default DefaultMaxBody); a
	// larger one gets 413.
	MaxBody int64
	// WatchBuffer is the default number of values a watch holds for a
	// slow client before it drops (default DefaultWatchBuffer; a request
	// may ask for another with ?buffer=N, up to MaxWatchBuffer).
	WatchBuffer int
	// MaxWatchers bounds the open watches (default DefaultMaxWatchers);
	// one more gets 503.
	MaxWatchers int
	// WriteTimeout bounds the write of one event to a watch stream: a
	// client that accepts nothing for this long is disconnected (default
	// DefaultWriteTimeout).
	WriteTimeout time.Duration
	// Endpoints are the connectors' URLs by connector name, shown with
	// credentials redacted (optional).
	Endpoints map[string]string
	// Latency, when set, provides per-hop timings (RunOptions.Tracer must
	// include it).
	Latency *metrics.Latency
	// WSOrigins are the origins (host patterns, as in
	// websocket.AcceptOptions.OriginPatterns: "dashboard.example.com",
	// "*.example.com") whose pages may open the WebSocket endpoint besides
	// the server's own; a handshake from any other origin gets 403.
	WSOrigins []string
	// WSDisconnectSlow closes a WebSocket client (status 1008) the first
	// time a value is dropped because it did not keep up, instead of
	// telling it how many it lost (the default: each value message
	// carries the stream's dropped count).
	WSDisconnectSlow bool
	// Logger receives request errors (default slog.Default()).
	Logger *slog.Logger
}

// Server serves the records API of one Runner. It is an http.Handler for
// the paths under /api/v1/ and the WebSocket endpoint under /ws/.
type Server struct {
	r    *pipeline.Runner
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux
	tok  tokenCheck

	rates   rateSampler
	wsStats wsStats

	mu       sync.Mutex
	watchers map[uint64]*watcher
	nextID   uint64
}

// New returns the API server for r.
func New(r *pipeline.Runner, opts Options) *Server {
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.WatchBuffer <= 0 {
		opts.WatchBuffer = DefaultWatchBuffer
	}
	opts.WatchBuffer = min(opts.WatchBuffer, MaxWatchBuffer)
	if opts.MaxWatchers <= 0 {
		opts.MaxWatchers = DefaultMaxWatchers
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{r: r, opts: opts, log: opts.Logger, mux: http.NewServeMux(), tok: newTokenCheck(opts.Token),
		watchers: map[uint64]*watcher{}}
	s.rates.src = r
	s.mux.HandleFunc("GET /api/v1/records", s.listRecords)
	s.mux.HandleFunc("GET /api/v1/records/{name}", s.getRecord)
	s.mux.HandleFunc("GET /api/v1/records/{name}/value", s.getValue)
	s.mux.HandleFunc("PUT /api/v1/records/{name}/value", s.setValue)
	s.mux.HandleFunc("POST /api/v1/records/{name}/value", s.setValue)
	s.mux.HandleFunc("GET /api/v1/watch", s.watch)
	s.mux.HandleFunc("GET /api/v1/watchers", s.listWatchers)
	s.mux.HandleFunc("GET /api/v1/graph", s.graph)
	s.mux.HandleFunc("GET /api/v1/timings", s.timings)
	s.mux.HandleFunc("GET /api/v1/ws", s.wsStatsHandler)
	s.mux.HandleFunc("GET /ws/{pattern...}", s.ws)
	s.mux.HandleFunc("GET /{$}", s.dashboard)
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint (see docs/api.md)")
	})
	return s
}

// ServeHTTP implements http.Handler: it checks the token, then serves the
// request.
func (s *Server) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/" && req.Method == http.MethodGet {
		s.dashboard(w, req) // the page holds no data: its requests carry the token
		return
	}
	if !s.authorized(w, req) {
		return
	}
	s.mux.ServeHTTP(w, req)
}

// Sample takes a sample of the counters for the rates (Record.Rates).
// Requests sample on demand at most once a second; calling Sample every
// second keeps rates current between requests.
func (s *Server) Sample(now time.Time) { s.rates.sample(now, true) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, Error{Code: code, Message: msg})
}

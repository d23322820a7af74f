package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/observability/api"
	"github.com/aimdb-dev/aimdb-flow/observability/metrics"
	"github.com/aimdb-dev/aimdb-flow/observability/otelflow"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

const runHelp = `
Loads the files as one graph (all problems are reported before anything
starts), connects, and runs until SIGINT or SIGTERM, then stops the
sources, drains in-flight records to their sinks and exits 0. A graph whose
sources are all finite (files, gen with a count) stops by itself when they
end. A second signal exits at once.

On a terminal a one-line status (records in, sent by sinks, dropped; per
second, averaged over about 5 s) is shown on stderr, unless a sink prints to
that terminal; otherwise only warnings and errors are logged.

--http serves /healthz (the process is up), /readyz (every connector is
connected; 503 otherwise), /metrics (Prometheus text; with --hop-latency
also per-hop latency histograms), /stats (counters as JSON) and the
records API under /api/v1/ (list, get, watch and set records, the live
graph; see docs/api.md), which 'aimdb-flow records' and 'aimdb-flow graph
--connect' use. It binds loopback unless an explicit non-loopback host is
given, which needs a token (--token or AIMDB_FLOW_TOKEN): every API
request must then carry it. Setting a record needs the token even on
loopback; --read-only refuses every set.

--trace (or the standard OTEL_* variables) turns on OpenTelemetry tracing:
one span per hop, trace context carried across MQTT, Kafka and HTTP.`

func cmdRun(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "run")
	httpAddr := fs.String("http", "", "serve health endpoints on `ADDR` (e.g. 127.0.0.1:8080 or :8080 for loopback port 8080)")
	logLevel := fs.String("log-level", "warn", "log `LEVEL`: debug, info, warn or error")
	drain := fs.Duration("drain-timeout", 10*time.Second, "how long in-flight records may take to drain on shutdown")
	maxPayload := fs.Int("max-payload", pipeline.DefaultMaxPayload, "largest inbound payload in bytes; larger ones are dead-lettered (-1: no limit)")
	status := fs.String("status", "auto", "live status line: auto (on a terminal), on or off")
	traceExp := fs.String("trace", "", "OpenTelemetry trace `EXPORTER`: otlp, console or none (default: from OTEL_TRACES_EXPORTER / OTEL_EXPORTER_OTLP_ENDPOINT, else off)")
	hopLatency := fs.Bool("hop-latency", false, "export per-hop latency histograms on /metrics (costs a little per record)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to `FILE` (go tool pprof FILE)")
	memProfile := fs.String("memprofile", "", "write an allocation profile of the run to `FILE` when it ends (go tool pprof -sample_index=alloc_space FILE)")
	token := fs.String("token", "", "require `TOKEN` on records API requests (default $"+api.TokenEnv+"); needed for a non-loopback --http and for setting records")
	readOnly := fs.Bool("read-only", false, "refuse to set records through the records API")
	maxBody := fs.Int64("api-max-body", api.DefaultMaxBody, "largest records API request body in `BYTES`")
	wsOrigins := fs.String("ws-origin", "", "comma-separated `ORIGINS` (host patterns) whose pages may open the /ws/ endpoint besides the instance's own")
	wsSlow := fs.Bool("ws-disconnect-slow", false, "close a /ws/ client that does not keep up (default: drop values and count them)")
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if code, ok := needFiles(env, fs); !ok {
		return code
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintf(env.stderr, "aimdb-flow run: --cpuprofile: %v\n", err)
			return exitUsage
		}
		defer stop()
	}
	if *memProfile != "" {
		f, err := os.Create(*memProfile)
		if err != nil {
			fmt.Fprintf(env.stderr, "aimdb-flow run: --memprofile: %v\n", err)
			return exitUsage
		}
		defer func() {
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				fmt.Fprintf(env.stderr, "aimdb-flow run: --memprofile: %v\n", err)
			}
			f.Close()
		}()
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(env.stderr, "aimdb-flow run: --log-level: %v\n", err)
		return exitUsage
	}
	showStatus := env.isTTY
	switch *status {
	case "on":
		showStatus = true
	case "off":
		showStatus = false
	case "auto":
	default:
		fmt.Fprintf(env.stderr, "aimdb-flow run: --status must be auto, on or off\n")
		return exitUsage
	}
	sw := &statusWriter{w: env.stderr, enabled: showStatus}
	log := slog.New(slog.NewTextHandler(sw, &slog.HandlerOptions{Level: level}))

	// log statements in a file always print (at info), whatever --log-level.
	opts := loadOpts(env, slog.New(slog.NewTextHandler(sw, &slog.HandlerOptions{Level: slog.LevelInfo})))
	// The records API shows each connector's endpoint, redacted.
	endpoints := map[string]string{}
	opts.WrapConnector = func(name, endpoint string, b pipeline.Builder) pipeline.Builder {
		endpoints[name] = endpoint
		return b
	}
	g, err := dsl.LoadFiles(opts, fs.Args()...)
	if err != nil {
		printLoadError(env, err)
		return exitProblems
	}
	if *status == "auto" && showStatus && writesTerminal(g, env.stdoutOnTTY) {
		// Records printed to this terminal would be overwritten by the
		// status line (and break it): no status in auto mode.
		showStatus = false
		sw.enabled = false
	}
	getenv := func(k string) string { v, _ := env.getenv(k); return v }
	tp, err := otelflow.Setup(ctx, otelflow.Config{Exporter: *traceExp, Getenv: getenv, Writer: env.stderr})
	if err != nil {
		fmt.Fprintf(env.stderr, "aimdb-flow run: tracing: %v\n", err)
		return exitProblems
	}
	defer func() {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		if err := tp.Shutdown(sctx); err != nil {
			log.Warn("tracing: flushing spans failed", "error", err)
		}
	}()
	var tracer pipeline.Tracer
	if tp.Enabled() {
		tracer = tp.PipelineTracer()
	}
	var latency *metrics.Latency
	if *hopLatency {
		latency = metrics.NewLatency(tracer)
		tracer = latency
	}
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{Logger: log, DrainTimeout: *drain, Tracer: tracer, MaxPayload: *maxPayload})
	if err != nil {
		fmt.Fprintf(env.stderr, "aimdb-flow: %v\n", err)
		return exitProblems
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case s := <-sigs:
			log.Info("signal received; draining", "signal", s.String())
			cancel()
		case <-ctx.Done():
			return
		}
		select {
		case <-sigs:
			sw.clear()
			fmt.Fprintln(env.stderr, "aimdb-flow: second signal; exiting without draining")
			os.Exit(exitProblems)
		case <-ctx.Done():
		}
	}()

	if *httpAddr != "" {
		tok := *token
		if tok == "" {
			tok, _ = env.getenv(api.TokenEnv)
		}
		hc := httpConfig{addr: *httpAddr, latency: latency, api: api.Options{Token: tok, ReadOnly: *readOnly,
			MaxBody: *maxBody, Endpoints: endpoints, Latency: latency, Logger: log,
			WSOrigins: splitList(*wsOrigins), WSDisconnectSlow: *wsSlow}}
		stop, addr, err := serveHTTP(ctx, r, log, hc)
		if err != nil {
			fmt.Fprintf(env.stderr, "aimdb-flow run: --http: %v\n", err)
			if errors.Is(err, errNeedToken) {
				return exitUsage
			}
			return exitProblems
		}
		log.Info("http listening", "addr", addr)
		defer stop()
	} else if *token != "" || *readOnly {
		fmt.Fprintf(env.stderr, "aimdb-flow run: --token and --read-only apply to the records API: add --http ADDR\n")
		return exitUsage
	}

	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var tick <-chan time.Time
	if showStatus {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
	}
	var prev counters
	var rates statusRates
	prevAt := time.Now()
	for {
		select {
		case err := <-done:
			sw.clear()
			if err != nil {
				fmt.Fprintf(env.stderr, "aimdb-flow: %v\n", err)
				return exitProblems
			}
			return exitOK
		case now := <-tick:
			c := countersOf(r.Stats())
			rates.update(prev, c, now.Sub(prevAt).Seconds())
			sw.set(rates.line(c))
			prev, prevAt = c, now
		}
	}
}

// counters are the totals the status line shows: messages received on
// inbound links, messages published on outbound links (sinks: each sink
// counts the records it sent, so one record sent to two sinks counts
// twice), records dropped or lagged by buffers plus unrouted messages, and
// dead letters.
type counters struct {
	in, out, dropped, dead uint64
	sinks                  int
}

func countersOf(s pipeline.Snapshot) counters {
	var c counters
	for _, l := range s.Links {
		if l.Direction == pipeline.Inbound {
			c.in += l.Messages
		} else {
			c.out += l.Messages
			c.sinks++
		}
	}
	for _, r := range s.Records {
		c.dropped += r.Buffer.Dropped + r.Buffer.Lagged
	}
	c.dropped += s.Unrouted
	c.dead = s.DeadLetters
	return c
}

// statusWindow is the time constant of the status line's rates: bursts
// (a buffer dropping a backlog at once) are averaged over it instead of
// showing as one-second spikes.
const statusWindow = 5.0 // seconds

// statusRates are exponentially smoothed per-second rates.
type statusRates struct {
	in, out, dropped float64
	started          bool
}

// update folds the interval [prev, cur] of secs seconds into the rates.
func (r *statusRates) update(prev, cur counters, secs float64) {
	if secs <= 0 {
		return
	}
	in := float64(cur.in-prev.in) / secs
	out := float64(cur.out-prev.out) / secs
	dropped := float64(cur.dropped-prev.dropped) / secs
	if !r.started {
		r.in, r.out, r.dropped, r.started = in, out, dropped, true
		return
	}
	a := 1 - math.Exp(-secs/statusWindow)
	r.in += (in - r.in) * a
	r.out += (out - r.out) * a
	r.dropped += (dropped - r.dropped) * a
}

// line renders the status line.
func (r *statusRates) line(c counters) string {
	sinks := "sinks"
	if c.sinks == 1 {
		sinks = "sink"
	}
	return fmt.Sprintf("in %s/s  sent %s/s (%d %s)  dropped %s/s  dead-letters %d  (total in %d, sent %d)",
		rateOf(r.in), rateOf(r.out), c.sinks, sinks, rateOf(r.dropped), c.dead, c.in, c.out)
}

// writesTerminal reports whether any sink of g (a record's publisher, a
// pipeline output or the dead-letter link) prints to the status line's
// terminal: stdio://stderr always (the status is on stderr), stdio://stdout
// when stdout is that terminal too.
func writesTerminal(g *pipeline.Graph, stdoutOnTTY bool) bool {
	isStdout := func(l *pipeline.OutLink) bool {
		if l == nil || l.Link.Connector != "stdio" {
			return false
		}
		return l.Link.Address == "stderr" || stdoutOnTTY && l.Link.Address == "stdout"
	}
	for _, rec := range g.Records() {
		for _, l := range rec.Outbound {
			if isStdout(l) {
				return true
			}
		}
	}
	for _, p := range g.Pipelines() {
		for _, l := range p.Outputs {
			if isStdout(l) {
				return true
			}
		}
	}
	return isStdout(g.DeadLetter())
}

func rateOf(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// httpConfig is what serveHTTP serves.
type httpConfig struct {
	addr    string
	latency *metrics.Latency
	api     api.Options
}

// errNeedToken is serveHTTP's error for a non-loopback address without a
// token.
var errNeedToken = errors.New("a non-loopback address needs a token (--token or " + api.TokenEnv + ")")

// isLoopback reports whether host (an IP address or "localhost") is a
// loopback address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serveHTTP starts the health endpoints and the records API. A bare
// ":PORT" binds loopback; any other host needs a token. stop shuts the
// server down: watch streams end at once, other requests get two seconds.
func serveHTTP(ctx context.Context, r *pipeline.Runner, log *slog.Logger, hc httpConfig) (stop func(), addr string, err error) {
	host, port, err := net.SplitHostPort(hc.addr)
	if err != nil {
		return nil, "", err
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if !isLoopback(host) {
		if hc.api.Token == "" {
			return nil, "", fmt.Errorf("%s: %w", host, errNeedToken)
		}
		log.Warn("http endpoints bound to a non-loopback address; they are reachable from the network (the records API needs the token)", "addr", host)
	}
	var mopts []metrics.Option
	if hc.latency != nil {
		mopts = append(mopts, metrics.WithLatency(hc.latency))
	}
	apiSrv := api.New(r, hc.api)
	mux := http.NewServeMux()
	// /metrics (Prometheus), /healthz and /readyz.
	mux.Handle("/", metrics.Handler(r, mopts...))
	mux.Handle("/api/", apiSrv)
	mux.Handle("/ws/", apiSrv)
	mux.Handle("GET /{$}", apiSrv.Dashboard())
	mux.Handle("GET /stats", apiSrv.Protect(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(r.Stats())
	})))
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, "", err
	}
	// Requests (watch streams in particular) end when stop cancels base.
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		MaxHeaderBytes: 16 << 10, BaseContext: func(net.Listener) context.Context { return base }}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "error", err)
		}
	}()
	// Rates are computed from a sample of the counters every second.
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-base.Done():
				return
			case now := <-t.C:
				apiSrv.Sample(now)
			}
		}
	}()
	stop = func() {
		cancelBase()
		sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
		defer c()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	}
	return stop, ln.Addr().String(), nil
}

// statusWriter keeps a one-line status at the bottom of a terminal: log
// lines are written above it.
type statusWriter struct {
	w       interface{ Write([]byte) (int, error) }
	enabled bool
	mu      sync.Mutex
	line    string
}

// Write writes a log line (above the status line). Writes are serialized:
// several loggers share the writer.
func (s *statusWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.enabled {
		return s.w.Write(p)
	}
	if s.line != "" {
		s.w.Write([]byte("\r\033[K"))
	}
	n, err := s.w.Write(p)
	if s.line != "" {
		s.w.Write([]byte(s.line))
	}
	return n, err
}

func (s *statusWriter) set(line string) {
	if !s.enabled {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.line = strings.TrimSpace(line)
	s.w.Write([]byte("\r\033[K" + s.line))
}

func (s *statusWriter) clear() {
	if !s.enabled {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.line != "" {
		s.w.Write([]byte("\r\033[K"))
		s.line = ""
	}
}

// startCPUProfile profiles the process into path until the returned stop.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

package httpconn

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

type ingestRoute struct {
	topic   string // the link address: what the dispatcher routes on
	methods []string
	// decoders are the decoders of the links on this path: a body none
	// of them can decode is refused with 400 before it is accepted.
	decoders []pipeline.Decoder
}

// listen binds the ingest server's socket and prepares the routes.
func (c *conn) listen(subs []pipeline.Subscription) error {
	c.wantIn = true
	c.routes = map[string]*ingestRoute{}
	for _, s := range subs {
		var o *In
		switch v := s.Options.(type) {
		case *In:
			o = v
		case In:
			o = &v
		}
		if o == nil || o.Path == "" {
			def, err := parseIn(s.Filter, nil)
			if err != nil {
				return fmt.Errorf("record %s: %w", s.Record, err)
			}
			if o != nil && len(o.Methods) > 0 {
				def.Methods = o.Methods
			}
			o = def
		}
		if len(o.Methods) == 0 {
			o.Methods = []string{http.MethodPost}
		}
		rt := c.routes[o.Path]
		if rt == nil {
			rt = &ingestRoute{topic: s.Filter}
			c.routes[o.Path] = rt
		} else if rt.topic != s.Filter {
			return fmt.Errorf("path %s is written both as %q and %q; use one spelling", o.Path, rt.topic, s.Filter)
		}
		for _, m := range o.Methods {
			if !slices.Contains(rt.methods, m) {
				rt.methods = append(rt.methods, m)
			}
		}
		if s.Decoder != nil && s.Decoder != pipeline.PayloadOnly {
			rt.decoders = append(rt.decoders, s.Decoder)
		}
	}
	var tlsCfg *tls.Config
	if c.ep.Scheme == "https" {
		var err error
		if tlsCfg, err = kit.ServerTLSConfig(c.cfg.TLS); err != nil {
			return fmt.Errorf("https ingest endpoint: %w", err)
		}
		tlsCfg.NextProtos = []string{"h2", "http/1.1"}
	}
	ln := c.cfg.Listener
	if ln == nil {
		host, port := c.ep.Hostname(), c.ep.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[c.ep.Scheme]
		}
		var err error
		if ln, err = net.Listen("tcp", net.JoinHostPort(host, port)); err != nil {
			return fmt.Errorf("ingest listen: %w", err)
		}
		if !isLoopback(host) {
			c.log.Warn("ingest server listens beyond loopback; protect it with a token and TLS", "address", ln.Addr().String())
		}
	}
	if !c.cfg.Token.IsSet() && !isLoopback(c.ep.Hostname()) {
		c.log.Warn("ingest server has no token: anyone who can reach it can write records", "address", ln.Addr().String())
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	c.ln = ln
	return nil
}

// Serve implements pipeline.Source: it serves the ingest paths until ctx
// is done, then shuts the server down gracefully (requests in progress
// finish within ShutdownTimeout) and returns nil.
func (c *conn) Serve(ctx context.Context, _ []pipeline.Subscription, d pipeline.Dispatcher) error {
	if c.ln == nil {
		return errors.New("http: Serve without inbound links")
	}
	c.served.Store(true)
	srv := &http.Server{
		Handler:           &ingestHandler{c: c, d: d, stop: ctx},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slogErrorLog(c.log),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(c.ln) }()
	c.serving.Store(true)
	c.log.Info("ingest server listening", "address", c.ln.Addr().String(), "paths", len(c.routes))
	select {
	case <-ctx.Done():
	case err := <-errc:
		c.serving.Store(false)
		return fmt.Errorf("ingest server: %w", err)
	}
	c.serving.Store(false)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		c.log.Warn("ingest server shutdown timed out; closing connections", "error", err)
		srv.Close()
	}
	<-errc
	// Even if Shutdown timed out, no handler may dispatch once Serve has
	// returned (the runner closes the records next).
	c.dispatchMu.Lock()
	c.stopped = true
	c.dispatchMu.Unlock()
	return nil
}

type ingestHandler struct {
	c    *conn
	d    pipeline.Dispatcher
	stop context.Context // the source's context: cancelled on shutdown
}

type reply struct {
	Status string `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
}

func (h *ingestHandler) reply(w http.ResponseWriter, code int, r reply) {
	switch {
	case code == http.StatusOK || code == http.StatusAccepted:
		h.c.accepted.Add(1)
	case code == http.StatusServiceUnavailable:
		h.c.busy.Add(1)
	case code == http.StatusBadGateway || code == http.StatusGatewayTimeout:
		h.c.unconf.Add(1)
	case code >= 400 && code < 500:
		h.c.rejected.Add(1)
	}
	writeReply(w, code, r)
}

func writeReply(w http.ResponseWriter, code int, r reply) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(r)
}

func (h *ingestHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := h.c
	rt := c.routes[r.URL.Path]
	if rt == nil {
		h.reply(w, http.StatusNotFound, reply{Error: "no record is fed by this path"})
		return
	}
	if !slices.Contains(rt.methods, r.Method) {
		w.Header().Set("Allow", strings.Join(rt.methods, ", "))
		h.reply(w, http.StatusMethodNotAllowed, reply{Error: "method not allowed"})
		return
	}
	if c.cfg.Token.IsSet() && !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="aimdb-flow ingest"`)
		h.reply(w, http.StatusUnauthorized, reply{Error: "missing or wrong bearer token"})
		return
	}
	if h.stop.Err() != nil {
		w.Header().Set("Connection", "close")
		h.reply(w, http.StatusServiceUnavailable, reply{Error: "shutting down"})
		return
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		h.reply(w, http.StatusUnsupportedMediaType, reply{Error: "Content-Encoding " + ce + " is not supported; send the body uncompressed"})
		return
	}
	if r.ContentLength > c.cfg.MaxBody {
		h.reply(w, http.StatusRequestEntityTooLarge, reply{Error: fmt.Sprintf("body exceeds %d bytes", c.cfg.MaxBody)})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, c.cfg.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.reply(w, http.StatusRequestEntityTooLarge, reply{Error: fmt.Sprintf("body exceeds %d bytes", c.cfg.MaxBody)})
			return
		}
		h.reply(w, http.StatusBadRequest, reply{Error: "reading body failed"})
		return
	}
	if isJSON(r.Header.Get("Content-Type")) && !json.Valid(body) {
		h.reply(w, http.StatusBadRequest, reply{Error: "body is not valid JSON"})
		return
	}
	// Whatever the Content-Type says, a body the link's codec cannot
	// decode is refused now (400 with the reason), not accepted and
	// dead-lettered later.
	for _, dec := range rt.decoders {
		if _, err := dec.Decode(body); err != nil {
			h.reply(w, http.StatusBadRequest, reply{Error: pipeline.ErrorText(err)})
			return
		}
	}

	env := pipeline.Envelope{Payload: body, Topic: rt.topic, Time: time.Now(), Partition: -1, Headers: kit.FromHTTP(r.Header, c.forward)}
	if c.cfg.KeyHeader != "" {
		if k := r.Header.Get(c.cfg.KeyHeader); k != "" {
			env.Key = []byte(k)
		}
	}
	var acked chan error
	if c.cfg.Wait == WaitAck {
		acked = make(chan error, 1)
		env.Ack = pipeline.NewAck(func(err error) { acked <- err })
	}

	// Dispatch blocks while a lossless buffer is full: give it
	// AcceptTimeout, and stop at once if the client leaves or the source
	// shuts down.
	c.dispatchMu.RLock()
	if c.stopped {
		c.dispatchMu.RUnlock()
		h.reply(w, http.StatusServiceUnavailable, reply{Error: "shutting down"})
		return
	}
	dctx, cancel := context.WithTimeout(r.Context(), c.cfg.AcceptTimeout)
	stopAfter := context.AfterFunc(h.stop, cancel)
	err = h.d.Dispatch(dctx, &env)
	stopAfter()
	cancel()
	c.dispatchMu.RUnlock()
	if err != nil {
		w.Header().Set("Retry-After", "1")
		msg := "backpressure: the record's buffer is full"
		if h.stop.Err() != nil {
			msg = "shutting down"
		}
		h.reply(w, http.StatusServiceUnavailable, reply{Error: msg})
		return
	}
	if acked == nil {
		h.reply(w, http.StatusAccepted, reply{Status: "accepted"})
		return
	}
	t := time.NewTimer(c.cfg.AckTimeout)
	defer t.Stop()
	select {
	case err := <-acked:
		if err != nil {
			c.log.Warn("ingested record was not delivered", "path", r.URL.Path, "error", err)
			h.reply(w, http.StatusBadGateway, reply{Error: "record accepted but not delivered by every sink"})
			return
		}
		h.reply(w, http.StatusOK, reply{Status: "delivered"})
	case <-t.C:
		h.reply(w, http.StatusGatewayTimeout, reply{Error: "record accepted; delivery not confirmed in time"})
	case <-r.Context().Done():
		// The client left; the record continues its journey.
	}
}

func (h *ingestHandler) authorized(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	// Compare digests: constant time, and no early exit on length.
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	want := sha256.Sum256([]byte(h.c.cfg.Token.Value()))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

func isJSON(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// slogErrorLog routes net/http's server errors (TLS handshake failures,
// broken connections) to the connector's logger.
func slogErrorLog(l *slog.Logger) *log.Logger {
	return slog.NewLogLogger(l.Handler(), slog.LevelDebug)
}

package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// WSProtocol is the subprotocol of the WebSocket endpoint. A client may
// offer "bearer.TOKEN" beside it to authenticate (a browser cannot set an
// Authorization header on a WebSocket); the server answers with
// WSProtocol only, so the token is not echoed.
const WSProtocol = "aimdb-flow.v1"

// wsBearerPrefix marks the token subprotocol.
const wsBearerPrefix = "bearer."

// WSMessage is one message of the WebSocket endpoint, in either
// direction, told apart by Type:
//
//	server → client  hello  {records, buffer}: the watch is open
//	                 value  {seq, dropped, value}: a record's value (first
//	                        the latest value of each record that has one)
//	                 ack    {record, value}: a client's set was written
//	                 error  {record?, error}: a client message was refused
//	client → server  set    {record, data}: write data (one JSON value)
//	                        into a settable record
type WSMessage struct {
	Type    string          `json:"type"`
	Records []string        `json:"records,omitempty"`
	Buffer  int             `json:"buffer,omitempty"`
	Seq     uint64          `json:"seq,omitempty"`
	Dropped uint64          `json:"dropped,omitempty"`
	Value   *Value          `json:"value,omitempty"`
	Record  string          `json:"record,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

// wsBearer returns the token of a "bearer.TOKEN" subprotocol of a
// WebSocket handshake.
func wsBearer(req *http.Request) (string, bool) {
	if !strings.EqualFold(req.Header.Get("Upgrade"), "websocket") {
		return "", false
	}
	for _, h := range req.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if tok, ok := strings.CutPrefix(strings.TrimSpace(p), wsBearerPrefix); ok && tok != "" {
				return tok, true
			}
		}
	}
	return "", false
}

// wsStats counts what the WebSocket endpoint did, for the server's
// lifetime.
type wsStats struct {
	clients       atomic.Int64  // open connections
	slowClosed    atomic.Uint64 // closed by the disconnect-slow policy
	sets, refused atomic.Uint64
}

// WSStats is what GET /api/v1/ws reports about the WebSocket endpoint.
type WSStats struct {
	// Clients is the number of open WebSocket connections.
	Clients int64 `json:"clients"`
	// SlowDisconnected counts the clients closed because they did not keep
	// up (Options.WSDisconnectSlow).
	SlowDisconnected uint64 `json:"slow_disconnected"`
	// Sets counts the values clients wrote; Refused the client messages
	// answered with an error.
	Sets    uint64 `json:"sets"`
	Refused uint64 `json:"refused"`
}

func (s *Server) wsStatsHandler(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, WSStats{Clients: s.wsStats.clients.Load(), SlowDisconnected: s.wsStats.slowClosed.Load(),
		Sets: s.wsStats.sets.Load(), Refused: s.wsStats.refused.Load()})
}

// ws serves GET /ws/{pattern...}: the records matching the pattern (or
// ?records=P,Q) as a WebSocket stream; clients may set settable records.
func (s *Server) ws(w http.ResponseWriter, req *http.Request) {
	pats, err := wsPatterns(req)
	wt, names, capacity, ok := s.openFor(w, req, pats, err)
	if !ok {
		return
	}
	defer s.closeWatch(wt)
	c, err := websocket.Accept(w, req, &websocket.AcceptOptions{
		Subprotocols:   []string{WSProtocol},
		OriginPatterns: s.opts.WSOrigins,
	})
	if err != nil {
		s.log.Debug("websocket handshake refused", "error", err)
		return // Accept answered (403 for a foreign origin, 400 otherwise)
	}
	defer c.CloseNow()
	c.SetReadLimit(s.opts.MaxBody)
	s.wsStats.clients.Add(1)
	defer s.wsStats.clients.Add(-1)

	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	out := make(chan WSMessage, 16) // answers to the client's sets
	go func() {
		defer cancel()
		s.wsRead(ctx, c, pats, out)
	}()
	if err := s.wsWrite(ctx, c, wt, names, capacity, out); err != nil {
		s.log.Debug("websocket stream ended", "error", err)
	}
}

// wsWrite sends the hello, each record's latest value, then what the
// watch delivers and the answers to the client's sets, until ctx ends or
// a write fails. With WSDisconnectSlow, the first value dropped for this
// client closes the connection (status 1008) instead.
func (s *Server) wsWrite(ctx context.Context, c *websocket.Conn, wt *watcher, names []string, capacity int, out <-chan WSMessage) error {
	send := func(m WSMessage) error {
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
		defer cancel()
		return c.Write(wctx, websocket.MessageText, b)
	}
	if err := send(WSMessage{Type: "hello", Records: names, Buffer: capacity}); err != nil {
		return err
	}
	var seq uint64
	for _, n := range names {
		if env, ok := s.r.Latest(n); ok {
			seq++
			v := renderValue(n, env)
			if err := send(WSMessage{Type: "value", Seq: seq, Value: &v}); err != nil {
				return err
			}
		}
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = c.Close(websocket.StatusGoingAway, "")
			return ctx.Err()
		case <-tick.C:
			pctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
			err := c.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
		case m := <-out:
			if err := send(m); err != nil {
				return err
			}
		case ev := <-wt.w.C():
			dropped := wt.w.Dropped()
			if dropped > 0 && s.opts.WSDisconnectSlow {
				s.wsStats.slowClosed.Add(1)
				_ = c.Close(websocket.StatusPolicyViolation, fmt.Sprintf("too slow: %d values dropped", dropped))
				return errors.New("slow client disconnected")
			}
			wt.sent.Add(1)
			seq++
			v := renderValue(ev.Record, ev.Env)
			if err := send(WSMessage{Type: "value", Seq: seq, Dropped: dropped, Value: &v}); err != nil {
				return err
			}
		}
	}
}

// wsRead reads the client's messages (sets) until the connection ends,
// answering each on out.
func (s *Server) wsRead(ctx context.Context, c *websocket.Conn, pats []string, out chan<- WSMessage) {
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		ans := s.wsHandle(ctx, b, pats)
		select {
		case out <- ans:
		case <-ctx.Done():
			return
		}
	}
}

// wsHandle applies one client message.
func (s *Server) wsHandle(ctx context.Context, b []byte, pats []string) WSMessage {
	var m WSMessage
	refuse := func(code, msg string) WSMessage {
		s.wsStats.refused.Add(1)
		return WSMessage{Type: "error", Record: m.Record, Error: &Error{Code: code, Message: msg}}
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return refuse("bad_request", "a message must be a JSON object: "+pipeline.ErrorText(err))
	}
	if m.Type != "set" {
		return refuse("bad_request", fmt.Sprintf("unknown message type %q (want set)", m.Type))
	}
	if e := s.writeRefusal(); e != nil {
		return refuse(e.Code, e.Message)
	}
	if !s.matchesAny(pats, m.Record) {
		return refuse("not_found", fmt.Sprintf("record %q is not one this connection watches (%s)", m.Record, strings.Join(pats, ", ")))
	}
	spec := s.r.Graph().Record(m.Record)
	if spec == nil {
		return refuse("not_found", fmt.Sprintf("no record %q", m.Record))
	}
	v, _, e := s.set(ctx, spec, m.Data)
	if e != nil {
		return refuse(e.Code, e.Message)
	}
	s.wsStats.sets.Add(1)
	return WSMessage{Type: "ack", Record: m.Record, Value: &v}
}

// wsPatterns reads the pattern from the path (/ws/sensor.*) and any
// ?records= patterns.
func wsPatterns(req *http.Request) ([]string, error) {
	var pats []string
	if p := strings.TrimSpace(req.PathValue("pattern")); p != "" {
		pats = append(pats, p)
	}
	return checkPatterns(append(pats, queryPatterns(req)...), "/ws/sensor.temp or /ws/sensor.*")
}

// watchCapacity reads ?buffer=N (default Options.WatchBuffer).
func (s *Server) watchCapacity(req *http.Request) (int, error) {
	b := req.URL.Query().Get("buffer")
	if b == "" {
		return s.opts.WatchBuffer, nil
	}
	n, err := strconv.Atoi(b)
	if err != nil || n < 1 || n > MaxWatchBuffer {
		return 0, fmt.Errorf("buffer must be 1 to %d", MaxWatchBuffer)
	}
	return n, nil
}

// matching returns the graph's records matched by any of pats.
func (s *Server) matching(pats []string) []string {
	var names []string
	for _, r := range s.r.Graph().Records() {
		if s.matchesAny(pats, r.Name) {
			names = append(names, r.Name)
		}
	}
	return names
}

func (s *Server) matchesAny(pats []string, name string) bool {
	for _, p := range pats {
		if matchPattern(p, name) {
			return true
		}
	}
	return false
}

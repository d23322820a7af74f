package ws

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/coder/websocket"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// session is one WebSocket connection: the kit.Session of its address's
// supervisor.
type session struct {
	c    *Conn
	l    *link
	conn *websocket.Conn
	d    pipeline.Dispatcher // nil: outbound only (messages read are dropped)
}

// dial performs the handshake for l and sends l's subscribe messages
// (kit.SupervisorConfig.Connect).
func (c *Conn) dial(ctx context.Context, l *link) (*session, error) {
	hctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	opts := &websocket.DialOptions{HTTPHeader: c.header(), Subprotocols: c.cfg.Subprotocols}
	if c.cfg.TLS.IsSet() {
		tc, err := kit.TLSConfig(c.cfg.TLS)
		if err != nil {
			return nil, kit.Final(err)
		}
		opts.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	}
	conn, resp, err := websocket.Dial(hctx, l.url, opts)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("handshake: %s: %w", resp.Status, err)
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	conn.SetReadLimit(c.cfg.MaxMessage)
	c.mu.Lock()
	subs, d := slices.Clone(l.subs), l.d
	c.mu.Unlock()
	s := &session{c: c, l: l, conn: conn, d: d}
	for _, m := range subs {
		if err := s.write(ctx, websocket.MessageText, []byte(m)); err != nil {
			conn.CloseNow()
			return nil, fmt.Errorf("subscribe: %w", err)
		}
	}
	return s, nil
}

// Serve implements kit.Session: it reads messages and dispatches them
// (with pings on the side) until the connection fails, the peer closes it,
// or ctx ends.
func (s *session) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if iv := s.c.cfg.PingInterval; iv > 0 {
		go s.ping(ctx, cancel, iv)
	}
	// Reads do not take ctx: cancelling a read drops the connection at
	// once, and a TCP close with unread data in the receive buffer is a
	// reset, which can destroy what was just written but not yet read by
	// the peer. When ctx ends the session closes with the handshake
	// instead (see close), which also ends the read.
	stop := context.AfterFunc(ctx, s.close)
	defer stop()
	for {
		typ, data, err := s.conn.Read(context.Background())
		if err != nil {
			if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
				return cause // the pinger gave up
			}
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, websocket.ErrMessageTooBig) {
				s.c.oversized.Add(1)
				return fmt.Errorf("message over max_message (%d bytes): connection closed with status 1009: %w", s.c.cfg.MaxMessage, err)
			}
			if st := websocket.CloseStatus(err); st == websocket.StatusNormalClosure || st == websocket.StatusGoingAway {
				return fmt.Errorf("closed by the server (%v)", st)
			}
			return fmt.Errorf("read: %w", err)
		}
		s.c.received.Add(1)
		if s.d == nil {
			continue
		}
		env := pipeline.Envelope{Topic: s.l.addr, Payload: data, Time: time.Now(), Partition: -1}
		if typ == websocket.MessageBinary {
			env.Headers = binaryHeader
		}
		if err := s.d.Dispatch(ctx, &env); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// binaryHeader marks a record that arrived as a binary message.
var binaryHeader = pipeline.Headers{{Key: kit.ContentTypeHeader, Value: "application/octet-stream"}}

// ping sends a ping every iv; a pong that does not arrive within
// ping_timeout ends the session with the reason.
func (s *session) ping(ctx context.Context, fail context.CancelCauseFunc, iv time.Duration) {
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, s.c.cfg.PingTimeout)
		err := s.conn.Ping(pctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			fail(fmt.Errorf("no pong within ping_timeout (%v): %w", s.c.cfg.PingTimeout, err))
			return
		}
	}
}

// write sends one message within ctx and write_timeout; a failed write
// ends the session (the supervisor redials).
func (s *session) write(ctx context.Context, typ websocket.MessageType, p []byte) error {
	wctx, cancel := context.WithTimeout(ctx, s.c.cfg.WriteTimeout)
	defer cancel()
	if err := s.conn.Write(wctx, typ, p); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		s.l.sup.Fail(s, fmt.Errorf("write: %w", err))
		return err
	}
	return nil
}

// Close implements kit.Session.
func (s *session) Close() error {
	s.close()
	return nil
}

// close runs the closing handshake (status 1001, going away): the peer has
// then read everything written before. A peer that does not answer within
// a second has the connection dropped.
func (s *session) close() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.conn.Close(websocket.StatusGoingAway, "")
	}()
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		_ = s.conn.CloseNow()
		<-done
	}
}

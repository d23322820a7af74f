package knx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/knx/knxnet"
)

// session is one tunnel: a connected UDP socket and the protocol engine.
// The engine is used by one goroutine at a time: connect's, then Serve's
// loop. Publishers reach it through reqs.
type session struct {
	c    *Conn
	udp  *net.UDPConn
	tun  *knxnet.Tunnel
	reqs chan *sendReq
	done chan struct{} // closed when Serve returns

	early   []knxnet.Event // events of the handshake, handled by Serve
	closeMu sync.Once
	read    atomic.Bool // the inbound addresses were read (read_on_start)
}

type sendReq struct {
	frame knxnet.LData
	reply chan error // buffered: one outcome
}

var errTunnelLost = errors.New("tunnel lost before the telegram was confirmed")

// connect dials the gateway and runs the CONNECT handshake
// (kit.SupervisorConfig.Connect).
func (c *Conn) connect(ctx context.Context) (*session, error) {
	raddr, err := net.ResolveUDPAddr("udp4", c.cfg.Gateway)
	if err != nil {
		return nil, err
	}
	udp, err := net.DialUDP("udp4", nil, raddr)
	if err != nil {
		return nil, err
	}
	la := udp.LocalAddr().(*net.UDPAddr).AddrPort()
	local := knxnet.Endpoint{Addr: netip.AddrPortFrom(la.Addr().Unmap(), la.Port())}
	s := &session{c: c, udp: udp, tun: knxnet.NewTunnel(c.cfg.tunnel(local)),
		reqs: make(chan *sendReq), done: make(chan struct{})}
	if err := s.handshake(ctx); err != nil {
		udp.Close()
		return nil, err
	}
	c.stats.sessions.Add(1)
	c.log.Debug("knx: tunnel up", "gateway", c.cfg.Gateway, "channel", s.tun.Channel(), "address", s.tun.Address())
	return s, nil
}

func (s *session) handshake(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = s.udp.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	s.tun.Connect(time.Now())
	buf := make([]byte, 1536)
	for {
		out, evs := s.tun.Output()
		if err := s.write(out); err != nil {
			return err
		}
		for i, e := range evs {
			switch e.Kind {
			case knxnet.EventConnected:
				s.early = append(s.early, evs[i+1:]...)
				return s.udp.SetReadDeadline(time.Time{})
			case knxnet.EventClosed:
				return e.Err
			case knxnet.EventRejected:
				s.rejected(e.Err)
			}
		}
		if ctx.Err() != nil { // the deadline set below would undo AfterFunc's
			return ctx.Err()
		}
		if err := s.udp.SetReadDeadline(s.tun.Next()); err != nil {
			return err
		}
		n, err := s.udp.Read(buf)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			s.tun.Tick(time.Now())
		case err != nil:
			return fmt.Errorf("read: %w", err)
		default:
			s.tun.Handle(time.Now(), buf[:n])
		}
	}
}

func (s *session) write(datagrams [][]byte) error {
	for _, d := range datagrams {
		if _, err := s.udp.Write(d); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	return nil
}

func (s *session) rejected(err error) {
	r := knxnet.ReasonOf(err)
	if n := s.c.stats.reject(r); n&(n-1) == 0 {
		s.c.log.Debug("knx: datagram rejected", "reason", string(r), "err", err, "count", n)
	}
}

// Serve implements kit.Session: it runs the tunnel until it is lost or
// ctx ends (then it disconnects).
func (s *session) Serve(ctx context.Context) (err error) {
	defer close(s.done)
	in := make(chan []byte, 64)
	rerr := make(chan error, 1)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			buf := make([]byte, 1536)
			n, err := s.udp.Read(buf)
			if err != nil {
				rerr <- err
				return
			}
			select {
			case in <- buf[:n]:
			case <-quit:
				return
			}
		}
	}()
	waiting := map[uint64]*sendReq{}
	defer func() {
		close(quit)
		s.close()
		wg.Wait()
		for _, r := range waiting {
			r.reply <- errTunnelLost
		}
	}()
	var tag uint64
	if routes := s.c.inboundRoutes(); s.c.cfg.ReadOnStart && len(routes) > 0 && s.read.CompareAndSwap(false, true) {
		for _, rt := range routes {
			if !rt.pat.Wildcard() {
				if err := s.tun.Send(time.Now(), readOf(rt), 0); err != nil {
					s.c.log.Warn("knx: read on start", "address", rt.filter, "err", err)
				}
			}
		}
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	events := s.early
	s.early = nil
	for {
		out, evs := s.tun.Output()
		events = append(events, evs...)
		if err := s.write(out); err != nil {
			return err
		}
		for _, e := range events {
			if err := s.handle(e, waiting); err != nil {
				return err
			}
		}
		events = events[:0]
		now := time.Now()
		next := s.tun.Next()
		if !next.IsZero() && !now.Before(next) {
			s.tun.Tick(now)
			continue
		}
		if !next.IsZero() {
			timer.Reset(next.Sub(now))
		}
		select {
		case <-ctx.Done():
			s.tun.Close(time.Now())
			out, _ := s.tun.Output()
			_ = s.write(out)
			return nil
		case b := <-in:
			s.tun.Handle(time.Now(), b)
		case err := <-rerr:
			return fmt.Errorf("read: %w", err)
		case r := <-s.reqs:
			var t uint64 // 0: nobody waits for the outcome (reads)
			if r.frame.APCI != knxnet.GroupValueRead {
				tag++
				t = tag
			}
			err := s.tun.Send(time.Now(), r.frame, t)
			if err != nil || t == 0 {
				r.reply <- err
			} else {
				waiting[t] = r
			}
		case <-timer.C:
			s.tun.Tick(time.Now())
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// handle acts on one engine event; a non-nil error ends the session.
func (s *session) handle(e knxnet.Event, waiting map[uint64]*sendReq) error {
	switch e.Kind {
	case knxnet.EventIndication:
		s.c.stats.received.Add(1)
		if e.Frame.APCI == knxnet.GroupValueRead {
			return nil // a question without a value: nothing to dispatch
		}
		s.c.offer(e.Frame)
	case knxnet.EventSent:
		if r, ok := waiting[e.Tag]; ok {
			delete(waiting, e.Tag)
			r.reply <- e.Err
		}
		if e.Err == nil && e.Tag != 0 && s.c.cfg.Echo {
			f := e.Frame
			f.Code, f.Source = knxnet.LDataInd, s.tun.Address()
			s.c.offer(f)
		}
	case knxnet.EventRejected:
		s.rejected(e.Err)
	case knxnet.EventClosed:
		if e.Err == nil {
			return errors.New("tunnel closed")
		}
		return e.Err
	}
	return nil
}

func readOf(rt route) knxnet.LData {
	return knxnet.LData{Dest: rt.pat.Address(), APCI: knxnet.GroupValueRead, Short: true, Data: []byte{0}}
}

// readRoutes sends a GroupValueRead for each route without wildcards,
// unless the session did when it started.
func (s *session) readRoutes(ctx context.Context, routes []route) {
	if !s.read.CompareAndSwap(false, true) {
		return
	}
	for _, rt := range routes {
		if !rt.pat.Wildcard() {
			if err := s.send(ctx, readOf(rt)); err != nil {
				s.c.log.Warn("knx: read on start", "address", rt.filter, "err", err)
			}
		}
	}
}

// send hands a telegram to the session's loop and waits for its outcome.
func (s *session) send(ctx context.Context, f knxnet.LData) error {
	r := &sendReq{frame: f, reply: make(chan error, 1)}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return errTunnelLost
	}
	select {
	case err := <-r.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		select {
		case err := <-r.reply:
			return err
		default:
			return errTunnelLost
		}
	}
}

func (s *session) close() { s.closeMu.Do(func() { _ = s.udp.Close() }) }

// Close implements kit.Session.
func (s *session) Close() error {
	s.close()
	return nil
}

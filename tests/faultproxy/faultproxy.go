// Package faultproxy is a TCP proxy for fault tests: it listens on a free
// 127.0.0.1 port, forwards every accepted connection to an upstream
// address, and lets a test break the path abruptly while data flows.
//
//	p, err := faultproxy.Start(ctx, broker.Addr())
//	url := "mqtt://" + p.Addr()  // give this to the system under test
//	p.Cut()                      // reset every connection (RST both sides)
//	p.Down()                     // refuse new connections and reset the live ones
//	p.Up()                       // accept again, on the same port
//	p.Pause(); p.Resume()        // hold bytes in flight without closing
//
// The proxy runs in the test's process. For the connections' view, Cut is
// what a proxy process killed with SIGKILL looks like, only harsher: the
// kernel resets each socket (SO_LINGER 0) on both sides, so neither the
// client nor the upstream gets an orderly FIN, and bytes still in the
// proxy's buffers are lost.
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards TCP connections from its listener to an upstream.
type Proxy struct {
	upstream string
	addr     string
	log      *slog.Logger

	mu     sync.Mutex
	ln     net.Listener
	conns  map[*pair]struct{}
	gate   chan struct{} // closed while forwarding is allowed
	closed bool

	wg       sync.WaitGroup
	accepted atomic.Int64
	cuts     atomic.Int64
	held     atomic.Int64 // bytes read from clients and not yet forwarded
}

// pair is one proxied connection. It is registered as soon as the client
// is accepted, before the upstream is dialled, so that Cut and Down count
// and reset a connection whatever stage it is at.
type pair struct {
	client *net.TCPConn
	done   chan struct{} // closed by reset

	mu     sync.Mutex
	server *net.TCPConn // nil until the upstream dial succeeds
	isDone bool
}

// reset closes both sockets with SO_LINGER 0: the kernel answers with RST.
func (c *pair) reset() {
	c.mu.Lock()
	if c.isDone {
		c.mu.Unlock()
		return
	}
	c.isDone = true
	close(c.done)
	server := c.server
	c.mu.Unlock()
	for _, s := range []*net.TCPConn{c.client, server} {
		if s != nil {
			_ = s.SetLinger(0)
			_ = s.Close()
		}
	}
}

// attach records the dialled upstream; it reports false (and resets the
// upstream) when the pair was reset during the dial.
func (c *pair) attach(server *net.TCPConn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isDone {
		_ = server.SetLinger(0)
		_ = server.Close()
		return false
	}
	c.server = server
	return true
}

// Option configures a Proxy.
type Option func(*Proxy)

// WithLogger sets the proxy's logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(p *Proxy) { p.log = l } }

// Start listens on a free 127.0.0.1 port and forwards to upstream
// (host:port). ctx bounds only the start; call Close to stop the proxy.
func Start(ctx context.Context, upstream string, opts ...Option) (*Proxy, error) {
	p := &Proxy{upstream: upstream, conns: map[*pair]struct{}{}, gate: make(chan struct{})}
	close(p.gate)
	for _, o := range opts {
		o(p)
	}
	if p.log == nil {
		p.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p.addr = ln.Addr().String()
	p.ln = ln
	p.wg.Add(1)
	go p.accept(ln)
	return p, nil
}

// Addr is the proxy's listening address (host:port); it stays the same
// across Down and Up.
func (p *Proxy) Addr() string { return p.addr }

// Accepted is the number of connections accepted so far.
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

// Resets is the number of connections reset by Cut or Down so far.
func (p *Proxy) Resets() int64 { return p.cuts.Load() }

// HeldFromClients is the number of bytes the proxy has read from its
// clients and not yet forwarded upstream (non-zero while paused with
// client data in flight). Bytes the clients wrote that are still in kernel
// socket buffers are not counted.
func (p *Proxy) HeldFromClients() int64 { return p.held.Load() }

// Conns is the number of live proxied connections.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

func (p *Proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return // listener closed by Down or Close
		}
		p.wg.Add(1)
		go p.serve(c.(*net.TCPConn))
	}
}

func (p *Proxy) serve(client *net.TCPConn) {
	defer p.wg.Done()
	c := &pair{client: client, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed || p.ln == nil {
		p.mu.Unlock()
		c.reset()
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	p.accepted.Add(1)
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	d := net.Dialer{Timeout: 5 * time.Second}
	up, err := d.Dial("tcp", p.upstream)
	if err != nil {
		p.log.Warn("faultproxy: dial upstream", "upstream", p.upstream, "error", err)
		c.reset()
		return
	}
	if !c.attach(up.(*net.TCPConn)) {
		return // cut while dialling
	}
	_ = c.client.SetNoDelay(true)
	_ = c.server.SetNoDelay(true)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.copy(c, c.server, c.client, &p.held) }()
	go func() { defer wg.Done(); p.copy(c, c.client, c.server, nil) }()
	wg.Wait()
}

// copy forwards src to dst until either side fails; then it resets the
// pair (a proxy that loses one side drops the other abruptly too).
// held, when not nil, counts the bytes read from src and not yet written.
func (p *Proxy) copy(c *pair, dst, src *net.TCPConn, held *atomic.Int64) {
	defer c.reset()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			gate := p.gate
			p.mu.Unlock()
			if held != nil {
				held.Add(int64(n))
			}
			select {
			case <-gate: // held here while paused
			case <-c.done:
			}
			if held != nil {
				held.Add(-int64(n))
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Cut resets every live connection (RST to both the client and the
// upstream) and returns how many it reset. New connections are still
// accepted.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	cs := make([]*pair, 0, len(p.conns))
	for c := range p.conns {
		cs = append(cs, c)
	}
	p.mu.Unlock()
	for _, c := range cs {
		c.reset()
	}
	p.cuts.Add(int64(len(cs)))
	return len(cs)
}

// Down closes the listener, so that new connections are refused, and then
// resets every live connection. It returns how many it reset.
func (p *Proxy) Down() int {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	p.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	return p.Cut()
}

// Up listens again on the proxy's address after Down (retrying for up to
// 5s while the port is still held). It is a no-op when the proxy is up.
func (p *Proxy) Up(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("faultproxy: closed")
	}
	if p.ln != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var lc net.ListenConfig
	for {
		ln, err := lc.Listen(ctx, "tcp", p.addr)
		if err == nil {
			p.ln = ln
			p.wg.Add(1)
			go p.accept(ln)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("faultproxy: listen again on %s: %w", p.addr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Pause stops forwarding: bytes read from either side are held (at most
// one buffer per direction) until Resume; connections stay open.
func (p *Proxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
		p.gate = make(chan struct{})
	default: // already paused
	}
}

// Resume forwards again after Pause.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
}

// Close stops the proxy: it resumes forwarding, closes the listener,
// resets every connection and waits for its goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.Resume()
	p.Down()
	p.wg.Wait()
	return nil
}

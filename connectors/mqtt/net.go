package mqtt

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
)

// dial opens the network connection. Reads are buffered (paho reads
// packet headers byte by byte); writes go straight to the connection under
// a lock so that every packet is written whole.
func (cl *client) dial(ctx context.Context, _ autopaho.ClientConfig, u *url.URL) (net.Conn, error) {
	c := cl.c
	dctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	defer cancel()
	var nc net.Conn
	var err error
	d := net.Dialer{}
	if c.tls != nil {
		td := tls.Dialer{NetDialer: &d, Config: c.tls}
		nc, err = td.DialContext(dctx, "tcp", u.Host)
	} else {
		nc, err = d.DialContext(dctx, "tcp", u.Host)
	}
	if err != nil {
		return nil, err
	}
	// A write that makes no progress for this long fails the connection.
	wt := max(c.cfg.PublishTimeout, c.cfg.KeepAlive)
	var out net.Conn
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
		out = &tcpConn{TCPConn: tc, r: bufio.NewReaderSize(tc, 16<<10), writeTimeout: wt}
	} else {
		out = &bufConn{Conn: nc, r: bufio.NewReaderSize(nc, 16<<10), writeTimeout: wt}
	}
	cl.netMu.Lock()
	cl.netConn = out
	cl.netMu.Unlock()
	return out, nil
}

// tcpConn buffers reads (paho reads packet headers byte by byte) and
// serialises writes (paho requires thread-safe writes and takes the lock
// around each packet). Embedding *net.TCPConn keeps its vectored write:
// net.Buffers.WriteTo sends a packet's parts in one writev. Taking the lock
// also arms a write deadline (the larger of the publish timeout and the
// keep-alive), so a broker that stops reading fails the connection (and
// autopaho reconnects) instead of blocking a writer forever.
type tcpConn struct {
	*net.TCPConn
	r            *bufio.Reader
	mu           sync.Mutex
	writeTimeout time.Duration
}

func (t *tcpConn) Read(p []byte) (int, error) { return t.r.Read(p) }

func (t *tcpConn) Lock() {
	t.mu.Lock()
	if t.writeTimeout > 0 {
		_ = t.SetWriteDeadline(time.Now().Add(t.writeTimeout))
	}
}

func (t *tcpConn) Unlock() { t.mu.Unlock() }

// bufConn is tcpConn for other connections (TLS): buffered reads,
// serialised and time-bounded writes.
type bufConn struct {
	net.Conn
	r            *bufio.Reader
	mu           sync.Mutex
	writeTimeout time.Duration
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *bufConn) Write(p []byte) (int, error) {
	if b.writeTimeout > 0 {
		_ = b.Conn.SetWriteDeadline(time.Now().Add(b.writeTimeout))
	}
	return b.Conn.Write(p)
}
func (b *bufConn) Lock()   { b.mu.Lock() }
func (b *bufConn) Unlock() { b.mu.Unlock() }

// dropConnection closes the current network connection; autopaho then
// reconnects (resuming the session).
func (c *Conn) dropConnection() {
	if c.in == nil {
		return
	}
	c.in.netMu.Lock()
	nc := c.in.netConn
	c.in.netMu.Unlock()
	if nc != nil {
		_ = nc.Close()
	}
}

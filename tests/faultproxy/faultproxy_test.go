package faultproxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// upstream is a loopback server that hands each accepted connection to the
// test.
func upstream(t *testing.T) (string, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(ch)
				return
			}
			ch <- c
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), ch
}

func startProxy(t *testing.T, up string) *Proxy {
	t.Helper()
	p, err := Start(context.Background(), up)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// connect dials the proxy and returns the client side and the upstream's
// side of the same proxied connection.
func connect(t *testing.T, p *Proxy, accepted <-chan net.Conn) (client, server net.Conn) {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	select {
	case s := <-accepted:
		t.Cleanup(func() { s.Close() })
		return c, s
	case <-time.After(10 * time.Second):
		t.Fatal("upstream never saw the proxied connection")
	}
	return nil, nil
}

func readFull(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return b
}

func TestInFlightProxyForwardsBothWays(t *testing.T) {
	up, acc := upstream(t)
	p := startProxy(t, up)
	c, s := connect(t, p, acc)
	// Larger than one copy buffer, in both directions.
	req := bytes.Repeat([]byte("client->server "), 10000)
	resp := bytes.Repeat([]byte("server->client "), 10000)
	go func() { _, _ = c.Write(req) }()
	go func() { _, _ = s.Write(resp) }()
	if got := readFull(t, s, len(req)); !bytes.Equal(got, req) {
		t.Fatal("upstream received different bytes than the client sent")
	}
	if got := readFull(t, c, len(resp)); !bytes.Equal(got, resp) {
		t.Fatal("client received different bytes than the upstream sent")
	}
	if p.Accepted() != 1 || p.Conns() != 1 {
		t.Fatalf("accepted %d, live %d; want 1, 1", p.Accepted(), p.Conns())
	}
}

// isReset reports whether err is a connection reset (RST), not an orderly
// close (io.EOF).
func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

func TestInFlightProxyCutResetsBothSides(t *testing.T) {
	up, acc := upstream(t)
	p := startProxy(t, up)
	c, s := connect(t, p, acc)
	// Traffic first, so that the cut hits a connection in use.
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	readFull(t, s, 4)
	if n := p.Cut(); n != 1 {
		t.Fatalf("Cut reset %d connections, want 1", n)
	}
	for name, conn := range map[string]net.Conn{"client": c, "upstream": s} {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := conn.Read(make([]byte, 1))
		if !isReset(err) {
			t.Errorf("%s side: read after Cut = %v, want ECONNRESET", name, err)
		}
	}
	// The proxy still accepts after a cut.
	c2, s2 := connect(t, p, acc)
	if _, err := c2.Write([]byte("again")); err != nil {
		t.Fatal(err)
	}
	if got := readFull(t, s2, 5); string(got) != "again" {
		t.Fatalf("after Cut got %q", got)
	}
}

func TestInFlightProxyDownRefusesUpAccepts(t *testing.T) {
	up, acc := upstream(t)
	p := startProxy(t, up)
	c, _ := connect(t, p, acc)
	if n := p.Down(); n != 1 {
		t.Fatalf("Down reset %d connections, want 1", n)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !isReset(err) {
		t.Fatalf("live connection after Down: %v, want ECONNRESET", err)
	}
	_, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial while down = %v, want ECONNREFUSED", err)
	}
	if err := p.Up(context.Background()); err != nil {
		t.Fatal(err)
	}
	c2, s2 := connect(t, p, acc)
	if _, err := s2.Write([]byte("up")); err != nil {
		t.Fatal(err)
	}
	if got := readFull(t, c2, 2); string(got) != "up" {
		t.Fatalf("after Up got %q", got)
	}
}

func TestInFlightProxyPauseHoldsBytes(t *testing.T) {
	up, acc := upstream(t)
	p := startProxy(t, up)
	c, s := connect(t, p, acc)
	p.Pause()
	if _, err := c.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.HeldFromClients() != 4 {
		if time.Now().After(deadline) {
			t.Fatalf("proxy holds %d bytes, want 4", p.HeldFromClients())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// An absence check: nothing may arrive while paused (a deadline bounds
	// it; a working pause never delivers, whatever the machine's speed).
	_ = s.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := s.Read(make([]byte, 4)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("while paused: read %d bytes, err %v; want a deadline error", n, err)
	}
	p.Resume()
	if got := readFull(t, s, 4); string(got) != "held" {
		t.Fatalf("after Resume got %q", got)
	}
	if h := p.HeldFromClients(); h != 0 {
		t.Fatalf("after Resume the proxy still counts %d held bytes", h)
	}
}

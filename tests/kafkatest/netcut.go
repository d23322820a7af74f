package kafkatest

import (
	"context"
	"errors"
	"net"
	"sync"
)

// ErrCut is returned by a NetCutter's Dial after Cut.
var ErrCut = errors.New("kafkatest: network cut")

// NetCutter is a dial function whose connections can all be dropped at
// once, to simulate a process losing its network (or crashing) without any
// goodbye: no offset commit, no LeaveGroup.
type NetCutter struct {
	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	d     net.Dialer
}

// NewNetCutter returns a NetCutter that dials normally until Cut.
func NewNetCutter() *NetCutter { return &NetCutter{conns: map[net.Conn]struct{}{}} }

// Dial dials like net.Dialer.DialContext and tracks the connection.
func (n *NetCutter) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	n.mu.Lock()
	if n.cut {
		n.mu.Unlock()
		return nil, ErrCut
	}
	n.mu.Unlock()
	c, err := n.d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cut {
		c.Close()
		return nil, ErrCut
	}
	n.conns[c] = struct{}{}
	return c, nil
}

// Cut closes every connection dialed so far and fails every later dial.
func (n *NetCutter) Cut() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = true
	for c := range n.conns {
		c.Close()
	}
	n.conns = map[net.Conn]struct{}{}
}

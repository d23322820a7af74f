package main

import (
	"net"
	"time"
)

// listenLoopback listens on a free 127.0.0.1 port (for kfake).
func listenLoopback(network, _ string) (net.Listener, error) {
	return net.Listen(network, "127.0.0.1:0")
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

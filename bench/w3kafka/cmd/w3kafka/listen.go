package main

import "net"

type netListener = net.Listener

// listenLoopback listens on a free 127.0.0.1 port.
func listenLoopback(network string) (net.Listener, error) {
	return net.Listen(network, "127.0.0.1:0")
}

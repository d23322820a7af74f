//go:build !tinygo

package main

import (
	"io"
	"net"
	"os"
)

// openTransport dials the broker: on a host the transport is a net.Conn.
func openTransport() (io.ReadWriter, error) {
	addr := os.Getenv("MQTT_BROKER")
	if addr == "" {
		addr = "127.0.0.1:1883"
	}
	return net.Dial("tcp", addr)
}

package opcua

import "testing"

// TestServer is the node-opcua test server for the external tests.
type TestServer = server

// StartServer starts the test server (see startServer).
func StartServer(t *testing.T, env ...string) *TestServer { return startServer(t, env...) }

// URL is the server's endpoint URL.
func (s *server) URL() string { return s.url() }

// Set drives a variable from the server side.
func (s *server) Set(node, typ string, value any, status string) { s.set(node, typ, value, status) }

// WaitWrite waits for a client write ("Machine/On=false").
func (s *server) WaitWrite(want string) { s.waitWrite(want) }

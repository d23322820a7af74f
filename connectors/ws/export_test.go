package ws

import "testing"

// For the end-to-end test in package ws_test (which loads .flow files
// through dsl, and dsl imports this package through the registry).

// Hub is the test peer (see hub).
type Hub = hub

// StartHub starts the test peer.
func StartHub(t *testing.T, env ...string) *Hub { return startHub(t, env...) }

// URL is the hub's base URL.
func (h *hub) URL() string { return h.url() }

// NodeModules is where the npm ws library is installed.
func NodeModules(t *testing.T) string { return nodeModules(t) }

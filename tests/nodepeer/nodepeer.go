// Package nodepeer finds the npm test peers that scripts/ensure-ws.sh
// installs (the `ws` library and wscat) and runs node scripts on them, for
// the tests of connectors/ws and of the records API's WebSocket endpoint.
package nodepeer

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Modules returns the node_modules directory holding `ws`
// ($AIMDB_NODE_WS/node_modules, default ~/.cache/aimdb-flow/node-ws). When
// node or the module is missing the test is skipped, or fails when the CI
// environment variable is set (CI must have every peer).
func Modules(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("AIMDB_NODE_WS")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(cache, "aimdb-flow", "node-ws")
	}
	mods := filepath.Join(dir, "node_modules")
	_, err := os.Stat(filepath.Join(mods, "ws", "package.json"))
	_, nerr := exec.LookPath("node")
	if err != nil || nerr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("WebSocket peer missing (node: %v, ws: %v): make deps runs scripts/ensure-ws.sh", nerr, err)
		}
		t.Skipf("WebSocket peer missing (node: %v, ws: %v): run scripts/ensure-ws.sh", nerr, err)
	}
	return mods
}

// Command is `node script args...` with NODE_PATH set to Modules.
func Command(t testing.TB, script string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("node", append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+Modules(t))
	cmd.Stderr = os.Stderr
	return cmd
}

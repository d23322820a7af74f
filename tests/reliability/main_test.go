package reliability

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// binDir holds the aimdb-flow binary built once for the package's CLI tests.
var binDir string

// TestMain checks, after every test of the package has run (each started
// and stopped full runners, connectors, brokers' clients), that no
// goroutine is left behind.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "aimdb-flow-reliability-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(leakOptions()...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: goroutines left after all tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// leakOptions lists goroutines that may outlive the package's tests, none
// of them the project's runtime: tests/kafkatest's helpers (Produce,
// ReadAll, Lag, ...) build a fresh kafka-go Transport per call and never
// close it, so its idle broker connections and metadata pollers (kafka-go's
// conn.run, connPool.discover) linger until their idle timeout. The Kafka connector's own goroutines are
// checked without that exception by TestNoLeakKafkaRunnerLifecycle.
func leakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/segmentio/kafka-go.(*conn).run"),
		goleak.IgnoreTopFunction("github.com/segmentio/kafka-go.(*connPool).discover"),
	}
}

var (
	buildOnce sync.Once
	buildErr  error
	buildOut  []byte
)

// cliBinary builds ./cmd/aimdb-flow once per test binary and returns its path.
func cliBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(binDir, "aimdb-flow")
	buildOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", bin, "github.com/aimdb-dev/aimdb-flow/cmd/aimdb-flow")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build ./cmd/aimdb-flow: %v\n%s", buildErr, buildOut)
	}
	return bin
}

package conntest_test

import (
	"os"
	"strings"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/connectors/conntest"
)

// TestLoopbackConformance runs the suite on the example connector.
func TestLoopbackConformance(t *testing.T) {
	conntest.Run(t, loopbackFeatures, newLoopbackPeer)
}

// TestGuideShowsTheExample checks that docs/connectors.md carries the
// example connector as it is compiled and tested here.
func TestGuideShowsTheExample(t *testing.T) {
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "// --- example connector ---\n", "// --- end of example connector ---\n"
	s := string(src)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatal("example_test.go: example connector markers not found")
	}
	code := strings.TrimSpace(s[i+len(begin) : j])
	guide, err := os.ReadFile("../../docs/connectors.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(guide), code) {
		t.Error("docs/connectors.md does not contain the example connector of example_test.go verbatim; copy it over")
	}
}

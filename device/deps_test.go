//go:build !tinygo

// Package device_test guards the device subset's dependency set.
package device_test

import (
	"os/exec"
	"strings"
	"testing"
)

// forbidden are packages that must never enter a device build: they do not
// build under TinyGo for microcontrollers, or are far too large.
var forbidden = []string{
	"net", "net/http", "net/url", "log/slog", "encoding/json",
	"go.opentelemetry.io/", "github.com/google/cel-go", "github.com/expr-lang/expr",
	"github.com/segmentio/kafka-go", "github.com/eclipse/paho.golang",
	"github.com/aimdb-dev/aimdb-flow/pipeline", // the server core (pulls slog, net/url)
}

func TestDeviceSubsetImportsNothingForbidden(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("implausible dependency list: %q", deps)
	}
	var mine int
	for _, d := range deps {
		if strings.HasPrefix(d, "github.com/aimdb-dev/aimdb-flow/device/") {
			mine++
		}
		for _, f := range forbidden {
			if d == f || strings.HasSuffix(f, "/") && strings.HasPrefix(d, f) {
				t.Errorf("device subset depends on %s", d)
			}
		}
	}
	if mine < 5 {
		t.Fatalf("go list found only %d device packages: %q", mine, deps)
	}
}

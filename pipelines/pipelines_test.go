// Package pipelines_test checks the example pipelines: every file loads
// and validates with the registered connectors, is in canonical form, has
// a pipeline test, and its pipeline tests pass.
package pipelines_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/dsl/flowtest"
)

func TestExamplesValidate(t *testing.T) {
	files, _ := filepath.Glob("*.flow")
	if len(files) < 7 {
		t.Fatalf("only %d example files", len(files))
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			// Defaults of ${VAR:-default} apply: no environment needed.
			opts := dsl.Options{Getenv: func(string) (string, bool) { return "", false }}
			if _, err := dsl.LoadFiles(opts, f); err != nil {
				t.Fatalf("%s does not validate:\n%v", f, err)
			}
			test := strings.TrimSuffix(f, ".flow") + ".test.json"
			if _, err := os.Stat(test); err != nil {
				t.Fatalf("%s has no pipeline test %s", f, test)
			}
		})
	}
}

func TestExamplePipelineTests(t *testing.T) {
	files, err := flowtest.Find(".")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, f := range files {
		s, err := flowtest.LoadSuite(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range s.Run(context.Background(), log) {
			if !r.Passed() {
				t.Errorf("%s: %s:\n  %s", f, r.Case, strings.Join(r.Failures, "\n  "))
			}
		}
	}
}

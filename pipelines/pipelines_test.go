// Package pipelines_test checks the example pipelines: every file loads
// and validates with the registered connectors, is in canonical form, has
// a pipeline test, and its pipeline tests pass.
package pipelines_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/bench/w1"
	"github.com/aimdb-dev/aimdb-flow/connectors/file"
	"github.com/aimdb-dev/aimdb-flow/connectors/registry"
	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/dsl/devgen"
	"github.com/aimdb-dev/aimdb-flow/dsl/flowtest"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

func TestExamplesValidate(t *testing.T) {
	files, _ := filepath.Glob("*.flow")
	if len(files) < 7 {
		t.Fatalf("only %d example files", len(files))
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			// Defaults of ${VAR:-default} apply: no environment needed.
			// Input files are made by each example's test (NoLinkChecks:
			// the configuration is checked, not this machine's /tmp).
			opts := dsl.Options{Getenv: func(string) (string, bool) { return "", false }, NoLinkChecks: true}
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

// syncBuffer is an io.Writer safe for the connector's flusher goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemoRunsOnTheEmbeddedBroker runs pipelines/demo.flow for real: the
// generator publishes through the in-process MQTT broker, the wildcard
// subscription reads it back and alerts reach stdout within seconds, and a
// cancel drains cleanly.
func TestDemoRunsOnTheEmbeddedBroker(t *testing.T) {
	out := &syncBuffer{}
	reg := registry.Default()
	reg["stdio"] = func(string, pipeline.Params) (pipeline.Builder, error) {
		return file.NewStdio(strings.NewReader(""), out, io.Discard), nil
	}
	opts := dsl.Options{Registry: reg, Getenv: func(string) (string, bool) { return "", false }}
	g, err := dsl.LoadFiles(opts, "demo.flow")
	if err != nil {
		t.Fatal(err)
	}
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.After(20 * time.Second)
	for strings.Count(out.String(), "\n") < 3 {
		select {
		case <-deadline:
			t.Fatalf("no alerts within 20s; stdout so far: %q", out.String())
		case err := <-done:
			t.Fatalf("run ended early: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var v struct {
			Device string
			Temp   float64
			Alert  bool
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil || !v.Alert || v.Temp <= 30 || !strings.HasPrefix(v.Device, "d-") {
			t.Fatalf("bad alert line %q (%v)", line, err)
		}
	}
}

// TestW1MatchesTheHandWrittenLoop runs w1.flow on W1's input and compares
// its output record for record (w1.SameRecords) with bench/w1's strong
// hand-written loop.
func TestW1MatchesTheHandWrittenLoop(t *testing.T) {
	dir := t.TempDir()
	in, want, got := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "base.jsonl"), filepath.Join(dir, "flow.jsonl")
	if err := w1.Generate(in, 20000); err != nil {
		t.Fatal(err)
	}
	if _, err := w1.Baseline(in, want); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"W1_IN": in, "W1_OUT": got}
	g, err := dsl.LoadFiles(dsl.Options{Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}, "w1.flow")
	if err != nil {
		t.Fatal(err)
	}
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(want); err != nil || fi.Size() == 0 {
		t.Fatalf("the loop wrote nothing (%v)", err)
	}
	if err := w1.SameRecords(got, want); err != nil {
		t.Fatalf("w1.flow output differs from the hand-written loop's: %v", err)
	}
}

// TestDeviceFlowIsInTheDeviceSubset checks that device.flow uses only what
// the device build supports (dsl/devgen's check, what aimdb-flow build
// runs): device connectors, fixed-capacity buffers, filter and map
// expressions inside device/expr's subset of expr-lang, fixed topics.
func TestDeviceFlowIsInTheDeviceSubset(t *testing.T) {
	src, err := os.ReadFile("device.flow")
	if err != nil {
		t.Fatal(err)
	}
	errs := &dsl.ErrorList{}
	f := dsl.Parse("device.flow", src, errs)
	if errs.Len() > 0 {
		t.Fatal(errs.Err())
	}
	d, err := devgen.Check(devgen.Options{Errors: errs}, f)
	if err != nil {
		t.Fatalf("device.flow is outside the device subset:\n%v", err)
	}
	if len(d.Sensors) != 1 || d.MQTT == nil || len(d.Pipelines) != 1 || len(d.Pipelines[0].Stages) != 2 {
		t.Fatalf("device.flow's device graph:\n%s", d)
	}
}

package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/bench/flowbench"
)

func TestBenchCommand(t *testing.T) {
	ctx := context.Background()
	w1 := filepath.Join("..", "..", "pipelines", "w1.flow")
	tests := []struct {
		name string
		args []string
		code int
		out  string // in stdout or stderr
	}{
		{"help", []string{"bench", "--help"}, exitOK, "--records"},
		{"no files", []string{"bench"}, exitUsage, "no files given"},
		{"bad records", []string{"bench", "--records", "0", w1}, exitUsage, "--records must be positive"},
		{"bad rate", []string{"bench", "--rate", "-3", w1}, exitUsage, "--rate not negative"},
		{"missing file", []string{"bench", "/does/not/exist.flow"}, exitProblems, "no such file"},
		{"text report", []string{"bench", w1, "--records", "500"}, exitOK, "1:filter"},
		{"paced", []string{"bench", "--rate", "20000", "--records", "200", w1}, exitOK, "paced at 20.0k/s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, ctx, nil, tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout+r.stderr, tt.out) {
				t.Errorf("output lacks %q\nstdout: %s\nstderr: %s", tt.out, r.stdout, r.stderr)
			}
		})
	}
}

func TestBenchCommandJSON(t *testing.T) {
	r := runCLI(t, context.Background(), nil, "bench", "--json", "--records", "300", filepath.Join("..", "..", "pipelines", "w1.flow"))
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var rep flowbench.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	if len(rep.Sources) != 1 || rep.Sources[0].Generated != 300 || rep.Pipelines[0].In != 300 {
		t.Errorf("report: %+v", rep)
	}
}

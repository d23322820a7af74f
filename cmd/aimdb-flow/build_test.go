package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const buildFlow = "connector mqtt \"mqtt://127.0.0.1:1883\" client_id \"d-1\"\n" +
	"connector sensor \"sensor://\"\n" +
	"record temp.raw {\n  from \"sensor://temp\" decode json rate 10\n  buffer ring 16\n}\n" +
	"pipeline report {\n  from temp.raw\n  filter `temp > 40.0`\n  to \"mqtt://alerts\" encode json qos 1\n}\n"

// TestBuild runs aimdb-flow build up to code generation (--no-build):
// TinyGo builds are tested in pipelines/devicebuild_test.go.
func TestBuild(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.flow", buildFlow)
	outside := writeFile(t, dir, "outside.flow", strings.Replace(strings.Replace(buildFlow,
		"buffer ring 16", "buffer queue 16", 1), "filter `temp > 40.0`", "filter `temp > 40.0 ?? 1`", 1))
	invalid := writeFile(t, dir, "invalid.flow", strings.Replace(buildFlow, "encode json", "encode jsno", 1))
	emit := filepath.Join(dir, "src")
	replay := "../../examples/device/replay"
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string
		stderrHas  []string
		stderrFull string
	}{
		{name: "no target", args: []string{good}, code: exitUsage,
			stderrFull: "aimdb-flow build: --target is required (cortex-m-qemu, wasip1, host)\n"},
		{name: "unknown target", args: []string{"--target", "esp32", good}, code: exitUsage,
			stderrFull: "aimdb-flow build: unknown target \"esp32\" (want cortex-m-qemu, wasip1, host)\n"},
		{name: "bad size", args: []string{"--target", "host", "--size", "tiny", good}, code: exitUsage,
			stderrFull: "aimdb-flow build: --size \"tiny\": want short or full\n"},
		{name: "no files", args: []string{"--target", "host"}, code: exitUsage,
			stderrHas: []string{"aimdb-flow build: no files given"}},
		{name: "invalid on the server", args: []string{"--target", "host", invalid}, code: exitProblems,
			stderrHas: []string{invalid + ":10:29: unknown codec \"jsno\"", "1 problem(s)"}},
		{name: "outside the subset", args: []string{"--target", "cortex-m-qemu", "--no-build", outside}, code: exitProblems,
			stderrFull: outside + ":5:10: record temp.raw: buffer queue is not in the device build: a full queue would block the device's main loop (use ring N or latest)\n" +
				"      buffer queue 16\n             ^\n" +
				outside + ":9:23: filter: device/expr: nil coalescing (??) is outside the device subset\n" +
				"      filter `temp > 40.0 ?? 1`\n                          ^\n" +
				"2 problem(s)\n" +
				"aimdb-flow build: " + outside + " is outside the device subset (see docs/device.md)\n"},
		{name: "a sensor needs a driver", args: []string{"--target", "host", "--no-build", good}, code: exitProblems,
			stderrFull: "aimdb-flow build: " + good + ":4:8: sensor://temp needs a driver: aimdb-flow build --driver PKG (a package with func Open() (flow.Sensors, error), see device/flow.Sensors)\n"},
		{name: "a driver is a library", args: []string{"--target", "host", "--no-build", "--driver", ".", good}, code: exitProblems,
			stderrFull: "aimdb-flow build: --driver .: a driver is a library package (with func Open() (flow.Sensors, error)), not package main\n"},
		{name: "check only", args: []string{"--target", "host", "--no-build", "--driver", replay, good}, code: exitOK,
			stdout: good + ": inside the device subset (target host)\n"},
		{name: "emit", args: []string{"--target", "cortex-m-qemu", "--no-build", "--driver", replay, "--emit", emit, good}, code: exitOK,
			stdout: "wrote " + emit + " (main.go, go.mod)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, context.Background(), nil, append([]string{"build"}, tt.args...)...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			if r.stdout != tt.stdout {
				t.Errorf("stdout %q, want %q", r.stdout, tt.stdout)
			}
			if tt.stderrFull != "" && r.stderr != tt.stderrFull {
				t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, tt.stderrFull)
			}
			for _, s := range tt.stderrHas {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
				}
			}
		})
	}
	src, err := os.ReadFile(filepath.Join(emit, "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"// Command good is " + good + " built for a device (target cortex-m-qemu) by aimdb-flow build.",
		"driver \"github.com/aimdb-dev/aimdb-flow/examples/device/replay\"", "func (u *uart) Read(b []byte) (int, error) {"} {
		if !strings.Contains(string(src), want) {
			t.Errorf("emitted main.go lacks %q", want)
		}
	}
	mod, err := os.ReadFile(filepath.Join(emit, "go.mod"))
	if err != nil || !strings.Contains(string(mod), "replace github.com/aimdb-dev/aimdb-flow => ") {
		t.Errorf("emitted go.mod: %v\n%s", err, mod)
	}
}

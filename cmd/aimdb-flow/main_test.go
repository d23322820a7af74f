package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

type result struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, ctx context.Context, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	e := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}}
	code := dispatch(ctx, e, args)
	return result{code, out.String(), errb.String()}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUsageAndExitCodes(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		args []string
		code int
		out  string // in stdout or stderr
	}{
		{nil, exitUsage, "Commands:"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"; 'aimdb-flow help' lists the commands`},
		{[]string{"vaildate", "x.flow"}, exitUsage, `unknown command "vaildate" (did you mean "validate"?)`},
		{[]string{"run", "--htp", "x", "x.flow"}, exitUsage, "flag provided but not defined: -htp (did you mean --http?); 'aimdb-flow run --help' lists the flags"},
		{[]string{"--help"}, exitOK, "Exit codes: 0 success"},
		{[]string{"version"}, exitOK, "aimdb-flow "},
		{[]string{"run", "--help"}, exitOK, "Usage: aimdb-flow run [flags] FILE..."},
		{[]string{"run", "--http"}, exitUsage, "flag needs an argument"},
		{[]string{"fmt", "-h"}, exitOK, "-w"},
		{[]string{"graph", "--help"}, exitOK, "--format"},
		{[]string{"test", "--help"}, exitOK, "*.test.json"},
		{[]string{"validate"}, exitUsage, "no files given"},
		{[]string{"validate", "/does/not/exist.flow"}, exitProblems, "no such file"},
		{[]string{"graph", "--format", "png", "x.flow"}, exitUsage, "unknown format"},
	}
	for _, tc := range tests {
		r := runCLI(t, ctx, nil, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stdout+r.stderr, tc.out) {
			t.Errorf("aimdb-flow %v: exit %d, output:\n%s%s\nwant exit %d and %q", tc.args, r.code, r.stdout, r.stderr, tc.code, tc.out)
		}
		// A usage mistake gets one line with the fix, not the whole help.
		if tc.code == exitUsage && len(tc.args) > 0 && (strings.Contains(tc.out, "did you mean") || strings.Contains(tc.out, "unknown command")) {
			if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n > 0 {
				t.Errorf("aimdb-flow %v: %d lines of output, want one:\n%s", tc.args, n+1, r.stderr)
			}
		}
	}
}

const okFlow = `connector file "file://"

record readings {
  from "file://${IN}" decode json
}

pipeline hot {
  from readings
  filter ` + "`temp > 25.0`" + `
  set alert ` + "`true`" + `
  log "hot reading"
  to "file://${OUT}" encode json
}
`

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.flow", okFlow)
	bad := writeFile(t, dir, "bad.flow", "connector file \"file://\"\nrecord r {\n  from \"file:///x\" decode jsn\n}\n")
	in := writeFile(t, dir, "in.jsonl", "")
	env := map[string]string{"IN": in, "OUT": "/out"}
	if r := runCLI(t, context.Background(), env, "validate", good); r.code != exitOK || !strings.Contains(r.stdout, "good.flow: ok") {
		t.Fatalf("validate good: %+v", r)
	}
	// A file source whose file is missing is reported at load, with the
	// link's position.
	missing := map[string]string{"IN": filepath.Join(dir, "nope.jsonl"), "OUT": "/out"}
	if r := runCLI(t, context.Background(), missing, "validate", good); r.code != exitProblems || !strings.Contains(r.stderr, "good.flow:4:8: record readings:") || !strings.Contains(r.stderr, "nope.jsonl does not exist (add follow true to wait for it to appear)") {
		t.Fatalf("validate with a missing input: %+v", r)
	}
	r := runCLI(t, context.Background(), env, "validate", good, bad)
	want := bad + ":3:27: unknown codec \"jsn\" (known: [json msgpack raw])\n" +
		"      from \"file:///x\" decode jsn\n" +
		"                              ^\n"
	if r.code != exitProblems || !strings.HasPrefix(r.stderr, want) || !strings.Contains(r.stdout, "good.flow: ok") {
		t.Fatalf("validate bad: exit %d\n%s\nwant prefix\n%s", r.code, r.stderr, want)
	}
	// Together, the two files declare the connector twice.
	if r := runCLI(t, context.Background(), env, "validate", "--together", good, bad); r.code != exitProblems || !strings.Contains(r.stderr, `connector "file" declared twice`) {
		t.Fatalf("validate --together: %+v", r)
	}
	// Files that are valid only together (one uses what another declares)
	// fail one by one, with a hint at --together, which run's view.
	decl := writeFile(t, dir, "decl.flow", "connector file \"file://\"\n")
	use := writeFile(t, dir, "use.flow", "record r {\n  from \"file://"+in+"\" decode json\n}\npipeline p {\n  from r\n  to \"file:///y\" encode json\n}\n")
	if r := runCLI(t, context.Background(), env, "validate", decl, use); r.code != exitProblems || !strings.Contains(r.stderr, "the files are valid together, as 'run' loads them") {
		t.Fatalf("validate of files valid together: %+v", r)
	}
	if r := runCLI(t, context.Background(), env, "validate", "--together", decl, use); r.code != exitOK {
		t.Fatalf("validate --together: %+v", r)
	}
	if r := runCLI(t, context.Background(), env, "validate", good, bad); strings.Contains(r.stderr, "valid together") {
		t.Fatalf("hint given for files that are not valid together: %s", r.stderr)
	}
	// An unset variable without a default is a problem too.
	if r := runCLI(t, context.Background(), nil, "validate", good); r.code != exitProblems || !strings.Contains(r.stderr, "environment variable IN is not set") {
		t.Fatalf("unset env: %+v", r)
	}
}

func TestFmt(t *testing.T) {
	dir := t.TempDir()
	messy := "connector   file \"file://\"   # c\nrecord r {\n\tfrom \"file:///x\"   decode json\n}\n"
	p := writeFile(t, dir, "m.flow", messy)
	want := "connector file \"file://\" # c\n\nrecord r {\n  from \"file:///x\" decode json\n}\n"
	if r := runCLI(t, context.Background(), nil, "fmt", p); r.code != exitOK || r.stdout != want {
		t.Fatalf("fmt: %+v", r)
	}
	if r := runCLI(t, context.Background(), nil, "fmt", "-l", p); r.code != exitProblems || strings.TrimSpace(r.stdout) != p {
		t.Fatalf("fmt -l: %+v", r)
	}
	if r := runCLI(t, context.Background(), nil, "fmt", "-w", p); r.code != exitOK {
		t.Fatalf("fmt -w: %+v", r)
	}
	if b, _ := os.ReadFile(p); string(b) != want {
		t.Fatalf("after fmt -w:\n%s", b)
	}
	if r := runCLI(t, context.Background(), nil, "fmt", "-l", p); r.code != exitOK || r.stdout != "" {
		t.Fatalf("fmt -l on a formatted file: %+v", r)
	}
	broken := writeFile(t, dir, "b.flow", "record r {\n")
	if r := runCLI(t, context.Background(), nil, "fmt", "-w", broken); r.code != exitProblems {
		t.Fatalf("fmt of a broken file: %+v", r)
	}
	if b, _ := os.ReadFile(broken); string(b) != "record r {\n" {
		t.Fatal("fmt -w rewrote a file that does not parse")
	}
	// A file that parses but does not validate is left alone too.
	invalidSrc := "connector   file \"file://\"\nrecord r {\n  from \"file:///x\" decode jsn\n}\n"
	invalid := writeFile(t, dir, "i.flow", invalidSrc)
	if r := runCLI(t, context.Background(), nil, "fmt", "-w", invalid); r.code != exitProblems || !strings.Contains(r.stderr, `unknown codec "jsn"`) || !strings.Contains(r.stderr, "fmt formats only valid files") {
		t.Fatalf("fmt of an invalid file: %+v", r)
	}
	if b, _ := os.ReadFile(invalid); string(b) != invalidSrc {
		t.Fatal("fmt -w rewrote a file that does not validate")
	}
}

func TestGraph(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "g.flow", okFlow)
	env := map[string]string{"IN": "/in", "OUT": "/out"}
	r := runCLI(t, context.Background(), env, "graph", p)
	if r.code != exitOK || !strings.Contains(r.stdout, "digraph") || !strings.Contains(r.stdout, `filter `+"`temp > 25.0`") {
		t.Fatalf("graph dot: %+v", r)
	}
	r = runCLI(t, context.Background(), env, "graph", p, "--format", "mermaid")
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "flowchart LR") || !strings.Contains(r.stdout, "file:///in") {
		t.Fatalf("graph mermaid: %+v", r)
	}
	// Without the variables set, the file is drawn with its placeholders,
	// also when one sits in a connector's endpoint.
	q := writeFile(t, dir, "q.flow", "connector mqtt \"mqtt://127.0.0.1:${MQTT_PORT}\"\n"+okFlow)
	q2 := writeFile(t, dir, "q2.flow", strings.Replace(okFlow, `to "file://${OUT}" encode json`, `to "mqtt://alerts/${SITE}" encode json qos 1`, 1))
	r = runCLI(t, context.Background(), nil, "graph", "--format", "mermaid", q, q2)
	if r.code != exitProblems { // q and q2 together declare file twice: a real problem is still one
		t.Fatalf("graph of conflicting files: %+v", r)
	}
	r = runCLI(t, context.Background(), nil, "graph", "--format", "mermaid", q)
	if r.code != exitOK || !strings.Contains(r.stdout, "file://${IN}") || !strings.Contains(r.stdout, "file://${OUT}") {
		t.Fatalf("graph with unset variables: %+v", r)
	}
}

func TestTestCommand(t *testing.T) {
	if r := runCLI(t, context.Background(), nil, "test", "../../pipelines"); r.code != exitOK || !strings.Contains(r.stdout, "ok:") {
		t.Fatalf("test pipelines/: %+v", r)
	}
	r := runCLI(t, context.Background(), nil, "test", "../../dsl/flowtest/testdata/failing.test.json")
	if r.code != exitProblems || !strings.Contains(r.stdout, "FAIL: 9 of 9 test cases failed") {
		t.Fatalf("failing suite: %+v", r)
	}
}

// TestRunFinite runs a file-to-file flow to its end: the run exits 0 by
// itself and the output is complete.
func TestRunFinite(t *testing.T) {
	dir := t.TempDir()
	in := writeFile(t, dir, "in.jsonl", "{\"temp\":30}\n{\"temp\":10}\nnot json\n{\"temp\":26.5}\n")
	out := filepath.Join(dir, "out.jsonl")
	p := writeFile(t, dir, "w.flow", okFlow)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := runCLI(t, ctx, map[string]string{"IN": in, "OUT": out}, "run", p)
	if r.code != exitOK {
		t.Fatalf("run: %+v", r)
	}
	b, err := os.ReadFile(out)
	if err != nil || string(b) != "{\"temp\":30,\"alert\":true}\n{\"temp\":26.5,\"alert\":true}\n" {
		t.Fatalf("output %q, %v", b, err)
	}
	// The bad line was dead-lettered (no destination: logged as a warning).
	if !strings.Contains(r.stderr, "record dropped") {
		t.Fatalf("no warning about the bad line: %s", r.stderr)
	}
	// The log statement prints even at the default (warn) level.
	if strings.Count(r.stderr, `msg="hot reading"`) != 2 {
		t.Fatalf("log statement output missing: %s", r.stderr)
	}
}

// TestRunProfiles: --cpuprofile and --memprofile write a pprof file
// (gzip-compressed protobuf) of the run; an unwritable path is a usage
// error.
func TestRunProfiles(t *testing.T) {
	for _, flag := range []string{"--cpuprofile", "--memprofile"} {
		t.Run(flag, func(t *testing.T) {
			dir := t.TempDir()
			in := writeFile(t, dir, "in.jsonl", "{\"temp\":30}\n")
			prof := filepath.Join(dir, "run.pprof")
			p := writeFile(t, dir, "w.flow", okFlow)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if r := runCLI(t, ctx, map[string]string{"IN": in, "OUT": filepath.Join(dir, "out.jsonl")}, "run", flag, prof, p); r.code != exitOK {
				t.Fatalf("run: %+v", r)
			}
			b, err := os.ReadFile(prof)
			if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
				t.Fatalf("profile %s: %d bytes, %v; want a gzip-compressed pprof file", prof, len(b), err)
			}
			if r := runCLI(t, ctx, nil, "run", flag, filepath.Join(dir, "no", "such", "dir", "x"), p); r.code != exitUsage {
				t.Fatalf("unwritable profile: %+v", r)
			}
		})
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// TestRunHTTPAndSignal serves the health endpoints while an endless flow
// runs, then stops it with SIGINT: the run drains and exits 0.
func TestRunHTTPAndSignal(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	p := writeFile(t, dir, "gen.flow", "connector gen \"gen://\"\nconnector file \"file://\"\n\nrecord r {\n  from \"gen://r\" decode json rate 200\n}\n\npipeline p {\n  from r\n  to \"file://"+out+"\" encode json\n}\n")
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan result, 1)
	go func() { done <- runCLI(t, ctx, nil, "run", "--http", ":"+port, p) }()

	base := "http://127.0.0.1:" + port
	deadline := time.Now().Add(15 * time.Second)
	ready := false
	for time.Now().Before(deadline) && !ready {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			ready = resp.StatusCode == http.StatusOK
			resp.Body.Close()
		}
		if !ready {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !ready {
		t.Fatal("/readyz never answered 200")
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get(base + "/metrics")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get(base + "/stats")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/stats: %v %v", resp, err)
	}
	stats, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// Enums by name, not number.
	for _, want := range []string{`"Kind": "queue"`, `"Direction": "inbound"`} {
		if !strings.Contains(string(stats), want) {
			t.Errorf("/stats lacks %s: %.400s", want, stats)
		}
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.code != exitOK {
			t.Fatalf("run after SIGINT: %+v", r)
		}
	case <-ctx.Done():
		t.Fatal("run did not stop after SIGINT")
	}
	if b, err := os.ReadFile(out); err != nil || len(b) == 0 {
		t.Fatalf("nothing written before the signal: %v", err)
	}
}

func TestStatusRatesSmoothBursts(t *testing.T) {
	var r statusRates
	c := counters{}
	// Steady 500 in/s, then a one-second burst of 5000 drops.
	steps := []counters{{in: 500}, {in: 1000}, {in: 1500, dropped: 5000}, {in: 2000, dropped: 5000}}
	var dropped []float64
	for _, next := range steps {
		r.update(c, next, 1)
		dropped = append(dropped, r.dropped)
		c = next
	}
	if r.in < 499 || r.in > 501 {
		t.Fatalf("steady input rate %v, want 500", r.in)
	}
	// The burst is spread over the window: far below 5000/s at its
	// second, and decaying (not zero) the second after.
	if dropped[2] > 1000 || dropped[2] < 500 {
		t.Fatalf("burst shows as %v/s, want it smoothed (about 900/s)", dropped[2])
	}
	if dropped[3] <= 0 || dropped[3] >= dropped[2] {
		t.Fatalf("after the burst %v/s, want decaying from %v", dropped[3], dropped[2])
	}
	line := r.line(counters{in: 2000, out: 10, dropped: 5000, sinks: 1})
	for _, want := range []string{"in 500/s", "(1 sink)", "sent", "total in 2000, sent 10"} {
		if !strings.Contains(line, want) {
			t.Fatalf("status %q lacks %q", line, want)
		}
	}
}

func TestStatusOffWhenSinkWritesToTheTerminal(t *testing.T) {
	tests := []struct {
		name        string
		sink        string
		stdoutOnTTY bool
		want        bool
	}{
		{"stdout on the terminal", "stdio://stdout", true, true},
		{"stdout redirected", "stdio://stdout", false, false},
		{"stderr", "stdio://stderr", false, true},
		{"file", "file:///tmp/x.jsonl", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "connector gen \"gen://\"\nconnector stdio \"stdio://\"\nconnector file \"file://\"\nrecord r {\n  from \"gen://r\" decode json\n}\npipeline p {\n  from r\n  to \"" + tc.sink + "\" encode json\n}\n"
			g, err := dsl.Load(dsl.Options{Logger: slog.New(slog.DiscardHandler)}, dsl.Source{Name: "t.flow", Src: []byte(src)})
			if err != nil {
				t.Fatal(err)
			}
			if got := writesTerminal(g, tc.stdoutOnTTY); got != tc.want {
				t.Fatalf("writesTerminal = %v, want %v", got, tc.want)
			}
		})
	}
}

// panicky is a JSON codec whose decoder panics on a payload containing
// "boom", the way a buggy third-party codec would.
type panicky struct{ codec.LazyJSON }

func (p panicky) Decode(b []byte) (any, error) {
	if bytes.Contains(b, []byte("boom")) {
		var m map[string]any
		m["x"] = 1 // nil map write: a real runtime panic
	}
	return p.LazyJSON.Decode(b)
}

// A panic inside a run (here a codec's decoder) is contained: the record
// is dead-lettered with the panic, the others flow, the run exits 0.
func TestRunSurvivesPanic(t *testing.T) {
	dir := t.TempDir()
	in := writeFile(t, dir, "in.jsonl", "{\"temp\":30}\n{\"temp\":31,\"note\":\"boom\"}\n{\"temp\":32}\n")
	out := filepath.Join(dir, "out.jsonl")
	dead := filepath.Join(dir, "dead.jsonl")
	flow := writeFile(t, dir, "p.flow", `connector file "file://"
record r {
  from "file://${IN}" decode panicky
}
pipeline p {
  from r
  filter `+"`temp > 25`"+`
  to "file://${OUT}" encode json
}
deadletter "file://${DEAD}" encode json
`)
	reg := codec.Default()
	reg["panicky"] = panicky{}
	var stdout, stderr bytes.Buffer
	e := &cliEnv{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, codecs: reg, getenv: func(k string) (string, bool) {
		v, ok := map[string]string{"IN": in, "OUT": out, "DEAD": dead}[k]
		return v, ok
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if code := dispatch(ctx, e, []string{"run", flow}); code != exitOK {
		t.Fatalf("run exited %d: %s", code, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil || string(b) != "{\"temp\":30}\n{\"temp\":32}\n" {
		t.Fatalf("output %q, %v", b, err)
	}
	d, err := os.ReadFile(dead)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"panic", "assignment to entry in nil map", `"stage":"decode"`} {
		if !strings.Contains(string(d), want) {
			t.Fatalf("dead letter %s lacks %q", d, want)
		}
	}
}

// The README's Go program compiles as printed (imports, ctx and all).
func TestReadmeGoProgramBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	i := strings.Index(s, "```go\npackage main\n")
	if i < 0 {
		t.Fatal("README has no complete Go program (```go block starting with package main)")
	}
	body := s[i+len("```go\n"):]
	body = body[:strings.Index(body, "```")]
	dir, err := os.MkdirTemp("../..", ".readme-check-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "vet", "./"+filepath.Base(dir))
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the README's Go program does not build: %v\n%s", err, out)
	}
}

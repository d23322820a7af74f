// Command bench runs the aimdb-flow benchmark workloads, each against its
// hand-written baseline in the same run, and writes
// bench/results/<date>.json, .md and .svg.
//
// Every variant runs in a fresh child process (this binary re-executed with
// -child, the aimdb-flow CLI, or the W2 relay program), so wall time, CPU
// time and peak RSS belong to that variant alone. Variants of a workload
// alternate A B A B ... for -rounds rounds; the report gives medians,
// min-max and the candidate/baseline ratio taken within each round (then
// its median), which cancels slow drifts of the machine.
//
//	go run ./bench/cmd/bench            # full run
//	go run ./bench/cmd/bench -quick     # short run for development
//	go run ./bench/cmd/bench -only w1   # one workload
//	go run ./bench/cmd/bench -list      # the workload names
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aimdb-dev/aimdb-flow/bench/chart"
)

func main() {
	var (
		quick   = flag.Bool("quick", false, "short run: fewer records and 3 rounds (under two minutes)")
		rounds  = flag.Int("rounds", 5, "A/B rounds per workload")
		only    = flag.String("only", "", "comma-separated workload names to run (default all; see -list)")
		list    = flag.Bool("list", false, "list the workloads and exit")
		redraw  = flag.String("chart", "", "redraw the .md and .svg of an earlier run from its `JSON` report, then exit")
		docs    = flag.String("docs", "", "rewrite the benchmark summaries in README.md and bench/README.md from a `JSON` report (\"latest\": the newest in -out), then exit")
		outDir  = flag.String("out", "bench/results", "directory for the JSON, markdown and SVG reports")
		procs   = flag.Int("procs", 0, "GOMAXPROCS set in every measured process (0: this process's, by default the number of usable cores)")
		prof    = flag.String("cpuprofile", "", "write a CPU profile of every harness child into `DIR` (go tool pprof -top DIR/FILE)")
		n       = flag.Int("n", 0, "records per run (default per workload)")
		against = flag.String("against", "", "also run W1 (CLI) and W3 (.flow) as built from git `REV`, alternating in the same rounds, and report this build's ratio to it")
		// Child-process flags (internal).
		child   = flag.String("child", "", "internal: run one variant and print its result")
		input   = flag.String("input", "", "internal: input file for -child")
		k       = flag.Int("k", 0, "internal: variant parameter for -child (pipelines, workers)")
		brokers = flag.String("brokers", "", "internal: Kafka brokers for -child")
		group   = flag.String("group", "", "internal: Kafka group for -child")
		output  = flag.String("output", "", "internal: output (file or topic) for -child")
		expect  = flag.Int("expect", 0, "internal: records expected to pass the filter, for -child")
	)
	flag.Parse()
	if *child != "" {
		os.Exit(runChild(childArgs{variant: *child, input: *input, n: *n, k: *k, brokers: *brokers,
			group: *group, output: *output, expect: *expect}))
	}
	if *list {
		for _, w := range workloads() {
			fmt.Printf("%-10s %s\n", w.name, w.about)
		}
		return
	}
	if *docs != "" {
		path := *docs
		root, err := moduleRoot()
		if err == nil && path == "latest" {
			path, err = latestReport(filepath.Join(root, *outDir))
		}
		if err == nil {
			err = updateDocs(root, path)
		}
		if err != nil {
			fatal(err)
		}
		return
	}
	if *redraw != "" {
		if err := redrawReport(*redraw); err != nil {
			fatal(err)
		}
		return
	}
	if *quick && *rounds == 5 {
		*rounds = 3
	}
	if *procs <= 0 {
		// Set it explicitly in every measured process, so the report says
		// exactly what they ran with.
		*procs = runtime.GOMAXPROCS(0)
	}
	runtime.GOMAXPROCS(*procs) // the buffers workload runs in this process
	if *rounds < 1 {
		fatal(errors.New("-rounds must be at least 1"))
	}
	want := map[string]bool{}
	for _, w := range strings.Split(*only, ",") {
		if w = strings.TrimSpace(w); w != "" {
			want[w] = true
		}
	}
	known := map[string]bool{}
	for _, w := range workloads() {
		known[w.name] = true
	}
	for w := range want {
		if !known[w] {
			fatal(fmt.Errorf("unknown workload %q (see -list)", w))
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := moduleRoot()
	if err != nil {
		fatal(err)
	}
	dir, err := os.MkdirTemp("", "aimdb-bench-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(dir)
	self, err := os.Executable()
	if err != nil {
		fatal(err)
	}
	cfg := &config{quick: *quick, rounds: *rounds, records: *n, procs: *procs, root: root, dir: dir, self: self, profile: *prof}
	if *prof != "" {
		if err := os.MkdirAll(*prof, 0o755); err != nil {
			fatal(err)
		}
	}
	if *against != "" {
		if cfg.before, err = buildBefore(ctx, cfg, *against); err != nil {
			fatal(err)
		}
	}
	rep := report{Date: time.Now().UTC().Format(time.RFC3339), Machine: machine(*procs), Quick: *quick, Rounds: *rounds}
	started := time.Now()
	for _, w := range workloads() {
		if len(want) > 0 && !want[w.name] {
			continue
		}
		slog.Info("workload", "name", w.name)
		t0 := time.Now()
		res, err := w.run(ctx, cfg)
		var skip *skipError
		switch {
		case errors.As(err, &skip):
			slog.Warn("workload skipped", "name", w.name, "reason", skip.reason)
			rep.Skipped = append(rep.Skipped, w.name+": "+skip.reason)
			continue
		case err != nil:
			os.RemoveAll(dir) // fatal exits without running defers
			fatal(fmt.Errorf("%s: %w", w.name, err))
		}
		slog.Info("workload done", "name", w.name, "took", time.Since(t0).Round(time.Millisecond))
		rep.Workloads = append(rep.Workloads, res...)
	}
	rep.Seconds = time.Since(started).Seconds()
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		fatal(err)
	}
	stamp := time.Now().UTC().Format("2006-01-02T150405")
	base := filepath.Join(*outDir, stamp)
	js, _ := json.MarshalIndent(rep, "", "  ")
	md := rep.markdown(stamp + ".svg")
	svg := rep.chart()
	for _, f := range []struct {
		path string
		data []byte
	}{{base + ".json", js}, {base + ".md", []byte(md)}, {base + ".svg", svg}} {
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			fatal(err)
		}
	}
	fmt.Print(md)
	fmt.Printf("\nwrote %s.json, %s.md and %s.svg (%.0f s)\n", base, base, base, rep.Seconds)
	// A full run (every workload, full size) is what the docs quote: their
	// summaries are rewritten from it, to be committed with the report.
	if !*quick && len(want) == 0 && *n == 0 && *outDir == "bench/results" {
		if err := updateDocs(root, base+".json"); err != nil {
			fatal(err)
		}
	}
}

// redrawReport rewrites the markdown and SVG of a JSON report.
func redrawReport(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	base := strings.TrimSuffix(path, ".json")
	if err := os.WriteFile(base+".md", []byte(rep.markdown(filepath.Base(base)+".svg")), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(base+".svg", rep.chart(), 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s.md and %s.svg\n", base, base)
	return nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

// skipError marks a workload that cannot run on this machine (a missing
// program); the run goes on and the report says why.
type skipError struct{ reason string }

func (e *skipError) Error() string { return "skipped: " + e.reason }

type config struct {
	quick   bool
	rounds  int
	records int     // -n override
	procs   int     // GOMAXPROCS for children (0: default)
	root    string  // module root
	dir     string  // scratch directory, removed at exit
	self    string  // this executable
	profile string  // directory for children's CPU profiles ("": none)
	before  *before // -against's build (nil: no before/after rows)
	spawned int     // children started (numbers the profiles)
}

// pick returns the record count for a workload: -n, else quick or full.
func (c *config) pick(full, quick int) int {
	if c.records > 0 {
		return c.records
	}
	if c.quick {
		return quick
	}
	return full
}

// env returns the environment of a measured child process.
func (c *config) env(procs int) []string {
	env := os.Environ()
	if procs == 0 {
		procs = c.procs
	}
	if procs > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(procs))
	}
	return env
}

type workload struct {
	name, about string
	run         func(ctx context.Context, cfg *config) ([]result, error)
}

// result is one row of the report.
type result struct {
	Workload string  `json:"workload"`
	Variant  string  `json:"variant"`
	Baseline string  `json:"baseline,omitempty"`
	Unit     string  `json:"unit"`
	Median   float64 `json:"median"`
	Min      float64 `json:"min"`
	Max      float64 `json:"max"`
	// Ratio is the median of the per-round candidate/baseline ratios of
	// the primary metric (Ratios holds them in round order).
	Ratio  float64   `json:"ratio_to_baseline,omitempty"`
	Ratios []float64 `json:"ratios,omitempty"`
	Target string    `json:"target,omitempty"`
	// Goal is the numeric target the chart draws: on Ratio when there is
	// a baseline, else on Median; Lower means lower is better.
	Goal  float64            `json:"goal,omitempty"`
	Lower bool               `json:"lower_is_better,omitempty"`
	Met   *bool              `json:"target_met,omitempty"`
	Extra map[string]float64 `json:"extra,omitempty"`
	// Latency holds latency percentiles in microseconds ("p50", "p99").
	Latency map[string]float64 `json:"latency_us,omitempty"`
	Samples []float64          `json:"samples"`
	Note    string             `json:"note,omitempty"`
}

type report struct {
	Date      string            `json:"date"`
	Machine   map[string]string `json:"machine"`
	Quick     bool              `json:"quick"`
	Rounds    int               `json:"rounds"`
	Seconds   float64           `json:"seconds"`
	Workloads []result          `json:"workloads"`
	Skipped   []string          `json:"skipped,omitempty"`
}

func machine(procs int) map[string]string {
	gmp := runtime.GOMAXPROCS(0)
	if procs > 0 {
		gmp = procs
	}
	m := map[string]string{
		"go":         runtime.Version(),
		"goos":       runtime.GOOS + "/" + runtime.GOARCH,
		"cores":      fmt.Sprint(runtime.NumCPU()),
		"gomaxprocs": fmt.Sprint(gmp),
	}
	if h, err := os.Hostname(); err == nil {
		m["host"] = h
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, v, _ := strings.Cut(l, ":")
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				m["memory"] = strings.TrimSpace(v)
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m["loadavg_at_start"] = strings.TrimSpace(string(b))
	}
	return m
}

// moduleRoot finds the directory holding the module's go.mod, from the
// working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/aimdb-dev/aimdb-flow")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the harness inside the aimdb-flow module (make bench)")
		}
		dir = parent
	}
}

// buildTool compiles a package of the module into the scratch directory.
func buildTool(ctx context.Context, cfg *config, pkg, name string) (string, error) {
	out := filepath.Join(cfg.dir, "bin", name)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = cfg.root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}

// proc is what one measured process cost.
type proc struct {
	Wall    time.Duration
	CPU     time.Duration // user + system
	PeakRSS int64         // bytes: the process's own VmHWM
	Stdout  []byte
}

// runProc runs cmd to completion and measures it. Peak RSS comes from
// the child's /proc/PID/status VmHWM, polled while it runs: getrusage's
// ru_maxrss is unusable here because Go starts children with
// CLONE_VFORK|CLONE_VM, so the child's figure starts at the parent's peak.
func runProc(ctx context.Context, cmd *exec.Cmd) (proc, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return proc{}, err
	}
	done := make(chan struct{})
	peak := make(chan int64, 1)
	go func() {
		var hwm int64
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if v := vmHWM(cmd.Process.Pid); v > hwm {
				hwm = v
			}
			select {
			case <-done:
				peak <- hwm
				return
			case <-t.C:
			}
		}
	}()
	err := cmd.Wait()
	wall := time.Since(start)
	close(done)
	p := proc{Wall: wall, PeakRSS: <-peak, Stdout: stdout.Bytes()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		p.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		return p, fmt.Errorf("%s: %w: %s", filepath.Base(cmd.Path), err, msg)
	}
	if ctx.Err() != nil {
		return p, ctx.Err()
	}
	return p, nil
}

// vmHWM returns a process's peak resident set size in bytes (0 if
// unknown). pid 0 means this process.
func vmHWM(pid int) int64 {
	path := "/proc/self/status"
	if pid > 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// childRun is what a harness child process measured itself.
type childRun struct {
	Records int                `json:"records"`
	Extra   map[string]float64 `json:"extra,omitempty"`
	RSS     int64              `json:"rss"` // own VmHWM at exit, bytes
	Wall    time.Duration      `json:"-"`
	CPU     time.Duration      `json:"-"`
}

// spawn runs one variant in a child process of this binary.
func spawn(ctx context.Context, cfg *config, procs int, variant string, args ...string) (childRun, error) {
	return spawnBin(ctx, cfg, cfg.self, procs, variant, args...)
}

// spawnBin is spawn with another build of the harness (see -against).
func spawnBin(ctx context.Context, cfg *config, bin string, procs int, variant string, args ...string) (childRun, error) {
	cmd := exec.CommandContext(ctx, bin, append([]string{"-child", variant}, args...)...)
	cmd.Env = cfg.env(procs)
	if cfg.profile != "" {
		cfg.spawned++
		name := fmt.Sprintf("%03d-%s", cfg.spawned, variant)
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-k" {
				name += "-k" + args[i+1]
			}
		}
		if procs > 0 {
			name += fmt.Sprintf("-procs%d", procs)
		}
		name += ".pprof"
		cmd.Env = append(cmd.Env, profileEnv+"="+filepath.Join(cfg.profile, name))
	}
	p, err := runProc(ctx, cmd)
	if err != nil {
		return childRun{}, fmt.Errorf("child %s: %w", variant, err)
	}
	var cr childRun
	if err := json.Unmarshal(p.Stdout, &cr); err != nil {
		return childRun{}, fmt.Errorf("child %s output %q: %w", variant, p.Stdout, err)
	}
	cr.Wall, cr.CPU = p.Wall, p.CPU
	cr.RSS = max(cr.RSS, p.PeakRSS)
	return cr, nil
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minmax(xs []float64) (float64, float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

// summarize builds a row. met, when given, decides the target on the
// ratio (with a baseline) or on the median (without).
func summarize(workload, variant, baseline, unit string, samples, ratios []float64, target string, met func(float64) bool) result {
	lo, hi := minmax(samples)
	r := result{Workload: workload, Variant: variant, Baseline: baseline, Unit: unit,
		Median: median(samples), Min: lo, Max: hi, Samples: samples, Target: target}
	if len(ratios) > 0 {
		r.Ratio = median(ratios)
		r.Ratios = ratios
	}
	if met != nil {
		ok := met(r.Ratio)
		if baseline == "" {
			ok = met(r.Median)
		}
		r.Met = &ok
	}
	return r
}

// series collects per-variant samples across rounds.
type series map[string][]float64

func (s series) add(k string, v float64) { s[k] = append(s[k], v) }

func (r report) markdown(svgName string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# aimdb-flow benchmark report\n\n%s, %s, %s cores, GOMAXPROCS %s, %s, %s memory, load at start: %s%s\n\n",
		r.Date, r.Machine["cpu"], r.Machine["cores"], r.Machine["gomaxprocs"], r.Machine["go"], r.Machine["memory"], r.Machine["loadavg_at_start"],
		map[bool]string{true: ", quick run", false: ""}[r.Quick])
	fmt.Fprintf(&b, "Medians of %d alternating rounds (%.0f s in all); ratio = median of the per-round candidate/baseline ratios (listed in brackets). Chart: [%s](%s).\n\n",
		r.Rounds, r.Seconds, svgName, svgName)
	b.WriteString(mdHeader)
	for _, w := range r.Workloads {
		b.WriteString(w.mdRow())
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "\nSkipped: %s\n", s)
	}
	return b.String()
}

// mdHeader heads the markdown table of results.
const mdHeader = "| workload | variant | median | min–max | vs baseline (per round) | target | met | details |\n|---|---|---|---|---|---|---|---|\n"

// mdRow renders one result as a row of the report's markdown table. The
// README and bench/README.md summaries use the same function, so their
// figures are the report's, character for character.
func (w result) mdRow() string {
	ratio := ""
	if w.Baseline != "" {
		parts := make([]string, len(w.Ratios))
		for i, x := range w.Ratios {
			parts[i] = fmt.Sprintf("%.2f", x)
		}
		ratio = fmt.Sprintf("**%.2f×** %s [%s]", w.Ratio, w.Baseline, strings.Join(parts, " "))
	}
	met := ""
	if w.Met != nil {
		met = map[bool]string{true: "yes", false: "**no**"}[*w.Met]
	}
	var extras []string
	for _, k := range []string{"p50", "p99"} {
		if v, ok := w.Latency[k]; ok {
			extras = append(extras, fmt.Sprintf("%s %s µs", k, fmtNum(v)))
		}
	}
	keys := make([]string, 0, len(w.Extra))
	for k := range w.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		extras = append(extras, fmt.Sprintf("%s %s", k, fmtNum(w.Extra[k])))
	}
	if w.Note != "" {
		extras = append(extras, w.Note)
	}
	return fmt.Sprintf("| %s | %s | %s %s | %s–%s | %s | %s | %s | %s |\n", w.Workload, w.Variant, fmtNum(w.Median), w.Unit,
		fmtNum(w.Min), fmtNum(w.Max), ratio, w.Target, met, strings.Join(extras, ", "))
}

func fmtNum(x float64) string {
	switch a := max(x, -x); {
	case a >= 1e6:
		return fmt.Sprintf("%.2fM", x/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.0fk", x/1e3)
	case a >= 100:
		return fmt.Sprintf("%.0f", x)
	case a >= 1 || a == 0:
		return fmt.Sprintf("%.2f", x)
	default:
		return fmt.Sprintf("%.3g", x)
	}
}

// chart draws the report as SVG.
func (r report) chart() []byte {
	c := chart.Report{
		Title:    "aimdb-flow benchmarks",
		Subtitle: fmt.Sprintf("%s · %s · %s cores, GOMAXPROCS %s · %s · %d rounds%s", r.Date, r.Machine["cpu"], r.Machine["cores"], r.Machine["gomaxprocs"], r.Machine["go"], r.Rounds, map[bool]string{true: " (quick)", false: ""}[r.Quick]),
	}
	for _, w := range r.Workloads {
		label := w.Workload + " · " + w.Variant
		switch {
		case w.Baseline != "" && w.Workload != scalingPipelines:
			c.Bars = append(c.Bars, chart.Bar{Label: label, Value: w.Ratio, Target: w.Goal, Lower: w.Lower, Met: w.Met,
				Min: minOf(w.Ratios), Max: maxOf(w.Ratios), Caption: fmt.Sprintf("%.2f×", w.Ratio)})
		case w.Baseline == "" && w.Goal > 0 && w.Median > 0:
			c.Bars = append(c.Bars, chart.Bar{Label: label, Value: w.Median / w.Goal, Target: 1, Lower: w.Lower, Met: w.Met,
				Min: w.Min / w.Goal, Max: w.Max / w.Goal, Caption: fmt.Sprintf("%s %s", fmtNum(w.Median), w.Unit)})
		}
		if w.Latency["p50"] > 0 || w.Latency["p99"] > 0 {
			c.Latencies = append(c.Latencies, chart.Latency{Label: label, P50: w.Latency["p50"], P99: w.Latency["p99"]})
		}
		if w.Workload == scalingPipelines {
			if np, ok := w.Extra["pipelines"]; ok {
				c.Scaling = append(c.Scaling, chart.Point{X: np, Throughput: w.Median, RSSMiB: w.Extra["RSS MiB"]})
			}
		}
	}
	return c.SVG()
}

func minOf(xs []float64) float64 { lo, _ := minmax(xs); return lo }
func maxOf(xs []float64) float64 { _, hi := minmax(xs); return hi }

// Command bench runs the aimdb-flow benchmark workloads, each against its
// hand-written baseline in the same run, and writes
// bench/results/<date>.json and .md.
//
// Every variant runs in a fresh child process (this binary re-executed with
// -child), so wall time, CPU time and peak RSS belong to that variant alone.
// Variants of a workload alternate A B A B ... for -rounds rounds; the
// report gives medians, min-max and the candidate/baseline ratio taken
// within each round (then its median), which cancels slow drifts of the
// machine.
//
//	go run ./bench/cmd/bench            # full run
//	go run ./bench/cmd/bench -quick     # short run for development
//	go run ./bench/cmd/bench -only w1   # one workload
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

func main() {
	var (
		quick  = flag.Bool("quick", false, "short run: fewer records and rounds")
		rounds = flag.Int("rounds", 5, "A/B rounds per workload")
		only   = flag.String("only", "", "comma-separated workload names to run (default all)")
		outDir = flag.String("out", "bench/results", "directory for the JSON and markdown reports")
		child  = flag.String("child", "", "internal: run one variant and print its result")
		input  = flag.String("input", "", "internal: input file for -child")
		n      = flag.Int("n", 0, "records per run (default per workload)")
	)
	flag.Parse()
	if *child != "" {
		os.Exit(runChild(*child, *input, *n))
	}
	if *quick && *rounds == 5 {
		*rounds = 3
	}
	cfg := config{quick: *quick, rounds: *rounds, records: *n}
	want := map[string]bool{}
	for _, w := range strings.Split(*only, ",") {
		if w = strings.TrimSpace(w); w != "" {
			want[w] = true
		}
	}
	rep := report{Date: time.Now().UTC().Format(time.RFC3339), Machine: machine(), Quick: *quick, Rounds: *rounds}
	dir, err := os.MkdirTemp("", "aimdb-bench-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(dir)
	for _, w := range workloads() {
		if len(want) > 0 && !want[w.name] {
			continue
		}
		slog.Info("workload", "name", w.name)
		res, err := w.run(context.Background(), cfg, dir)
		if err != nil {
			fatal(fmt.Errorf("%s: %w", w.name, err))
		}
		rep.Workloads = append(rep.Workloads, res...)
	}
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		fatal(err)
	}
	stamp := time.Now().UTC().Format("2006-01-02T150405")
	js, _ := json.MarshalIndent(rep, "", "  ")
	jsonPath := filepath.Join(*outDir, stamp+".json")
	mdPath := filepath.Join(*outDir, stamp+".md")
	md := rep.markdown()
	if err := os.WriteFile(jsonPath, js, 0o644); err != nil {
		fatal(err)
	}
	if err := os.WriteFile(mdPath, []byte(md), 0o644); err != nil {
		fatal(err)
	}
	fmt.Print(md)
	fmt.Printf("\nwrote %s and %s\n", jsonPath, mdPath)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

type config struct {
	quick   bool
	rounds  int
	records int
}

type workload struct {
	name string
	run  func(ctx context.Context, cfg config, dir string) ([]result, error)
}

// result is one row of the report.
type result struct {
	Workload string             `json:"workload"`
	Variant  string             `json:"variant"`
	Baseline string             `json:"baseline,omitempty"`
	Unit     string             `json:"unit"`
	Median   float64            `json:"median"`
	Min      float64            `json:"min"`
	Max      float64            `json:"max"`
	Ratio    float64            `json:"ratio_to_baseline,omitempty"` // median of per-round ratios
	Target   string             `json:"target,omitempty"`
	Met      *bool              `json:"target_met,omitempty"`
	Extra    map[string]float64 `json:"extra,omitempty"`
	Samples  []float64          `json:"samples"`
}

type report struct {
	Date      string            `json:"date"`
	Machine   map[string]string `json:"machine"`
	Quick     bool              `json:"quick"`
	Rounds    int               `json:"rounds"`
	Workloads []result          `json:"workloads"`
}

func machine() map[string]string {
	m := map[string]string{
		"go":         runtime.Version(),
		"goos":       runtime.GOOS + "/" + runtime.GOARCH,
		"cores":      fmt.Sprint(runtime.NumCPU()),
		"gomaxprocs": fmt.Sprint(runtime.GOMAXPROCS(0)),
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
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m["loadavg_at_start"] = strings.TrimSpace(string(b))
	}
	return m
}

// childRun is what a child process measured.
type childRun struct {
	Records int                `json:"records"`
	Extra   map[string]float64 `json:"extra,omitempty"`
	Wall    time.Duration      `json:"-"`
	CPU     time.Duration      `json:"-"`
	MaxRSS  int64              `json:"-"` // bytes
}

// spawn runs one variant in a child process.
func spawn(ctx context.Context, variant, input string, n int) (childRun, error) {
	exe, err := os.Executable()
	if err != nil {
		return childRun{}, err
	}
	cmd := exec.CommandContext(ctx, exe, "-child", variant, "-input", input, "-n", fmt.Sprint(n))
	cmd.Stderr = os.Stderr
	start := time.Now()
	out, err := cmd.Output()
	wall := time.Since(start)
	if err != nil {
		return childRun{}, fmt.Errorf("child %s: %w", variant, err)
	}
	var cr childRun
	if err := json.Unmarshal(out, &cr); err != nil {
		return childRun{}, fmt.Errorf("child %s output %q: %w", variant, out, err)
	}
	cr.Wall = wall
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		cr.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		cr.MaxRSS = ru.Maxrss * 1024
	}
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
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

func summarize(workload, variant, baseline, unit string, samples, ratios []float64, target string, met func(float64) bool) result {
	lo, hi := minmax(samples)
	r := result{Workload: workload, Variant: variant, Baseline: baseline, Unit: unit,
		Median: median(samples), Min: lo, Max: hi, Samples: samples, Target: target}
	if len(ratios) > 0 {
		r.Ratio = median(ratios)
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

func (r report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# aimdb-flow benchmark report\n\n%s, %s, %s cores (GOMAXPROCS %s), %s, load at start: %s%s\n\n",
		r.Date, r.Machine["cpu"], r.Machine["cores"], r.Machine["gomaxprocs"], r.Machine["go"], r.Machine["loadavg_at_start"],
		map[bool]string{true: ", quick run", false: ""}[r.Quick])
	fmt.Fprintf(&b, "Medians of %d alternating rounds; ratio = median of per-round candidate/baseline ratios.\n\n", r.Rounds)
	b.WriteString("| workload | variant | median | min–max | vs baseline | target | met | details |\n|---|---|---|---|---|---|---|---|\n")
	for _, w := range r.Workloads {
		ratio := ""
		if w.Baseline != "" {
			ratio = fmt.Sprintf("%.2f× %s", w.Ratio, w.Baseline)
		}
		met := ""
		if w.Met != nil {
			met = map[bool]string{true: "yes", false: "**no**"}[*w.Met]
		}
		var extras []string
		keys := make([]string, 0, len(w.Extra))
		for k := range w.Extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			extras = append(extras, fmt.Sprintf("%s %s", k, fmtNum(w.Extra[k])))
		}
		fmt.Fprintf(&b, "| %s | %s | %s %s | %s–%s | %s | %s | %s | %s |\n", w.Workload, w.Variant, fmtNum(w.Median), w.Unit,
			fmtNum(w.Min), fmtNum(w.Max), ratio, w.Target, met, strings.Join(extras, ", "))
	}
	return b.String()
}

func fmtNum(x float64) string {
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.2fM", x/1e6)
	case x >= 1e4:
		return fmt.Sprintf("%.0fk", x/1e3)
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	default:
		return fmt.Sprintf("%.2f", x)
	}
}

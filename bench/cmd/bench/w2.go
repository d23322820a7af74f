package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// w2Result mirrors the JSON that bench/w2mqtt writes with -json.
type w2Result struct {
	Relay      string  `json:"relay"`
	Phase      string  `json:"phase"`
	Messages   int     `json:"messages"`
	Expected   int     `json:"expected"`
	Received   int     `json:"received"`
	Lost       int     `json:"lost"`
	Duplicates int     `json:"duplicates"`
	Unexpected int     `json:"unexpected"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`
	CPUusMsg   float64 `json:"cpu_us_per_msg"`
	RSSMiB     float64 `json:"rss_mib"`
	Sampler    string  `json:"sampler"`
	Spans      int64   `json:"spans"`
}

// W2 targets (DESIGN.md §9): against the hand-written relay.
const (
	w2CPUGoal = 1.1 // CPU µs per message, ratio
	w2RSSGoal = 24  // MiB peak RSS
	w2P99Goal = 1.2 // paced p99, ratio
)

// w2Relays are the relays w2mqtt runs every round, baseline first.
var w2Relays = []struct{ name, label string }{
	{"handwritten", "hand-written paho relay"},
	{"pipeline", "pipeline (sync publish)"},
	{"pipeline-async", "pipeline, async_publish"},
}

// w2Tracing are the tracing variants of the pipeline relay, (a) first,
// with their CPU/msg goal against (a).
var w2Tracing = []struct {
	name, label string
	goal        float64
}{
	{"trace-none", "(a) no tracer", 0},
	{"trace-off", "(b) otel, always_off", 1.03},
	{"trace-1pct", "(c) otel, parentbased_traceidratio 0.01", 1.10},
	{"trace-on", "(d) otel, always_on", 3},
}

type w2Key struct{ relay, phase string }

// w2Series collects one variant's figures over the rounds.
type w2Series struct {
	cpu, tput, p50, p99, rss      []float64
	cpuRatio, p99Ratio, tputRatio []float64
	lost, dups, unexpected, spans int
	spansMin                      int64
}

// runW2 starts mosquitto on a free loopback port and runs the W2 program
// (bench/w2mqtt, built once) against it once per round; each invocation
// runs every relay in its own child process (hand-written, pipeline,
// pipeline with async_publish; unpaced, then paced), then the tracing
// variants of the pipeline relay (unpaced, fewer messages) exporting to
// an OTLP receiver in the w2mqtt parent process. Odd rounds run the
// variants in reverse order.
func runW2(ctx context.Context, cfg *config) ([]result, error) {
	n := cfg.pick(50_000, 5_000)
	paced, rate := 8_000, 2000
	traceN := 15_000
	if cfg.quick {
		paced, traceN = 1000, 3000
	}
	if cfg.records > 0 {
		traceN = min(traceN, cfg.records)
	}
	stop, url, err := startMosquitto(ctx, cfg.dir)
	if err != nil {
		return nil, err
	}
	defer stop()
	bin, err := buildTool(ctx, cfg, "./bench/w2mqtt", "w2mqtt")
	if err != nil {
		return nil, err
	}
	series := map[w2Key]*w2Series{}
	get := func(k w2Key) *w2Series {
		if series[k] == nil {
			series[k] = &w2Series{spansMin: -1}
		}
		return series[k]
	}
	for round := 0; round < cfg.rounds; round++ {
		out := filepath.Join(cfg.dir, fmt.Sprintf("w2-%d.json", round))
		cmd := exec.CommandContext(ctx, bin, "-broker", url, "-n", strconv.Itoa(n), "-paced", strconv.Itoa(paced),
			"-rate", strconv.Itoa(rate), "-trace-n", strconv.Itoa(traceN), "-json", out)
		if round%2 == 1 {
			// A B, then B A: no variant always runs first.
			cmd.Args = append(cmd.Args, "-reverse")
		}
		cmd.Env = cfg.env(0)
		if _, err := runProc(ctx, cmd); err != nil {
			return nil, fmt.Errorf("round %d: %w", round+1, err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			return nil, err
		}
		var rs []w2Result
		if err := json.Unmarshal(b, &rs); err != nil {
			return nil, fmt.Errorf("w2mqtt -json: %w", err)
		}
		got := map[w2Key]w2Result{}
		for _, r := range rs {
			k := w2Key{r.Relay, r.Phase}
			got[k] = r
			s := get(k)
			s.cpu = append(s.cpu, r.CPUusMsg)
			s.tput = append(s.tput, r.MsgsPerSec)
			s.p50 = append(s.p50, r.P50us)
			s.p99 = append(s.p99, r.P99us)
			s.rss = append(s.rss, r.RSSMiB)
			s.lost += r.Lost
			s.dups += r.Duplicates
			s.unexpected += r.Unexpected
			s.spans += int(r.Spans)
			if s.spansMin < 0 || r.Spans < s.spansMin {
				s.spansMin = r.Spans
			}
		}
		// Ratios within the round, against the round's own baseline.
		h, hp := got[w2Key{"handwritten", "unpaced"}], got[w2Key{"handwritten", "paced"}]
		for _, rel := range w2Relays {
			k := w2Key{rel.name, "unpaced"}
			p, ok := got[k]
			if !ok || h.CPUusMsg == 0 || p.CPUusMsg == 0 {
				return nil, fmt.Errorf("round %d: w2mqtt reported no unpaced figures for %s: %s", round+1, rel.name, b)
			}
			s := get(k)
			s.cpuRatio = append(s.cpuRatio, p.CPUusMsg/h.CPUusMsg)
			s.tputRatio = append(s.tputRatio, p.MsgsPerSec/h.MsgsPerSec)
			if pp := got[w2Key{rel.name, "paced"}]; paced > 0 && hp.P99us > 0 && pp.P99us > 0 {
				ps := get(w2Key{rel.name, "paced"})
				ps.p99Ratio = append(ps.p99Ratio, pp.P99us/hp.P99us)
			}
		}
		if traceN > 0 {
			none := got[w2Key{"trace-none", "unpaced"}]
			for _, tv := range w2Tracing {
				t, ok := got[w2Key{tv.name, "unpaced"}]
				if !ok || none.CPUusMsg == 0 || t.CPUusMsg == 0 {
					return nil, fmt.Errorf("round %d: w2mqtt reported no figures for %s: %s", round+1, tv.name, b)
				}
				ts := get(w2Key{tv.name, "unpaced"})
				ts.cpuRatio = append(ts.cpuRatio, t.CPUusMsg/none.CPUusMsg)
			}
		}
	}
	res := w2Report(series, n, paced, rate)
	if traceN > 0 {
		res = append(res, w2TracingReport(series, traceN)...)
	}
	return res, nil
}

// mark is "✓" or "✗".
func mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}

// w2Report builds the relay rows: per phase, the hand relay and each
// pipeline variant with its per-round ratio. A pipeline variant's verdict
// (on its unpaced row) is "met" only if every criterion holds: CPU/msg,
// peak RSS, no loss (and nothing unexpected), and its paced p99; each is
// listed in the note with its measured value.
func w2Report(series map[w2Key]*w2Series, n, paced, rate int) []result {
	var res []result
	for _, phase := range []string{"unpaced", "paced"} {
		wl := fmt.Sprintf("W2 MQTT relay, QoS 1, %d msgs unpaced", n)
		if phase == "paced" {
			if paced == 0 {
				continue
			}
			wl = fmt.Sprintf("W2 MQTT relay, QoS 1, %d msgs paced at %d/s", paced, rate)
		}
		for i, rel := range w2Relays {
			s := series[w2Key{rel.name, phase}]
			if s == nil {
				continue
			}
			base := ""
			if i > 0 {
				base = w2Relays[0].label
			}
			rssMiB := median(s.rss)
			var r result
			switch {
			case phase == "unpaced" && base == "":
				r = summarize(wl, rel.label, "", "CPU µs/msg", s.cpu, nil, "", nil)
			case phase == "unpaced":
				pacedS := series[w2Key{rel.name, "paced"}]
				p99r := 0.0
				if pacedS != nil {
					p99r = median(pacedS.p99Ratio)
				}
				cpuR := median(s.cpuRatio)
				okCPU, okRSS := cpuR <= w2CPUGoal, rssMiB <= w2RSSGoal
				okLoss := s.lost == 0 && s.unexpected == 0
				okP99 := paced == 0 || (p99r > 0 && p99r <= w2P99Goal)
				r = summarize(wl, rel.label, base, "CPU µs/msg", s.cpu, s.cpuRatio,
					fmt.Sprintf("CPU/msg ≤%.1f×, ≤%d MiB RSS, no loss, paced p99 ≤%.1f×", w2CPUGoal, w2RSSGoal, w2P99Goal),
					func(float64) bool { return okCPU && okRSS && okLoss && okP99 })
				r.Goal, r.Lower = w2CPUGoal, true
				r.Note = fmt.Sprintf("CPU/msg %.2f× %s; RSS %.1f MiB %s; lost %d, unexpected %d %s (duplicates %d); paced p99 %.2f× %s",
					cpuR, mark(okCPU), rssMiB, mark(okRSS), s.lost, s.unexpected, mark(okLoss), s.dups, p99r, mark(okP99))
			case base == "":
				r = summarize(wl, rel.label, "", "p99 µs", s.p99, nil, "", nil)
			default:
				okLoss := s.lost == 0 && s.unexpected == 0
				r = summarize(wl, rel.label, base, "p99 µs", s.p99, s.p99Ratio, fmt.Sprintf("p99 ≤%.1f×, no loss", w2P99Goal),
					func(x float64) bool { return x > 0 && x <= w2P99Goal && okLoss })
				r.Goal, r.Lower = w2P99Goal, true
			}
			r.Latency = map[string]float64{"p50": median(s.p50), "p99": median(s.p99)}
			r.Extra = map[string]float64{"msgs/s": median(s.tput), "relay RSS MiB": rssMiB,
				"lost (all rounds)": float64(s.lost), "duplicates (all rounds)": float64(s.dups),
				"unexpected (all rounds)": float64(s.unexpected)}
			if phase == "unpaced" && base != "" {
				r.Extra["msgs/s vs hand-written"] = median(s.tputRatio)
			}
			res = append(res, r)
		}
	}
	return res
}

// w2TracingReport builds the tracing rows: CPU/msg of each variant against
// (a) within each round. (d) must have exported spans in every round and
// (b) none in any round, or the row is not met.
func w2TracingReport(series map[w2Key]*w2Series, traceN int) []result {
	wl := fmt.Sprintf("W2 relay tracing (pipeline, sync publish, OTLP/HTTP to a discarding receiver), %d msgs unpaced (fewer than the relay rows, to bound the run)", traceN)
	var res []result
	for i, tv := range w2Tracing {
		s := series[w2Key{tv.name, "unpaced"}]
		if s == nil {
			continue
		}
		var r result
		if i == 0 {
			r = summarize(wl, tv.label, "", "CPU µs/msg", s.cpu, nil, "", nil)
		} else {
			spansOK, spansWant := true, ""
			switch tv.name {
			case "trace-off":
				spansOK, spansWant = s.spans == 0, "none exported"
			case "trace-on":
				// Every record makes several spans; at least one per hot
				// output in every round.
				spansOK, spansWant = s.spansMin > 0, "spans exported every round"
			}
			cpuR := median(s.cpuRatio)
			r = summarize(wl, tv.label, w2Tracing[0].label, "CPU µs/msg", s.cpu, s.cpuRatio,
				fmt.Sprintf("CPU/msg ≤%.2f×", tv.goal)+map[bool]string{true: ", " + spansWant, false: ""}[spansWant != ""],
				func(x float64) bool { return x <= tv.goal && spansOK && s.lost == 0 && s.unexpected == 0 })
			r.Goal, r.Lower = tv.goal, true
			r.Note = fmt.Sprintf("CPU/msg %.2f× %s; spans %d (all rounds) %s; lost %d, unexpected %d",
				cpuR, mark(cpuR <= tv.goal), s.spans, mark(spansOK), s.lost, s.unexpected)
		}
		r.Latency = map[string]float64{"p50": median(s.p50), "p99": median(s.p99)}
		r.Extra = map[string]float64{"msgs/s": median(s.tput), "relay RSS MiB": median(s.rss),
			"spans (all rounds)": float64(s.spans), "lost (all rounds)": float64(s.lost), "duplicates (all rounds)": float64(s.dups)}
		res = append(res, r)
	}
	return res
}

// startMosquitto runs mosquitto on a free loopback port with a generated
// configuration; stop kills it (by its PID) and waits for it.
func startMosquitto(ctx context.Context, dir string) (stop func(), url string, err error) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto"
		if _, serr := os.Stat(bin); serr != nil {
			return nil, "", &skipError{reason: "mosquitto is not installed (apt-get install -y mosquitto, or make deps)"}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nmax_inflight_messages 0\nset_tcp_nodelay true\nlog_dest none\n", port)
	if os.Geteuid() == 0 {
		conf = "user root\n" + conf
	}
	cf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin, "-c", cf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return stop, "mqtt://" + addr, nil
		}
		select {
		case werr := <-exited:
			return nil, "", fmt.Errorf("mosquitto exited at start: %v", werr)
		case <-ctx.Done():
			stop()
			return nil, "", ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, "", errors.New("mosquitto did not start listening within 10 s")
		}
	}
}

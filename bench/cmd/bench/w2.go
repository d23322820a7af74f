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
	MsgsPerSec float64 `json:"msgs_per_sec"`
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`
	CPUusMsg   float64 `json:"cpu_us_per_msg"`
	RSSMiB     float64 `json:"rss_mib"`
}

// runW2 starts mosquitto on a free loopback port and runs the W2 program
// (bench/w2mqtt, built once) against it once per round; each invocation
// runs the hand-written relay and then the pipeline relay, each in its
// own child process, unpaced and then paced.
func runW2(ctx context.Context, cfg *config) ([]result, error) {
	n := cfg.pick(100_000, 5_000)
	paced, rate := 10_000, 2000
	if cfg.quick {
		paced = 1000
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
	type key struct{ relay, phase string }
	cpu, tput, p50, p99, rss, lost, dups := map[key][]float64{}, map[key][]float64{}, map[key][]float64{}, map[key][]float64{}, map[key][]float64{}, map[key]int{}, map[key]int{}
	cpuRatio, p99Ratio, tputRatio := []float64{}, []float64{}, []float64{}
	for round := 0; round < cfg.rounds; round++ {
		out := filepath.Join(cfg.dir, fmt.Sprintf("w2-%d.json", round))
		cmd := exec.CommandContext(ctx, bin, "-broker", url, "-n", strconv.Itoa(n), "-paced", strconv.Itoa(paced),
			"-rate", strconv.Itoa(rate), "-json", out)
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
		got := map[key]w2Result{}
		for _, r := range rs {
			k := key{r.Relay, r.Phase}
			got[k] = r
			cpu[k] = append(cpu[k], r.CPUusMsg)
			tput[k] = append(tput[k], r.MsgsPerSec)
			p50[k] = append(p50[k], r.P50us)
			p99[k] = append(p99[k], r.P99us)
			rss[k] = append(rss[k], r.RSSMiB)
			lost[k] += r.Lost
			dups[k] += r.Duplicates
		}
		h, p := got[key{"handwritten", "unpaced"}], got[key{"pipeline", "unpaced"}]
		if h.CPUusMsg == 0 || p.CPUusMsg == 0 {
			return nil, fmt.Errorf("round %d: w2mqtt reported no unpaced figures: %s", round+1, b)
		}
		cpuRatio = append(cpuRatio, p.CPUusMsg/h.CPUusMsg)
		tputRatio = append(tputRatio, p.MsgsPerSec/h.MsgsPerSec)
		if hp, pp := got[key{"handwritten", "paced"}], got[key{"pipeline", "paced"}]; hp.P99us > 0 && pp.P99us > 0 {
			p99Ratio = append(p99Ratio, pp.P99us/hp.P99us)
		}
	}
	var res []result
	for _, phase := range []string{"unpaced", "paced"} {
		wl := fmt.Sprintf("W2 MQTT relay, QoS 1, %d msgs unpaced", n)
		if phase == "paced" {
			if paced == 0 {
				continue
			}
			wl = fmt.Sprintf("W2 MQTT relay, QoS 1, %d msgs paced at %d/s", paced, rate)
		}
		for _, relay := range []string{"handwritten", "pipeline"} {
			k := key{relay, phase}
			var r result
			variant := map[string]string{"handwritten": "hand-written paho relay", "pipeline": "aimdb-flow pipeline"}[relay]
			base := ""
			if relay == "pipeline" {
				base = "hand-written paho relay"
			}
			rssMiB, lossN := median(rss[k]), lost[k]
			if phase == "unpaced" {
				if base == "" {
					r = summarize(wl, variant, "", "CPU µs/msg", cpu[k], nil, "", nil)
				} else {
					r = summarize(wl, variant, base, "CPU µs/msg", cpu[k], cpuRatio, "CPU/msg ≤1.1×, ≤32 MiB RSS, no loss",
						func(x float64) bool { return x <= 1.1 && rssMiB <= 32 && lossN == 0 })
					r.Goal, r.Lower = 1.1, true
				}
			} else {
				if base == "" {
					r = summarize(wl, variant, "", "p99 µs", p99[k], nil, "", nil)
				} else {
					r = summarize(wl, variant, base, "p99 µs", p99[k], p99Ratio, "p99 no worse (≤1.0×), no loss",
						func(x float64) bool { return x <= 1.0 && lossN == 0 })
					r.Goal, r.Lower = 1.0, true
				}
			}
			r.Latency = map[string]float64{"p50": median(p50[k]), "p99": median(p99[k])}
			r.Extra = map[string]float64{"msgs/s": median(tput[k]), "relay RSS MiB": rssMiB,
				"lost (all rounds)": float64(lossN), "duplicates (all rounds)": float64(dups[k])}
			if phase == "unpaced" && base != "" {
				r.Extra["msgs/s vs hand-written"] = median(tputRatio)
			}
			res = append(res, r)
		}
	}
	return res, nil
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

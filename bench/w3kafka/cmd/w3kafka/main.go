// Command w3kafka runs workload W3 (Kafka consume -> filter -> produce with
// at-least-once commits) against an in-process kfake cluster: the
// hand-written kafka-go loop, the hand-written franz-go loop, the
// aimdb-flow pipeline built with the Go API on raw bytes and the pipeline
// loaded from w3.flow alternate, each in a fresh child process, for -rounds
// rounds; every run is verified (w3kafka.Verify) before it counts.
//
//	go run ./bench/w3kafka/cmd/w3kafka            # 500k records, 3 rounds
//	go run ./bench/w3kafka/cmd/w3kafka -n 50000 -rounds 1
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/aimdb-dev/aimdb-flow/bench/w3kafka"
	"github.com/twmb/franz-go/pkg/kfake"
)

type childResult struct {
	w3kafka.Result
	CPU    time.Duration
	MaxRSS int64 // bytes
}

func main() {
	var (
		n       = flag.Int("n", 500_000, "records in the input topic")
		rounds  = flag.Int("rounds", 3, "rounds (each runs every variant once)")
		child   = flag.String("child", "", "internal: run one variant")
		brokers = flag.String("brokers", "", "internal: broker list for -child")
		group   = flag.String("group", "", "internal: group for -child")
		output  = flag.String("output", "", "internal: output topic for -child")
		expect  = flag.Int("expect", 0, "internal: records passing the filter")
		prof    = flag.String("cpuprofile", "", "write a CPU profile of each child to this path prefix")
	)
	flag.Parse()
	if *prof != "" && *child != "" {
		f, err := os.Create(*prof + "." + *child + ".pprof")
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer f.Close()
			code := runChild(*child, w3kafka.Job{Brokers: strings.Split(*brokers, ","), Group: *group, Output: *output, Records: *n, Expect: *expect})
			pprof.StopCPUProfile()
			os.Exit(code)
		}
	}
	if *child != "" {
		os.Exit(runChild(*child, w3kafka.Job{Brokers: strings.Split(*brokers, ","), Group: *group, Output: *output, Records: *n, Expect: *expect}))
	}
	if err := drive(*n, *rounds, *prof); err != nil {
		fmt.Fprintln(os.Stderr, "w3kafka:", err)
		os.Exit(1)
	}
}

func runChild(variant string, job w3kafka.Job) int {
	ctx := context.Background()
	var res w3kafka.Result
	var err error
	switch variant {
	case "kafkago":
		res, err = w3kafka.KafkaGo(ctx, job)
	case "franz":
		res, err = w3kafka.Franz(ctx, job)
	case "pipeline":
		res, err = w3kafka.Pipeline(ctx, job)
	case "flow":
		res, err = w3kafka.Flow(ctx, job)
	default:
		err = fmt.Errorf("unknown variant %q", variant)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	// Peak RSS from /proc (VmHWM starts afresh at exec; getrusage's
	// ru_maxrss would carry the parent's peak across the fork).
	cr := childResult{Result: res, MaxRSS: vmHWM(), CPU: time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
	_ = json.NewEncoder(os.Stdout).Encode(cr)
	return 0
}

func drive(n, rounds int, prof string) error {
	ctx := context.Background()
	// One broker on a free loopback port.
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ListenFn(func(network, _ string) (net.Listener, error) {
		return net.Listen(network, "127.0.0.1:0")
	}))
	if err != nil {
		return err
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	fmt.Printf("W3: %d records, %d partitions, kfake in-process at %s, %d rounds\n", n, w3kafka.Partitions, brokers[0], rounds)
	t0 := time.Now()
	pass, err := w3kafka.Generate(ctx, brokers, n)
	if err != nil {
		return err
	}
	fmt.Printf("produced input in %v; %d records pass the filter\n", time.Since(t0).Round(time.Millisecond), pass)
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	variants := []string{"kafkago", "flow", "pipeline", "franz"}
	results := map[string][]childResult{}
	ratios := map[string][]float64{}
	for round := 0; round < rounds; round++ {
		got := map[string]float64{}
		for _, v := range variants {
			out := fmt.Sprintf("w3-out-%s-%d", v, round)
			if err := w3kafka.CreateTopic(ctx, brokers, out, w3kafka.Partitions); err != nil {
				return err
			}
			args := []string{"-child", v, "-brokers", strings.Join(brokers, ","),
				"-group", fmt.Sprintf("w3-%s-%d", v, round), "-output", out, "-n", fmt.Sprint(n), "-expect", fmt.Sprint(pass)}
			if prof != "" {
				args = append(args, "-cpuprofile", prof)
			}
			cmd := exec.CommandContext(ctx, exe, args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("%s: %w: %s", v, err, stderr.String())
			}
			var cr childResult
			if err := json.Unmarshal(stdout.Bytes(), &cr); err != nil {
				return fmt.Errorf("%s output %q: %w", v, stdout.String(), err)
			}
			cmp := w3kafka.CompareBytes
			if v == "flow" {
				cmp = w3kafka.CompareJSON // it re-encodes the values
			}
			ck, err := w3kafka.Verify(ctx, w3kafka.Job{Brokers: brokers, Group: fmt.Sprintf("w3-%s-%d", v, round), Output: out, Records: n, Compare: cmp})
			if err != nil {
				return fmt.Errorf("%s round %d: %w", v, round+1, err)
			}
			if ck.Duplicates > 0 {
				fmt.Printf("round %d %s: %d duplicates\n", round+1, v, ck.Duplicates)
			}
			results[v] = append(results[v], cr)
			got[v] = float64(n) / cr.Work.Seconds()
			fmt.Printf("round %d %-8s %9.0f rec/s  work %-8v wall incl. commit %-8v commit lag %-8v uncommitted at output end %6d  out %d  cpu %v  rss %.1f MiB\n",
				round+1, v, got[v], cr.Work.Round(time.Millisecond), cr.Wall.Round(time.Millisecond), cr.CommitLag.Round(time.Millisecond), cr.LagRecords,
				cr.Out, cr.CPU.Round(time.Millisecond), float64(cr.MaxRSS)/(1<<20))
		}
		ratios["flow/kafkago"] = append(ratios["flow/kafkago"], got["flow"]/got["kafkago"])
		ratios["pipeline/kafkago"] = append(ratios["pipeline/kafkago"], got["pipeline"]/got["kafkago"])
		ratios["franz/kafkago"] = append(ratios["franz/kafkago"], got["franz"]/got["kafkago"])
		ratios["flow/franz"] = append(ratios["flow/franz"], got["flow"]/got["franz"])
	}
	fmt.Println()
	fmt.Println("| variant | rec/s (median, until output complete) | rec/s incl. final commit | commit lag (median) | uncommitted at output end (median) | CPU ns/rec | RSS MiB |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, v := range variants {
		var rps, wrps, lag, lrec, cpu, rss []float64
		for _, cr := range results[v] {
			rps = append(rps, float64(n)/cr.Work.Seconds())
			wrps = append(wrps, float64(n)/cr.Wall.Seconds())
			lag = append(lag, float64(cr.CommitLag.Milliseconds()))
			lrec = append(lrec, float64(cr.LagRecords))
			cpu = append(cpu, float64(cr.CPU.Nanoseconds())/float64(n))
			rss = append(rss, float64(cr.MaxRSS)/(1<<20))
		}
		fmt.Printf("| %s | %.0f | %.0f | %.0f ms | %.0f | %.0f | %.1f |\n", v, median(rps), median(wrps), median(lag), median(lrec), median(cpu), median(rss))
	}
	fmt.Println()
	for _, k := range []string{"flow/kafkago", "pipeline/kafkago", "franz/kafkago", "flow/franz"} {
		fmt.Printf("%s throughput, per round: %v; median %.2f×\n", k, fmtRatios(ratios[k]), median(ratios[k]))
	}
	return nil
}

// vmHWM returns the process's peak resident set size in bytes (0 if
// unknown).
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb * 1024
		}
	}
	return 0
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func fmtRatios(rs []float64) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%.2f", r)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// Command w2mqtt is benchmark W2: an MQTT relay through mosquitto.
//
// A producer publishes N JSON messages (~80 bytes) to sensors/temp at QoS
// 1; a relay keeps those with temp > 25 (half of them) and republishes them
// to alerts/temp at QoS 1; a consumer receives them. Every relay runs in a
// fresh child process so its CPU time and peak RSS belong to it alone:
//
//   - handwritten (the baseline): the relay a competent engineer writes
//     with paho.golang (autopaho): separate subscribe and publish
//     connections with buffered reads and TCP_NODELAY; one reused
//     fastjson parser reading "temp", compared in Go (the pipeline's filter
//     is also a Go function, stages.FilterValue, so both sides pay the
//     same for the comparison); the original payload republished byte for
//     byte; a fixed pool of 32 publishers, so at most 32 QoS 1 publishes
//     are in flight and no goroutine is started per message; manual acks,
//     each hot input acknowledged only after its republish's PUBACK
//     (at-least-once), cold ones at once, PUBACKs sent in arrival order.
//   - pipeline: the same relay as an aimdb-flow graph (mqtt connector, JSON
//     codec, FilterValue stage, JSON re-encoded on output) run by
//     pipeline.Runner with default settings: each output publish waits for
//     its PUBACK before the next.
//   - pipeline-async: the same graph with the connector's async_publish
//     setting (up to 32 QoS 1 publishes in flight, acks finished on
//     confirmation).
//   - trace-none, trace-off, trace-1pct, trace-on (-trace-n messages,
//     unpaced): the pipeline relay with tracing set up by otelflow.Setup
//     from the OTEL_* environment, as the CLI does: no OTEL_* variable
//     (tracing off, no tracer), or OTLP/HTTP export to a discarding
//     receiver (bench/otlpsink, run in this parent process) with
//     OTEL_TRACES_SAMPLER always_off, parentbased_traceidratio 0.01, or
//     always_on. The receiver's span count is reported per run.
//
// Reported per relay and phase: msgs/s (input messages over the time from
// the first publish to the last output received), end-to-end latency
// p50/p99 (from the producer's timestamp in the payload to the consumer),
// relay CPU microseconds per input message (user+sys from wait4), relay
// peak RSS (the child's VmHWM, which it prints at exit), and the exact
// accounting of the outputs by id: lost (hot ids never received),
// duplicates (extra copies), unexpected (outputs that are not a hot input).
// A second, paced phase (-rate) measures latency at a steady rate.
//
//	go run ./bench/w2mqtt                 # 200,000 messages, 10,000 paced at 2,000/s, 20,000 per tracing variant
//	go run ./bench/w2mqtt -n 20000 -paced 4000 -trace-n 0
//
// mosquitto must be installed; the command starts its own on a free
// loopback port and stops it at the end (or uses -broker).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"github.com/valyala/fastjson"

	"github.com/aimdb-dev/aimdb-flow/bench/otlpsink"

	"github.com/aimdb-dev/aimdb-flow/connectors/mqtt"
	"github.com/aimdb-dev/aimdb-flow/observability/otelflow"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

const maxN = 200000

func main() {
	role := flag.String("role", "", "internal: run a relay child (handwritten|pipeline)")
	broker := flag.String("broker", "", "broker URL (default: start mosquitto on a free port)")
	n := flag.Int("n", maxN, "messages in the throughput phase (at most 200000)")
	paced := flag.Int("paced", 10000, "messages in the paced phase (0: skip)")
	rate := flag.Int("rate", 2000, "messages per second in the paced phase")
	traceN := flag.Int("trace-n", 20000, "messages per tracing variant, unpaced (0: skip the tracing variants)")
	reverse := flag.Bool("reverse", false, "run the relays (and the tracing variants) in reverse order (the harness alternates it by round)")
	jsonOut := flag.String("json", "", "also write the results as JSON to this file")
	flag.Parse()
	if *role != "" {
		if path := os.Getenv("W2_CPUPROFILE"); path != "" {
			f, err := os.Create(path + "." + *role)
			if err == nil {
				_ = pprof.StartCPUProfile(f)
				defer pprof.StopCPUProfile()
			}
		}
		if err := relay(*role, *broker); err != nil {
			fmt.Fprintln(os.Stderr, "relay:", err)
			pprof.StopCPUProfile()
			os.Exit(1)
		}
		// The parent reads the peak RSS from this line: ru_maxrss of a
		// child started by Go begins at the parent's own peak.
		fmt.Printf("VMHWM %d\n", vmHWM())
		return
	}
	if *n <= 0 || *n > maxN {
		fmt.Fprintf(os.Stderr, "-n must be in 1..%d\n", maxN)
		os.Exit(2)
	}
	*paced = min(max(*paced, 0), maxN)
	*traceN = min(max(*traceN, 0), maxN)
	if err := runAll(*broker, *n, *paced, *rate, *traceN, *reverse, *jsonOut); err != nil {
		fmt.Fprintln(os.Stderr, "w2mqtt:", err)
		os.Exit(1)
	}
}

// Result is one relay's figures in one phase.
type Result struct {
	Relay    string `json:"relay"`
	Phase    string `json:"phase"`
	Messages int    `json:"messages"`
	// Expected is the number of hot ids (temp > 25) among the inputs;
	// Received counts the distinct hot ids that reached the consumer, Lost
	// is Expected - Received, Duplicates the extra copies, Unexpected the
	// outputs whose id is not a hot input id (cold or malformed).
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
	// Sampler is OTEL_TRACES_SAMPLER[=ARG] of a tracing variant ("" for
	// none); Spans is what the OTLP receiver got from the relay.
	Sampler string `json:"sampler,omitempty"`
	Spans   int64  `json:"spans"`
}

// variant is one relay child: the role it runs and the extra environment.
type variant struct {
	name, role string
	env        []string
	sampler    string
}

// tracingVariants are the pipeline relay (default synchronous publish)
// with tracing set up through otelflow.Setup from the environment,
// exporting over OTLP/HTTP to the parent's discarding receiver.
func tracingVariants(endpoint string) []variant {
	otlp := func(sampler, arg string) []string {
		// AIMDB_OTEL_BSP_BLOCK: a full span queue makes the relay wait
		// for the exporter instead of dropping spans (the SDK default),
		// so always_on pays for every span it makes.
		e := []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_TRACES_SAMPLER=" + sampler,
			"AIMDB_OTEL_BSP_BLOCK=true"}
		if arg != "" {
			e = append(e, "OTEL_TRACES_SAMPLER_ARG="+arg)
		}
		return e
	}
	return []variant{
		{name: "trace-none", role: "pipeline"},
		{name: "trace-off", role: "pipeline", env: otlp("always_off", ""), sampler: "always_off"},
		{name: "trace-1pct", role: "pipeline", env: otlp("parentbased_traceidratio", "0.01"), sampler: "parentbased_traceidratio=0.01"},
		{name: "trace-on", role: "pipeline", env: otlp("always_on", ""), sampler: "always_on"},
	}
}

func runAll(brokerURL string, n, paced, rate, traceN int, reverse bool, jsonOut string) error {
	if brokerURL == "" {
		stop, u, err := startMosquitto()
		if err != nil {
			return err
		}
		defer stop()
		brokerURL = u
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("W2 MQTT relay through mosquitto: %d msgs unpaced + %d paced at %d/s, tracing variants %d msgs unpaced, QoS 1, GOMAXPROCS=%d, %s, load average %s\n",
		n, paced, rate, traceN, runtime.GOMAXPROCS(0), runtime.Version(), strings.TrimSpace(string(load)))
	var results []Result
	relays := []variant{{name: "handwritten", role: "handwritten"}, {name: "pipeline", role: "pipeline"}, {name: "pipeline-async", role: "pipeline-async"}}
	if os.Getenv("W2_CONNECTOR") != "" {
		relays = append(relays, variant{name: "connector", role: "connector"})
	}
	order := func(vs []variant) []variant {
		out := slices.Clone(vs)
		if reverse {
			slices.Reverse(out)
		}
		return out
	}
	for _, v := range order(relays) {
		for _, ph := range []struct {
			name string
			n    int
			rate int
		}{{"unpaced", n, 0}, {"paced", paced, rate}} {
			if ph.n == 0 {
				continue
			}
			r, err := runOne(brokerURL, v, ph.name, ph.n, ph.rate, nil)
			if err != nil {
				return fmt.Errorf("%s %s: %w", v.name, ph.name, err)
			}
			results = append(results, r)
		}
	}
	if traceN > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		sink, err := otlpsink.Start(ctx)
		if err != nil {
			return err
		}
		defer sink.Close()
		for _, v := range order(tracingVariants(sink.URL())) {
			r, err := runOne(brokerURL, v, "unpaced", traceN, 0, sink)
			if err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
			results = append(results, r)
		}
	}
	fmt.Printf("\n| relay | phase | msgs | msgs/s | p50 µs | p99 µs | relay CPU µs/msg | relay RSS MiB | lost | dups | unexpected | spans |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Printf("| %s | %s | %d | %.0f | %.0f | %.0f | %.2f | %.1f | %d | %d | %d | %d |\n",
			r.Relay, r.Phase, r.Messages, r.MsgsPerSec, r.P50us, r.P99us, r.CPUusMsg, r.RSSMiB, r.Lost, r.Duplicates, r.Unexpected, r.Spans)
	}
	byKey := map[string]Result{}
	for _, r := range results {
		byKey[r.Relay+"/"+r.Phase] = r
	}
	fmt.Println()
	for _, v := range relays[1:] {
		h, p := byKey["handwritten/unpaced"], byKey[v.name+"/unpaced"]
		if h.CPUusMsg > 0 && p.CPUusMsg > 0 {
			fmt.Printf("%s / handwritten: CPU per msg %.2fx (target <= 1.1x), throughput %.2fx, RSS %.1f MiB (target <= 24), lost %d (target 0), dups %d\n",
				v.name, p.CPUusMsg/h.CPUusMsg, p.MsgsPerSec/h.MsgsPerSec, p.RSSMiB, p.Lost, p.Duplicates)
		}
		if h, p := byKey["handwritten/paced"], byKey[v.name+"/paced"]; h.P99us > 0 && p.P99us > 0 {
			fmt.Printf("%s paced p99: %.0f µs vs handwritten %.0f µs (%.2fx, target <= 1.2x)\n", v.name, p.P99us, h.P99us, p.P99us/h.P99us)
		}
	}
	if none := byKey["trace-none/unpaced"]; none.CPUusMsg > 0 {
		for _, t := range []struct {
			name string
			goal float64
		}{{"trace-off", 1.03}, {"trace-1pct", 1.10}, {"trace-on", 3}} {
			r := byKey[t.name+"/unpaced"]
			fmt.Printf("%s (%s) / trace-none: CPU per msg %.2fx (target <= %.2fx), %d spans exported\n", t.name, r.Sampler, r.CPUusMsg/none.CPUusMsg, t.goal, r.Spans)
		}
	}
	if jsonOut != "" {
		b, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// ---- mosquitto ----

func startMosquitto() (stop func(), brokerURL string, err error) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto"
		if _, serr := os.Stat(bin); serr != nil {
			return nil, "", errors.New("mosquitto is not installed (apt-get install -y mosquitto)")
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "w2mqtt")
	if err != nil {
		return nil, "", err
	}
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
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		_ = os.RemoveAll(dir)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, "", fmt.Errorf("mosquitto did not start: %w", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return stop, "mqtt://" + addr, nil
}

// ---- one measured run ----

type reading struct {
	Seq  int     `json:"seq"`
	Dev  string  `json:"device"`
	Temp float64 `json:"temp"`
	TS   int64   `json:"ts"`
	Site string  `json:"site"`
}

func tempOf(i int) float64 { return 20 + float64(i%10) + 0.5 } // 25.5..29.5 are hot: 5 in 10

// isHot reports whether input id seq (of n) passes the relay's filter.
func isHot(seq, n int) bool { return seq >= 0 && seq < n && tempOf(seq) > 25 }

// childEnv is the parent's environment without OTEL_* variables, plus extra.
func childEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// tally is the consumer's exact accounting of the outputs.
type tally struct {
	mu         sync.Mutex
	n          int
	seen       map[int]int // hot id -> copies received
	unexpected int
	lat        []float64 // µs, first copy of each id
}

// add records one output payload received at now (Unix ns) and returns the
// number of distinct hot ids seen so far.
func (t *tally) add(p *fastjson.Parser, payload []byte, now int64) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	v, err := p.ParseBytes(payload)
	seq := -1
	if err == nil {
		// Numbers as float64: a relay that re-encodes may write them in
		// any JSON number form.
		if sv := v.Get("seq"); sv != nil {
			if f, ferr := sv.Float64(); ferr == nil && f == float64(int(f)) {
				seq = int(f)
			}
		}
	}
	if err != nil || !isHot(seq, t.n) {
		t.unexpected++
		return len(t.seen)
	}
	t.seen[seq]++
	if t.seen[seq] == 1 {
		t.lat = append(t.lat, (float64(now)-v.GetFloat64("ts"))/1e3)
	}
	return len(t.seen)
}

func runOne(brokerURL string, v variant, phase string, n, rate int, sink *otlpsink.Sink) (Result, error) {
	res := Result{Relay: v.name, Phase: phase, Messages: n, Sampler: v.sampler}
	for i := 0; i < n; i++ {
		if isHot(i, n) {
			res.Expected++
		}
	}
	if sink != nil {
		sink.Reset()
	}
	// The relay child.
	self, err := os.Executable()
	if err != nil {
		return res, err
	}
	child := exec.Command(self, "-role", v.role, "-broker", brokerURL)
	child.Env = childEnv(v.env)
	child.Stderr = os.Stderr
	stdin, err := child.StdinPipe()
	if err != nil {
		return res, err
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		return res, err
	}
	child.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := child.Start(); err != nil {
		return res, err
	}
	defer func() { _ = child.Process.Kill() }()
	br := bufio.NewReader(stdout)
	line, err := br.ReadString('\n')
	if err != nil || line != "READY\n" {
		return res, fmt.Errorf("relay did not start: %q %v", line, err)
	}
	// The rest of the child's stdout: its VMHWM line at exit.
	hwm := make(chan int64, 1)
	go func() {
		var kb int64 = -1
		for {
			l, err := br.ReadString('\n')
			if f, ok := strings.CutPrefix(l, "VMHWM "); ok {
				kb, _ = strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			}
			if err != nil {
				hwm <- kb
				return
			}
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Consumer.
	t := &tally{n: n, seen: make(map[int]int, res.Expected), lat: make([]float64, 0, res.Expected)}
	var parser fastjson.Parser // guarded by t.mu
	var lastRecv atomic.Int64
	gotAll := make(chan struct{})
	var gotOnce sync.Once
	cons, err := connect(ctx, brokerURL, "w2-consumer", func(p *paho.Publish) {
		now := time.Now().UnixNano()
		k := t.add(&parser, p.Payload, now)
		lastRecv.Store(now)
		if k == res.Expected {
			gotOnce.Do(func() { close(gotAll) })
		}
	})
	if err != nil {
		return res, err
	}
	defer cons.Disconnect(context.Background())
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = cons.Subscribe(sctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "alerts/temp", QoS: 1}}})
	scancel()
	if err != nil {
		return res, err
	}
	prod, err := connect(ctx, brokerURL, "w2-producer", nil)
	if err != nil {
		return res, err
	}
	defer prod.Disconnect(context.Background())

	start := time.Now()
	if err := produce(ctx, prod, n, rate); err != nil {
		return res, err
	}
	// Wait for every expected output, or 10 s without progress.
	for done := false; !done; {
		select {
		case <-gotAll:
			done = true
		case <-time.After(500 * time.Millisecond):
			last := lastRecv.Load()
			if last == 0 {
				last = start.UnixNano()
			}
			if time.Since(time.Unix(0, last)) > 10*time.Second {
				done = true
			}
		}
	}
	end := time.Unix(0, lastRecv.Load())
	// Stop the relay and read its resource usage.
	stdin.Close()
	kb := <-hwm
	werr := child.Wait()
	if werr != nil {
		return res, fmt.Errorf("relay exited: %w", werr)
	}
	if kb < 0 {
		return res, errors.New("relay did not report its peak RSS (VMHWM line)")
	}
	ru := child.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	res.CPUusMsg = float64(cpu.Microseconds()) / float64(n)
	res.RSSMiB = float64(kb) / 1024
	if sink != nil {
		res.Spans = sink.Spans()
		if bad := sink.Bad(); bad > 0 {
			return res, fmt.Errorf("the OTLP receiver could not decode %d export requests", bad)
		}
	}
	t.mu.Lock()
	res.Received = len(t.seen)
	for _, c := range t.seen {
		res.Duplicates += c - 1
	}
	res.Unexpected = t.unexpected
	lat := t.lat
	t.mu.Unlock()
	if os.Getenv("W2_DEBUG") != "" {
		slow := 0
		first := -1
		for i, l := range lat {
			if l > 50000 {
				slow++
				if first < 0 {
					first = i
				}
			}
		}
		fmt.Fprintf(os.Stderr, "%s %s: %d outputs slower than 50ms, first at arrival #%d\n", v.name, phase, slow, first)
	}
	sort.Float64s(lat)
	if len(lat) > 0 {
		res.P50us = lat[len(lat)/2]
		res.P99us = lat[len(lat)*99/100]
	}
	res.Lost = res.Expected - res.Received
	if d := end.Sub(start); d > 0 {
		res.MsgsPerSec = float64(n) / d.Seconds()
	}
	fmt.Fprintf(os.Stderr, "%s %s: %d/%d received in %v\n", v.name, phase, res.Received, res.Expected, end.Sub(start).Round(time.Millisecond))
	return res, nil
}

// vmHWM is this process's peak resident set in KiB (VmHWM), or 0.
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(f), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}

// produce publishes n readings at QoS 1: unpaced with 16 publishers in
// flight, paced from one goroutine at rate msgs/s.
func produce(ctx context.Context, cm *autopaho.ConnectionManager, n, rate int) error {
	pub := func(i int) error {
		r := reading{Seq: i, Dev: "d-" + strconv.Itoa(i%16), Temp: tempOf(i), TS: time.Now().UnixNano(), Site: "bench"}
		b, _ := json.Marshal(r)
		_, err := cm.Publish(ctx, &paho.Publish{Topic: "sensors/temp", QoS: 1, Payload: b})
		return err
	}
	if rate > 0 {
		interval := time.Second / time.Duration(rate)
		next := time.Now()
		for i := 0; i < n; i++ {
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
			next = next.Add(interval)
			if err := pub(i); err != nil {
				return err
			}
		}
		return nil
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := pub(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func connect(ctx context.Context, brokerURL, id string, onMsg func(*paho.Publish)) (*autopaho.ConnectionManager, error) {
	u, err := url.Parse(brokerURL)
	if err != nil {
		return nil, err
	}
	cfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     30,
		CleanStartOnInitialConnection: true,
		ConnectTimeout:                5 * time.Second,
		ClientConfig:                  paho.ClientConfig{ClientID: id},
	}
	if onMsg != nil {
		cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			onMsg(pr.Packet)
			return true, nil
		}}
	}
	cm, err := autopaho.NewConnection(ctx, cfg)
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := cm.AwaitConnection(actx); err != nil {
		return nil, err
	}
	return cm, nil
}

// ---- relays (child processes) ----

// relay runs until stdin is closed, then stops cleanly.
func relay(kind, brokerURL string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); cancel() }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	go func() { <-sig; cancel() }()
	switch kind {
	case "pipeline":
		return pipelineRelay(ctx, brokerURL, false)
	case "pipeline-async":
		return pipelineRelay(ctx, brokerURL, true)
	case "handwritten":
		return handRelay(ctx, brokerURL)
	case "connector":
		return connectorRelay(ctx, brokerURL)
	}
	return fmt.Errorf("unknown relay %q", kind)
}

// pipelineRelay runs the relay as an aimdb-flow graph. Tracing is set up
// the way the CLI does it, through otelflow.Setup from the OTEL_*
// environment: without those variables tracing is off and the runner gets
// no tracer at all.
func pipelineRelay(ctx context.Context, brokerURL string, async bool) error {
	tp, err := otelflow.Setup(ctx, otelflow.Config{})
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			fmt.Fprintln(os.Stderr, "relay: flushing spans:", err)
		}
	}()
	params := pipeline.Params{"client_id": "w2-relay-pipeline", "clean_start": "true"}
	if async {
		params["async_publish"] = "true"
	}
	b, err := mqtt.Factory(brokerURL, params)
	if err != nil {
		return err
	}
	// The filter is a compiled Go function, like the hand relay's: the
	// comparison itself costs the same on both sides.
	g := pipeline.New().Connector("mqtt", b)
	g.Record("sensor.temp").From("mqtt://sensors/temp", codec.JSON{}, pipeline.WithParams(pipeline.Params{"qos": "1"}))
	g.Pipeline("alerts").From("sensor.temp").
		Via(stages.FilterValue(func(m map[string]any) bool {
			t, _ := m["temp"].(float64)
			return t > 25
		})).
		To("mqtt://alerts/temp", codec.JSON{}, pipeline.WithParams(pipeline.Params{"qos": "1"}))
	level := slog.LevelWarn
	if os.Getenv("W2_DEBUG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{Logger: log, Tracer: tp.PipelineTracer()})
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	for r.Ready() != nil {
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Millisecond):
		}
	}
	fmt.Println("READY")
	return <-done
}

// handRelay is what a competent engineer writes by hand with paho.golang
// for this job, with nothing the pipeline does that the job does not need:
//
//   - two connections (subscribe, publish), reads buffered (paho reads
//     packet headers byte by byte), TCP_NODELAY, the same receive maximum
//     (512) and ack interval (2 ms) as the connector's defaults;
//   - one reused fastjson.Parser in paho's (single) receive goroutine,
//     reading only "temp"; the filter is compiled Go (t > 25), the same
//     as the pipeline's FilterValue stage;
//   - the original payload bytes republished unchanged (the relay does
//     not modify a message; re-encoding is the pipeline's cost);
//   - no goroutine per message: a fixed pool of relayWindow publishers
//     takes hot messages from an unbuffered channel, so at most
//     relayWindow QoS 1 publishes are in flight and the receive goroutine
//     waits when all are busy;
//   - manual acks: a cold or malformed message is acked at once, a hot one
//     only after its republish was confirmed by PUBACK (at-least-once);
//     paho sends the PUBACKs in arrival order whatever order Ack is called
//     in.
func handRelay(ctx context.Context, brokerURL string) error {
	u, err := url.Parse(brokerURL)
	if err != nil {
		return err
	}
	type job struct {
		in  *paho.Publish
		cli *paho.Client
	}
	jobs := make(chan job)
	var parser fastjson.Parser // used only by paho's receive goroutine
	ready := make(chan struct{})
	var readyOnce sync.Once
	rm := uint16(512)
	cfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     30,
		CleanStartOnInitialConnection: true,
		SessionExpiryInterval:         300,
		ConnectTimeout:                5 * time.Second,
		AttemptConnection:             dialBuffered,
		ConnectPacketBuilder: func(cp *paho.Connect, _ *url.URL) (*paho.Connect, error) {
			if cp.Properties == nil {
				cp.Properties = &paho.ConnectProperties{}
			}
			cp.Properties.RequestProblemInfo = true
			cp.Properties.ReceiveMaximum = &rm
			return cp, nil
		},
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
			go func() {
				if _, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "sensors/temp", QoS: 1}}}); err == nil {
					readyOnce.Do(func() { close(ready) })
				}
			}()
		},
		ClientConfig: paho.ClientConfig{
			ClientID:                   "w2-relay-hand",
			EnableManualAcknowledgment: true,
			SendAcksInterval:           2 * time.Millisecond,
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
				v, err := parser.ParseBytes(pr.Packet.Payload)
				if err != nil || !(v.GetFloat64("temp") > 25) {
					_ = pr.Client.Ack(pr.Packet)
					return true, nil
				}
				select {
				case jobs <- job{pr.Packet, pr.Client}:
				case <-ctx.Done():
				}
				return true, nil
			}},
		},
	}
	pubCfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     30,
		CleanStartOnInitialConnection: true,
		ConnectTimeout:                5 * time.Second,
		AttemptConnection:             dialBuffered,
		ClientConfig: paho.ClientConfig{
			ClientID: "w2-relay-hand-pub",
			// Publish-only: no router for inbound messages.
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(paho.PublishReceived) (bool, error) { return false, nil }},
		},
	}
	pubCM, err := autopaho.NewConnection(ctx, pubCfg)
	if err != nil {
		return err
	}
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	err = pubCM.AwaitConnection(actx)
	acancel()
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for range relayWindow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var j job
				select {
				case j = <-jobs:
				case <-ctx.Done():
					return
				}
				out := &paho.Publish{Topic: "alerts/temp", QoS: 1, Payload: j.in.Payload}
				// Retry until confirmed (or shutdown): the input stays
				// unacknowledged until then, so nothing is lost.
				for {
					if _, err := pubCM.Publish(ctx, out); err == nil {
						_ = j.cli.Ack(j.in)
						break
					}
					select {
					case <-ctx.Done():
						return
					case <-time.After(10 * time.Millisecond):
					}
				}
			}
		}()
	}
	cm, err := autopaho.NewConnection(ctx, cfg)
	if err != nil {
		return err
	}
	select {
	case <-ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	fmt.Println("READY")
	<-ctx.Done()
	wg.Wait()
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = cm.Disconnect(dctx)
	_ = pubCM.Disconnect(dctx)
	return nil
}

// relayWindow is the hand relay's bound on QoS 1 publishes in flight (the
// connector's async_publish default, max_inflight 32).
const relayWindow = 32

// dialBuffered connects with TCP_NODELAY and buffered reads; writes go
// straight to the socket under a lock, so paho writes each packet whole
// (paho takes the lock of a net.Conn that is a sync.Locker).
func dialBuffered(ctx context.Context, _ autopaho.ClientConfig, u *url.URL) (net.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	tc := nc.(*net.TCPConn)
	_ = tc.SetNoDelay(true)
	return &bufConn{TCPConn: tc, r: bufio.NewReaderSize(tc, 16<<10)}, nil
}

// bufConn buffers reads; embedding *net.TCPConn keeps its vectored write.
type bufConn struct {
	*net.TCPConn
	r  *bufio.Reader
	mu sync.Mutex
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }
func (b *bufConn) Lock()                      { b.mu.Lock() }
func (b *bufConn) Unlock()                    { b.mu.Unlock() }

// connectorDispatcher decodes, filters and republishes in the connector's
// receive goroutine, without the runner (diagnostic: W2_CONNECTOR=1).
type connectorDispatcher struct{ c mqtt.AsyncConn }

func (d connectorDispatcher) Dispatch(ctx context.Context, env *pipeline.Envelope) error {
	v, err := codec.JSON{}.Decode(env.Payload)
	m, _ := v.(map[string]any)
	if t, _ := m["temp"].(float64); err != nil || !(t > 25) {
		env.Ack.Done()
		return nil
	}
	out, err := codec.JSON{}.Encode(m)
	if err != nil {
		env.Ack.Done()
		return nil
	}
	e := pipeline.Envelope{Payload: out, Ack: env.Ack}
	if err := d.c.PublishAsync(ctx, "alerts/temp", mqtt.Out{QoS: 1}, &e); err != nil {
		env.Ack.Nack(err)
	}
	return nil
}

func connectorRelay(ctx context.Context, brokerURL string) error {
	b, err := mqtt.Factory(brokerURL, pipeline.Params{"client_id": "w2-relay-connector", "clean_start": "true", "async_publish": "true"})
	if err != nil {
		return err
	}
	subs := []pipeline.Subscription{{Filter: "sensors/temp", Options: mqtt.In{QoS: 1}}}
	cn, err := b.Build(ctx, pipeline.BuildEnv{Name: "mqtt", Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), Inbound: subs})
	if err != nil {
		return err
	}
	c := cn.(mqtt.AsyncConn)
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx, subs, connectorDispatcher{c}) }()
	for c.Ready() != nil {
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Println("READY")
	<-done
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Close(cctx)
}

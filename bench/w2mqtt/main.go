// Command w2mqtt is benchmark W2: an MQTT relay through mosquitto.
//
// A producer publishes N JSON messages (~80 bytes) to sensors/temp at QoS
// 1; a relay keeps those with temp > 25 and republishes them to
// alerts/temp at QoS 1; a consumer receives them. Two relays run in the same
// invocation, each in a fresh child process so its CPU time and peak RSS
// belong to it alone:
//
//   - handwritten: a paho.golang (autopaho) relay written by hand: manual
//     acks, encoding/json, up to 32 publishes in flight, each inbound message
//     acknowledged after its republish was confirmed (at-least-once).
//   - pipeline: the same relay as an aimdb-flow graph (mqtt connector, JSON
//     codec, FilterValue stage) run by pipeline.Runner, default settings:
//     each output publish waits for its PUBACK before the next.
//   - pipeline-async: the same graph with the connector's async_publish
//     setting (up to 32 QoS 1 publishes in flight, acks finished on
//     confirmation).
//
// Reported per relay: msgs/s (input messages over the time from the first
// publish to the last output received), end-to-end latency p50/p99 (from
// the producer's timestamp in the payload to the consumer), relay CPU
// microseconds per input message (user+sys from getrusage), relay peak
// RSS, and loss (expected hot messages minus distinct ones received). A
// second, paced phase (-rate) measures latency at a steady rate.
//
//	go run ./bench/w2mqtt                 # 200,000 messages, then 10,000 paced at 2,000/s
//	go run ./bench/w2mqtt -n 20000 -paced 4000
//
// mosquitto must be installed; the command starts its own on a free
// loopback port and stops it at the end.
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
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/aimdb-dev/aimdb-flow/connectors/mqtt"
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
		return
	}
	if *n <= 0 || *n > maxN {
		fmt.Fprintf(os.Stderr, "-n must be in 1..%d\n", maxN)
		os.Exit(2)
	}
	*paced = min(max(*paced, 0), maxN)
	if err := runAll(*broker, *n, *paced, *rate, *jsonOut); err != nil {
		fmt.Fprintln(os.Stderr, "w2mqtt:", err)
		os.Exit(1)
	}
}

// Result is one relay's figures in one phase.
type Result struct {
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

func runAll(brokerURL string, n, paced, rate int, jsonOut string) error {
	if brokerURL == "" {
		stop, u, err := startMosquitto()
		if err != nil {
			return err
		}
		defer stop()
		brokerURL = u
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("W2 MQTT relay through mosquitto: %d msgs unpaced + %d paced at %d/s, QoS 1, GOMAXPROCS=%d, %s, load average %s\n",
		n, paced, rate, runtime.GOMAXPROCS(0), runtime.Version(), strings.TrimSpace(string(load)))
	var results []Result
	relays := []string{"handwritten", "pipeline", "pipeline-async"}
	if os.Getenv("W2_CONNECTOR") != "" {
		relays = append(relays, "connector")
	}
	for _, relayName := range relays {
		for _, ph := range []struct {
			name string
			n    int
			rate int
		}{{"unpaced", n, 0}, {"paced", paced, rate}} {
			if ph.n == 0 {
				continue
			}
			r, err := runOne(brokerURL, relayName, ph.name, ph.n, ph.rate)
			if err != nil {
				return fmt.Errorf("%s %s: %w", relayName, ph.name, err)
			}
			results = append(results, r)
		}
	}
	fmt.Printf("\n| relay | phase | msgs | msgs/s | p50 µs | p99 µs | relay CPU µs/msg | relay RSS MiB | lost | dups |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Printf("| %s | %s | %d | %.0f | %.0f | %.0f | %.2f | %.1f | %d | %d |\n",
			r.Relay, r.Phase, r.Messages, r.MsgsPerSec, r.P50us, r.P99us, r.CPUusMsg, r.RSSMiB, r.Lost, r.Duplicates)
	}
	byKey := map[string]Result{}
	for _, r := range results {
		byKey[r.Relay+"/"+r.Phase] = r
	}
	fmt.Println()
	for _, name := range relays[1:] {
		if h, p := byKey["handwritten/unpaced"], byKey[name+"/unpaced"]; h.CPUusMsg > 0 && p.CPUusMsg > 0 {
			fmt.Printf("%s / handwritten: CPU per msg %.2fx (target <= 1.1x), throughput %.2fx, RSS %.1f MiB (target <= 32)\n",
				name, p.CPUusMsg/h.CPUusMsg, p.MsgsPerSec/h.MsgsPerSec, p.RSSMiB)
		}
		if h, p := byKey["handwritten/paced"], byKey[name+"/paced"]; h.P99us > 0 && p.P99us > 0 {
			fmt.Printf("%s paced p99: %.0f µs vs handwritten %.0f µs (%.2fx)\n", name, p.P99us, h.P99us, p.P99us/h.P99us)
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

func tempOf(i int) float64 { return 20 + float64(i%10) + 0.5 } // 26.5..29.5 are hot: 4 in 10

func runOne(brokerURL, relayName, phase string, n, rate int) (Result, error) {
	res := Result{Relay: relayName, Phase: phase, Messages: n}
	for i := 0; i < n; i++ {
		if tempOf(i) > 25 {
			res.Expected++
		}
	}
	// The relay child.
	self, err := os.Executable()
	if err != nil {
		return res, err
	}
	child := exec.Command(self, "-role", relayName, "-broker", brokerURL)
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
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "READY\n" {
		return res, fmt.Errorf("relay did not start: %q %v", line, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Consumer.
	var mu sync.Mutex
	seen := make(map[int]int, res.Expected)
	lat := make([]float64, 0, res.Expected)
	var lastRecv atomic.Int64
	gotAll := make(chan struct{})
	var gotOnce sync.Once
	cons, err := connect(ctx, brokerURL, "w2-consumer", func(p *paho.Publish) {
		now := time.Now().UnixNano()
		var r reading
		if json.Unmarshal(p.Payload, &r) != nil {
			return
		}
		mu.Lock()
		seen[r.Seq]++
		if seen[r.Seq] == 1 {
			lat = append(lat, float64(now-r.TS)/1e3)
		}
		k := len(seen)
		mu.Unlock()
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
	werr := child.Wait()
	if werr != nil {
		return res, fmt.Errorf("relay exited: %w", werr)
	}
	ru := child.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	res.CPUusMsg = float64(cpu.Microseconds()) / float64(n)
	res.RSSMiB = float64(ru.Maxrss) / 1024
	mu.Lock()
	res.Received = len(seen)
	for _, c := range seen {
		res.Duplicates += c - 1
	}
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
		fmt.Fprintf(os.Stderr, "%s %s: %d outputs slower than 50ms, first at arrival #%d\n", relayName, phase, slow, first)
	}
	sort.Float64s(lat)
	if len(lat) > 0 {
		res.P50us = lat[len(lat)/2]
		res.P99us = lat[len(lat)*99/100]
	}
	mu.Unlock()
	res.Lost = res.Expected - res.Received
	if d := end.Sub(start); d > 0 {
		res.MsgsPerSec = float64(n) / d.Seconds()
	}
	fmt.Fprintf(os.Stderr, "%s %s: %d/%d received in %v\n", relayName, phase, res.Received, res.Expected, end.Sub(start).Round(time.Millisecond))
	return res, nil
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

func pipelineRelay(ctx context.Context, brokerURL string, async bool) error {
	params := pipeline.Params{"client_id": "w2-relay-pipeline", "clean_start": "true"}
	if async {
		params["async_publish"] = "true"
	}
	b, err := mqtt.Factory(brokerURL, params)
	if err != nil {
		return err
	}
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
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{Logger: log})
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

// handRelay is what a careful developer writes by hand with paho.golang:
// manual acks in arrival order, decode, filter, republish at QoS 1 with up
// to 32 publishes in flight on a second connection (publishing on the
// subscribing connection can deadlock when the handler blocks), ack the
// input once its output was confirmed.
func handRelay(ctx context.Context, brokerURL string) error {
	u, err := url.Parse(brokerURL)
	if err != nil {
		return err
	}
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var cmRef atomic.Pointer[autopaho.ConnectionManager]
	ready := make(chan struct{})
	var readyOnce sync.Once
	rm := uint16(512)
	cfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     30,
		CleanStartOnInitialConnection: true,
		SessionExpiryInterval:         300,
		ConnectTimeout:                5 * time.Second,
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
				var m map[string]any
				if err := json.Unmarshal(pr.Packet.Payload, &m); err != nil {
					_ = pr.Client.Ack(pr.Packet)
					return true, nil
				}
				if t, _ := m["temp"].(float64); !(t > 25) {
					_ = pr.Client.Ack(pr.Packet)
					return true, nil
				}
				out, err := json.Marshal(m)
				if err != nil {
					_ = pr.Client.Ack(pr.Packet)
					return true, nil
				}
				sem <- struct{}{}
				wg.Add(1)
				in, cli := pr.Packet, pr.Client
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					if _, err := cmRef.Load().Publish(ctx, &paho.Publish{Topic: "alerts/temp", QoS: 1, Payload: out}); err == nil {
						_ = cli.Ack(in)
					}
				}()
				return true, nil
			}},
		},
	}
	pubCM, err := connect(ctx, brokerURL, "w2-relay-hand-pub", nil)
	if err != nil {
		return err
	}
	cmRef.Store(pubCM)
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
	if err := d.c.PublishAsync(ctx, "alerts/temp", mqtt.PubOptions{QoS: 1}, &e); err != nil {
		env.Ack.Nack(err)
	}
	return nil
}

func connectorRelay(ctx context.Context, brokerURL string) error {
	b, err := mqtt.Factory(brokerURL, pipeline.Params{"client_id": "w2-relay-connector", "clean_start": "true", "async_publish": "true"})
	if err != nil {
		return err
	}
	subs := []pipeline.Subscription{{Filter: "sensors/temp", Options: mqtt.SubOptions{QoS: 1}}}
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

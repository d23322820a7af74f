package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/tests/faultproxy"
	"github.com/aimdb-dev/aimdb-flow/tests/kafkatest"
	"github.com/aimdb-dev/aimdb-flow/tests/mqtttest"
)

// The in-flight fault tests run a relay with `aimdb-flow run` (a separate
// process) and break it while it holds at least inFlightMin records it has
// received from its source but not yet delivered to its sink:
//
//   - cut: every TCP connection between the pipeline and the MQTT broker
//     goes through a faultproxy. The proxy first stalls (stops forwarding)
//     until it holds bytes the pipeline wrote towards the broker, then
//     resets every connection (RST, so those bytes and whatever sits in
//     the kernel's socket buffers are lost) and refuses new ones until the
//     pipeline reports not ready, then comes back. The broker stays up.
//   - kill: SIGKILL of the pipeline process, then a new process with the
//     same MQTT session / Kafka consumer group.
//
// A producer keeps the pipeline loaded throughout (it runs up to
// inFlightLead records ahead of the output) and records what the source
// side acknowledged to it: MQTT PUBACK to the producing client, Kafka
// acks=all. At the end, every acknowledged record must be at the output at
// least once; duplicates are reported.

const (
	inFlightMin    = 64  // records inside the pipeline at each fault (asserted)
	inFlightLead   = 600 // how far the producer may run ahead of the output
	inFlightWindow = 128 // the MQTT producer's concurrent unacknowledged publishes
	inFlightRate   = 400 // the relay's throttle (records/s): keeps a backlog
	inFlightFaults = 2   // faults per test
)

func inFlightN() int {
	if testing.Short() {
		return 1200
	}
	return 2400
}

// inflightEnv is what a flow needs: the broker URLs the pipeline uses
// (through the proxy) and the output QoS (1; the negative check sets 0).
func inflightOutQoS() string { return "1" }

const inflightMQTTFlow = `# in-flight fault test: MQTT -> MQTT through a faultproxy
connector mqtt "${MQTT_URL}" client_id "if-relay" clean_start false session_expiry 600s
    reconnect_min 50ms reconnect_max 300ms publish_timeout 30s

record in {
  from "mqtt://if/in/#" decode json qos 1
  buffer queue 256
}

pipeline relay {
  from in
  throttle ${RATE} per 1s
  to "mqtt://if/out" encode json qos ${OUT_QOS}
}
`

const inflightMQTTKafkaFlow = `# in-flight fault test: MQTT (through a faultproxy) -> Kafka
connector mqtt "${MQTT_URL}" client_id "if-relay" clean_start false session_expiry 600s
    reconnect_min 50ms reconnect_max 300ms publish_timeout 30s
connector kafka "kafka://${KAFKA_BROKERS}" client_id "if" acks all

record in {
  from "mqtt://if/in/#" decode json qos 1
  buffer queue 256
}

pipeline relay {
  from in
  throttle ${RATE} per 1s
  to "kafka://if-out" encode json
}
`

// inflightKafkaMQTTFlow's publish_timeout is 5s: with 30s, a cut leaves
// the publish that was awaiting its PUBACK waiting out the whole timeout
// (about 30s per cut) before the record is nacked and redelivered.
const inflightKafkaMQTTFlow = `# in-flight fault test: Kafka -> MQTT (through a faultproxy)
connector kafka "kafka://${KAFKA_BROKERS}" group "if-group" client_id "if"
    commit_interval 100ms session_timeout 2s heartbeat_interval 200ms rebalance_timeout 3s
connector mqtt "${MQTT_URL}" client_id "if-relay" clean_start false session_expiry 600s
    reconnect_min 50ms reconnect_max 300ms publish_timeout 5s

record in {
  from "kafka://if-in" decode json
  buffer queue 256
}

pipeline relay {
  from in
  throttle ${RATE} per 1s
  to "mqtt://if/out" encode json qos ${OUT_QOS}
}
`

// inFlightRig is one test's world.
type inFlightRig struct {
	t      *testing.T
	n      int
	flow   string
	env    []string
	proxy  *faultproxy.Proxy
	run    *cliProc
	acked  *counts // source-side acknowledged records (by seq)
	out    *counts // records observed at the output (by seq)
	faults []string
}

// stats reads the running pipeline's /stats.
func (r *inFlightRig) stats() (pipeline.Snapshot, error) {
	var s pipeline.Snapshot
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(r.run.health + "/stats")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("/stats: %s", resp.Status)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// inPipeline is the number of records the pipeline process has received
// from its source and not yet delivered to its sink (inbound link messages
// minus outbound link messages), or -1 when /stats does not answer.
func (r *inFlightRig) inPipeline() int {
	s, err := r.stats()
	if err != nil {
		return -1
	}
	var in, out uint64
	for _, l := range s.Links {
		if l.Direction == pipeline.Inbound {
			in += l.Messages
		} else {
			out += l.Messages
		}
	}
	return int(in) - int(out)
}

func (r *inFlightRig) start() {
	r.run = startCLI(r.t, r.env, "--drain-timeout", "5s", r.flow)
	r.run.waitReady(30 * time.Second)
}

// ready reports whether /readyz answers 200.
func (r *inFlightRig) ready() bool {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get(r.run.health + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// loaded waits until the producer is at least `point` records in and the
// pipeline holds at least inFlightMin records, and returns that count.
func (r *inFlightRig) loaded(point int) int {
	r.t.Helper()
	held := 0
	waitFor(r.t, 60*time.Second, fmt.Sprintf("%d acked and >= %d records inside the pipeline", point, inFlightMin), func() bool {
		if r.acked.distinct() < point {
			return false
		}
		held = r.inPipeline()
		return held >= inFlightMin
	})
	return held
}

// cut stalls the proxy until it holds bytes the pipeline sent towards the
// broker, resets every pipeline<->broker connection, keeps the proxy down
// until the pipeline reports not ready, then brings it back and waits
// until the pipeline is ready again.
func (r *inFlightRig) cut(k int) {
	r.t.Helper()
	held := r.loaded((k + 1) * r.n / (inFlightFaults + 1))
	r.proxy.Pause()
	waitFor(r.t, 30*time.Second, "pipeline bytes held in the stalled proxy", func() bool { return r.proxy.HeldFromClients() > 0 })
	// The stall's length is the fault's shape, not a synchronisation: it
	// ends when the proxy holds 2 KiB from the pipeline or after 500ms
	// (a relay confirming each publish holds far less).
	stallEnd := time.Now().Add(500 * time.Millisecond)
	for r.proxy.HeldFromClients() < 2048 && time.Now().Before(stallEnd) {
		time.Sleep(5 * time.Millisecond)
	}
	resets := r.proxy.Down()
	r.proxy.Resume()
	waitFor(r.t, 30*time.Second, "pipeline not ready after the cut", func() bool { return !r.ready() })
	if err := r.proxy.Up(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	r.run.waitReady(30 * time.Second)
	r.faults = append(r.faults, fmt.Sprintf("cut %d: %d records in the pipeline, %d connections reset", k+1, held, resets))
}

// kill SIGKILLs the pipeline process and starts a new one.
func (r *inFlightRig) kill(k int) {
	r.t.Helper()
	held := r.loaded((k + 1) * r.n / (inFlightFaults + 1))
	if code := r.run.signal(syscall.SIGKILL, 30*time.Second); code != -1 {
		r.t.Fatalf("exit code %d after SIGKILL, want -1", code)
	}
	r.start()
	r.faults = append(r.faults, fmt.Sprintf("kill %d: %d records in the pipeline", k+1, held))
}

// finish waits for the producer, then for every acknowledged record at the
// output, and asserts none is lost.
func (r *inFlightRig) finish(producerDone <-chan error) {
	r.t.Helper()
	select {
	case err := <-producerDone:
		if err != nil {
			r.t.Fatal(err)
		}
	case <-time.After(90 * time.Second):
		r.t.Fatal("producer did not finish within 90s")
	}
	if got := r.acked.distinct(); got != r.n {
		r.t.Fatalf("producer finished with %d of %d records acknowledged", got, r.n)
	}
	acked := r.acked.snapshot()
	missing := func() []int {
		var m []int
		for seq := range acked {
			if r.out.get(seq) == 0 {
				m = append(m, seq)
			}
		}
		return m
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, f := range r.faults {
		r.t.Log(f)
	}
	r.t.Logf("output: %d distinct of %d acknowledged, %d duplicates (at-least-once)", r.out.distinct(), len(acked), r.out.duplicates())
	if m := missing(); len(m) > 0 {
		if len(m) > 10 {
			m = m[:10]
		}
		r.t.Fatalf("%d acknowledged records lost (never at the output), e.g. seq %v", len(missing()), m)
	}
	if c := r.run.signal(syscall.SIGTERM, 30*time.Second); c != 0 {
		r.t.Fatalf("exit code %d after the final SIGTERM", c)
	}
}

// fault applies the named fault inFlightFaults times.
func (r *inFlightRig) fault(kind string) {
	for k := 0; k < inFlightFaults; k++ {
		switch kind {
		case "cut":
			r.cut(k)
		case "kill":
			r.kill(k)
		}
	}
}

// paceWait holds a producer about to send record i while it is more than
// inFlightLead records ahead of the output, for at most 5s (so that lost
// records, which never reach the output, cannot stall the producer).
func paceWait(ctx context.Context, i int, out *counts) {
	until := time.Now().Add(5 * time.Second)
	for i-out.distinct() > inFlightLead && ctx.Err() == nil && time.Now().Before(until) {
		time.Sleep(2 * time.Millisecond)
	}
}

// produceMQTT publishes {"seq":i} for i in [0,n) with inFlightWindow
// publishes awaiting their PUBACK at once, each retried until acknowledged,
// never more than inFlightLead records ahead of the output.
func produceMQTT(ctx context.Context, c *mqttClient, topic string, n int, acked, out *counts) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, inFlightWindow)
	for w := 0; w < inFlightWindow; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				paceWait(ctx, i, out)
				p := []byte(fmt.Sprintf(`{"seq":%d,"pad":"0123456789abcdef"}`, i))
				for !c.tryPublish(ctx, 5*time.Second, topic, p) {
					if ctx.Err() != nil {
						errs <- fmt.Errorf("message %d never acknowledged: %w", i, ctx.Err())
						return
					}
				}
				acked.add(i)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// produceKafka writes {"seq":i} with acks=all in batches, never more than
// inFlightLead records ahead of the output; a record counts as
// acknowledged when its batch's write returned without error.
func produceKafkaPaced(ctx context.Context, cl *kafkatest.Cluster, topic string, n int, acked, out *counts) error {
	w := cl.Writer(topic)
	defer w.Close()
	const batch = 50
	for i := 0; i < n; i += batch {
		paceWait(ctx, i, out)
		var msgs []kafkago.Message
		for j := i; j < i+batch && j < n; j++ {
			msgs = append(msgs, kafkatest.Msg(fmt.Sprint("k", j%7), fmt.Sprintf(`{"seq":%d,"pad":"0123456789abcdef"}`, j)))
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("produce seq %d..: %w", i, err)
		}
		for j := i; j < i+batch && j < n; j++ {
			acked.add(j)
		}
	}
	return nil
}

// collectKafka reads topic's partition 0 from the start into into until
// ctx ends.
func collectKafka(ctx context.Context, cl *kafkatest.Cluster, topic string, into *counts) {
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:     cl.Addrs(),
		Topic:       topic,
		Partition:   0,
		StartOffset: kafkago.FirstOffset,
		MaxWait:     500 * time.Millisecond,
		MaxBytes:    1 << 20,
		Dialer:      cl.Dialer(),
	})
	defer r.Close()
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		into.add(seqOf(m.Value))
	}
}

func newProxy(t *testing.T, upstream string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start(context.Background(), upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// inFlightMQTTToMQTT runs the MQTT -> MQTT relay with the given fault.
func inFlightMQTTToMQTT(t *testing.T, fault, outQoS string) {
	br := mqtttest.Start(t, mqtttest.Options{})
	rig := &inFlightRig{t: t, n: inFlightN(), acked: newCounts(), out: newCounts(), proxy: newProxy(t, br.Addr())}
	rig.flow = writeFlow(t, "inflight.flow", inflightMQTTFlow)
	rig.env = []string{"MQTT_URL=mqtt://" + rig.proxy.Addr(), "RATE=" + fmt.Sprint(inFlightRate), "OUT_QOS=" + outQoS}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	sub := newMQTTClient(t, br.URL(), clientOpts{ID: "if-far", Subscribe: []string{"if/out"}, Persistent: true})
	go sub.collect(ctx, rig.out)
	rig.start()
	pub := newMQTTClient(t, br.URL(), clientOpts{ID: "if-producer", Persistent: true})
	done := make(chan error, 1)
	go func() { done <- produceMQTT(ctx, pub, "if/in/x", rig.n, rig.acked, rig.out) }()
	rig.fault(fault)
	rig.finish(done)
}

func TestInFlightMQTTToMQTT(t *testing.T) {
	for _, fault := range []string{"cut", "kill"} {
		t.Run(fault, func(t *testing.T) { inFlightMQTTToMQTT(t, fault, inflightOutQoS()) })
	}
}

func TestInFlightMQTTToKafka(t *testing.T) {
	for _, fault := range []string{"cut", "kill"} {
		t.Run(fault, func(t *testing.T) {
			br := mqtttest.Start(t, mqtttest.Options{})
			cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"if-out": 1}})
			rig := &inFlightRig{t: t, n: inFlightN(), acked: newCounts(), out: newCounts(), proxy: newProxy(t, br.Addr())}
			rig.flow = writeFlow(t, "inflight-kafka.flow", inflightMQTTKafkaFlow)
			rig.env = []string{"MQTT_URL=mqtt://" + rig.proxy.Addr(), "KAFKA_BROKERS=" + strings.Join(cl.Addrs(), ","), "RATE=" + fmt.Sprint(inFlightRate)}
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); collectKafka(ctx, cl, "if-out", rig.out) }()
			defer wg.Wait()
			defer cancel()
			rig.start()
			pub := newMQTTClient(t, br.URL(), clientOpts{ID: "if-producer", Persistent: true})
			done := make(chan error, 1)
			go func() { done <- produceMQTT(ctx, pub, "if/in/x", rig.n, rig.acked, rig.out) }()
			rig.fault(fault)
			rig.finish(done)
		})
	}
}

func TestInFlightKafkaToMQTT(t *testing.T) {
	for _, fault := range []string{"cut", "kill"} {
		t.Run(fault, func(t *testing.T) {
			br := mqtttest.Start(t, mqtttest.Options{})
			cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"if-in": 2}})
			rig := &inFlightRig{t: t, n: inFlightN(), acked: newCounts(), out: newCounts(), proxy: newProxy(t, br.Addr())}
			rig.flow = writeFlow(t, "inflight-kafka-mqtt.flow", inflightKafkaMQTTFlow)
			rig.env = []string{"MQTT_URL=mqtt://" + rig.proxy.Addr(), "KAFKA_BROKERS=" + strings.Join(cl.Addrs(), ","), "RATE=" + fmt.Sprint(inFlightRate), "OUT_QOS=" + inflightOutQoS()}
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
			defer cancel()
			sub := newMQTTClient(t, br.URL(), clientOpts{ID: "if-far", Subscribe: []string{"if/out"}, Persistent: true})
			go sub.collect(ctx, rig.out)
			rig.start()
			done := make(chan error, 1)
			go func() { done <- produceKafkaPaced(ctx, cl, "if-in", rig.n, rig.acked, rig.out) }()
			rig.fault(fault)
			rig.finish(done)
		})
	}
}

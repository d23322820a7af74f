package reliability

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/tests/kafkatest"
	kafkago "github.com/segmentio/kafka-go"
)

// waitFor polls cond every 10ms until it holds or d passed (then fails).
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testLogger captures logs and prints them (the last 8 KiB) only when the
// test fails, or in full when RELIABILITY_LOG is set.
func testLogger(t testing.TB, level slog.Level) (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if os.Getenv("RELIABILITY_LOG") != "" {
			t.Logf("pipeline log:\n%s", buf.String())
			return
		}
		if t.Failed() {
			s := buf.String()
			if len(s) > 8192 {
				s = "...\n" + s[len(s)-8192:]
			}
			t.Logf("pipeline log:\n%s", s)
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: level})), buf
}

// running is a Runner started in the background.
type running struct {
	r      *pipeline.Runner
	cancel context.CancelFunc
	done   chan error
	err    error
	exited bool
}

func start(t testing.TB, g *pipeline.Graph, opts pipeline.RunOptions) *running {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger, _ = testLogger(t, slog.LevelWarn)
	}
	r, err := pipeline.NewRunner(g, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &running{r: r, cancel: cancel, done: make(chan error, 1)}
	go func() { run.done <- r.Run(ctx) }()
	t.Cleanup(func() { run.stop(t) })
	return run
}

// stop cancels the runner and returns Run's error (bounded at 60s).
func (run *running) stop(t testing.TB) error {
	t.Helper()
	if run.exited {
		return run.err
	}
	run.cancel()
	select {
	case run.err = <-run.done:
	case <-time.After(60 * time.Second):
		t.Fatal("runner did not stop within 60s")
	}
	run.exited = true
	return run.err
}

// alive fails the test if Run already returned.
func (run *running) alive(t testing.TB) {
	t.Helper()
	select {
	case err := <-run.done:
		run.exited, run.err = true, err
		t.Fatalf("runner stopped by itself: %v", err)
	default:
	}
}

// seqOf extracts N from a payload holding `"seq":N` (the test streams'
// only number), or -1.
func seqOf(p []byte) int {
	i := bytes.Index(p, []byte(`"seq":`))
	if i < 0 {
		return -1
	}
	j := i + len(`"seq":`)
	k := j
	for k < len(p) && p[k] >= '0' && p[k] <= '9' {
		k++
	}
	n, err := strconv.Atoi(string(p[j:k]))
	if err != nil {
		return -1
	}
	return n
}

// counts is a concurrent multiset of sequence numbers.
type counts struct {
	mu sync.Mutex
	m  map[int]int
}

func newCounts() *counts { return &counts{m: map[int]int{}} }

func (c *counts) add(seq int) {
	c.mu.Lock()
	c.m[seq]++
	c.mu.Unlock()
}

func (c *counts) get(seq int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[seq]
}

func (c *counts) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func (c *counts) snapshot() map[int]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int]int, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

// duplicates returns the number of extra copies.
func (c *counts) duplicates() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := 0
	for _, v := range c.m {
		if v > 1 {
			d += v - 1
		}
	}
	return d
}

// ---- source-ack probe ----

// probe wraps a connector builder and records, for every inbound message,
// whether the pipeline acknowledged it to the source (nil) or rejected it.
// It is how the fault tests know exactly what the source acked: a message
// acked here is one the broker (MQTT PUBACK, Kafka commit) may forget.
type probe struct {
	pipeline.Builder
	acked  *counts // seq -> times acked successfully
	nacked *counts // seq -> times rejected

	errMu sync.Mutex
	errs  map[string]int // rejection reasons
}

// Caps forwards the wrapped builder's declaration (topic routing).
func (p *probe) Caps() pipeline.Caps { return pipeline.CapsOf(p.Builder) }

// reasons returns the rejection reasons seen, with their counts.
func (p *probe) reasons() map[string]int {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	out := make(map[string]int, len(p.errs))
	for k, v := range p.errs {
		out[k] = v
	}
	return out
}

func newProbe(b pipeline.Builder) *probe {
	return &probe{Builder: b, acked: newCounts(), nacked: newCounts(), errs: map[string]int{}}
}

func (p *probe) ParseLinkOptions(dir pipeline.Direction, address string, params pipeline.Params) (any, error) {
	if lp, ok := p.Builder.(pipeline.LinkOptionParser); ok {
		return lp.ParseLinkOptions(dir, address, params)
	}
	return nil, nil
}

func (p *probe) Build(ctx context.Context, env pipeline.BuildEnv) (pipeline.Connector, error) {
	c, err := p.Builder.Build(ctx, env)
	if err != nil {
		return nil, err
	}
	return &probeConn{Connector: c, p: p}, nil
}

type probeConn struct {
	pipeline.Connector
	p *probe
}

func (c *probeConn) Ready() error {
	if r, ok := c.Connector.(pipeline.Readiness); ok {
		return r.Ready()
	}
	return nil
}

func (c *probeConn) PublishAsync(ctx context.Context, dest string, opts any, env *pipeline.Envelope) error {
	if a, ok := c.Connector.(pipeline.AsyncPublisher); ok {
		return a.PublishAsync(ctx, dest, opts, env)
	}
	err := c.Connector.Publish(ctx, dest, opts, env)
	if err == nil {
		env.Ack.Done()
	}
	return err
}

// Flush forwards to the wrapped connector, so a batching producer is
// exercised as the runner drives it.
func (c *probeConn) Flush(ctx context.Context) error {
	if f, ok := c.Connector.(pipeline.Flusher); ok {
		return f.Flush(ctx)
	}
	return nil
}

func (c *probeConn) Serve(ctx context.Context, subs []pipeline.Subscription, d pipeline.Dispatcher) error {
	return c.Connector.(pipeline.Source).Serve(ctx, subs, probeDispatcher{d: d, p: c.p})
}

type probeDispatcher struct {
	d pipeline.Dispatcher
	p *probe
}

func (pd probeDispatcher) Dispatch(ctx context.Context, env *pipeline.Envelope) error {
	seq := seqOf(env.Payload) // before Dispatch: the payload is handed on
	orig := env.Ack
	if orig != nil {
		env.Ack = pipeline.NewAck(func(err error) {
			if err == nil {
				pd.p.acked.add(seq)
			} else {
				pd.p.nacked.add(seq)
				pd.p.errMu.Lock()
				if len(pd.p.errs) < 20 {
					pd.p.errs[err.Error()]++
				}
				pd.p.errMu.Unlock()
			}
			orig.Finish(err)
		})
	}
	return pd.d.Dispatch(ctx, env)
}

// ---- MQTT test client ----

type mqttMsg struct {
	Topic   string
	Payload []byte
}

// mqttClient is a plain paho.golang client that drives and observes
// pipelines through the broker.
type mqttClient struct {
	t  testing.TB
	cm *autopaho.ConnectionManager
	ch chan mqttMsg
	// close disconnects and waits for the client's goroutines (also run
	// by t.Cleanup).
	close func()
}

type clientOpts struct {
	ID        string
	Subscribe []string
	// Persistent resumes the session across broker restarts (clean start
	// false, session expiry 600s).
	Persistent bool
	// Username and Password authenticate the client.
	Username, Password string
}

func newMQTTClient(t testing.TB, brokerURL string, o clientOpts) *mqttClient {
	t.Helper()
	u, err := url.Parse(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	c := &mqttClient{t: t, ch: make(chan mqttMsg, 1<<16)}
	ready := make(chan struct{}, 1)
	cfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     30,
		CleanStartOnInitialConnection: !o.Persistent,
		ReconnectBackoff:              autopaho.NewConstantBackoff(50 * time.Millisecond),
		ConnectTimeout:                5 * time.Second,
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
			go func() {
				if len(o.Subscribe) > 0 {
					var subs []paho.SubscribeOptions
					for _, s := range o.Subscribe {
						subs = append(subs, paho.SubscribeOptions{Topic: s, QoS: 1})
					}
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					if _, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs}); err != nil {
						return
					}
				}
				select {
				case ready <- struct{}{}:
				default:
				}
			}()
		},
		ClientConfig: paho.ClientConfig{
			ClientID: o.ID,
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
				c.ch <- mqttMsg{Topic: pr.Packet.Topic, Payload: append([]byte(nil), pr.Packet.Payload...)}
				return true, nil
			}},
		},
	}
	if o.Persistent {
		cfg.SessionExpiryInterval = 600
	}
	if o.Username != "" {
		cfg.ConnectUsername, cfg.ConnectPassword = o.Username, []byte(o.Password)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cm, err := autopaho.NewConnection(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	c.cm = cm
	c.close = sync.OnceFunc(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer dcancel()
		_ = cm.Disconnect(dctx)
		cancel()
		<-cm.Done()
	})
	t.Cleanup(c.close)
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
		t.Fatal("test MQTT client did not connect/subscribe")
	}
	return c
}

// tryPublish publishes once at QoS 1 and reports whether the broker
// acknowledged it (PUBACK with a success code) within timeout.
func (c *mqttClient) tryPublish(ctx context.Context, timeout time.Duration, topic string, payload []byte) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := c.cm.AwaitConnection(ctx); err != nil {
		return false
	}
	pr, err := c.cm.Publish(ctx, &paho.Publish{Topic: topic, Payload: payload, QoS: 1})
	return err == nil && (pr == nil || pr.ReasonCode < 0x80)
}

// publish publishes at QoS 1 and fails the test unless acknowledged.
func (c *mqttClient) publish(topic string, payload []byte) {
	c.t.Helper()
	if !c.tryPublish(context.Background(), 10*time.Second, topic, payload) {
		c.t.Fatalf("publish to %s not acknowledged", topic)
	}
}

// collect counts every message's seq into into until ctx ends.
func (c *mqttClient) collect(ctx context.Context, into *counts) {
	for {
		select {
		case m := <-c.ch:
			into.add(seqOf(m.Payload))
		case <-ctx.Done():
			return
		}
	}
}

type kafkaMsg struct{ key, value string }

func produceKafka(t testing.TB, cl *kafkatest.Cluster, topic string, msgs []kafkaMsg) {
	t.Helper()
	var out []kafkago.Message
	for _, m := range msgs {
		out = append(out, kafkatest.Msg(m.key, m.value))
	}
	cl.Produce(t, topic, out...)
}

package mqtt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/mqtt"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
	"github.com/aimdb-dev/aimdb-flow/tests/mqtttest"
)

func builder(t testing.TB, url string, p pipeline.Params) pipeline.Builder {
	t.Helper()
	b, err := mqtt.Factory(url, p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hot(limit float64) pipeline.Processor {
	return stages.FilterValue(func(m map[string]any) bool {
		v, _ := m["temp"].(float64)
		return v > limit
	})
}

func TestRoundTrip(t *testing.T) {
	for _, async := range []string{"false", "true"} {
		t.Run("async_publish="+async, func(t *testing.T) { roundTrip(t, async) })
	}
}

func roundTrip(t *testing.T, async string) {
	br := mqtttest.Start(t, mqtttest.Options{})
	g := pipeline.New().Connector("mqtt", builder(t, br.URL(), pipeline.Params{"client_id": "rt-pipeline", "async_publish": async}))
	g.Record("sensor.temp").From("mqtt://sensors/+/temp", codec.JSON{}, pipeline.WithParams(pipeline.Params{"qos": "1"}))
	g.Pipeline("alerts").From("sensor.temp").Via(hot(25)).
		To("mqtt://alerts/{device}", codec.JSON{}, pipeline.WithParams(pipeline.Params{"qos": "1", "content_type": "application/json"}))
	sub := newClient(t, br.URL(), clientOpts{ID: "rt-sub", Subscribe: []string{"alerts/#"}, QoS: 1})
	_, stop := run(t, g)
	pub := newClient(t, br.URL(), clientOpts{ID: "rt-pub"})

	pub.publish("sensors/d-1/temp", `{"device":"d-1","temp":20}`, 1)
	pub.publish("sensors/d-2/temp", `{"device":"d-2","temp":31.5}`, 1, "traceparent", "00-abc-def-01", "site", "lab")
	m := sub.recv(10 * time.Second)
	if m.Topic != "alerts/d-2" {
		t.Fatalf("topic = %q, want alerts/d-2", m.Topic)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(m.Payload), &v); err != nil || v["temp"] != 31.5 {
		t.Fatalf("payload = %s (%v)", m.Payload, err)
	}
	if m.User["traceparent"] != "00-abc-def-01" || m.User["site"] != "lab" {
		t.Fatalf("user properties not carried through: %v", m.User)
	}
	if m.CT != "application/json" {
		t.Fatalf("content type = %q", m.CT)
	}
	if m.QoS != 1 {
		t.Fatalf("qos = %d", m.QoS)
	}
	stop()
	sub.expectNone(100 * time.Millisecond) // the cold reading was filtered out
}

func TestWildcardRoutingToSeveralRecords(t *testing.T) {
	br := mqtttest.Start(t, mqtttest.Options{})
	g := pipeline.New().Connector("mqtt", builder(t, br.URL(), nil))
	g.Record("temps").From("mqtt://sensors/+/temp", codec.JSON{}).To("mqtt://out/temps", codec.JSON{})
	g.Record("all").From("mqtt://sensors/#", codec.JSON{}).To("mqtt://out/all", codec.JSON{})
	g.Record("d1").From("mqtt://sensors/d1/+", codec.JSON{}, pipeline.WithParams(pipeline.Params{"qos": "0"})).To("mqtt://out/d1", codec.JSON{})
	sub := newClient(t, br.URL(), clientOpts{Subscribe: []string{"out/#"}, QoS: 1})
	_, stop := run(t, g)
	pub := newClient(t, br.URL(), clientOpts{})
	pub.publish("sensors/d1/temp", `{"n":1}`, 1)
	pub.publish("sensors/d2/temp", `{"n":2}`, 1)
	pub.publish("sensors/d1/hum", `{"n":3}`, 1)
	pub.publish("sensors/x", `{"n":4}`, 1)
	pub.publish("other/d1/temp", `{"n":5}`, 1)
	want := map[string]string{
		"out/temps": "1,2",
		"out/all":   "1,2,3,4",
		"out/d1":    "1,3",
	}
	got := map[string][]string{}
	total := 0
	for _, w := range want {
		total += len(strings.Split(w, ","))
	}
	for i := 0; i < total; i++ {
		m := sub.recv(10 * time.Second)
		var v struct{ N int }
		if err := json.Unmarshal([]byte(m.Payload), &v); err != nil {
			t.Fatal(err)
		}
		got[m.Topic] = append(got[m.Topic], fmt.Sprint(v.N))
	}
	stop()
	sub.expectNone(100 * time.Millisecond)
	for topic, w := range want {
		g := got[topic]
		sortStrings(g)
		if strings.Join(g, ",") != w {
			t.Errorf("%s got %v, want %s", topic, g, w)
		}
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestBadJSONDeadLetteredWhileGoodFlow(t *testing.T) {
	br := mqtttest.Start(t, mqtttest.Options{})
	g := pipeline.New().Connector("mqtt", builder(t, br.URL(), nil))
	g.Record("in").From("mqtt://sensors/+/temp", codec.JSON{})
	g.Pipeline("p").From("in").To("mqtt://out/{device}", codec.JSON{})
	g.DeadLetterTo("mqtt://dlq/sensors", codec.Raw{})
	sub := newClient(t, br.URL(), clientOpts{Subscribe: []string{"out/#", "dlq/#"}, QoS: 1})
	r, _ := run(t, g)
	pub := newClient(t, br.URL(), clientOpts{})
	pub.publish("sensors/a/temp", `{"device":"a","temp":1}`, 1)
	pub.publish("sensors/b/temp", `{"device":"b","temp":`, 1)
	pub.publish("sensors/c/temp", `{"device":"c","temp":3}`, 1)
	seen := map[string]msg{}
	for i := 0; i < 3; i++ {
		m := sub.recv(10 * time.Second)
		seen[m.Topic] = m
	}
	if _, ok := seen["out/a"]; !ok {
		t.Errorf("good record a missing: %v", seen)
	}
	if _, ok := seen["out/c"]; !ok {
		t.Errorf("good record c missing: %v", seen)
	}
	dl, ok := seen["dlq/sensors"]
	if !ok {
		t.Fatalf("no dead letter: %v", seen)
	}
	var d pipeline.DeadLetter
	if err := json.Unmarshal([]byte(dl.Payload), &d); err != nil {
		t.Fatal(err)
	}
	if d.Stage != "decode" || d.Error == "" || d.Topic != "sensors/b/temp" || d.Payload != `{"device":"b","temp":` || d.Record != "in" {
		t.Fatalf("dead letter lacks provenance: %+v", d)
	}
	if s := r.Stats(); s.DeadLetters != 1 {
		t.Fatalf("dead letters = %d", s.DeadLetters)
	}
}

// TestAtLeastOnceAcrossBrokerRestart stops mosquitto in the middle of a
// QoS 1 stream (it saves sessions and queued messages on SIGTERM), keeps
// publishing, starts it again, and checks that every message the broker
// acknowledged to the producer reaches the consumer through the pipeline.
func TestAtLeastOnceAcrossBrokerRestart(t *testing.T) {
	for _, async := range []string{"false", "true"} {
		t.Run("async_publish="+async, func(t *testing.T) { atLeastOnce(t, async) })
	}
}

func atLeastOnce(t *testing.T, async string) {
	br := mqtttest.Start(t, mqtttest.Options{Persistence: true})
	g := pipeline.New().Connector("mqtt", builder(t, br.URL(), pipeline.Params{"async_publish": async,
		"client_id": "alo-pipeline", "session_expiry": "600s", "reconnect_max": "500ms", "publish_timeout": "30s"}))
	var seenMu sync.Mutex
	seenIn := map[string]int{}
	g.Record("in").From("mqtt://in/#", codec.JSON{})
	g.Pipeline("relay").From("in").Via(stages.Tap(func(e *pipeline.Envelope) {
		seenMu.Lock()
		seenIn[fmt.Sprint(e.Value.(map[string]any)["seq"])]++
		seenMu.Unlock()
	})).To("mqtt://out/{seq}", codec.JSON{})
	sub := newClient(t, br.URL(), clientOpts{ID: "alo-sub", Subscribe: []string{"out/#"}, QoS: 1, Persistent: true})
	r, stop := run(t, g)
	pub := newClient(t, br.URL(), clientOpts{ID: "alo-pub", Persistent: true})

	const n = 300
	var mu sync.Mutex
	got := map[string]int{}
	collectDone := make(chan struct{})
	go func() {
		defer close(collectDone)
		for {
			select {
			case m := <-sub.ch:
				mu.Lock()
				got[strings.TrimPrefix(m.Topic, "out/")]++
				mu.Unlock()
			case <-time.After(20 * time.Second):
				return
			}
			mu.Lock()
			k := len(got)
			mu.Unlock()
			if k == n {
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	untilAcked := func(i int) {
		for !pub.tryPublish(ctx, 2*time.Second, "in/x", fmt.Sprintf(`{"seq":%d}`, i)) {
			if ctx.Err() != nil {
				t.Fatalf("message %d never acknowledged by the broker", i)
			}
		}
	}
	var unacked []int
	for i := 0; i < n; i++ {
		switch i {
		case n / 3:
			br.Stop()
			waitFor(t, 10*time.Second, "pipeline not ready while broker down", func() bool { return r.Ready() != nil })
		case n / 2:
			br.Restart()
		}
		if i >= n/3 && i < n/2 {
			// Broker down: keep trying to publish; nothing is acknowledged.
			if pub.tryPublish(ctx, 10*time.Millisecond, "in/x", fmt.Sprintf(`{"seq":%d}`, i)) {
				t.Fatalf("message %d acknowledged while the broker was down", i)
			}
			unacked = append(unacked, i)
			continue
		}
		untilAcked(i)
	}
	// The producer retries what the broker did not acknowledge.
	for _, i := range unacked {
		untilAcked(i)
	}
	<-collectDone
	stop()
	mu.Lock()
	defer mu.Unlock()
	var missing []int
	dups := 0
	for i := 0; i < n; i++ {
		c := got[fmt.Sprint(i)]
		if c == 0 {
			missing = append(missing, i)
		}
		if c > 1 {
			dups += c - 1
		}
	}
	if len(missing) > 0 {
		seenMu.Lock()
		for _, m := range missing {
			t.Logf("missing %d: seen by the pipeline %d times", m, seenIn[fmt.Sprint(m)])
		}
		seenMu.Unlock()
		t.Fatalf("lost %d of %d acknowledged messages: %v", len(missing), n, missing)
	}
	t.Logf("all %d acknowledged messages arrived (%d duplicates from redelivery)", n, dups)
}

// TestResubscribeAfterBrokerRestart uses a broker without persistence: it
// forgets every subscription on restart, so messages after the restart
// reach the pipeline only if it subscribed again.
func TestResubscribeAfterBrokerRestart(t *testing.T) {
	br := mqtttest.Start(t, mqtttest.Options{})
	g := pipeline.New().Connector("mqtt", builder(t, br.URL(), pipeline.Params{"reconnect_max": "300ms"}))
	g.Record("in").From("mqtt://in/+", codec.Raw{}).To("mqtt://out/x", codec.Raw{})
	r, _ := run(t, g)
	br.Stop()
	waitFor(t, 10*time.Second, "not ready after broker stop", func() bool { return r.Ready() != nil })
	br.Restart()
	waitFor(t, 15*time.Second, "ready again", func() bool { return r.Ready() == nil })
	sub := newClient(t, br.URL(), clientOpts{Subscribe: []string{"out/#"}, QoS: 1})
	pub := newClient(t, br.URL(), clientOpts{})
	pub.publish("in/a", "after-restart", 1)
	if m := sub.recv(10 * time.Second); m.Payload != "after-restart" {
		t.Fatalf("got %+v", m)
	}
}

func TestTLSWithGeneratedCertificates(t *testing.T) {
	br := mqtttest.Start(t, mqtttest.Options{TLS: true, RequireClientCert: true})
	c := br.Certs()
	params := pipeline.Params{"ca_file": c.CAFile, "cert_file": c.ClientCertFile, "key_file": c.ClientKeyFile}
	g := pipeline.New().Connector("mqtt", builder(t, br.TLSURL(), params))
	g.Record("in").From("mqtt://secure/in", codec.Raw{}).To("mqtt://secure/out", codec.Raw{})
	sub := newClient(t, br.URL(), clientOpts{Subscribe: []string{"secure/out"}, QoS: 1})
	run(t, g)
	pub := newClient(t, br.URL(), clientOpts{})
	pub.publish("secure/in", "over-tls", 1)
	if m := sub.recv(10 * time.Second); m.Payload != "over-tls" {
		t.Fatalf("got %+v", m)
	}

	// Without the CA the server certificate is refused: never ready.
	b2, err := mqtt.Factory(br.TLSURL(), pipeline.Params{"connect_timeout": "1s", "reconnect_max": "200ms"})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := b2.Build(context.Background(), pipeline.BuildEnv{Name: "untrusted"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rd := conn.(pipeline.Readiness)
	waitFor(t, 10*time.Second, "certificate error reported", func() bool {
		e := rd.Ready()
		return e != nil && strings.Contains(e.Error(), "certificate")
	})
}

func TestSharedSubscriptionSplitsBetweenInstances(t *testing.T) {
	br := mqtttest.Start(t, mqtttest.Options{})
	var counts [2]atomic.Int64
	seen := make(chan string, 1000)
	for i := range 2 {
		g := pipeline.New().Connector("mqtt", builder(t, br.URL(), nil))
		addr := "mqtt://jobs/+"
		opts := pipeline.Params{"share": "workers"}
		if i == 1 {
			addr, opts = "mqtt://$share/workers/jobs/+", nil
		}
		g.Record("jobs").From(addr, codec.Raw{}, pipeline.WithParams(opts))
		g.Pipeline("work").From("jobs").Via(stages.Tap(func(e *pipeline.Envelope) {
			counts[i].Add(1)
			seen <- string(e.Payload)
		})).To("mqtt://done", codec.Raw{})
		run(t, g)
	}
	pub := newClient(t, br.URL(), clientOpts{})
	const n = 200
	for i := 0; i < n; i++ {
		pub.publish("jobs/x", fmt.Sprint(i), 1)
	}
	got := map[string]int{}
	for len(got) < n {
		select {
		case p := <-seen:
			got[p]++
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d jobs processed", len(got), n)
		}
	}
	for p, c := range got {
		if c != 1 {
			t.Errorf("job %s processed %d times", p, c)
		}
	}
	a, b := counts[0].Load(), counts[1].Load()
	if a == 0 || b == 0 || a+b != n {
		t.Fatalf("split %d/%d, want both > 0 summing to %d", a, b, n)
	}
	t.Logf("shared subscription split %d/%d", a, b)
}

func TestEmbeddedBroker(t *testing.T) {
	// The whole loop in one graph: a producer writes into a record that is
	// published to the embedded broker, the same connector subscribes and
	// feeds a second record.
	b, err := mqtt.EmbeddedFactory("embedded://", nil)
	if err != nil {
		t.Fatal(err)
	}
	g := pipeline.New().Connector("local", b)
	g.Record("src").To("local://sensors/{device}/temp", codec.JSON{})
	g.Record("back").From("local://sensors/+/temp", codec.JSON{})
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: testLogLevel}))})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := r.Subscribe("back")
	if err != nil {
		t.Fatal(err)
	}
	w, err := r.Writer("src")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitFor(t, 10*time.Second, "ready", func() bool { return r.Ready() == nil })
	for i := range 3 {
		if err := w.WriteValue(ctx, map[string]any{"device": fmt.Sprintf("d%d", i), "temp": float64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	for i := range 3 {
		env, err := rd.Recv(rctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		m := env.Value.(map[string]any)
		if env.Topic != fmt.Sprintf("sensors/%s/temp", m["device"]) {
			t.Fatalf("topic %q for %v", env.Topic, m)
		}
		env.Ack.Done()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestEmbeddedBrokerExternalClients(t *testing.T) {
	port := mqtttest.FreePort(t)
	b, err := mqtt.EmbeddedFactory(fmt.Sprintf("embedded://127.0.0.1:%d", port), nil)
	if err != nil {
		t.Fatal(err)
	}
	g := pipeline.New().Connector("mqtt", b)
	g.Record("in").From("mqtt://sensors/+/temp", codec.JSON{})
	g.Pipeline("p").From("in").Via(hot(25)).To("mqtt://alerts/{device}", codec.JSON{})
	_, stop := run(t, g)
	url := fmt.Sprintf("mqtt://127.0.0.1:%d", port)
	sub := newClient(t, url, clientOpts{Subscribe: []string{"alerts/#"}, QoS: 1})
	pub := newClient(t, url, clientOpts{})
	pub.publish("sensors/d-9/temp", `{"device":"d-9","temp":40}`, 1, "k", "v")
	m := sub.recv(10 * time.Second)
	if m.Topic != "alerts/d-9" || m.User["k"] != "v" {
		t.Fatalf("got %+v", m)
	}
	stop()
	// Close stopped the broker: the port is free again.
	waitFor(t, 5*time.Second, "embedded broker stopped", func() bool {
		return sub.cm.AwaitConnection(expired()) != nil
	})
}

func expired() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	_ = cancel
	return ctx
}

func TestQoS2BothWays(t *testing.T) {
	br := mqtttest.Start(t, mqtttest.Options{})
	g := pipeline.New().Connector("mqtt", builder(t, br.URL(), nil))
	g.Record("in").From("mqtt://q2/in", codec.Raw{}, pipeline.WithParams(pipeline.Params{"qos": "2"})).
		To("mqtt://q2/out", codec.Raw{}, pipeline.WithParams(pipeline.Params{"qos": "2", "retain": "true"}))
	sub := newClient(t, br.URL(), clientOpts{Subscribe: []string{"q2/out"}, QoS: 2})
	run(t, g)
	pub := newClient(t, br.URL(), clientOpts{})
	for i := range 20 {
		pub.publish("q2/in", fmt.Sprint(i), 2)
	}
	got := map[string]bool{}
	for len(got) < 20 {
		m := sub.recv(10 * time.Second)
		if m.QoS != 2 {
			t.Fatalf("qos %d, want 2", m.QoS)
		}
		got[m.Payload] = true
	}
	// retain: a late subscriber gets the last value.
	late := newClient(t, br.URL(), clientOpts{Subscribe: []string{"q2/out"}, QoS: 1})
	if m := late.recv(10 * time.Second); !m.Retain || m.Payload != "19" {
		t.Fatalf("retained message %+v, want 19 with the retain flag", m)
	}
}

// TestRejectedPublishIsDeadLettered: mosquitto's ACL denies publishing to
// forbidden/#; the broker's rejection is final and the record goes to the
// dead-letter destination with the reason and its full provenance
// (pipeline, record, link), while allowed records flow. In both publish
// modes: synchronous (the runner dead-letters the returned error) and
// asynchronous (the connector reports the rejection as pipeline.Permanent
// through the record's ack, and the runner dead-letters it).
func TestRejectedPublishIsDeadLettered(t *testing.T) {
	for _, mode := range []pipeline.Params{nil, {"async_publish": "true"}} {
		t.Run(fmt.Sprintf("async=%v", mode["async_publish"] == "true"), func(t *testing.T) {
			br := mqtttest.Start(t, mqtttest.Options{ACL: "topic readwrite #\ntopic deny forbidden/#\n"})
			g := pipeline.New().Connector("mqtt", builder(t, br.URL(), mode))
			g.Record("in").From("mqtt://jobs/+", codec.JSON{})
			g.Pipeline("p").From("in").To("mqtt://{dest}/x", codec.JSON{})
			g.DeadLetterTo("mqtt://dlq", codec.Raw{})
			sub := newClient(t, br.URL(), clientOpts{Subscribe: []string{"allowed/#", "dlq"}, QoS: 1})
			run(t, g)
			pub := newClient(t, br.URL(), clientOpts{})
			pub.publish("jobs/1", `{"dest":"forbidden"}`, 1)
			pub.publish("jobs/2", `{"dest":"allowed"}`, 1)
			seen := map[string]msg{}
			for len(seen) < 2 {
				m := sub.recv(10 * time.Second)
				seen[m.Topic] = m
			}
			if _, ok := seen["allowed/x"]; !ok {
				t.Fatalf("allowed record missing: %v", seen)
			}
			var d pipeline.DeadLetter
			if err := json.Unmarshal([]byte(seen["dlq"].Payload), &d); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(d.Error, "rejected") || !strings.Contains(d.Error, "not authorized") || !strings.Contains(d.Stage, "publish") || d.Payload != `{"dest":"forbidden"}` {
				t.Fatalf("dead letter %+v", d)
			}
			// The runner names the pipeline, its input record and the
			// link, in both modes alike.
			// (Topic differs: the source's topic for a synchronous
			// failure, the rendered destination for an asynchronous one.)
			if d.Pipeline != "p" || d.Record != "in" || d.Link != "mqtt://{dest}/x" {
				t.Fatalf("dead letter provenance: pipeline %q record %q link %q, want p, in, mqtt://{dest}/x (%+v)", d.Pipeline, d.Record, d.Link, d)
			}
		})
	}
}

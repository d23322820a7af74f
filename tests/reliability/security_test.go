package reliability

import (
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/tests/kafkatest"
	"github.com/aimdb-dev/aimdb-flow/tests/mqtttest"
)

// Transport security is tested in the connectors' own packages:
//   - MQTT over TLS with a client certificate: connectors/mqtt
//     TestTLSWithGeneratedCertificates (mosquitto TLS listener, CA and
//     certificates generated at test time); password auth failure and
//     credentials never logged: TestCredentialsNeverLogged.
//   - Kafka over TLS: connectors/kafka TestTLS; SASL SCRAM (and a wrong
//     password reported as not-ready): TestSASLSCRAM.
//   - HTTP ingest token (401) and body limit (413): connectors/httpconn
//     TestIngestRejects; HTTPS ingest and webhook: TestHTTPSIngestAndWebhook.
// This file covers what crosses them: secrets from ${ENV} never printed by
// the runner or the CLI, and the CLI's HTTP endpoints' binding.

const (
	mqttSecret  = "Mq77-s3cret-Zz41"
	kafkaSecret = "Kf99-s3cret-Qq07"
	wrongSecret = "Wr0ng-s3cret-Xx3"
)

const secretsFlow = `# Credentials come from the environment only.
connector mqtt "${MQTT_URL}" client_id "sec-relay" username "alice" password "${MQTT_PASSWORD}"
    reconnect_max 300ms
connector kafka "kafka://${KAFKA_BROKERS}" group "sec" sasl "plain" username "admin" password "${KAFKA_PASSWORD}"
    commit_interval 100ms session_timeout 2s heartbeat_interval 200ms
# The same MQTT password in the endpoint URL's user info.
connector mqtt2 "mqtt://alice:${MQTT_PASSWORD}@${MQTT_ADDR}" client_id "sec-url"

record in {
  from "mqtt://sec/in/#" decode json qos 1
}
record kin {
  from "kafka://sec-in" decode json
}
pipeline toKafka {
  from in
  filter ` + "`seq >= 0`" + `
  to "kafka://sec-out" encode json
}
pipeline toMQTT {
  from kin
  to "mqtt2://sec/out/{seq}" encode json
}
`

// secretEnv starts a password-protected mosquitto and a SASL/PLAIN kfake
// cluster and returns the environment for secretsFlow, with the given
// passwords.
func secretEnv(t *testing.T, mqttPW, kafkaPW string) (*mqtttest.Broker, *kafkatest.Cluster, map[string]string) {
	br := mqtttest.Start(t, mqtttest.Options{Users: map[string]string{"alice": mqttSecret}})
	cl := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"sec-in": 1, "sec-out": 1},
		SASL:  plain.Mechanism{Username: "admin", Password: kafkaSecret},
		Extra: []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("PLAIN", "admin", kafkaSecret)}})
	env := map[string]string{"MQTT_URL": br.URL(), "MQTT_ADDR": br.Addr(), "MQTT_PASSWORD": mqttPW,
		"KAFKA_BROKERS": strings.Join(cl.Addrs(), ","), "KAFKA_PASSWORD": kafkaPW}
	return br, cl, env
}

func noSecrets(t *testing.T, where, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			i := strings.Index(text, s)
			t.Errorf("%s contains a secret near: %q", where, text[max(0, i-120):min(len(text), i+len(s)+40)])
		}
	}
}

// TestSecretsNeverLoggedInProcess loads secretsFlow with the passwords
// from ${ENV}, runs it at debug log level, once with the right passwords
// (records flow MQTT -> Kafka and Kafka -> MQTT) and once with wrong ones
// (connection and authentication failures are logged and reported by
// Ready), and scans every log line, every error, Ready() and the stats for
// either secret.
func TestSecretsNeverLoggedInProcess(t *testing.T) {
	for _, tc := range []struct {
		name   string
		right  bool
		mq, kp string
	}{{"right passwords", true, mqttSecret, kafkaSecret}, {"wrong passwords", false, wrongSecret, wrongSecret}} {
		t.Run(tc.name, func(t *testing.T) {
			br, cl, env := secretEnv(t, tc.mq, tc.kp)
			log, logs := testLogger(t, slog.LevelDebug)
			g, err := dsl.Load(dsl.Options{Logger: log, Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }},
				dsl.Source{Name: "secrets.flow", Src: []byte(secretsFlow)})
			if err != nil {
				t.Fatal(err)
			}
			run := start(t, g, pipeline.RunOptions{Logger: log})
			var texts []string
			if tc.right {
				waitFor(t, 30*time.Second, "ready", func() bool { return run.r.Ready() == nil })
				far := newMQTTClient(t, br.URL(), clientOpts{ID: "sec-far", Subscribe: []string{"sec/out/#"}, Username: "alice", Password: mqttSecret})
				pub := newMQTTClient(t, br.URL(), clientOpts{ID: "sec-pub", Username: "alice", Password: mqttSecret})
				pub.publish("sec/in/x", []byte(`{"seq":1}`))
				cl.Produce(t, "sec-in", kafkatest.Msg("k", `{"seq":2}`))
				if got := cl.Consume(t, "sec-out", 1, 20*time.Second); len(got) != 1 {
					t.Fatalf("sec-out: %d records", len(got))
				}
				select {
				case m := <-far.ch:
					if m.Topic != "sec/out/2" {
						t.Fatalf("got %s", m.Topic)
					}
				case <-time.After(20 * time.Second):
					t.Fatal("nothing on sec/out")
				}
			} else {
				waitFor(t, 30*time.Second, "authentication failures reported", func() bool {
					err := run.r.Ready()
					return err != nil && strings.Contains(logs.String(), "not authorized") && strings.Contains(logs.String(), "SASL")
				})
				texts = append(texts, run.r.Ready().Error())
			}
			if err := run.stop(t); err != nil {
				texts = append(texts, err.Error())
			}
			stats := run.r.Stats()
			texts = append(texts, logs.String(), strings.Join(keys(stats.Links), " "))
			for _, txt := range texts {
				noSecrets(t, "logs/errors", txt, mqttSecret, kafkaSecret, wrongSecret)
			}
			if len(logs.String()) < 200 {
				t.Fatalf("suspiciously little logged at debug level:\n%s", logs.String())
			}
		})
	}
}

// TestSecretsNeverPrintedByCLI runs `aimdb-flow run --log-level debug`
// on secretsFlow with the passwords in the environment (right ones, then
// wrong ones), fetches /readyz and /stats, and runs validate and graph on
// the same file: no output contains a secret.
func TestSecretsNeverPrintedByCLI(t *testing.T) {
	for _, tc := range []struct {
		name   string
		right  bool
		mq, kp string
	}{{"right passwords", true, mqttSecret, kafkaSecret}, {"wrong passwords", false, wrongSecret, wrongSecret}} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, envm := secretEnv(t, tc.mq, tc.kp)
			var env []string
			for k, v := range envm {
				env = append(env, k+"="+v)
			}
			flow := writeFlow(t, "secrets.flow", secretsFlow)
			p := startCLI(t, env, "--log-level", "debug", flow)
			var bodies []string
			get := func(path string) {
				resp, err := http.Get(p.health + path)
				if err != nil {
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				bodies = append(bodies, string(b))
			}
			if tc.right {
				p.waitReady(30 * time.Second)
			} else {
				waitFor(t, 30*time.Second, "authentication failures logged", func() bool {
					out := p.out.String()
					return strings.Contains(out, "not authorized") && strings.Contains(out, "SASL")
				})
				get("/readyz")
				if !strings.Contains(bodies[0], "not ready") {
					t.Errorf("/readyz: %q", bodies[0])
				}
			}
			get("/stats")
			if c := p.signal(syscall.SIGTERM, 30*time.Second); c != 0 && tc.right {
				t.Errorf("exit code %d", c)
			}
			noSecrets(t, "aimdb-flow run output", p.out.String(), mqttSecret, kafkaSecret, wrongSecret)
			for _, b := range bodies {
				noSecrets(t, "HTTP endpoint", b, mqttSecret, kafkaSecret, wrongSecret)
			}
			for _, args := range [][]string{{"validate", flow}, {"graph", flow}, {"graph", "--format", "mermaid", flow}} {
				cmd := exec.Command(cliBinary(t), args...)
				cmd.Env = append(cmd.Environ(), env...)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Errorf("%v: %v\n%s", args, err, out)
				}
				noSecrets(t, strings.Join(args[:1], " "), string(out), mqttSecret, kafkaSecret, wrongSecret)
			}
		})
	}
}

const finiteFlow = `connector file "file://"
connector stdio "stdio://"
record lines { from "file://${IN}" decode json }
pipeline copy {
  from lines
  to "stdio://stdout" encode json
}
`

// TestHTTPEndpointsBindLoopback: `run --http :PORT` (no host) binds
// 127.0.0.1, as does localhost, without a warning; an explicit
// non-loopback host is warned about. The non-loopback case uses
// 192.0.2.1 (TEST-NET-1, never assigned to this machine): the warning is
// printed before the bind, which then fails, so nothing ever listens
// beyond loopback. Without a token a non-loopback host is refused before
// anything binds (the records API needs one there).
func TestHTTPEndpointsBindLoopback(t *testing.T) {
	in := writeFlow(t, "in.jsonl", "{\"a\":1}\n{\"a\":2}\n")
	flow := writeFlow(t, "finite.flow", finiteFlow)
	const warning = "http endpoints bound to a non-loopback address; they are reachable from the network"
	const refusal = "a non-loopback address needs a token"
	for _, tc := range []struct {
		addr, listening          string
		warn, fail, withoutToken bool
	}{
		{addr: ":0", listening: "addr=127.0.0.1:"},
		{addr: "127.0.0.1:0", listening: "addr=127.0.0.1:"},
		{addr: "localhost:0", listening: "addr=127.0.0.1:"},
		{addr: "192.0.2.1:0", warn: true, fail: true},
		{addr: "192.0.2.1:0", fail: true, withoutToken: true},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			cmd := exec.Command(cliBinary(t), "run", "--http", tc.addr, "--log-level", "info", "--status", "off", flow)
			cmd.Env = append(cmd.Environ(), "IN="+in)
			if !tc.withoutToken {
				cmd.Env = append(cmd.Env, "AIMDB_FLOW_TOKEN=t0ken")
			}
			out, err := runBounded(t, cmd, 30*time.Second)
			if (err != nil) != tc.fail {
				t.Fatalf("err %v (want failure %v)\n%s", err, tc.fail, out)
			}
			if strings.Contains(out, warning) != tc.warn {
				t.Errorf("warning printed %v, want %v:\n%s", !tc.warn, tc.warn, out)
			}
			if strings.Contains(out, refusal) != tc.withoutToken {
				t.Errorf("refusal printed %v, want %v:\n%s", !tc.withoutToken, tc.withoutToken, out)
			}
			if tc.listening != "" && !strings.Contains(out, tc.listening) {
				t.Errorf("no %q in:\n%s", tc.listening, out)
			}
			if !tc.fail && strings.Count(out, `"a":`) != 2 {
				t.Errorf("pipeline output missing:\n%s", out)
			}
		})
	}
}

// runBounded runs cmd, killing it (by PID) after d.
func runBounded(t *testing.T, cmd *exec.Cmd, d time.Duration) (string, error) {
	t.Helper()
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%v did not finish within %v:\n%s", cmd.Args, d, out.String())
	}
	return "", nil
}

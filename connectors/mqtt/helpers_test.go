package mqtt_test

import (
	"context"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// msg is a message seen by a test client.
type msg struct {
	Topic   string
	Payload string
	QoS     byte
	Retain  bool
	User    map[string]string
	CT      string
}

// client is a plain paho client used by the tests to drive and observe
// pipelines through the broker.
type client struct {
	t  testing.TB
	cm *autopaho.ConnectionManager
	ch chan msg
}

type clientOpts struct {
	ID         string
	Subscribe  []string
	QoS        byte
	Persistent bool // clean start false + session expiry, to survive broker restarts
}

func newClient(t testing.TB, brokerURL string, o clientOpts) *client {
	t.Helper()
	u, err := url.Parse(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, ch: make(chan msg, 100000)}
	var user string
	var pass []byte
	if u.User != nil {
		user = u.User.Username()
		p, _ := u.User.Password()
		pass = []byte(p)
		u.User = nil
	}
	ready := make(chan struct{}, 1)
	cfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     30,
		CleanStartOnInitialConnection: true,
		ReconnectBackoff:              autopaho.NewConstantBackoff(50 * time.Millisecond),
		ConnectTimeout:                5 * time.Second,
		ConnectUsername:               user,
		ConnectPassword:               pass,
		OnConnectionUp: func(cm *autopaho.ConnectionManager, ca *paho.Connack) {
			go func() {
				if len(o.Subscribe) > 0 {
					var subs []paho.SubscribeOptions
					for _, s := range o.Subscribe {
						subs = append(subs, paho.SubscribeOptions{Topic: s, QoS: o.QoS})
					}
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					if _, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs}); err != nil {
						t.Logf("test client subscribe: %v", err)
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
				m := msg{Topic: pr.Packet.Topic, Payload: string(pr.Packet.Payload), QoS: pr.Packet.QoS, Retain: pr.Packet.Retain}
				if p := pr.Packet.Properties; p != nil {
					m.CT = p.ContentType
					if len(p.User) > 0 {
						m.User = map[string]string{}
						for _, up := range p.User {
							m.User[up.Key] = up.Value
						}
					}
				}
				c.ch <- m
				return true, nil
			}},
		},
	}
	if o.Persistent {
		// mosquitto 2.0.11 does not restore, after a restart, a session
		// that began with clean start = true: resume instead.
		cfg.CleanStartOnInitialConnection = false
		cfg.SessionExpiryInterval = 600
	}
	ctx, cancel := context.WithCancel(context.Background())
	cm, err := autopaho.NewConnection(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	c.cm = cm
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer dcancel()
		_ = cm.Disconnect(dctx)
		cancel()
	})
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("test client did not connect/subscribe")
	}
	return c
}

func (c *client) publish(topic, payload string, qos byte, user ...string) {
	c.t.Helper()
	p := &paho.Publish{Topic: topic, Payload: []byte(payload), QoS: qos}
	if len(user) > 0 {
		p.Properties = &paho.PublishProperties{}
		for i := 0; i+1 < len(user); i += 2 {
			p.Properties.User = append(p.Properties.User, paho.UserProperty{Key: user[i], Value: user[i+1]})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.cm.AwaitConnection(ctx); err != nil {
		c.t.Fatalf("publish %s: %v", topic, err)
	}
	if _, err := c.cm.Publish(ctx, p); err != nil {
		c.t.Fatalf("publish %s: %v", topic, err)
	}
}

// tryPublish publishes once and reports whether the broker confirmed it.
func (c *client) tryPublish(ctx context.Context, timeout time.Duration, topic, payload string) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := c.cm.AwaitConnection(ctx); err != nil {
		return false
	}
	pr, err := c.cm.Publish(ctx, &paho.Publish{Topic: topic, Payload: []byte(payload), QoS: 1})
	return err == nil && (pr == nil || pr.ReasonCode < 0x80)
}

func (c *client) recv(timeout time.Duration) msg {
	c.t.Helper()
	select {
	case m := <-c.ch:
		return m
	case <-time.After(timeout):
		c.t.Fatalf("no message within %v", timeout)
	}
	return msg{}
}

// expectNone fails if a message arrives within d. Used only after the
// positive path has proven delivery works, to check nothing extra came.
func (c *client) expectNone(d time.Duration) {
	c.t.Helper()
	select {
	case m := <-c.ch:
		c.t.Fatalf("unexpected message %+v", m)
	case <-time.After(d):
	}
}

// run starts a runner and returns a stop function that cancels it and
// checks Run's error.
func run(t testing.TB, g *pipeline.Graph) (*pipeline.Runner, func()) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: testLogLevel}))
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{DrainTimeout: 5 * time.Second, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("runner: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Error("runner did not stop")
			}
		})
	}
	t.Cleanup(stop)
	waitFor(t, 10*time.Second, "runner ready", func() bool { return r.Ready() == nil })
	return r, stop
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var testLogLevel = func() slog.Level {
	if os.Getenv("MQTT_TEST_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}()

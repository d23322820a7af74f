package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Stats are a connector's counters.
type Stats struct {
	// Connects counts successful connections (the first one included).
	Connects uint64
	// Received counts inbound messages handed to the pipeline.
	Received uint64
	// Acked and Nacked count inbound QoS>0 messages acknowledged to the
	// broker and rejected (left unacknowledged for redelivery).
	Acked, Nacked uint64
	// Published counts confirmed publishes; PublishErrors failed ones.
	Published, PublishErrors uint64
	// Dropped counts records dropped by the drop-oldest offline policy.
	Dropped uint64
	// Queued is the number of records currently waiting to be published.
	Queued int
}

// Conn is a built MQTT connector. It implements pipeline.Connector,
// pipeline.Source and pipeline.Readiness (and, wrapped in AsyncConn,
// pipeline.AsyncPublisher).
type Conn struct {
	cfg       Config
	name      string
	log       *slog.Logger
	url       *url.URL
	tls       *tls.Config
	manualAck bool
	expiry    uint32

	// in subscribes (nil without inbound links); out publishes. They are
	// the same client only when an inbound link asks for no_local.
	in, out *client
	ctx     context.Context // lives until Close
	cancel  context.CancelFunc

	subsOK    atomic.Bool
	subErr    atomic.Pointer[string]
	embedded  *EmbeddedBroker
	closeOnce sync.Once

	// inbound
	inbound   []pipeline.Subscription
	plan      []planned
	srvMu     sync.Mutex
	serving   chan struct{} // closed when Serve set disp
	disp      pipeline.Dispatcher
	serveCtx  context.Context
	nackMu    sync.Mutex
	nackBO    pipeline.Backoff
	nackTimer *time.Timer
	nacked    atomic.Bool

	pub *publisher

	received, acked, nacks atomic.Uint64
}

// client is one MQTT connection managed by autopaho.
type client struct {
	c          *Conn
	role       string // "subscriber", "publisher" or "client" (both)
	id         string
	expiry     uint32
	subscribes bool
	publishes  bool
	cm         *autopaho.ConnectionManager
	up         atomic.Bool
	gen        atomic.Uint64 // connection generation
	connErr    atomic.Pointer[string]
	netMu      sync.Mutex
	netConn    net.Conn
	upSignal   signal
	connects   atomic.Uint64
	noSubIDs   atomic.Bool // the broker does not support subscription identifiers
}

var (
	_ pipeline.Connector = (*Conn)(nil)
	_ pipeline.Source    = (*Conn)(nil)
	_ pipeline.Readiness = (*Conn)(nil)
)

// newConn builds the connector's clients and starts them connecting in
// the background. tc is the TLS configuration of an mqtts endpoint (built
// by New with kit.TLSConfig), nil otherwise.
func newConn(_ context.Context, cfg Config, tc *tls.Config, env pipeline.BuildEnv, log *slog.Logger) (*Conn, error) {
	cfg.withDefaults()
	u, err := cfg.brokerURL()
	if err != nil {
		return nil, err
	}
	c := &Conn{cfg: cfg, name: env.Name, log: log, url: u, inbound: env.Inbound, serving: make(chan struct{}),
		nackBO: pipeline.Backoff{Min: 200 * time.Millisecond, Max: 10 * time.Second}}
	if u.Scheme == "mqtts" {
		// tls.Dialer verifies (and sends as SNI) the broker's host when
		// ServerName is empty (no server_name setting).
		c.tls = tc
	}
	for _, s := range env.Inbound {
		if kit.LinkOptions(s.Options, In{QoS: 1}).QoS > 0 {
			c.manualAck = true
		}
	}
	switch {
	case cfg.SessionExpiry < 0:
		c.expiry = 0
	case cfg.SessionExpiry > 0:
		c.expiry = uint32(cfg.SessionExpiry / time.Second)
	case c.manualAck:
		c.expiry = uint32(defaultSessionExpiry / time.Second)
	}
	c.subsOK.Store(len(env.Inbound) == 0)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.pub = newPublisher(c)

	noLocal := false
	for _, s := range env.Inbound {
		noLocal = noLocal || kit.LinkOptions(s.Options, In{QoS: 1}).NoLocal
	}
	var pubExpiry uint32
	if cfg.SessionExpiry > 0 {
		pubExpiry = c.expiry
	}
	switch {
	case len(env.Inbound) == 0:
		c.out = &client{c: c, role: "client", id: cfg.ClientID, expiry: c.expiry, publishes: true}
	case noLocal:
		// no_local only means something when we publish on the connection
		// that subscribes.
		c.out = &client{c: c, role: "client", id: cfg.ClientID, expiry: c.expiry, publishes: true, subscribes: true}
		c.in = c.out
	default:
		// Separate connections: the subscriber's reader may block on
		// backpressure without delaying the publisher's acknowledgements.
		c.in = &client{c: c, role: "subscriber", id: cfg.ClientID, expiry: c.expiry, subscribes: true}
		c.out = &client{c: c, role: "publisher", id: cfg.ClientID + "-pub", expiry: pubExpiry, publishes: true}
	}
	for _, cl := range c.clients() {
		if err := cl.start(); err != nil {
			c.cancel()
			return nil, err
		}
	}
	c.pub.start()
	return c, nil
}

func (c *Conn) clients() []*client {
	if c.in == nil || c.in == c.out {
		return []*client{c.out}
	}
	return []*client{c.in, c.out}
}

func (cl *client) start() error {
	c, cfg, u := cl.c, cl.c.cfg, cl.c.url
	bo := &pipeline.Backoff{Min: cfg.ReconnectMin, Max: cfg.ReconnectMax}
	var boMu sync.Mutex
	receiveMax := cfg.ReceiveMaximum
	manualAck := cl.subscribes && c.manualAck
	acfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     uint16(min(cfg.KeepAlive/time.Second, 65535)),
		CleanStartOnInitialConnection: cfg.CleanStart,
		SessionExpiryInterval:         cl.expiry,
		ConnectTimeout:                cfg.ConnectTimeout,
		ReconnectBackoff: func(attempt int) time.Duration {
			boMu.Lock()
			defer boMu.Unlock()
			if attempt == 0 {
				bo.Reset()
				return 0
			}
			return bo.Next()
		},
		AttemptConnection: cl.dial,
		OnConnectionUp:    cl.onUp,
		OnConnectionDown:  cl.onDown,
		OnConnectError:    cl.onConnectError,
		ConnectUsername:   cfg.Username,
		ConnectPassword:   []byte(cfg.Password.Value()),
		ConnectPacketBuilder: func(cp *paho.Connect, _ *url.URL) (*paho.Connect, error) {
			if cp.Properties == nil {
				cp.Properties = &paho.ConnectProperties{}
			}
			// autopaho builds ConnectProperties with RequestProblemInfo
			// false when a session expiry is set; mochi then strips user
			// properties from every packet it sends us. Ask for it.
			cp.Properties.RequestProblemInfo = true
			cp.Properties.ReceiveMaximum = &receiveMax
			return cp, nil
		},
		ClientConfig: paho.ClientConfig{
			ClientID:                   cl.id,
			EnableManualAcknowledgment: manualAck,
			SendAcksInterval:           cfg.AckInterval,
			PacketTimeout:              cfg.PublishTimeout,
			OnClientError: func(err error) {
				c.log.Debug("mqtt client error", "role", cl.role, "error", err)
			},
			OnServerDisconnect: func(d *paho.Disconnect) {
				c.log.Warn("mqtt broker closed the connection", "role", cl.role, "reason", d.ReasonCode, "broker", u.String())
			},
		},
	}
	if cl.subscribes {
		acfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){c.onPublish}
	} else {
		// A publish-only connection never receives messages; keep paho
		// from installing its default router.
		acfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){func(paho.PublishReceived) (bool, error) { return false, nil }}
	}
	if !cfg.Password.IsSet() {
		acfg.ConnectPassword = nil
	}
	cm, err := autopaho.NewConnection(c.ctx, acfg)
	if err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	cl.cm = cm
	return nil
}

func (cl *client) onUp(cm *autopaho.ConnectionManager, ca *paho.Connack) {
	c := cl.c
	n := cl.connects.Add(1)
	gen := cl.gen.Add(1)
	cl.connErr.Store(nil)
	cl.noSubIDs.Store(ca.Properties != nil && !ca.Properties.SubIDAvailable)
	cl.up.Store(true)
	c.log.Info("mqtt connected", "role", cl.role, "broker", c.url.String(), "client_id", cl.id,
		"session_present", ca.SessionPresent, "connects", n)
	if cl.publishes {
		c.pub.connectionUp(ca.SessionPresent)
	}
	cl.upSignal.notify()
	if cl.subscribes {
		c.srvMu.Lock()
		serving := c.disp != nil
		c.srvMu.Unlock()
		if serving {
			go c.subscribe(cl, gen)
		}
	}
}

func (cl *client) onDown() bool {
	c := cl.c
	cl.up.Store(false)
	if cl.subscribes {
		c.subsOK.Store(false)
	}
	if cl.publishes {
		c.pub.connectionDown(cl.expiry == 0)
	}
	if c.ctx.Err() == nil {
		c.log.Warn("mqtt connection lost; reconnecting", "role", cl.role, "broker", c.url.String())
	}
	return true
}

func (cl *client) onConnectError(err error) {
	c := cl.c
	var ce *autopaho.ConnackError
	if errors.As(err, &ce) {
		err = fmt.Errorf("broker refused the connection: %s (reason 0x%02x)%s", connackReason(ce.ReasonCode), ce.ReasonCode, reasonSuffix(ce.Reason))
	}
	msg := err.Error()
	prev := cl.connErr.Swap(&msg)
	if c.ctx.Err() != nil {
		return
	}
	// Log the first failure of a series at Warn, repeats at Debug. The
	// error text holds the broker URL without user info, never a password.
	if prev == nil {
		c.log.Warn("mqtt connect failed; retrying with backoff", "role", cl.role, "broker", c.url.String(), "error", err)
	} else {
		c.log.Debug("mqtt connect failed", "role", cl.role, "broker", c.url.String(), "error", err)
	}
}

// Ready implements pipeline.Readiness: nil while connected and subscribed
// to every inbound link.
func (c *Conn) Ready() error {
	for _, cl := range c.clients() {
		if !cl.up.Load() {
			if e := cl.connErr.Load(); e != nil {
				return fmt.Errorf("%s not connected to %s: %s", cl.role, c.url, *e)
			}
			return fmt.Errorf("%s not connected to %s", cl.role, c.url)
		}
	}
	if e := c.subErr.Load(); e != nil {
		return errors.New(*e)
	}
	if !c.subsOK.Load() {
		return errors.New("not subscribed yet")
	}
	return nil
}

// Stats returns a snapshot of the connector's counters.
func (c *Conn) Stats() Stats {
	s := Stats{Received: c.received.Load(), Acked: c.acked.Load(), Nacked: c.nacks.Load()}
	for _, cl := range c.clients() {
		s.Connects += cl.connects.Load()
	}
	c.pub.stats(&s)
	return s
}

// ClientID returns the MQTT client identifier (of the subscribing
// connection when there are inbound links; the publishing connection then
// uses ClientID + "-pub").
func (c *Conn) ClientID() string { return c.cfg.ClientID }

// BrokerURL returns the broker URL (without credentials); for the embedded
// scheme, the in-process broker's address.
func (c *Conn) BrokerURL() string { return c.url.String() }

// Close implements pipeline.Connector: it flushes queued publishes and
// pending acknowledgements within ctx, disconnects and, for the embedded
// scheme, stops the broker.
func (c *Conn) Close(ctx context.Context) error {
	var err error
	c.closeOnce.Do(func() {
		perr := c.pub.close(ctx)
		if c.manualAck && c.in != nil && c.in.up.Load() {
			// Let paho's ack ticker send the acks released by the drain.
			t := time.NewTimer(3 * c.cfg.AckInterval)
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
		}
		c.nackMu.Lock()
		if c.nackTimer != nil {
			c.nackTimer.Stop()
			c.nackTimer = nil
		}
		c.nackMu.Unlock()
		var derr error
		for _, cl := range c.clients() {
			derr = errors.Join(derr, cl.cm.Disconnect(ctx))
		}
		c.cancel()
		var eerr error
		if c.embedded != nil {
			eerr = c.embedded.Close()
		}
		err = errors.Join(perr, derr, eerr)
	})
	return err
}

// signal is a broadcast: wait returns a channel closed by the next notify.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

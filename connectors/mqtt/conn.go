package mqtt

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/topic"
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
	// deadLetter dead-letters records the broker permanently rejected
	// after an asynchronous hand-off (from pipeline.BuildEnv).
	deadLetter func(ctx context.Context, env *pipeline.Envelope, dest string, cause error) error

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

func newConn(_ context.Context, cfg Config, env pipeline.BuildEnv, log *slog.Logger) (*Conn, error) {
	cfg.withDefaults()
	u, err := cfg.brokerURL()
	if err != nil {
		return nil, err
	}
	c := &Conn{cfg: cfg, name: env.Name, log: log, url: u, inbound: env.Inbound, serving: make(chan struct{}), deadLetter: env.DeadLetter,
		nackBO: pipeline.Backoff{Min: 200 * time.Millisecond, Max: 10 * time.Second}}
	if u.Scheme == "mqtts" {
		if c.tls, err = tlsConfig(cfg, u.Hostname()); err != nil {
			return nil, err
		}
	}
	for _, s := range env.Inbound {
		if subOptions(s.Options).QoS > 0 {
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
		noLocal = noLocal || subOptions(s.Options).NoLocal
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
		ConnectPassword:   []byte(cfg.Password),
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
	if len(cfg.Password) == 0 {
		acfg.ConnectPassword = nil
	}
	cm, err := autopaho.NewConnection(c.ctx, acfg)
	if err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	cl.cm = cm
	return nil
}

func tlsConfig(cfg Config, host string) (*tls.Config, error) {
	t := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // opt-in for tests
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt: ca_file %s: no PEM certificate found", cfg.CAFile)
		}
		t.RootCAs = pool
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: cert_file/key_file: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// dial opens the network connection. Reads are buffered (paho reads
// packet headers byte by byte); writes go straight to the connection under
// a lock so that every packet is written whole.
func (cl *client) dial(ctx context.Context, _ autopaho.ClientConfig, u *url.URL) (net.Conn, error) {
	c := cl.c
	dctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	defer cancel()
	var nc net.Conn
	var err error
	d := net.Dialer{}
	if c.tls != nil {
		td := tls.Dialer{NetDialer: &d, Config: c.tls}
		nc, err = td.DialContext(dctx, "tcp", u.Host)
	} else {
		nc, err = d.DialContext(dctx, "tcp", u.Host)
	}
	if err != nil {
		return nil, err
	}
	// A write that makes no progress for this long fails the connection.
	wt := max(c.cfg.PublishTimeout, c.cfg.KeepAlive)
	var out net.Conn
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
		out = &tcpConn{TCPConn: tc, r: bufio.NewReaderSize(tc, 16<<10), writeTimeout: wt}
	} else {
		out = &bufConn{Conn: nc, r: bufio.NewReaderSize(nc, 16<<10), writeTimeout: wt}
	}
	cl.netMu.Lock()
	cl.netConn = out
	cl.netMu.Unlock()
	return out, nil
}

// tcpConn buffers reads (paho reads packet headers byte by byte) and
// serialises writes (paho requires thread-safe writes and takes the lock
// around each packet). Embedding *net.TCPConn keeps its vectored write:
// net.Buffers.WriteTo sends a packet's parts in one writev. Taking the lock
// also arms a write deadline (the larger of the publish timeout and the
// keep-alive), so a broker that stops reading fails the connection (and
// autopaho reconnects) instead of blocking a writer forever.
type tcpConn struct {
	*net.TCPConn
	r            *bufio.Reader
	mu           sync.Mutex
	writeTimeout time.Duration
}

func (t *tcpConn) Read(p []byte) (int, error) { return t.r.Read(p) }

func (t *tcpConn) Lock() {
	t.mu.Lock()
	if t.writeTimeout > 0 {
		_ = t.SetWriteDeadline(time.Now().Add(t.writeTimeout))
	}
}

func (t *tcpConn) Unlock() { t.mu.Unlock() }

// bufConn is tcpConn for other connections (TLS): buffered reads,
// serialised and time-bounded writes.
type bufConn struct {
	net.Conn
	r            *bufio.Reader
	mu           sync.Mutex
	writeTimeout time.Duration
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *bufConn) Write(p []byte) (int, error) {
	if b.writeTimeout > 0 {
		_ = b.Conn.SetWriteDeadline(time.Now().Add(b.writeTimeout))
	}
	return b.Conn.Write(p)
}
func (b *bufConn) Lock()   { b.mu.Lock() }
func (b *bufConn) Unlock() { b.mu.Unlock() }

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

// planned is one subscription sent to the broker: links with the same
// filter share it (at the highest QoS they ask for). Its id is sent as the
// MQTT 5 subscription identifier.
type planned struct {
	id     int
	filter string // as sent, with any $share prefix
	match  string // the filter topics are matched against
	shared bool
	opts   SubOptions
}

func makePlan(subs []pipeline.Subscription) []planned {
	var plan []planned
	idx := map[string]int{}
	for _, s := range subs {
		o := subOptions(s.Options)
		f := subscribeFilter(s.Filter, o)
		if i, ok := idx[f]; ok {
			plan[i].opts.QoS = max(plan[i].opts.QoS, o.QoS)
			plan[i].opts.NoLocal = plan[i].opts.NoLocal && o.NoLocal
			plan[i].opts.RetainAsPublished = plan[i].opts.RetainAsPublished || o.RetainAsPublished
			continue
		}
		m, group := topic.Filter(f)
		idx[f] = len(plan)
		plan = append(plan, planned{id: len(plan) + 1, filter: f, match: m, shared: group != "", opts: o})
	}
	return plan
}

// duplicate reports whether a message that arrived through subscription
// sid is a second copy: brokers such as mosquitto deliver one copy per
// matching subscription, while the router already hands one message to
// every matching record. Among the plain (not shared) subscriptions
// matching the topic, only the copy of the one with the highest QoS
// (lowest id on ties) is dispatched. Copies through shared subscriptions
// are always dispatched (the other copy may have gone to another member).
func (c *Conn) duplicate(sid int, topicName string) bool {
	if len(c.plan) < 2 || sid < 1 || sid > len(c.plan) {
		return false
	}
	me := c.plan[sid-1]
	if me.shared {
		return false
	}
	for _, o := range c.plan {
		if o.id == sid || o.shared || !topic.Match(o.match, topicName) {
			continue
		}
		if o.opts.QoS > me.opts.QoS || (o.opts.QoS == me.opts.QoS && o.id < me.id) {
			return true
		}
	}
	return false
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return ": " + r
}

// connackReason names the MQTT 5 CONNACK reason codes a client may see.
func connackReason(code byte) string {
	switch code {
	case 0x80:
		return "unspecified error"
	case 0x81:
		return "malformed packet"
	case 0x82:
		return "protocol error"
	case 0x84:
		return "unsupported protocol version"
	case 0x85:
		return "client identifier not valid"
	case 0x86:
		return "bad user name or password"
	case 0x87:
		return "not authorized (check username/password)"
	case 0x88:
		return "server unavailable"
	case 0x89:
		return "server busy"
	case 0x8A:
		return "banned"
	case 0x8C:
		return "bad authentication method"
	case 0x95:
		return "packet too large"
	case 0x97:
		return "quota exceeded"
	case 0x9F:
		return "connection rate exceeded"
	}
	return "refused"
}

// subscribe sends one SUBSCRIBE per planned subscription (after every
// connect).
func (c *Conn) subscribe(cl *client, gen uint64) {
	cm := cl.cm
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.ConnectTimeout)
	defer cancel()
	if cl.noSubIDs.Load() && len(c.plan) > 1 {
		c.log.Warn("mqtt broker does not support subscription identifiers: messages matching several subscriptions may be dispatched more than once")
	}
	for _, s := range c.plan {
		sub := &paho.Subscribe{
			Subscriptions: []paho.SubscribeOptions{{Topic: s.filter, QoS: s.opts.QoS, NoLocal: s.opts.NoLocal, RetainAsPublished: s.opts.RetainAsPublished}},
		}
		if !cl.noSubIDs.Load() {
			id := s.id
			sub.Properties = &paho.SubscribeProperties{SubscriptionIdentifier: &id}
		}
		sa, err := cm.Subscribe(ctx, sub)
		if err == nil && len(sa.Reasons) > 0 && sa.Reasons[0] >= 0x80 {
			err = fmt.Errorf("broker rejected the subscription (reason 0x%02x)", sa.Reasons[0])
		}
		if err != nil {
			if cl.gen.Load() != gen || c.ctx.Err() != nil {
				return // the connection went away meanwhile; the next connect resubscribes
			}
			msg := fmt.Sprintf("subscribe %s: %v", s.filter, err)
			c.subErr.Store(&msg)
			c.log.Error("mqtt subscribe failed", "filter", s.filter, "error", err)
			return
		}
		c.log.Debug("mqtt subscribed", "filter", s.filter, "qos", s.opts.QoS)
	}
	if cl.gen.Load() == gen {
		c.subErr.Store(nil)
		c.subsOK.Store(true)
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

// dropConnection closes the current network connection; autopaho then
// reconnects (resuming the session).
func (c *Conn) dropConnection() {
	if c.in == nil {
		return
	}
	c.in.netMu.Lock()
	nc := c.in.netConn
	c.in.netMu.Unlock()
	if nc != nil {
		_ = nc.Close()
	}
}

// Serve implements pipeline.Source.
func (c *Conn) Serve(ctx context.Context, subs []pipeline.Subscription, d pipeline.Dispatcher) error {
	c.srvMu.Lock()
	if c.disp != nil {
		c.srvMu.Unlock()
		return errors.New("mqtt: Serve called twice")
	}
	if len(subs) > 0 {
		c.inbound = subs
	}
	c.plan = makePlan(c.inbound)
	c.disp, c.serveCtx = d, ctx
	close(c.serving)
	c.srvMu.Unlock()
	if c.in != nil && c.in.up.Load() {
		go c.subscribe(c.in, c.in.gen.Load())
	}
	<-ctx.Done()
	return nil
}

// onPublish is paho's handler for inbound PUBLISH packets. It runs on
// paho's single router goroutine; blocking here (Dispatch applying
// backpressure) stops reading from the broker, whose flow control (receive
// maximum) then holds further QoS>0 messages.
func (c *Conn) onPublish(pr paho.PublishReceived) (bool, error) {
	select {
	case <-c.serving:
	case <-c.ctx.Done():
		return false, nil
	}
	ctx := c.serveCtx
	if ctx.Err() != nil {
		// The source is stopping: leave the message unacknowledged; the
		// broker redelivers it to the resumed session.
		return false, nil
	}
	p := pr.Packet
	if p.Properties != nil && p.Properties.SubscriptionIdentifier != nil && c.duplicate(*p.Properties.SubscriptionIdentifier, p.Topic) {
		if p.QoS > 0 && c.manualAck {
			_ = pr.Client.Ack(p)
		}
		return true, nil
	}
	env := pipeline.Envelope{Payload: p.Payload, Topic: p.Topic, Partition: -1}
	if p.Properties != nil {
		if len(p.Properties.User) > 0 {
			env.Headers = make(pipeline.Headers, 0, len(p.Properties.User)+1)
			for _, up := range p.Properties.User {
				env.Headers = append(env.Headers, pipeline.Header{Key: up.Key, Value: up.Value})
			}
		}
		if p.Properties.ContentType != "" {
			env.Headers = append(env.Headers, pipeline.Header{Key: HeaderContentType, Value: p.Properties.ContentType})
		}
	}
	if p.QoS > 0 && c.manualAck {
		cli := pr.Client
		env.Ack = pipeline.NewAck(func(err error) { c.settle(cli, p, err) })
	}
	c.received.Add(1)
	_ = c.disp.Dispatch(ctx, &env) // consumes the ack share; a ctx error is the shutdown
	return true, nil
}

// settle acknowledges an inbound message once every sink finished with it.
//
// paho sends acknowledgements strictly in the order the messages arrived
// (as MQTT requires): an ack is held until every earlier message was acked
// too. A rejected message is never acknowledged, which also holds back the
// acks of the messages after it. The broker redelivers unacknowledged
// messages only when the session is resumed on a new connection, so a
// rejection (outside shutdown) makes the connector drop the connection
// after a backoff delay; autopaho reconnects with the same session and the
// broker resends the rejected message and every later one whose ack had
// not been sent yet (duplicates are possible: at-least-once).
func (c *Conn) settle(cli *paho.Client, p *paho.Publish, err error) {
	if err == nil {
		// ErrPacketNotFound means the connection that received the message
		// is gone; the broker will redeliver it.
		if cli.Ack(p) == nil {
			c.acked.Add(1)
		}
		if c.nacked.Load() {
			c.nackMu.Lock()
			c.nackBO.Reset()
			c.nackMu.Unlock()
			c.nacked.Store(false)
		}
		return
	}
	n := c.nacks.Add(1)
	if c.ctx.Err() != nil || (c.serveCtx != nil && c.serveCtx.Err() != nil) {
		return // shutting down: the session keeps the message for the next run
	}
	c.nacked.Store(true)
	c.nackMu.Lock()
	defer c.nackMu.Unlock()
	if c.nackTimer != nil {
		return // a reconnect is already scheduled
	}
	delay := c.nackBO.Next()
	if n <= 10 || n%1000 == 0 {
		c.log.Warn("mqtt message rejected by the pipeline; reconnecting for redelivery",
			"topic", p.Topic, "error", err, "after", delay, "rejected", n)
	}
	c.nackTimer = time.AfterFunc(delay, func() {
		c.nackMu.Lock()
		c.nackTimer = nil
		c.nackMu.Unlock()
		if c.ctx.Err() == nil {
			c.dropConnection()
		}
	})
}

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

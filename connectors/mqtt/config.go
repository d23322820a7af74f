package mqtt

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// OfflinePolicy says what a publish does when the offline queue is full
// while the connection is down.
type OfflinePolicy uint8

const (
	// Block makes the publisher wait for room (until its context or the
	// publish timeout ends). Nothing is dropped; the pipeline slows down.
	Block OfflinePolicy = iota
	// DropOldest fails the oldest queued record with ErrDropped to make
	// room for the new one, and counts it (Stats.Dropped).
	DropOldest
)

func (p OfflinePolicy) String() string {
	if p == DropOldest {
		return "drop-oldest"
	}
	return "block"
}

// Config is a connector's typed configuration. The zero value of each
// field selects the documented default.
type Config struct {
	// URL is the broker: "mqtt://host:port" or "mqtts://host:port"
	// (default ports 1883 and 8883). User info in the URL is accepted as
	// username/password; it is never logged.
	URL string
	// ClientID defaults to "aimdb-flow-" plus random hex. Set a stable id
	// to resume a session after a process restart.
	ClientID string
	// Username and Password authenticate the client. The password is
	// never logged or printed (kit.Secret; kit.NewSecret wraps one).
	Username string
	Password kit.Secret
	// KeepAlive is the MQTT keep-alive interval (default 30s).
	KeepAlive time.Duration
	// CleanStart discards any session the broker holds for ClientID on the
	// first connection. Reconnections always resume the session.
	CleanStart bool
	// SessionExpiry is how long the broker keeps the session (subscriptions
	// and unacknowledged QoS>0 messages) after the connection drops. Zero
	// selects the default: 5 minutes when the connector serves inbound
	// links at QoS >= 1 (so unacknowledged messages are redelivered after a
	// reconnect), otherwise 0. A negative value means 0 explicitly (the
	// session ends with the connection).
	SessionExpiry time.Duration
	// ConnectTimeout bounds one connection attempt (default 10s).
	ConnectTimeout time.Duration
	// TLS are the TLS settings of an mqtts:// endpoint (see kit.TLS):
	// CAFile is the PEM bundle of the CAs trusted to sign the broker's
	// certificate (it replaces the system roots), CertFile and KeyFile an
	// optional client certificate, InsecureSkipVerify disables certificate
	// verification (tests only; a warning is logged), ServerName replaces
	// the endpoint's host as the name verified and sent as SNI, MinVersion
	// is TLS 1.2 by default. New loads the files; on mqtt:// the settings
	// are ignored with a warning.
	TLS kit.TLS
	// OfflineQueue bounds the records waiting to be published (default
	// 1000). While connected a full queue always blocks (backpressure).
	OfflineQueue int
	// OfflinePolicy applies when the queue is full while disconnected.
	OfflinePolicy OfflinePolicy
	// PublishTimeout bounds one publish from hand-off to broker
	// confirmation, including time spent in the offline queue (default 10s).
	PublishTimeout time.Duration
	// AsyncPublish makes the connector a pipeline.AsyncPublisher: up to
	// MaxInflight QoS>0 publishes are pipelined and each record's ack is
	// finished when its confirmation arrives. A record the broker rejects
	// is then nacked to its source instead of being dead-lettered, and
	// order may vary slightly. Off by default: each Publish waits for its
	// confirmation, and rejections are dead-lettered.
	AsyncPublish bool
	// MaxInflight is how many QoS>0 publishes may await their
	// acknowledgement at once with AsyncPublish (default 32; 1 keeps strict
	// order); it also sizes the worker pool that drains the offline queue.
	MaxInflight int
	// ReceiveMaximum is how many unacknowledged QoS>0 messages the broker
	// may send this client at once (default 512).
	ReceiveMaximum uint16
	// AckInterval is how often pending inbound acknowledgements are sent,
	// in order (default 2ms).
	AckInterval time.Duration
	// ReconnectMin and ReconnectMax bound the reconnect backoff (defaults
	// 100ms and 30s).
	ReconnectMin, ReconnectMax time.Duration
}

const (
	defaultKeepAlive      = 30 * time.Second
	defaultConnectTimeout = 10 * time.Second
	defaultQueue          = 1000
	defaultPublishTimeout = 10 * time.Second
	defaultInflight       = 32
	defaultReceiveMax     = 512
	defaultAckInterval    = 2 * time.Millisecond
	defaultSessionExpiry  = 5 * time.Minute
)

func (c *Config) withDefaults() {
	if c.KeepAlive <= 0 {
		c.KeepAlive = defaultKeepAlive
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = defaultConnectTimeout
	}
	if c.OfflineQueue <= 0 {
		c.OfflineQueue = defaultQueue
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = defaultPublishTimeout
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = defaultInflight
	}
	if c.ReceiveMaximum == 0 {
		c.ReceiveMaximum = defaultReceiveMax
	}
	if c.AckInterval <= 0 {
		c.AckInterval = defaultAckInterval
	}
	if c.ClientID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		c.ClientID = "aimdb-flow-" + hex.EncodeToString(b[:])
	}
}

// brokerURL validates c.URL and returns it without user info, with
// credentials from the URL moved into c when not set explicitly.
func (c *Config) brokerURL() (*url.URL, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("mqtt: endpoint: %w", err)
	}
	switch u.Scheme {
	case "mqtt", "tcp":
		u.Scheme = "mqtt"
	case "mqtts", "ssl", "tls":
		u.Scheme = "mqtts"
	default:
		return nil, fmt.Errorf("mqtt: endpoint scheme %q: want mqtt:// or mqtts://", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, errors.New("mqtt: endpoint has no host")
	}
	if u.Port() == "" {
		port := "1883"
		if u.Scheme == "mqtts" {
			port = "8883"
		}
		u.Host = u.Hostname() + ":" + port
	}
	if u.User != nil {
		if c.Username == "" {
			c.Username = u.User.Username()
		}
		if p, ok := u.User.Password(); ok && !c.Password.IsSet() {
			c.Password = kit.NewSecret(p)
		}
		u.User = nil
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("mqtt: endpoint %s: unexpected path %q (topics belong in links)", u.Redacted(), u.Path)
	}
	u.Path, u.RawQuery, u.Fragment = "", "", ""
	return u, nil
}

// ParseConfig builds a Config from a DSL declaration: the endpoint URL and
// the connector settings (values already ${ENV}-interpolated), read with
// the shared settings reader (connectors/kit, docs/settings.md: durations
// need a unit, booleans are true/false, yes/no, on/off, 1/0, choices are
// matched in any case). Every mistake is reported at once, each as a
// *kit.Error naming its setting, so that the DSL reports it where the
// setting is written; the errors are not wrapped.
//
// Settings: client_id, username, password (a secret), keepalive,
// clean_start, session_expiry (0: the session ends with the connection),
// connect_timeout, the TLS settings of kit.ReadTLS (ca_file, cert_file,
// key_file, insecure_skip_verify or insecure, server_name,
// tls_min_version), offline_queue, offline_policy (block or drop-oldest),
// publish_timeout, async_publish, max_inflight, receive_maximum,
// ack_interval, reconnect_min, reconnect_max. The endpoint and the TLS
// files are checked by New (Factory reports both with these).
func ParseConfig(endpoint string, p pipeline.Params) (Config, error) {
	c := Config{URL: endpoint}
	s := kit.Read(p)
	c.ClientID = s.String("client_id", "")
	c.Username = s.String("username", "")
	c.Password = s.Secret("password")
	c.KeepAlive = s.Duration("keepalive", 0)
	c.CleanStart = s.Bool("clean_start", false)
	if s.Has("session_expiry") {
		// Zero in Config selects the default; written as 0 it means none.
		if c.SessionExpiry = s.Duration("session_expiry", 0); c.SessionExpiry == 0 {
			c.SessionExpiry = -1
		}
	}
	c.ConnectTimeout = s.Duration("connect_timeout", 0)
	c.TLS = kit.ReadTLS(s)
	c.OfflineQueue = s.Int("offline_queue", 0, 0, 1<<24)
	c.OfflinePolicy = kit.Choose(s, "offline_policy", Block,
		kit.Choice[OfflinePolicy]{Name: "block", Value: Block},
		kit.Choice[OfflinePolicy]{Name: "drop-oldest", Aliases: []string{"drop_oldest"}, Value: DropOldest})
	c.PublishTimeout = s.Duration("publish_timeout", 0)
	c.AsyncPublish = s.Bool("async_publish", false)
	c.MaxInflight = s.Int("max_inflight", 0, 0, 65535)
	c.ReceiveMaximum = uint16(s.Int("receive_maximum", 0, 0, 65535))
	c.AckInterval = s.Duration("ack_interval", 0)
	c.ReconnectMin = s.Duration("reconnect_min", 0)
	c.ReconnectMax = s.Duration("reconnect_max", 0)
	return c, s.Err()
}

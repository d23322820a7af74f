// Package mqtt is the MQTT 5 connector, built on
// github.com/eclipse/paho.golang (autopaho). One connector owns one client
// connection to a broker: it reconnects in the background with exponential
// backoff and jitter, re-subscribes after every reconnect, and reports
// readiness from the connection state.
//
// Inbound links ("mqtt://sensors/+/temp") are subscriptions: wildcards and
// MQTT 5 shared subscriptions ("$share/GROUP/topic", or the share link
// option) are honoured; user properties become envelope headers. At QoS 1
// and 2 each message is acknowledged to the broker only after every sink it
// reached has acknowledged it (manual acks), so a crash or a rejected
// record leads to redelivery instead of loss.
//
// Outbound links ("mqtt://alerts/{device}") publish each record at QoS 0, 1
// or 2, optionally retained, with headers as user properties. While the
// connection is down, records wait in a bounded offline queue with a stated
// overflow policy (block or drop-oldest, counted); a publish never waits
// longer than its context or the publish timeout.
//
// Three schemes are provided: "mqtt" (plain TCP), "mqtts" (TLS) and
// "embedded" (an in-process MQTT 5 broker, mochi-mqtt, started on a free
// loopback port; the connector talks to it like to any broker).
package mqtt

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
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
	// never logged or printed (kit.Secret).
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
	// certificate (instead of the system roots), CertFile and KeyFile an
	// optional client certificate, InsecureSkipVerify disables
	// certificate verification (tests only; a warning is logged),
	// ServerName replaces the endpoint's host as the name verified and
	// sent as SNI, MinVersion is TLS 1.2 by default. New loads the files.
	TLS kit.TLS
	// OfflineQueue bounds the records waiting to be published (default
	// 1000). While connected a full queue always blocks (backpressure).
	OfflineQueue int
	// OfflinePolicy applies when the queue is full while disconnected.
	OfflinePolicy OfflinePolicy
	// PublishTimeout bounds one publish from hand-off to broker
	// confirmation, including time spent in the offline queue (default 10s).
	PublishTimeout time.Duration
	// SyncPublish makes every publish wait for its confirmation before the
	// runner hands over the link's next record (one QoS>0 publish in
	// flight per link); the DSL setting is "async_publish false". By
	// default the connector is a pipeline.AsyncPublisher: records are
	// written in the order they are handed over, up to MaxInflight QoS>0
	// publishes await their confirmation at once, and each record's ack is
	// finished when its own confirmation arrives (at-least-once either
	// way; a broker rejection is dead-lettered in both modes).
	SyncPublish bool
	// MaxInflight is how many QoS>0 publishes may await their
	// acknowledgement at once (default 32, capped by the broker's receive
	// maximum). It does not affect order: records leave in the order they
	// are handed over.
	MaxInflight int
	// ReceiveMaximum is how many unacknowledged QoS>0 messages the broker
	// may send this client at once (default 512).
	ReceiveMaximum uint16
	// AckInterval is how long inbound acknowledgements that are ready (in
	// arrival order) wait to be sent together in one write (default 2ms).
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
// need a unit, booleans are true/false, yes/no, on/off, 1/0). Every
// mistake is reported at once, each as a *kit.Error naming its setting, so
// that the DSL reports it where the setting is written.
//
// Settings: client_id, username, password (a secret), keepalive,
// clean_start, session_expiry (0: the session ends with the connection),
// connect_timeout, the TLS settings of kit.ReadTLS (ca_file, cert_file,
// key_file, insecure_skip_verify or insecure, server_name,
// tls_min_version), offline_queue, offline_policy (block or drop-oldest),
// publish_timeout, async_publish, max_inflight, receive_maximum,
// ack_interval, reconnect_min, reconnect_max. The TLS files are loaded by
// New.
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
	c.SyncPublish = !s.Bool("async_publish", true)
	c.MaxInflight = s.Int("max_inflight", 0, 0, 65535)
	c.ReceiveMaximum = uint16(s.Int("receive_maximum", 0, 0, 65535))
	c.AckInterval = s.Duration("ack_interval", 0)
	c.ReconnectMin = s.Duration("reconnect_min", 0)
	c.ReconnectMax = s.Duration("reconnect_max", 0)
	return c, s.Err()
}

// SubOptions are the options of an inbound link (a subscription).
type SubOptions struct {
	// QoS is the maximum QoS the broker delivers with (default 1). At QoS
	// 1 and 2 messages are acknowledged only after every sink finished.
	QoS byte
	// NoLocal asks the broker not to deliver messages this connection
	// published itself.
	NoLocal bool
	// Share subscribes as member of an MQTT 5 shared-subscription group:
	// the broker splits the messages among the group's members. An address
	// written as "$share/GROUP/filter" sets it too.
	Share string
	// RetainAsPublished keeps the retain flag of forwarded messages.
	RetainAsPublished bool
}

// PubOptions are the options of an outbound link.
type PubOptions struct {
	// QoS of the published messages (default 1).
	QoS byte
	// Retain asks the broker to keep the last message of each topic.
	Retain bool
	// ContentType sets the MQTT 5 content type (default: the envelope's
	// "content-type" header, if any).
	ContentType string
	// MessageExpiry asks the broker to discard the message if it could not
	// be delivered within this time (0: never).
	MessageExpiry time.Duration
}

// HeaderContentType is the envelope header that carries the MQTT 5
// content type of inbound messages, and sets it for outbound ones when the
// link has no content_type option (matched in any case, see
// kit.IsContentType).
const HeaderContentType = kit.ContentTypeHeader

// parseLinkOptions implements pipeline.LinkOptionParser with the shared
// settings reader. Inbound links take qos, no_local, share (or group) and
// retain_as_published; outbound links take qos, retain, content_type and
// message_expiry. Every mistake is reported at once.
func parseLinkOptions(dir pipeline.Direction, address string, p pipeline.Params) (any, error) {
	s := kit.ReadLink(dir, p)
	// A range, not a choice: `qos "3": want a whole number from 0 to 2`
	// (a choice would suggest "did you mean 0?").
	qos := byte(s.Int("qos", 1, 0, 2))
	if dir == pipeline.Inbound {
		o := SubOptions{QoS: qos}
		o.NoLocal = s.Bool("no_local", false)
		s.Alias("share", "group")
		if s.Has("share") {
			if o.Share = s.String("share", ""); o.Share == "" || strings.ContainsAny(o.Share, "/+#") {
				s.Errorf("share", "not a valid group name (want a non-empty name without /, + or #)")
			}
		}
		o.RetainAsPublished = s.Bool("retain_as_published", false)
		if rest, ok := strings.CutPrefix(address, "$share/"); ok {
			g, _, ok := strings.Cut(rest, "/")
			switch {
			case !ok || g == "":
				s.Fail(fmt.Errorf("shared subscription %q: want $share/GROUP/filter", address))
			case o.Share != "" && o.Share != g:
				s.Errorf("share", "conflicts with the group of address %q", address)
			}
		}
		return o, s.Err()
	}
	o := PubOptions{QoS: qos}
	o.Retain = s.Bool("retain", false)
	o.ContentType = s.String("content_type", "")
	o.MessageExpiry = s.Duration("message_expiry", 0)
	if strings.ContainsAny(address, "+#") {
		s.Fail(fmt.Errorf("cannot publish to a topic filter %q", address))
	}
	return o, s.Err()
}

func subOptions(v any) SubOptions {
	switch o := v.(type) {
	case SubOptions:
		return o
	case *SubOptions:
		if o != nil {
			return *o
		}
	}
	return SubOptions{QoS: 1}
}

func pubOptions(v any) PubOptions {
	switch o := v.(type) {
	case PubOptions:
		return o
	case *PubOptions:
		if o != nil {
			return *o
		}
	}
	return PubOptions{QoS: 1}
}

// subscribeFilter is the filter sent to the broker for a link address.
func subscribeFilter(address string, o SubOptions) string {
	if o.Share != "" && !strings.HasPrefix(address, "$share/") {
		return "$share/" + o.Share + "/" + address
	}
	return address
}

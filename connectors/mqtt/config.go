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
	"strconv"
	"strings"
	"time"

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
	// Username and Password authenticate the client.
	Username string
	Password string
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
	// CAFile, CertFile and KeyFile are PEM files for mqtts: the CA to trust
	// (default: the system roots) and an optional client certificate.
	CAFile, CertFile, KeyFile string
	// InsecureSkipVerify disables server certificate checks (tests only).
	InsecureSkipVerify bool
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
		if p, ok := u.User.Password(); ok && c.Password == "" {
			c.Password = p
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
// the connector settings (values already ${ENV}-interpolated). Every
// mistake is reported at once.
//
// Settings: client_id, username, password, keepalive, clean_start,
// session_expiry, connect_timeout, ca_file, cert_file, key_file,
// insecure_skip_verify, offline_queue, offline_policy (block|drop-oldest),
// publish_timeout, async_publish, max_inflight, receive_maximum, ack_interval,
// reconnect_min, reconnect_max. Durations are Go durations ("30s") or plain
// seconds ("30").
func ParseConfig(endpoint string, p pipeline.Params) (Config, error) {
	c := Config{URL: endpoint}
	var errs []error
	dur := func(k, v string) time.Duration {
		d, err := parseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
		return d
	}
	num := func(k, v string, max int) int {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > max {
			errs = append(errs, fmt.Errorf("%s: %q is not an integer in 0..%d", k, v, max))
		}
		return n
	}
	boolean := func(k, v string) bool {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not true or false", k, v))
		}
		return b
	}
	for _, k := range sortedKeys(p) {
		v := p[k]
		switch k {
		case "client_id":
			c.ClientID = v
		case "username":
			c.Username = v
		case "password":
			c.Password = v
		case "keepalive":
			c.KeepAlive = dur(k, v)
		case "clean_start":
			c.CleanStart = boolean(k, v)
		case "session_expiry":
			c.SessionExpiry = dur(k, v)
			if c.SessionExpiry == 0 {
				c.SessionExpiry = -1
			}
		case "connect_timeout":
			c.ConnectTimeout = dur(k, v)
		case "ca_file":
			c.CAFile = v
		case "cert_file":
			c.CertFile = v
		case "key_file":
			c.KeyFile = v
		case "insecure_skip_verify":
			c.InsecureSkipVerify = boolean(k, v)
		case "offline_queue":
			c.OfflineQueue = num(k, v, 1<<24)
		case "offline_policy":
			switch v {
			case "block":
				c.OfflinePolicy = Block
			case "drop-oldest", "drop_oldest":
				c.OfflinePolicy = DropOldest
			default:
				errs = append(errs, fmt.Errorf("offline_policy: %q: want block or drop-oldest", v))
			}
		case "publish_timeout":
			c.PublishTimeout = dur(k, v)
		case "async_publish":
			c.AsyncPublish = boolean(k, v)
		case "max_inflight":
			c.MaxInflight = num(k, v, 65535)
		case "receive_maximum":
			c.ReceiveMaximum = uint16(num(k, v, 65535))
		case "ack_interval":
			c.AckInterval = dur(k, v)
		case "reconnect_min":
			c.ReconnectMin = dur(k, v)
		case "reconnect_max":
			c.ReconnectMax = dur(k, v)
		default:
			errs = append(errs, fmt.Errorf("unknown setting %q (known: %s)", k, strings.Join(connectorSettings, ", ")))
		}
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("cert_file and key_file must be set together"))
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("mqtt: %w", errors.Join(errs...))
	}
	return c, nil
}

var connectorSettings = []string{"client_id", "username", "password", "keepalive", "clean_start", "session_expiry",
	"connect_timeout", "ca_file", "cert_file", "key_file", "insecure_skip_verify", "offline_queue", "offline_policy",
	"publish_timeout", "async_publish", "max_inflight", "receive_maximum", "ack_interval", "reconnect_min", "reconnect_max"}

func parseDuration(v string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("%q is negative", v)
		}
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (e.g. 30s)", v)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", v)
	}
	return d, nil
}

func sortedKeys(p pipeline.Params) []string {
	ks := make([]string, 0, len(p))
	for k := range p {
		ks = append(ks, k)
	}
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && ks[j] < ks[j-1]; j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
	return ks
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
// link has no content_type option.
const HeaderContentType = "content-type"

// ParseLinkOptions implements pipeline.LinkOptionParser. Inbound links
// take qos, no_local, share and retain_as_published; outbound links take
// qos, retain, content_type and message_expiry.
func parseLinkOptions(dir pipeline.Direction, address string, p pipeline.Params) (any, error) {
	var errs []error
	qos := func(v string) byte {
		switch v {
		case "0", "1", "2":
			return v[0] - '0'
		}
		errs = append(errs, fmt.Errorf("qos: %q: want 0, 1 or 2", v))
		return 1
	}
	boolean := func(k, v string) bool {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not true or false", k, v))
		}
		return b
	}
	if dir == pipeline.Inbound {
		o := SubOptions{QoS: 1}
		for _, k := range sortedKeys(p) {
			v := p[k]
			switch k {
			case "qos":
				o.QoS = qos(v)
			case "no_local":
				o.NoLocal = boolean(k, v)
			case "share", "group":
				o.Share = v
				if v == "" || strings.ContainsAny(v, "/+#") {
					errs = append(errs, fmt.Errorf("share: %q is not a valid group name", v))
				}
			case "retain_as_published":
				o.RetainAsPublished = boolean(k, v)
			default:
				errs = append(errs, fmt.Errorf("unknown inbound link option %q (known: qos, no_local, share, retain_as_published)", k))
			}
		}
		if rest, ok := strings.CutPrefix(address, "$share/"); ok {
			g, _, ok := strings.Cut(rest, "/")
			if !ok || g == "" {
				errs = append(errs, fmt.Errorf("shared subscription %q: want $share/GROUP/filter", address))
			} else if o.Share != "" && o.Share != g {
				errs = append(errs, fmt.Errorf("share %q conflicts with address %q", o.Share, address))
			}
		}
		return o, errors.Join(errs...)
	}
	o := PubOptions{QoS: 1}
	for _, k := range sortedKeys(p) {
		v := p[k]
		switch k {
		case "qos":
			o.QoS = qos(v)
		case "retain":
			o.Retain = boolean(k, v)
		case "content_type":
			o.ContentType = v
		case "message_expiry":
			d, err := parseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("message_expiry: %w", err))
			}
			o.MessageExpiry = d
		default:
			errs = append(errs, fmt.Errorf("unknown outbound link option %q (known: qos, retain, content_type, message_expiry)", k))
		}
	}
	if strings.ContainsAny(address, "+#") {
		errs = append(errs, fmt.Errorf("cannot publish to a topic filter %q", address))
	}
	return o, errors.Join(errs...)
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

package ws

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Defaults of the connector settings.
const (
	DefaultPingInterval = 20 * time.Second
	DefaultPingTimeout  = 10 * time.Second
	DefaultDialTimeout  = 10 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultMaxMessage   = 1 << 20
)

// Config configures a WebSocket client connector.
type Config struct {
	// URL is the base URL (ws:// or wss://); link addresses are paths
	// under it.
	URL string
	// PingInterval is the time between pings (0: no pings); PingTimeout
	// how long a pong may take.
	PingInterval, PingTimeout time.Duration
	// DialTimeout bounds one handshake; WriteTimeout one message write
	// (within the publish's own deadline).
	DialTimeout, WriteTimeout time.Duration
	// MaxMessage is the largest message read; a larger one ends the
	// connection (status 1009).
	MaxMessage int64
	// Token, when set, is sent as "Authorization: Bearer TOKEN".
	Token kit.Secret
	// Header holds further handshake request headers.
	Header http.Header
	// Subprotocols are offered in the handshake.
	Subprotocols []string
	// TLS configures wss connections.
	TLS kit.TLS
	// Backoff paces redials.
	Backoff pipeline.Backoff
}

func (c *Config) defaults() {
	if c.PingTimeout <= 0 {
		c.PingTimeout = DefaultPingTimeout
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = DefaultMaxMessage
	}
}

// In are the options of an inbound link.
type In struct {
	// Subscribe is sent as a text message after every connect (empty:
	// nothing is sent).
	Subscribe string
}

// Out are the options of an outbound link.
type Out struct {
	// Binary sends records as binary messages instead of text ones.
	Binary bool
}

func (o Out) messageType() websocket.MessageType {
	if o.Binary {
		return websocket.MessageBinary
	}
	return websocket.MessageText
}

// ParseConfig reads a connector declaration: the endpoint URL and its
// settings, every mistake reported at once.
func ParseConfig(endpoint string, params pipeline.Params) (Config, error) {
	var errs []error
	u, err := url.Parse(endpoint)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("ws endpoint: %w", err))
	case u.Scheme != "ws" && u.Scheme != "wss":
		errs = append(errs, fmt.Errorf("ws endpoint %q: want ws://host:port or wss://host:port", endpoint))
	case u.Host == "":
		errs = append(errs, fmt.Errorf("ws endpoint %q: no host (want ws://host:port)", endpoint))
	}
	s := kit.Read(params)
	cfg := Config{URL: endpoint}
	cfg.PingInterval = s.DurationIn("ping_interval", DefaultPingInterval, 0, 24*time.Hour)
	cfg.PingTimeout = s.DurationIn("ping_timeout", DefaultPingTimeout, time.Millisecond, time.Hour)
	cfg.DialTimeout = s.DurationIn("dial_timeout", DefaultDialTimeout, time.Millisecond, time.Hour)
	cfg.WriteTimeout = s.DurationIn("write_timeout", DefaultWriteTimeout, time.Millisecond, time.Hour)
	cfg.MaxMessage = s.SizeIn("max_message", DefaultMaxMessage, 1, 1<<31)
	cfg.Token = s.Secret("token")
	if sp := s.String("subprotocol", ""); sp != "" {
		cfg.Subprotocols = []string{sp}
	}
	for _, h := range s.Prefixed("header_", "header_<Name>") {
		if cfg.Header == nil {
			cfg.Header = http.Header{}
		}
		cfg.Header.Add(h.Name, h.Value)
	}
	if o := s.String("origin", ""); o != "" {
		if cfg.Header == nil {
			cfg.Header = http.Header{}
		}
		cfg.Header.Set("Origin", o)
	}
	cfg.TLS = kit.ReadTLS(s)
	if cfg.TLS.IsSet() && u != nil && u.Scheme == "ws" {
		s.Fail(errors.New("TLS settings need a wss:// endpoint"))
	}
	if err := errors.Join(append(errs, s.Err())...); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// parseLink reads a link's settings for its direction.
func parseLink(dir pipeline.Direction, addr string, p pipeline.Params) (any, error) {
	var errs []error
	if strings.ContainsAny(addr, "#?") || strings.HasPrefix(addr, "/") {
		errs = append(errs, fmt.Errorf("ws link %q: want a path under the endpoint without a leading slash, query or fragment", addr))
	}
	s := kit.ReadLink(dir, p)
	var opts any
	switch dir {
	case pipeline.Inbound:
		opts = In{Subscribe: s.String("subscribe", "")}
	default:
		opts = Out{Binary: s.Enum("message", "text", "text", "binary") == "binary"}
	}
	if err := errors.Join(append(errs, s.Err())...); err != nil {
		return nil, err
	}
	return opts, nil
}

// linkURL is the WebSocket URL of a link address under base.
func linkURL(base, addr string) string {
	if addr == "" {
		return base
	}
	return strings.TrimSuffix(base, "/") + "/" + addr
}

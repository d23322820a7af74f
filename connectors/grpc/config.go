package grpcconn

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Defaults of the connector settings.
const (
	DefaultMaxMessage       = 4 << 20
	DefaultMaxInflight      = 256
	DefaultKeepaliveTime    = 30 * time.Second
	DefaultKeepaliveTimeout = 10 * time.Second
	DefaultShutdownTimeout  = 5 * time.Second
	DefaultSubscribeBuffer  = 1024
)

// Mode says whether a connector serves the Flow service or calls one.
type Mode int

// The modes.
const (
	// Client publishes to and subscribes from a server (the default).
	Client Mode = iota
	// Server listens: clients publish to its inbound links and subscribe
	// to its outbound ones.
	Server
)

// Config configures a gRPC connector.
type Config struct {
	// Mode is Client or Server.
	Mode Mode
	// Addrs are host:port addresses: the one to listen on (Server), or
	// those to balance over (Client, round_robin).
	Addrs []string
	// Secure is true for grpcs:// (TLS from the TLS settings).
	Secure bool
	// TLS configures grpcs: the server's certificate (and ca_file for
	// mTLS: client certificates are then required), or the client's
	// trust and client certificate.
	TLS kit.TLS
	// Token, when set, is sent (client) or required (server) as
	// "authorization: Bearer TOKEN" metadata.
	Token kit.Secret
	// MaxMessage bounds one message on the wire (both directions).
	MaxMessage int
	// MaxInflight bounds the records a client has published and not yet
	// seen acknowledged; PublishAsync waits beyond it (backpressure).
	MaxInflight int
	// KeepaliveTime is the interval of HTTP/2 pings on an idle
	// connection; KeepaliveTimeout how long a ping answer may take.
	KeepaliveTime, KeepaliveTimeout time.Duration
	// ShutdownTimeout bounds a server's graceful stop.
	ShutdownTimeout time.Duration
	// SubscribeBuffer is the number of records a server queues per
	// subscriber; a subscriber that falls further behind slows Publish.
	SubscribeBuffer int
	// Backoff paces a client's reconnects.
	Backoff pipeline.Backoff
}

func (c *Config) defaults() {
	if c.MaxMessage <= 0 {
		c.MaxMessage = DefaultMaxMessage
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = DefaultMaxInflight
	}
	if c.KeepaliveTime <= 0 {
		c.KeepaliveTime = DefaultKeepaliveTime
	}
	if c.KeepaliveTimeout <= 0 {
		c.KeepaliveTimeout = DefaultKeepaliveTimeout
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.SubscribeBuffer <= 0 {
		c.SubscribeBuffer = DefaultSubscribeBuffer
	}
}

// ParseConfig reads a connector declaration: the endpoint
// (grpc://host:port[,host:port...] or grpcs://...) and its settings,
// every mistake reported at once.
func ParseConfig(endpoint string, params pipeline.Params) (Config, error) {
	var errs []error
	var cfg Config
	scheme, rest, ok := strings.Cut(endpoint, "://")
	switch {
	case !ok || (scheme != "grpc" && scheme != "grpcs"):
		errs = append(errs, fmt.Errorf("grpc endpoint %q: want grpc://host:port or grpcs://host:port", endpoint))
	default:
		cfg.Secure = scheme == "grpcs"
		for _, a := range strings.Split(strings.TrimSuffix(rest, "/"), ",") {
			a = strings.TrimSpace(a)
			if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
				errs = append(errs, fmt.Errorf("grpc endpoint %q: address %q: want host:port", endpoint, a))
				continue
			}
			cfg.Addrs = append(cfg.Addrs, a)
		}
	}
	s := kit.Read(params)
	cfg.Mode = kit.Choose(s, "mode", Client, kit.Choice[Mode]{Name: "client", Value: Client}, kit.Choice[Mode]{Name: "server", Value: Server})
	cfg.Token = s.Secret("token")
	cfg.MaxMessage = int(s.SizeIn("max_message", DefaultMaxMessage, 1<<10, 1<<30))
	cfg.MaxInflight = s.Int("max_inflight", DefaultMaxInflight, 1, 1<<16)
	cfg.KeepaliveTime = s.DurationIn("keepalive_time", DefaultKeepaliveTime, 10*time.Millisecond, 24*time.Hour)
	cfg.KeepaliveTimeout = s.DurationIn("keepalive_timeout", DefaultKeepaliveTimeout, 10*time.Millisecond, time.Hour)
	cfg.ShutdownTimeout = s.DurationIn("shutdown_timeout", DefaultShutdownTimeout, time.Millisecond, time.Hour)
	cfg.SubscribeBuffer = s.Int("subscribe_buffer", DefaultSubscribeBuffer, 1, 1<<20)
	cfg.Backoff.Min = s.DurationIn("reconnect_min", 100*time.Millisecond, time.Millisecond, time.Hour)
	cfg.Backoff.Max = s.DurationIn("reconnect_max", 10*time.Second, time.Millisecond, 24*time.Hour)
	cfg.TLS = kit.ReadTLS(s)
	if cfg.TLS.IsSet() && !cfg.Secure && ok {
		s.Fail(errors.New("TLS settings need a grpcs:// endpoint"))
	}
	if cfg.Mode == Server && cfg.Secure && (cfg.TLS.CertFile == "" || cfg.TLS.KeyFile == "") {
		s.Errorf("cert_file", "a grpcs server needs cert_file and key_file")
	}
	if cfg.Mode == Server && len(cfg.Addrs) > 1 {
		s.Errorf("mode", "a server listens on one address (the endpoint names %d)", len(cfg.Addrs))
	}
	if err := errors.Join(append(errs, s.Err())...); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// parseLink checks a link: its address is the topic; there are no link
// settings.
func parseLink(dir pipeline.Direction, addr string, p pipeline.Params) (any, error) {
	var errs []error
	if addr == "" {
		errs = append(errs, errors.New("grpc link needs a topic: grpc-connector://TOPIC"))
	}
	s := kit.ReadLink(dir, p)
	if err := errors.Join(append(errs, s.Err())...); err != nil {
		return nil, err
	}
	return nil, nil
}

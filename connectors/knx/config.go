package knx

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/connectors/knx/knxnet"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// DefaultPort is the KNXnet/IP UDP port.
const DefaultPort = 3671

// Config configures a KNX connector. Zero values take the defaults shown.
type Config struct {
	// Gateway is the KNXnet/IP tunnelling server, host:port (port 3671
	// when omitted in the endpoint URL).
	Gateway string
	// NAT sends 0.0.0.0:0 as the client's endpoints, asking the gateway
	// to answer to the address requests come from (for a client behind
	// NAT). Default false: the socket's own address is sent.
	NAT bool
	// ConnectTimeout bounds the wait for CONNECT_RESPONSE (10s).
	ConnectTimeout time.Duration
	// AckTimeout bounds the wait for a TUNNELLING_ACK (1s; one retry).
	AckTimeout time.Duration
	// ConfirmTimeout bounds the wait for L_Data.con (3s).
	ConfirmTimeout time.Duration
	// NoConfirm: a publish is done on its TUNNELLING_ACK, for gateways
	// that send no L_Data.con (default false: wait for the confirmation).
	NoConfirm bool
	// Heartbeat is the CONNECTIONSTATE_REQUEST interval (60s).
	Heartbeat time.Duration
	// HeartbeatTimeout bounds the wait for each heartbeat's response
	// (10s); three unanswered heartbeats lose the tunnel.
	HeartbeatTimeout time.Duration
	// ReadOnStart sends a GroupValueRead for every inbound address without
	// wildcards after each (re)connect, so records get the current
	// values.
	ReadOnStart bool
	// Echo also dispatches each group telegram this connector sent, once
	// the gateway confirmed it, to its own inbound links that match (a
	// tunnel client does not receive its own telegrams from the gateway).
	Echo bool
	// Queue bounds the telegrams waiting for the tunnel (64) and Inbound
	// the received telegrams waiting for dispatch (1024; more are dropped
	// and counted: KNX has no flow control).
	Queue, Inbound int
	// Backoff paces reconnects.
	Backoff pipeline.Backoff
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ConnectTimeout, 10*time.Second)
	def(&c.AckTimeout, time.Second)
	def(&c.ConfirmTimeout, 3*time.Second)
	def(&c.Heartbeat, 60*time.Second)
	def(&c.HeartbeatTimeout, 10*time.Second)
	if c.Queue <= 0 {
		c.Queue = 64
	}
	if c.Inbound <= 0 {
		c.Inbound = 1024
	}
	return c
}

func (c Config) tunnel(local knxnet.Endpoint) knxnet.TunnelConfig {
	if c.NAT {
		local = knxnet.Endpoint{}
	}
	return knxnet.TunnelConfig{
		Control: local, Data: local,
		ConnectTimeout: c.ConnectTimeout, AckTimeout: c.AckTimeout,
		ConfirmTimeout: c.ConfirmTimeout, NoConfirm: c.NoConfirm,
		Heartbeat: c.Heartbeat, HeartbeatTimeout: c.HeartbeatTimeout,
		MaxQueue: c.Queue,
	}
}

// ParseConfig reads a connector declaration: the endpoint
// "knx://HOST[:PORT]" and its settings (see docs/knx.md). Every mistake
// is reported at once, each naming its setting.
func ParseConfig(endpoint string, params pipeline.Params) (Config, error) {
	var errs []error
	var c Config
	u, err := url.Parse(endpoint)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("knx endpoint: %w", err))
	case u.Scheme != Scheme || u.Host == "" || (u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "":
		errs = append(errs, fmt.Errorf("knx endpoint %q: want knx://HOST[:PORT] (the gateway's address, UDP port %d by default)", endpoint, DefaultPort))
	default:
		host, port := u.Hostname(), u.Port()
		if port == "" {
			port = strconv.Itoa(DefaultPort)
		} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			errs = append(errs, fmt.Errorf("knx endpoint %q: port %q, want 1 to 65535", endpoint, port))
		}
		c.Gateway = net.JoinHostPort(host, port)
	}
	s := kit.Read(params)
	c.NAT = s.Bool("nat", false)
	c.ConnectTimeout = s.DurationIn("connect_timeout", 10*time.Second, time.Millisecond, time.Hour)
	c.AckTimeout = s.DurationIn("ack_timeout", time.Second, time.Millisecond, time.Minute)
	c.ConfirmTimeout = s.DurationIn("confirm_timeout", 3*time.Second, time.Millisecond, time.Minute)
	c.NoConfirm = !s.Bool("confirm", true)
	c.Heartbeat = s.DurationIn("heartbeat", 60*time.Second, time.Millisecond, time.Hour)
	c.HeartbeatTimeout = s.DurationIn("heartbeat_timeout", 10*time.Second, time.Millisecond, time.Hour)
	c.ReadOnStart = s.Bool("read_on_start", false)
	c.Echo = s.Bool("echo", false)
	c.Queue = s.Int("queue", 64, 1, 1<<16)
	c.Inbound = s.Int("inbound_queue", 1024, 1, 1<<20)
	c.Backoff.Min = s.DurationIn("reconnect_min", 100*time.Millisecond, time.Millisecond, time.Hour)
	c.Backoff.Max = s.DurationIn("reconnect_max", 30*time.Second, time.Millisecond, 24*time.Hour)
	if c.Backoff.Max < c.Backoff.Min {
		s.Errorf("reconnect_max", "must not be below reconnect_min (%v)", c.Backoff.Min)
	}
	if err := errors.Join(append(errs, s.Err())...); err != nil {
		return Config{}, err
	}
	return c, nil
}

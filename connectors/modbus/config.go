package modbus

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/connectors/modbus/regmap"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Transport is how the connector reaches its peer.
type Transport uint8

// Transports.
const (
	TCP Transport = iota + 1 // modbus://host:port
	TLS                      // modbus+tls://host:port (MBAPS, mutual TLS)
	RTU                      // modbus+rtu:///dev/ttyX
)

// Mode says which side of the protocol the connector plays.
type Mode uint8

// Modes.
const (
	// Client polls and writes a server (a PLC, a gateway): the default.
	Client Mode = iota
	// Server listens and serves records' latest values as registers to
	// Modbus clients (SCADA, HMI, a PLC polling the edge).
	Server
)

// Parity of an RTU line.
type Parity uint8

// Parities.
const (
	ParityNone Parity = iota
	ParityEven
	ParityOdd
)

// Defaults.
const (
	DefaultTimeout     = time.Second
	DefaultInterval    = time.Second
	DefaultBaud        = 19200
	DefaultUnit        = 1
	DefaultMaxClients  = 10
	DefaultIdleTimeout = 2 * time.Minute
	defaultTCPPort     = "502"
	defaultTLSPort     = "802"
)

// Config configures a modbus connector.
type Config struct {
	// Transport is TCP, TLS or RTU (from the endpoint's scheme).
	Transport Transport
	// Mode is Client (the default) or Server.
	Mode Mode
	// Address is host:port (TCP, TLS) or the serial device path (RTU).
	Address string
	// Unit is the unit (slave) id of requests (client, default 1; links
	// may override it). A server answers every unit id unless UnitSet.
	Unit    uint8
	UnitSet bool
	// Timeout bounds each request (client, default 1s).
	Timeout time.Duration
	// Baud, DataBits, Parity, StopBits configure an RTU line (defaults
	// 19200, 8, none, and 2 stop bits without parity, 1 with).
	Baud, DataBits, StopBits int
	Parity                   Parity
	// Defaults are the byte and word orders of fields that do not say.
	Defaults regmap.Defaults
	// TLS: client certificate and CA for modbus+tls (both required by
	// MBAPS); for a server, its certificate and the CA of client
	// certificates.
	TLS kit.TLS
	// MaxClients and IdleTimeout bound a server's client connections
	// (defaults 10 and 2m).
	MaxClients  int
	IdleTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the reconnect backoff (defaults
	// 100ms and 30s).
	ReconnectMin, ReconnectMax time.Duration
}

func (c *Config) withDefaults() {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if !c.UnitSet && c.Mode == Client {
		c.Unit = DefaultUnit
	}
	if c.Baud <= 0 {
		c.Baud = DefaultBaud
	}
	if c.DataBits <= 0 {
		c.DataBits = 8
	}
	if c.StopBits <= 0 {
		c.StopBits = 1
		if c.Parity == ParityNone {
			c.StopBits = 2
		}
	}
	if c.MaxClients <= 0 {
		c.MaxClients = DefaultMaxClients
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
}

// ParseConfig builds a Config from a DSL declaration: the endpoint
// (modbus://host:port, modbus+tls://host:port, modbus+rtu:///dev/ttyX)
// and the connector settings, read with connectors/kit; every mistake is
// reported at once, each naming its setting. docs/modbus.md lists the
// settings and their defaults.
func ParseConfig(endpoint string, p pipeline.Params) (Config, error) {
	var c Config
	var errs []error
	u, err := url.Parse(endpoint)
	if err != nil {
		return c, fmt.Errorf("modbus endpoint: %w", err)
	}
	switch u.Scheme {
	case "modbus", "modbus+tcp":
		c.Transport = TCP
	case "modbus+tls":
		c.Transport = TLS
	case "modbus+rtu":
		c.Transport = RTU
	default:
		return c, fmt.Errorf("modbus endpoint %q: want modbus://host:port, modbus+tls://host:port or modbus+rtu:///dev/ttyX", endpoint)
	}
	if c.Transport == RTU {
		if u.Host != "" || u.Path == "" {
			errs = append(errs, fmt.Errorf("modbus endpoint %q: want modbus+rtu:///dev/ttyX (a device path, three slashes)", endpoint))
		}
		c.Address = u.Path
	} else {
		if u.Hostname() == "" || (u.Path != "" && u.Path != "/") {
			errs = append(errs, fmt.Errorf("modbus endpoint %q: want %s://host:port (register maps belong in links)", endpoint, u.Scheme))
		}
		port := u.Port()
		if port == "" {
			port = defaultTCPPort
			if c.Transport == TLS {
				port = defaultTLSPort
			}
		}
		c.Address = net.JoinHostPort(u.Hostname(), port)
	}
	s := kit.Read(p)
	c.Mode = kit.Choose(s, "mode", Client, kit.Choice[Mode]{Name: "client", Value: Client}, kit.Choice[Mode]{Name: "server", Value: Server})
	if s.Has("unit") {
		c.Unit, c.UnitSet = uint8(s.Int("unit", DefaultUnit, 0, 255)), true
	}
	c.Timeout = s.Duration("timeout", 0)
	c.Defaults = readOrders(s, regmap.Defaults{})
	c.Baud = s.Int("baud", 0, 1, math.MaxInt32)
	c.DataBits = s.Int("data_bits", 0, 5, 8)
	c.Parity = kit.Choose(s, "parity", ParityNone,
		kit.Choice[Parity]{Name: "none", Aliases: []string{"n"}, Value: ParityNone},
		kit.Choice[Parity]{Name: "even", Aliases: []string{"e"}, Value: ParityEven},
		kit.Choice[Parity]{Name: "odd", Aliases: []string{"o"}, Value: ParityOdd})
	c.StopBits = s.Int("stop_bits", 0, 1, 2)
	if c.Transport == RTU {
		if c.Mode == Server {
			s.Errorf("mode", "server mode listens on TCP: use modbus://host:port")
		}
	} else {
		for _, k := range []string{"baud", "data_bits", "parity", "stop_bits"} {
			if _, ok := p[k]; ok {
				s.Errorf(k, "applies to a serial line (a modbus+rtu:///dev/ttyX endpoint)")
			}
		}
	}
	c.TLS = kit.ReadTLS(s)
	if c.TLS.IsSet() && c.Transport != TLS {
		errs = append(errs, errors.New("modbus: TLS settings need a modbus+tls:// endpoint"))
	}
	if c.Mode == Server {
		c.MaxClients = s.Int("max_clients", 0, 1, 1000)
		c.IdleTimeout = s.Duration("idle_timeout", 0)
	}
	c.ReconnectMin = s.Duration("reconnect_min", 0)
	c.ReconnectMax = s.Duration("reconnect_max", 0)
	return c, errors.Join(append(errs, s.Err())...)
}

// readOrders reads byte_order and word_order over d.
func readOrders(s *kit.Settings, d regmap.Defaults) regmap.Defaults {
	d.Bytes = kit.Choose(s, "byte_order", d.Bytes,
		kit.Choice[regmap.ByteOrder]{Name: "big", Value: regmap.BigEndian},
		kit.Choice[regmap.ByteOrder]{Name: "little", Value: regmap.LittleEndian})
	d.Words = kit.Choose(s, "word_order", d.Words,
		kit.Choice[regmap.WordOrder]{Name: "high", Value: regmap.HighWordFirst},
		kit.Choice[regmap.WordOrder]{Name: "low", Value: regmap.LowWordFirst})
	return d
}

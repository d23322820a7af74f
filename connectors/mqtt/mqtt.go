package mqtt

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Builder configures one MQTT connector; it implements pipeline.Builder
// and pipeline.LinkOptionParser.
type Builder struct {
	cfg    Config
	scheme string
	// embedded is the listen address of the in-process broker to start
	// (scheme "embedded"), "" otherwise.
	embedded string
}

// New returns a builder for a connector to the broker at cfg.URL. The
// configuration is checked now; nothing connects until Build.
func New(cfg Config) (*Builder, error) {
	c := cfg
	u, err := c.brokerURL()
	if err != nil {
		return nil, err
	}
	return &Builder{cfg: cfg, scheme: u.Scheme}, nil
}

// NewEmbedded returns a builder that starts an in-process MQTT 5 broker
// (mochi-mqtt) on addr (default "127.0.0.1:0", a free loopback port) when
// built, connects to it like to any broker, and stops it on Close.
// cfg.URL is ignored.
func NewEmbedded(addr string, cfg Config) (*Builder, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	cfg.URL = "mqtt://" + addr
	if _, err := (&cfg).brokerURL(); err != nil {
		return nil, err
	}
	return &Builder{cfg: cfg, scheme: "embedded", embedded: addr}, nil
}

// Factory is the pipeline.Factory for "mqtt://" and "mqtts://" endpoints.
func Factory(endpoint string, params pipeline.Params) (pipeline.Builder, error) {
	cfg, err := ParseConfig(endpoint, params)
	if err != nil {
		return nil, err
	}
	return New(cfg)
}

// EmbeddedFactory is the pipeline.Factory for "embedded://" (optionally
// "embedded://127.0.0.1:PORT") endpoints: an in-process broker.
func EmbeddedFactory(endpoint string, params pipeline.Params) (pipeline.Builder, error) {
	addr := strings.TrimPrefix(endpoint, "embedded://")
	if addr == endpoint && endpoint != "embedded" {
		return nil, fmt.Errorf("mqtt: endpoint %q: want embedded:// or embedded://HOST:PORT", endpoint)
	}
	if endpoint == "embedded" {
		addr = ""
	}
	cfg, err := ParseConfig("mqtt://127.0.0.1", params)
	if err != nil {
		return nil, err
	}
	return NewEmbedded(strings.TrimSuffix(addr, "/"), cfg)
}

// Scheme implements pipeline.Builder: "mqtt", "mqtts" or "embedded".
func (b *Builder) Scheme() string { return b.scheme }

// Caps implements pipeline.CapsDeclarer: MQTT topics with wildcards
// inbound, MQTT 5 user properties as headers.
func (b *Builder) Caps() pipeline.Caps {
	return pipeline.Caps{Inbound: true, Outbound: true, Topics: true, Headers: true}
}

// Config returns the builder's configuration.
func (b *Builder) Config() Config { return b.cfg }

// ParseLinkOptions implements pipeline.LinkOptionParser: inbound links
// yield SubOptions, outbound links PubOptions.
func (b *Builder) ParseLinkOptions(dir pipeline.Direction, address string, p pipeline.Params) (any, error) {
	return parseLinkOptions(dir, address, p)
}

// Build implements pipeline.Builder. It does not wait for the broker: the
// connection is made (and remade) in the background; Ready reports it.
func (b *Builder) Build(ctx context.Context, env pipeline.BuildEnv) (pipeline.Connector, error) {
	cfg := b.cfg
	log := env.Logger
	if log == nil {
		log = slog.Default()
	}
	var eb *EmbeddedBroker
	if b.embedded != "" {
		var err error
		eb, err = StartEmbedded(b.embedded, log)
		if err != nil {
			return nil, err
		}
		cfg.URL = eb.URL()
	}
	c, err := newConn(ctx, cfg, env, log)
	if err != nil {
		if eb != nil {
			_ = eb.Close()
		}
		return nil, err
	}
	c.embedded = eb
	if cfg.AsyncPublish {
		return AsyncConn{c}, nil
	}
	return c, nil
}

package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Builder configures one MQTT connector; it implements pipeline.Builder,
// pipeline.CapsDeclarer, pipeline.LinkOptionParser and
// pipeline.LinkOptionValidator.
type Builder struct {
	cfg    Config
	scheme string
	// tls is the client TLS configuration of an mqtts endpoint, built by
	// New (kit.TLSConfig); nil otherwise.
	tls *tls.Config
	// embedded is the listen address of the in-process broker to start
	// (scheme "embedded"), "" otherwise.
	embedded string
}

var (
	_ pipeline.Builder             = (*Builder)(nil)
	_ pipeline.CapsDeclarer        = (*Builder)(nil)
	_ pipeline.LinkOptionParser    = (*Builder)(nil)
	_ pipeline.LinkOptionValidator = (*Builder)(nil)
)

// New returns a builder for a connector to the broker at cfg.URL. The
// configuration is checked now and the TLS files are loaded (every
// problem at once, the TLS ones as *kit.Error values naming their
// setting); nothing connects until Build.
func New(cfg Config) (*Builder, error) {
	c := cfg
	u, uerr := c.brokerURL()
	tc, terr := kit.TLSConfig(cfg.TLS)
	if err := joinErrs(uerr, terr); err != nil {
		return nil, err
	}
	b := &Builder{cfg: cfg, scheme: u.Scheme}
	if u.Scheme == "mqtts" {
		b.tls = tc
	}
	return b, nil
}

// joinErrs joins the errors that are not nil; a single one is returned as
// it is, so that a kit.Errors reaches the DSL unwrapped.
func joinErrs(errs ...error) error {
	var n int
	var one error
	for _, e := range errs {
		if e != nil {
			n, one = n+1, e
		}
	}
	if n <= 1 {
		return one
	}
	return errors.Join(errs...)
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
// Its errors are ParseConfig's and New's together, not wrapped, so that
// the DSL reports each problem with a setting at the setting.
func Factory(endpoint string, params pipeline.Params) (pipeline.Builder, error) {
	cfg, perr := ParseConfig(endpoint, params)
	b, nerr := New(cfg) // the endpoint and the TLS files
	if err := joinErrs(perr, nerr); err != nil {
		return nil, err
	}
	return b, nil
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
	cfg, perr := ParseConfig("mqtt://127.0.0.1", params)
	b, nerr := NewEmbedded(strings.TrimSuffix(addr, "/"), cfg)
	if err := joinErrs(perr, nerr); err != nil {
		return nil, err
	}
	return b, nil
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
// take qos, no_local, share (or group) and retain_as_published and yield
// In; outbound links take qos, retain, content_type and
// message_expiry and yield Out. Settings are read with the shared
// reader (connectors/kit); every problem is reported at once, those with
// a setting as *kit.Error values naming it. It ends with the checks of
// ValidateLinkOptions.
func (b *Builder) ParseLinkOptions(dir pipeline.Direction, address string, p pipeline.Params) (any, error) {
	return parseLinkOptions(dir, address, p)
}

// ValidateLinkOptions implements pipeline.LinkOptionValidator for typed Go
// options: In (or *In) on inbound links, Out (or
// *Out) on outbound ones. It applies the checks ParseLinkOptions
// applies after reading settings (QoS at most 2, a valid shared
// subscription group that agrees with a $share/GROUP/ address, no
// negative message expiry), with the same errors; options of the other
// direction's type are an error naming the expected type. A static
// outbound destination with a wildcard is refused by the graph itself
// (pipeline.Caps.Topics); a templated one is checked per record.
func (b *Builder) ValidateLinkOptions(dir pipeline.Direction, address string, opts any) error {
	return validateLinkOptions(dir, address, opts)
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
	switch {
	case b.tls != nil && cfg.TLS.InsecureSkipVerify:
		log.Warn("mqtt: TLS certificate verification disabled (insecure_skip_verify true)", "connector", env.Name)
	case b.tls == nil && cfg.TLS.IsSet():
		log.Warn("mqtt: TLS settings ignored: the endpoint is not mqtts://", "connector", env.Name)
	}
	c, err := newConn(ctx, cfg, b.tls, env, log)
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

package knx

import (
	"context"
	"log/slog"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Scheme is the connector's URL scheme.
const Scheme = "knx"

// Builder builds KNX connectors.
type Builder struct{ cfg Config }

// New returns a builder for cfg.
func New(cfg Config) *Builder { return &Builder{cfg: cfg.withDefaults()} }

// Factory builds a KNX connector from a DSL declaration; it is
// registered in connectors/registry under "knx".
func Factory(endpoint string, params pipeline.Params) (pipeline.Builder, error) {
	cfg, err := ParseConfig(endpoint, params)
	if err != nil {
		return nil, err
	}
	return New(cfg), nil
}

// Scheme implements pipeline.Builder.
func (*Builder) Scheme() string { return Scheme }

// Caps implements pipeline.CapsDeclarer: both directions. Addresses are
// not MQTT topics: the connector matches its own group address patterns
// ("1/2/*") and dispatches under the link's address, so the runner routes
// by exact address. Telegrams carry no key and no headers.
func (*Builder) Caps() pipeline.Caps { return pipeline.Caps{Inbound: true, Outbound: true} }

// ParseLinkOptions implements pipeline.LinkOptionParser: inbound links
// take dpt, outbound links dpt and service (write or response); the
// address must be a group address (a pattern inbound).
func (*Builder) ParseLinkOptions(dir pipeline.Direction, address string, p pipeline.Params) (any, error) {
	return parseLinkOptions(dir, address, p)
}

// ValidateLinkOptions implements pipeline.LinkOptionValidator for typed
// Go options (In, Out).
func (*Builder) ValidateLinkOptions(dir pipeline.Direction, address string, opts any) error {
	return validateLinkOptions(dir, address, opts)
}

// Build implements pipeline.Builder. It does no I/O itself: the tunnel
// is made, and remade after a loss, in the background, until Close.
func (b *Builder) Build(_ context.Context, env pipeline.BuildEnv) (pipeline.Connector, error) {
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Conn{cfg: b.cfg, log: log.With("connector", env.Name)}
	c.stats.init()
	c.sup = kit.NewSupervisor(kit.SupervisorConfig[*session]{
		Name:     "knx",
		Connect:  c.connect,
		Backoff:  b.cfg.Backoff,
		FailFast: true,
		Log:      c.log,
	})
	c.sup.Start()
	return c, nil
}

package modbus

import (
	"context"
	"errors"
	"log"
	"log/slog"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Scheme is the connector's scheme; modbus+tls and modbus+rtu name its
// other transports.
const Scheme = "modbus"

// Builder builds a modbus connector (client or server).
type Builder struct {
	cfg Config
}

// New returns a builder for cfg. It checks the configuration (the TLS
// files, the RTU line) without any I/O.
func New(cfg Config) (*Builder, error) {
	cfg.withDefaults()
	var errs []error
	switch {
	case cfg.Transport == 0:
		errs = append(errs, errors.New("modbus: no transport (TCP, TLS or RTU)"))
	case cfg.Address == "":
		errs = append(errs, errors.New("modbus: no address"))
	case cfg.Mode == Server && cfg.Transport == RTU:
		errs = append(errs, errors.New("modbus: server mode listens on TCP: use modbus://host:port"))
	}
	if cfg.Transport == TLS {
		if _, err := tlsParts(cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Builder{cfg: cfg}, nil
}

// Factory builds a modbus connector from a DSL declaration; it is
// registered in connectors/registry under modbus, modbus+tls and
// modbus+rtu.
func Factory(endpoint string, p pipeline.Params) (pipeline.Builder, error) {
	cfg, err := ParseConfig(endpoint, p)
	if err != nil {
		return nil, err
	}
	return New(cfg)
}

// Scheme implements pipeline.Builder.
func (b *Builder) Scheme() string { return Scheme }

// Config returns the builder's configuration, with defaults applied.
func (b *Builder) Config() Config { return b.cfg }

// Caps implements pipeline.CapsDeclarer: both directions; addresses are
// names of register maps, not topics; no key, no headers travel.
func (b *Builder) Caps() pipeline.Caps { return pipeline.Caps{Inbound: true, Outbound: true} }

// Build implements pipeline.Builder. A client connects in the background
// (when Serve runs, or at the first Publish); a server starts listening
// in the background at once, unless Serve (for its inbound links) runs
// it.
func (b *Builder) Build(_ context.Context, env pipeline.BuildEnv) (pipeline.Connector, error) {
	lg := env.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	lg = lg.With("connector", env.Name)
	if b.cfg.Mode == Server {
		return newServer(b.cfg, lg, len(env.Inbound) > 0), nil
	}
	return newClient(b.cfg, lg, len(env.Inbound) > 0), nil
}

// libLogger routes the modbus library's log lines to lg at debug level.
func libLogger(lg *slog.Logger) *log.Logger {
	return slog.NewLogLogger(lg.Handler(), slog.LevelDebug)
}

func backoff(cfg Config) pipeline.Backoff {
	return pipeline.Backoff{Min: cfg.ReconnectMin, Max: cfg.ReconnectMax}
}

var (
	_ kit.Session = (*session)(nil)
	_ kit.Session = (*listener)(nil)

	_ pipeline.LinkOptionParser    = (*Builder)(nil)
	_ pipeline.LinkOptionValidator = (*Builder)(nil)
	_ pipeline.CapsDeclarer        = (*Builder)(nil)
	_ pipeline.Source              = (*ServerConn)(nil)
	_ pipeline.Readiness           = (*ServerConn)(nil)
	_ pipeline.Readiness           = (*Conn)(nil)
)

package grpcconn

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Builder builds a gRPC connector (server or client, by Config.Mode).
type Builder struct{ cfg Config }

// New returns a builder for cfg.
func New(cfg Config) *Builder {
	cfg.defaults()
	return &Builder{cfg: cfg}
}

// Factory builds a gRPC connector from a DSL declaration; it is
// registered in connectors/registry under "grpc" and "grpcs".
func Factory(endpoint string, params pipeline.Params) (pipeline.Builder, error) {
	cfg, err := ParseConfig(endpoint, params)
	if err != nil {
		return nil, err
	}
	return New(cfg), nil
}

// Scheme implements pipeline.Builder.
func (b *Builder) Scheme() string { return "grpc" }

// Caps implements pipeline.CapsDeclarer: both directions; records carry
// keys and headers; addresses are plain topics.
func (b *Builder) Caps() pipeline.Caps {
	return pipeline.Caps{Inbound: true, Outbound: true, Key: true, Headers: true}
}

// ParseLinkOptions implements pipeline.LinkOptionParser: a link is a
// topic and takes no settings.
func (b *Builder) ParseLinkOptions(dir pipeline.Direction, addr string, p pipeline.Params) (any, error) {
	return parseLink(dir, addr, p)
}

// ValidateLinkOptions implements pipeline.LinkOptionValidator: links take
// no options in Go either.
func (b *Builder) ValidateLinkOptions(dir pipeline.Direction, addr string, opts any) error {
	if _, err := parseLink(dir, addr, nil); err != nil {
		return err
	}
	if opts != nil {
		return fmt.Errorf("grpc %s link %q: takes no options (got %T)", dir, addr, opts)
	}
	return nil
}

// Build implements pipeline.Builder. A server binds its listener here
// (no waiting on a peer); a client dials lazily and reconnects in the
// background.
func (b *Builder) Build(_ context.Context, env pipeline.BuildEnv) (pipeline.Connector, error) {
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("connector", env.Name)
	if b.cfg.Mode == Server {
		return newServer(b.cfg, env.Inbound, log)
	}
	if _, err := kit.TLSConfig(b.cfg.TLS); b.cfg.Secure && err != nil {
		return nil, fmt.Errorf("grpc: %w", err)
	}
	return newClient(b.cfg, env.Inbound, log)
}

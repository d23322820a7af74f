package grpcconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// pairBuilder builds a server (inbound) and a client publishing to it
// (outbound) as one connector, so the conformance suite sees what one
// instance publishes arrive at the other.
// The server is shared by the instances built for one peer (the suite
// publishes through one and serves from another); the instance with
// inbound links owns it and closes it.
type pairBuilder struct {
	cfg Config
	mu  *sync.Mutex
	srv **server
}

func newPair(cfg Config) pairBuilder {
	return pairBuilder{cfg: cfg, mu: &sync.Mutex{}, srv: new(*server)}
}

func (p pairBuilder) Scheme() string      { return "grpc" }
func (p pairBuilder) Caps() pipeline.Caps { return New(p.cfg).Caps() }
func (p pairBuilder) ParseLinkOptions(d pipeline.Direction, a string, ps pipeline.Params) (any, error) {
	return parseLink(d, a, ps)
}

func (p pairBuilder) Build(_ context.Context, env pipeline.BuildEnv) (pipeline.Connector, error) {
	cfg := p.cfg
	cfg.defaults()
	p.mu.Lock()
	defer p.mu.Unlock()
	srv := *p.srv
	owner := false
	if srv == nil || srv.isClosed() {
		scfg := cfg
		scfg.Mode, scfg.Addrs = Server, []string{"127.0.0.1:0"}
		var err error
		if srv, err = newServer(scfg, nil, slog.New(slog.DiscardHandler)); err != nil {
			return nil, err
		}
		*p.srv = srv
	}
	if len(env.Inbound) > 0 {
		owner = true
		srv.mu.Lock()
		for _, s := range env.Inbound {
			srv.topics[s.Filter] = true
		}
		srv.mu.Unlock()
	}
	ccfg := cfg
	ccfg.Mode, ccfg.Addrs = Client, []string{srv.Addr().String()}
	cl, err := newClient(ccfg, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, errors.Join(err, srv.Close(context.Background()))
	}
	return &pair{server: srv, client: cl, owner: owner}, nil
}

type pair struct {
	*server
	client *client
	owner  bool
}

func (p *pair) Publish(ctx context.Context, dest string, opts any, env *pipeline.Envelope) error {
	return p.client.Publish(ctx, dest, opts, env)
}

func (p *pair) PublishAsync(ctx context.Context, dest string, opts any, env *pipeline.Envelope) error {
	return p.client.PublishAsync(ctx, dest, opts, env)
}

func (p *pair) Close(ctx context.Context) error {
	err := p.client.Close(ctx)
	if !p.owner {
		return err
	}
	if e := p.server.Close(ctx); e != nil {
		err = errors.Join(err, fmt.Errorf("server: %w", e))
	}
	return err
}

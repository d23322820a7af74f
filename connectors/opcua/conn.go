package opcua

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Builder builds an OPC UA client connector.
type Builder struct{ cfg Config }

// New returns a builder for cfg.
func New(cfg Config) *Builder {
	cfg.defaults()
	return &Builder{cfg: cfg}
}

// Scheme implements pipeline.Builder.
func (b *Builder) Scheme() string { return Scheme }

// Caps implements pipeline.CapsDeclarer: both directions; addresses are
// node ids (no wildcards), and values carry neither keys nor headers.
func (b *Builder) Caps() pipeline.Caps { return pipeline.Caps{Inbound: true, Outbound: true} }

// ParseLinkOptions implements pipeline.LinkOptionParser (In or Out).
func (b *Builder) ParseLinkOptions(dir pipeline.Direction, addr string, p pipeline.Params) (any, error) {
	return parseLink(dir, addr, p)
}

// ValidateLinkOptions implements pipeline.LinkOptionValidator: options
// given in Go must be In (inbound) or Out (outbound).
func (b *Builder) ValidateLinkOptions(dir pipeline.Direction, addr string, opts any) error {
	return validate(dir, addr, opts)
}

// Build implements pipeline.Builder. Nothing is dialled here: Serve
// connects when there are inbound links, else a background supervisor.
func (b *Builder) Build(_ context.Context, env pipeline.BuildEnv) (pipeline.Connector, error) {
	if err := b.cfg.check(); err != nil {
		return nil, fmt.Errorf("opcua: %w", err)
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Conn{cfg: b.cfg, log: log.With("connector", env.Name), inbound: len(env.Inbound) > 0}
	c.sup = kit.NewSupervisor(kit.SupervisorConfig[*session]{
		Name:     "opcua " + b.cfg.Endpoint,
		Connect:  c.connect,
		Backoff:  b.cfg.Backoff,
		FailFast: true,
		Log:      c.log,
	})
	if !c.inbound {
		// Outbound links only: the session is kept from the start, so
		// readiness follows it and the first write does not wait for it.
		c.sup.Start()
	}
	return c, nil
}

// Conn is a built OPC UA connector: one supervised session.
type Conn struct {
	cfg     Config
	log     *slog.Logger
	sup     *kit.Supervisor[*session]
	inbound bool // Serve drives the supervisor

	mu   sync.Mutex
	subs []pipeline.Subscription
	d    pipeline.Dispatcher
}

// Ready implements pipeline.Readiness: nil while the session is live
// (and, with inbound links, its subscriptions are created).
func (c *Conn) Ready() error { return c.sup.Ready() }

// Serve implements pipeline.Source: it connects, creates one subscription
// per link, dispatches data changes (env.Topic is the link address, no
// ack: the subscription's own acknowledgements are the client library's)
// and reconnects after failures, until ctx ends.
func (c *Conn) Serve(ctx context.Context, subs []pipeline.Subscription, d pipeline.Dispatcher) error {
	if !c.inbound {
		return fmt.Errorf("opcua: Serve on a connector built without inbound links (BuildEnv.Inbound)")
	}
	c.mu.Lock()
	c.subs, c.d = subs, d
	c.mu.Unlock()
	if err := c.sup.Run(ctx); err != nil && ctx.Err() == nil {
		return fmt.Errorf("opcua: %w", err)
	}
	return nil
}

// Publish implements pipeline.Connector: it writes the record's value to
// the node dest (or calls the link's method), and returns when the server
// answered. A value the node cannot take is a pipeline.Permanent error.
func (c *Conn) Publish(ctx context.Context, dest string, opts any, env *pipeline.Envelope) error {
	s, err := c.sup.Session(ctx)
	if err != nil {
		return fmt.Errorf("opcua: publish to %s: %w", dest, err)
	}
	err = s.publish(ctx, dest, optsOut(opts), env.Payload)
	if err != nil {
		if broken(err) && ctx.Err() == nil {
			c.sup.Fail(s, err)
		}
		return fmt.Errorf("opcua: publish to %s: %w", dest, err)
	}
	return nil
}

// Close implements pipeline.Connector: the session is closed within ctx.
func (c *Conn) Close(ctx context.Context) error { return c.sup.Close(ctx) }

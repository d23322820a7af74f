package ws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Builder builds a WebSocket client connector.
type Builder struct{ cfg Config }

// New returns a builder for cfg.
func New(cfg Config) *Builder {
	cfg.defaults()
	return &Builder{cfg: cfg}
}

// Scheme implements pipeline.Builder.
func (b *Builder) Scheme() string { return "ws" }

// Caps implements pipeline.CapsDeclarer: both directions; an address is a
// path (no wildcards), and messages carry neither keys nor headers.
func (b *Builder) Caps() pipeline.Caps { return pipeline.Caps{Inbound: true, Outbound: true} }

// ParseLinkOptions implements pipeline.LinkOptionParser (In or Out).
func (b *Builder) ParseLinkOptions(dir pipeline.Direction, addr string, p pipeline.Params) (any, error) {
	return parseLink(dir, addr, p)
}

// ValidateLinkOptions implements pipeline.LinkOptionValidator: options
// given in Go must be In (inbound) or Out (outbound).
func (b *Builder) ValidateLinkOptions(dir pipeline.Direction, addr string, opts any) error {
	if _, err := parseLink(dir, addr, nil); err != nil {
		return err
	}
	switch opts.(type) {
	case nil:
		return nil
	case In, *In:
		if dir == pipeline.Inbound {
			return nil
		}
	case Out, *Out:
		if dir == pipeline.Outbound {
			return nil
		}
	}
	want := "ws.Out"
	if dir == pipeline.Inbound {
		want = "ws.In"
	}
	return fmt.Errorf("ws %s link %q: options are %T, want %s", dir, addr, opts, want)
}

// Build implements pipeline.Builder. Nothing is dialled here: Serve dials
// the inbound addresses, the first Publish to an address dials it.
func (b *Builder) Build(_ context.Context, env pipeline.BuildEnv) (pipeline.Connector, error) {
	if _, err := kit.TLSConfig(b.cfg.TLS); b.cfg.TLS.IsSet() && err != nil {
		return nil, fmt.Errorf("ws: %w", err)
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Conn{cfg: b.cfg, log: log.With("connector", env.Name), links: map[string]*link{}}
	// Inbound addresses are driven by Serve: a Publish to one of them waits
	// for Serve's connection instead of dialling its own.
	for _, sub := range env.Inbound {
		l, err := c.linkFor(sub.Filter)
		if err != nil {
			return nil, err
		}
		l.run = true
	}
	return c, nil
}

// Conn is a built WebSocket client connector: one supervised connection
// per link address.
type Conn struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	links  map[string]*link
	closed bool

	received  atomic.Uint64
	oversized atomic.Uint64
}

// link is one address's connection and what it serves.
type link struct {
	url  string
	sup  *kit.Supervisor[*session]
	subs []string            // subscribe messages, sent after every connect
	d    pipeline.Dispatcher // nil: nothing reads (outbound only)
	addr string
	run  bool // a Serve drives the supervisor (else Start on Publish)
}

// Stats reports the messages received and those refused as too large.
func (c *Conn) Stats() (received, oversized uint64) {
	return c.received.Load(), c.oversized.Load()
}

// linkFor returns the address's link, made on first use.
func (c *Conn) linkFor(addr string) (*link, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, kit.ErrSupervisorClosed
	}
	if l := c.links[addr]; l != nil {
		return l, nil
	}
	l := &link{url: linkURL(c.cfg.URL, addr), addr: addr}
	l.sup = kit.NewSupervisor(kit.SupervisorConfig[*session]{
		Name:     "ws " + l.url,
		Connect:  func(ctx context.Context) (*session, error) { return c.dial(ctx, l) },
		Backoff:  c.cfg.Backoff,
		FailFast: true,
		Log:      c.log,
	})
	c.links[addr] = l
	return l, nil
}

// Ready implements pipeline.Readiness: every inbound address is connected
// (outbound-only addresses dial on demand and do not count).
func (c *Conn) Ready() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, l := range c.links {
		if l.run {
			if err := l.sup.Ready(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Serve implements pipeline.Source: it connects every inbound address,
// sends its links' subscribe messages, dispatches what arrives (env.Topic
// is the link address, no ack) and redials after failures, until ctx ends.
func (c *Conn) Serve(ctx context.Context, subs []pipeline.Subscription, d pipeline.Dispatcher) error {
	var run []*link
	seen := map[*link]bool{}
	for _, s := range subs {
		l, err := c.linkFor(s.Filter)
		if err != nil {
			return err
		}
		c.mu.Lock()
		if !seen[l] {
			seen[l] = true
			l.run, l.d, l.subs = true, d, nil
			run = append(run, l)
		}
		if in, ok := optsIn(s.Options); ok && in.Subscribe != "" {
			l.subs = append(l.subs, in.Subscribe)
		}
		c.mu.Unlock()
	}
	var wg sync.WaitGroup
	errs := make([]error, len(run))
	for i, l := range run {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.sup.Run(ctx); err != nil && ctx.Err() == nil {
				errs[i] = fmt.Errorf("ws %s: %w", l.url, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func optsIn(o any) (In, bool) {
	switch v := o.(type) {
	case In:
		return v, true
	case *In:
		return *v, v != nil
	}
	return In{}, false
}

func optsOut(o any) Out {
	switch v := o.(type) {
	case Out:
		return v
	case *Out:
		if v != nil {
			return *v
		}
	}
	return Out{}
}

// Publish implements pipeline.Connector: it writes env.Payload as one
// message to the connection of dest, within ctx and write_timeout. While
// that connection is down it fails at once with the reason (the first
// publish to an outbound-only address starts dialling it); a failed write
// ends the connection, which is redialled.
func (c *Conn) Publish(ctx context.Context, dest string, opts any, env *pipeline.Envelope) error {
	l, err := c.linkFor(dest)
	if err != nil {
		return fmt.Errorf("ws: publish: %w", err)
	}
	c.mu.Lock()
	run := l.run
	c.mu.Unlock()
	if !run {
		l.sup.Start()
	}
	s, err := l.sup.Session(ctx)
	if err != nil {
		return fmt.Errorf("ws: publish to %s: %w", l.url, err)
	}
	if err := s.write(ctx, optsOut(opts).messageType(), env.Payload); err != nil {
		return fmt.Errorf("ws: publish to %s: %w", l.url, err)
	}
	return nil
}

// Close implements pipeline.Connector: every connection is closed (status
// 1001, going away) within ctx.
func (c *Conn) Close(ctx context.Context) error {
	c.mu.Lock()
	c.closed = true
	links := make([]*link, 0, len(c.links))
	for _, l := range c.links {
		links = append(links, l)
	}
	c.mu.Unlock()
	var errs []error
	for _, l := range links {
		if err := l.sup.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("ws %s: %w", l.url, err))
		}
	}
	return errors.Join(errs...)
}

// header is the handshake's request header.
func (c *Conn) header() http.Header {
	h := c.cfg.Header.Clone()
	if c.cfg.Token.IsSet() {
		if h == nil {
			h = http.Header{}
		}
		h.Set("Authorization", "Bearer "+c.cfg.Token.Value())
	}
	return h
}

// Factory builds a WebSocket connector from a DSL declaration; it is
// registered in connectors/registry under "ws" and "wss".
func Factory(endpoint string, params pipeline.Params) (pipeline.Builder, error) {
	cfg, err := ParseConfig(endpoint, params)
	if err != nil {
		return nil, err
	}
	return New(cfg), nil
}

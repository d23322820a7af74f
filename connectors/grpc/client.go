package grpcconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/aimdb-dev/aimdb-flow/connectors/grpc/flowpb"
	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// client is a connector in Client mode: outbound links Publish to the
// server, inbound links Subscribe to it.
type client struct {
	cfg  Config
	log  *slog.Logger
	conn *grpc.ClientConn
	flow flowpb.FlowClient
	pub  *kit.Supervisor[*pubSession]
	subs map[string]*kit.Supervisor[*subSession]
	// slots bounds the records published and not yet acknowledged.
	slots chan struct{}

	mu      sync.Mutex
	d       pipeline.Dispatcher
	started bool
}

func newClient(cfg Config, inbound []pipeline.Subscription, log *slog.Logger) (*client, error) {
	r := manual.NewBuilderWithScheme("aimdbflow")
	addrs := make([]resolver.Address, len(cfg.Addrs))
	for i, a := range cfg.Addrs {
		addrs[i] = resolver.Address{Addr: a}
	}
	r.InitialState(resolver.State{Addresses: addrs})
	creds := insecure.NewCredentials()
	if cfg.Secure {
		tc, err := kit.TLSConfig(cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("grpcs client: %w", err)
		}
		if tc.ServerName == "" {
			// The target's authority is the resolver's, not a host: verify
			// against the first address's host (server_name overrides).
			tc.ServerName, _, _ = net.SplitHostPort(cfg.Addrs[0])
		}
		if cfg.TLS.InsecureSkipVerify {
			log.Warn("grpcs client does not verify the server's certificate (insecure_skip_verify)")
		}
		creds = credentials.NewTLS(tc)
	}
	opts := []grpc.DialOption{
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(cfg.MaxMessage), grpc.MaxCallSendMsgSize(cfg.MaxMessage)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: cfg.KeepaliveTime, Timeout: cfg.KeepaliveTimeout, PermitWithoutStream: true}),
	}
	if cfg.Token.IsSet() {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: cfg.Token, secure: cfg.Secure}))
	}
	conn, err := grpc.NewClient(r.Scheme()+":///flow", opts...)
	if err != nil {
		return nil, fmt.Errorf("grpc client: %w", err)
	}
	c := &client{cfg: cfg, log: log, conn: conn, flow: flowpb.NewFlowClient(conn),
		subs: map[string]*kit.Supervisor[*subSession]{}, slots: make(chan struct{}, cfg.MaxInflight)}
	c.pub = kit.NewSupervisor(kit.SupervisorConfig[*pubSession]{
		Name:     "grpc publish " + fmt.Sprint(cfg.Addrs),
		Connect:  c.openPublish,
		Backoff:  cfg.Backoff,
		FailFast: true,
		Log:      log,
	})
	for _, s := range inbound {
		if c.subs[s.Filter] != nil {
			continue
		}
		topic := s.Filter
		c.subs[topic] = kit.NewSupervisor(kit.SupervisorConfig[*subSession]{
			Name:    "grpc subscribe " + topic,
			Connect: func(ctx context.Context) (*subSession, error) { return c.openSubscribe(ctx, topic) },
			Backoff: cfg.Backoff,
			Log:     log,
		})
	}
	return c, nil
}

// Ready implements pipeline.Readiness: every subscription is live, and
// the publish stream when one was started.
func (c *client) Ready() error {
	var errs []error
	for _, s := range c.subs {
		errs = append(errs, s.Ready())
	}
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	if started {
		errs = append(errs, c.pub.Ready())
	}
	return errors.Join(errs...)
}

// Serve implements pipeline.Source: one Subscribe stream per inbound
// topic, reopened after failures, until ctx ends.
func (c *client) Serve(ctx context.Context, _ []pipeline.Subscription, d pipeline.Dispatcher) error {
	c.mu.Lock()
	c.d = d
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range c.subs {
		wg.Go(func() { _ = s.Run(ctx) })
	}
	wg.Wait()
	return nil
}

// Publish implements pipeline.Connector: PublishAsync, waiting for the
// server's Ack.
func (c *client) Publish(ctx context.Context, dest string, opts any, env *pipeline.Envelope) error {
	done := make(chan error, 1)
	e := *env
	e.Ack = pipeline.NewAck(func(err error) { done <- err })
	if err := c.PublishAsync(ctx, dest, opts, &e); err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("grpc: publish to %s: waiting for the ack: %w", dest, ctx.Err())
	}
}

// PublishAsync implements pipeline.AsyncPublisher: the record is sent on
// the publish stream and env.Ack finished when the server's Ack for it
// arrives (Permanent when the server says retrying cannot help), or with
// a transient error when the stream breaks first.
func (c *client) PublishAsync(ctx context.Context, dest string, _ any, env *pipeline.Envelope) error {
	c.mu.Lock()
	if !c.started {
		c.started = true
		c.pub.Start()
	}
	c.mu.Unlock()
	rec := toRecord(0, dest, env)
	if n := len(rec.GetPayload()) + len(rec.GetKey()) + 64; n > c.cfg.MaxMessage {
		env.Ack.Finish(pipeline.Permanent(fmt.Errorf("grpc: record of %d bytes exceeds max_message %d", n, c.cfg.MaxMessage)))
		return nil
	}
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("grpc: publish to %s: %d records unacknowledged: %w", dest, c.cfg.MaxInflight, ctx.Err())
	}
	s, err := c.pub.Session(ctx)
	if err != nil {
		<-c.slots
		return fmt.Errorf("grpc: publish to %s: %w", dest, err)
	}
	if err := s.send(rec, env.Ack); err != nil {
		c.pub.Fail(s, err)
	}
	return nil
}

// release frees one in-flight slot.
func (c *client) release() { <-c.slots }

// Close implements pipeline.Connector: it waits (within ctx) for the
// acks of what was published, then closes the streams and the
// connection.
func (c *client) Close(ctx context.Context) error {
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	var errs []error
	if started {
		if s, err := c.pub.Session(ctx); err == nil {
			errs = append(errs, s.drain(ctx))
		}
	}
	errs = append(errs, c.pub.Close(ctx))
	for _, s := range c.subs {
		errs = append(errs, s.Close(ctx))
	}
	errs = append(errs, c.conn.Close())
	return errors.Join(errs...)
}

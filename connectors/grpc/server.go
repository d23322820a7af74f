package grpcconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/aimdb-dev/aimdb-flow/connectors/grpc/flowpb"
	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// server is a connector in Server mode: it serves the Flow service.
type server struct {
	cfg    Config
	log    *slog.Logger
	ln     net.Listener
	srv    *grpc.Server
	topics map[string]bool // inbound link topics
	errc   chan error

	mu      sync.Mutex
	d       pipeline.Dispatcher // set while Serve runs
	inCtx   context.Context     // Serve's context while it runs
	active  sync.WaitGroup      // Publish handlers dispatching
	subs    map[string]map[*subscriber]struct{}
	closing chan struct{} // closed by Close: Subscribe handlers return

	serving  atomic.Bool
	received atomic.Uint64
	refused  atomic.Uint64
}

type subscriber struct {
	ch   chan *flowpb.Record
	done <-chan struct{}
}

// Addr is the address the server listens on (for tests with port 0).
func (s *server) Addr() net.Addr { return s.ln.Addr() }

func newServer(cfg Config, inbound []pipeline.Subscription, log *slog.Logger) (*server, error) {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(cfg.MaxMessage),
		grpc.MaxSendMsgSize(cfg.MaxMessage),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: cfg.KeepaliveTime, Timeout: cfg.KeepaliveTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: cfg.KeepaliveTime / 2, PermitWithoutStream: true}),
	}
	if cfg.Secure {
		tc, err := kit.ServerTLSConfig(cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("grpcs server: %w", err)
		}
		if cfg.TLS.CAFile != "" {
			// mTLS: clients present a certificate signed by ca_file.
			ca, err := kit.TLSConfig(kit.TLS{CAFile: cfg.TLS.CAFile})
			if err != nil {
				return nil, fmt.Errorf("grpcs server: %w", err)
			}
			tc.ClientCAs, tc.ClientAuth = ca.RootCAs, tls.RequireAndVerifyClientCert
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	if cfg.Token.IsSet() {
		opts = append(opts, tokenInterceptors(cfg.Token)...)
	}
	ln, err := net.Listen("tcp", cfg.Addrs[0])
	if err != nil {
		return nil, fmt.Errorf("grpc server: listen: %w", err)
	}
	s := &server{cfg: cfg, log: log, ln: ln, topics: map[string]bool{}, subs: map[string]map[*subscriber]struct{}{}, closing: make(chan struct{}), errc: make(chan error, 1)}
	for _, sub := range inbound {
		s.topics[sub.Filter] = true
	}
	s.srv = grpc.NewServer(opts...)
	flowpb.RegisterFlowServer(s.srv, service{s: s})
	reflection.Register(s.srv)
	go func() { s.errc <- s.srv.Serve(ln) }()
	log.Info("grpc server listening", "address", ln.Addr().String(), "topics", len(s.topics))
	return s, nil
}

// Ready implements pipeline.Readiness: a server with inbound links is
// ready once Serve runs.
func (s *server) Ready() error {
	if len(s.topics) > 0 && !s.serving.Load() {
		return errors.New("grpc server: not serving yet")
	}
	return nil
}

// Serve implements pipeline.Source: records clients Publish to an inbound
// topic are dispatched until ctx ends.
func (s *server) Serve(ctx context.Context, _ []pipeline.Subscription, d pipeline.Dispatcher) error {
	s.mu.Lock()
	s.d, s.inCtx = d, ctx
	s.mu.Unlock()
	s.serving.Store(true)
	defer func() {
		// No handler dispatches once Serve has returned.
		s.serving.Store(false)
		s.mu.Lock()
		s.d, s.inCtx = nil, nil
		s.mu.Unlock()
		s.active.Wait()
	}()
	select {
	case <-ctx.Done():
		return nil
	case err := <-s.errc:
		return fmt.Errorf("grpc server: %w", err)
	}
}

// enter registers a Publish handler while Serve runs: it returns the
// dispatcher and Serve's context, or nil when nothing is served.
func (s *server) enter() (pipeline.Dispatcher, context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.d == nil {
		return nil, nil
	}
	s.active.Add(1)
	return s.d, s.inCtx
}

// ingest is the Flow.Publish handler: every record is dispatched with an
// ack whose callback sends its Ack on the stream, so the client hears of
// a record only once the pipeline took it through every sink. A slow
// pipeline blocks Dispatch, which stops reading the stream: HTTP/2 flow
// control then slows the client (backpressure).
func (s *server) ingest(stream flowpb.Flow_PublishServer) error {
	d, inCtx := s.enter()
	if d == nil {
		return status.Error(codes.Unavailable, "this instance does not ingest records (no inbound link is being served)")
	}
	defer s.active.Done()
	// The handler ends with the stream or with Serve.
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	defer context.AfterFunc(inCtx, cancel)()
	if err := stream.SendHeader(nil); err != nil {
		return err
	}
	acks := make(chan *flowpb.Ack, s.cfg.MaxInflight)
	done := make(chan struct{})
	sendErr := make(chan error, 1)
	go func() {
		for {
			select {
			case a := <-acks:
				if err := stream.Send(a); err != nil {
					sendErr <- err
					return
				}
			case <-done:
				// Send what was settled before the end (a half-closed
				// stream waits for its outstanding acks first).
				for {
					select {
					case a := <-acks:
						if err := stream.Send(a); err != nil {
							sendErr <- err
							return
						}
					default:
						sendErr <- nil
						return
					}
				}
			}
		}
	}()
	settle := func(a *flowpb.Ack) {
		select {
		case acks <- a:
		case <-done: // the stream ended: the client will send it again
		}
	}
	recs := make(chan *flowpb.Record)
	recvErr := make(chan error, 1)
	go func() {
		for {
			rec, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case recs <- rec:
			case <-ctx.Done():
				recvErr <- ctx.Err()
				return
			}
		}
	}()
	var outstanding sync.WaitGroup // dispatched, not yet settled
	var err error
	for err == nil {
		var rec *flowpb.Record
		select {
		case rec = <-recs:
		case err = <-recvErr:
			continue
		case <-ctx.Done():
			err = ctx.Err()
			continue
		}
		seq := rec.GetSeq()
		s.mu.Lock()
		known := s.topics[rec.GetTopic()]
		s.mu.Unlock()
		if !known {
			s.refused.Add(1)
			settle(&flowpb.Ack{Seq: seq, Permanent: true, Error: fmt.Sprintf("no inbound link for topic %q", rec.GetTopic())})
			continue
		}
		s.received.Add(1)
		env := &pipeline.Envelope{Partition: -1}
		fromRecord(env, rec)
		outstanding.Add(1)
		env.Ack = pipeline.NewAck(func(e error) {
			defer outstanding.Done()
			if e == nil {
				settle(&flowpb.Ack{Seq: seq, Ok: true})
				return
			}
			settle(&flowpb.Ack{Seq: seq, Error: e.Error(), Permanent: pipeline.IsPermanent(e)})
		})
		if derr := d.Dispatch(ctx, env); derr != nil {
			err = derr
		}
	}
	if errors.Is(err, io.EOF) {
		// The client sent its last record: answer what is outstanding.
		settled := make(chan struct{})
		go func() { outstanding.Wait(); close(settled) }()
		select {
		case <-settled:
		case <-ctx.Done():
		}
	}
	close(done)
	if serr := <-sendErr; serr != nil {
		return serr
	}
	switch {
	case errors.Is(err, io.EOF), status.Code(err) == codes.Canceled:
		return nil
	case errors.Is(err, context.Canceled) && inCtx.Err() != nil:
		return status.Error(codes.Unavailable, "server stopping")
	case errors.Is(err, context.Canceled):
		return nil
	}
	return err
}

// subscribe is the Flow.Subscribe handler: the records published to the
// topic from now on are streamed until the client leaves.
func (s *server) subscribe(req *flowpb.SubscribeRequest, stream flowpb.Flow_SubscribeServer) error {
	topic := req.GetTopic()
	if topic == "" {
		return status.Error(codes.InvalidArgument, "subscribe: no topic")
	}
	sub := &subscriber{ch: make(chan *flowpb.Record, s.cfg.SubscribeBuffer), done: stream.Context().Done()}
	s.mu.Lock()
	if s.subs[topic] == nil {
		s.subs[topic] = map[*subscriber]struct{}{}
	}
	s.subs[topic][sub] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs[topic], sub)
		s.mu.Unlock()
	}()
	if err := stream.SendHeader(nil); err != nil {
		return err
	}
	for {
		select {
		case r := <-sub.ch:
			if err := stream.Send(r); err != nil {
				return err
			}
		case <-sub.done:
			return nil
		case <-s.closing:
			return status.Error(codes.Unavailable, "server stopping")
		}
	}
}

// Publish implements pipeline.Connector for a server: the record is
// queued to every client subscribed to dest (a full queue waits, within
// ctx); with no subscriber it goes nowhere (at-most-once, like a broker
// topic without subscribers).
func (s *server) Publish(ctx context.Context, dest string, _ any, env *pipeline.Envelope) error {
	s.mu.Lock()
	subs := make([]*subscriber, 0, len(s.subs[dest]))
	for sub := range s.subs[dest] {
		subs = append(subs, sub)
	}
	s.mu.Unlock()
	if len(subs) == 0 {
		return nil
	}
	r := toRecord(0, dest, env)
	for _, sub := range subs {
		select {
		case sub.ch <- r:
		case <-sub.done:
		case <-ctx.Done():
			return fmt.Errorf("grpc: publish to subscribers of %s: %w", dest, ctx.Err())
		}
	}
	return nil
}

// isClosed reports whether Close ran.
func (s *server) isClosed() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// Close implements pipeline.Connector: a graceful stop within
// shutdown_timeout, then a hard one.
func (s *server) Close(ctx context.Context) error {
	select {
	case <-s.closing:
	default:
		close(s.closing)
	}
	done := make(chan struct{})
	go func() { s.srv.GracefulStop(); close(done) }()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
	defer cancel()
	select {
	case <-done:
	case <-ctx.Done():
		s.srv.Stop()
		<-done
	}
	return nil
}

// service is the Flow service of a server.
type service struct {
	flowpb.UnimplementedFlowServer
	s *server
}

// Publish implements flowpb.FlowServer.
func (v service) Publish(stream flowpb.Flow_PublishServer) error { return v.s.ingest(stream) }

// Subscribe implements flowpb.FlowServer.
func (v service) Subscribe(req *flowpb.SubscribeRequest, stream flowpb.Flow_SubscribeServer) error {
	return v.s.subscribe(req, stream)
}

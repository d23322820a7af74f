package modbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	mb "github.com/simonvetter/modbus"
)

// Conn is a built modbus client: a kit.Supervisor owns the connection
// (opened, reopened with backoff after it fails), pollers serve the
// inbound links, Publish writes outbound records.
type Conn struct {
	cfg     Config
	log     *slog.Logger
	sup     *kit.Supervisor[*session]
	inbound bool
	started atomic.Bool // the supervisor runs (Serve, or Start at the first Publish)
	// quietUntil (Unix ns) is when a failed RTU line may be reopened.
	quietUntil atomic.Int64

	stats Stats
}

func newClient(cfg Config, lg *slog.Logger, inbound bool) *Conn {
	c := &Conn{cfg: cfg, log: lg, inbound: inbound}
	c.sup = kit.NewSupervisor(kit.SupervisorConfig[*session]{
		Name:     "modbus",
		Connect:  c.connect,
		Backoff:  backoff(cfg),
		FailFast: true,
		Log:      lg,
	})
	return c
}

// session is one open Modbus client connection.
type session struct {
	c   *Conn
	mc  *mb.ModbusClient
	mu  sync.Mutex // one request at a time, with its unit id
	rtu bool

	gate   sync.Mutex // orders wg.Add before Close's wg.Wait
	closed bool
	wg     sync.WaitGroup
}

var errSessionClosed = errors.New("connection closed")

func (c *Conn) connect(ctx context.Context) (*session, error) {
	conf := &mb.ClientConfiguration{Timeout: c.cfg.Timeout, Logger: libLogger(c.log)}
	switch c.cfg.Transport {
	case TCP:
		conf.URL = "tcp://" + c.cfg.Address
	case TLS:
		p, err := tlsParts(c.cfg)
		if err != nil {
			return nil, kit.Final(err)
		}
		conf.URL = "tcp+tls://" + c.cfg.Address
		conf.TLSClientCert, conf.TLSRootCAs = p.cert, p.pool
	case RTU:
		if err := c.quiet(ctx); err != nil {
			return nil, err
		}
		conf.URL = "rtu://" + c.cfg.Address
		conf.Speed, conf.DataBits, conf.StopBits = uint(c.cfg.Baud), uint(c.cfg.DataBits), uint(c.cfg.StopBits)
		conf.Parity = [...]uint{ParityNone: mb.PARITY_NONE, ParityEven: mb.PARITY_EVEN, ParityOdd: mb.PARITY_ODD}[c.cfg.Parity]
	}
	mc, err := mb.NewClient(conf)
	if err != nil {
		return nil, kit.Final(fmt.Errorf("client configuration: %w", err))
	}
	// Open dials without a context (5s for TCP): run it aside so that a
	// cancelled ctx returns at once.
	opened := make(chan error, 1)
	go func() { opened <- mc.Open() }()
	select {
	case err := <-opened:
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", c.cfg.Address, err)
		}
	case <-ctx.Done():
		go func() {
			if <-opened == nil {
				_ = mc.Close()
			}
		}()
		return nil, ctx.Err()
	}
	return &session{c: c, mc: mc, rtu: c.cfg.Transport == RTU}, nil
}

// Serve implements kit.Session: requests are made by pollers and
// publishers; the session lasts until it is failed or ctx ends.
func (s *session) Serve(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Close implements kit.Session: it waits for the request under way (at
// most the request timeout) and closes the connection.
func (s *session) Close() error {
	s.gate.Lock()
	s.closed = true
	s.gate.Unlock()
	s.wg.Wait()
	return s.mc.Close()
}

// do runs fn with the client set to unit, one request at a time. It
// returns when fn did or ctx ended; a request abandoned for ctx finishes
// in the background (within the request timeout), and a request whose
// ctx ended while it waited for its turn is not sent.
func (s *session) do(ctx context.Context, unit uint8, fn func(mc *mb.ModbusClient) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	res := make(chan error, 1)
	s.gate.Lock()
	if s.closed {
		s.gate.Unlock()
		return errSessionClosed
	}
	s.wg.Add(1)
	s.gate.Unlock()
	go func() {
		defer s.wg.Done()
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := ctx.Err(); err != nil {
			res <- err
			return
		}
		_ = s.mc.SetUnitId(unit)
		err := fn(s.mc)
		if err != nil {
			// Also when the caller gave up: a late timeout still shows
			// the stream is out of step.
			s.broken(Classify(err), err)
		}
		res <- err
	}()
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// broken fails the session after a request failure of class cl that
// shows the connection cannot go on as it is: a transport error ended
// it; after a timeout or a malformed answer a late or partial answer may
// still arrive and would be taken for the next request's (TCP matches
// transaction ids, but an RTU line has none: a late answer of the right
// length would shift every later answer by one). The session is reopened;
// an RTU line first stays closed for one request timeout, so that the
// reopening discards what arrived meanwhile. Exceptions are answers: the
// session stays.
func (s *session) broken(cl Class, err error) {
	if cl != Broken && cl != Timeout && cl != Malformed {
		return
	}
	if s.rtu {
		s.c.quietUntil.Store(time.Now().Add(s.c.cfg.Timeout).UnixNano())
	}
	s.c.sup.Fail(s, fmt.Errorf("%s: %w", cl, err))
}

// quiet waits, before an RTU line is reopened after a failure, until the
// line had one request timeout to deliver any late answer.
func (c *Conn) quiet(ctx context.Context) error {
	d := time.Until(time.Unix(0, c.quietUntil.Load()))
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ready implements pipeline.Readiness: nil while connected. A client with
// outbound links only connects at its first Publish and is ready before.
func (c *Conn) Ready() error {
	if !c.started.Load() {
		return nil
	}
	return c.sup.Ready()
}

// Stats returns the connector's counters.
func (c *Conn) Stats() StatsSnapshot { return c.stats.snapshot() }

// Close implements pipeline.Connector: it stops the supervisor and closes
// the connection, within ctx.
func (c *Conn) Close(ctx context.Context) error {
	return c.sup.Close(ctx)
}

var _ pipeline.Source = (*Conn)(nil)

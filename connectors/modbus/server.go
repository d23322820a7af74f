package modbus

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/connectors/modbus/regmap"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	mb "github.com/simonvetter/modbus"
)

// ServerConn is a built modbus server: it listens (a kit.Supervisor
// retries the listen with backoff) and answers Modbus clients from a
// register image. Outbound links (`to`) update the image with each
// record's fields; inbound links (`from`) declare the coils and holding
// registers clients may write, and each write that touches them
// dispatches a record of the link's fields. Every other write is refused
// with exception 2 (illegal data address); registers no link wrote read
// as 0.
type ServerConn struct {
	cfg     Config
	log     *slog.Logger
	sup     *kit.Supervisor[*listener]
	inbound bool
	img     image
	stats   Stats

	mu       sync.Mutex
	writable map[regmap.Table]map[uint16]int // address -> index into links
	links    []*serveLink
	d        pipeline.Dispatcher
	ctx      context.Context
}

// serveLink is one inbound link of a server.
type serveLink struct {
	name  string
	m     *regmap.Map
	names [][]byte
}

// image is the served register state: 64Ki entries per table.
type image struct {
	mu     sync.RWMutex
	coils  [1 << 16]bool
	inputs [1 << 16]bool
	hold   [1 << 16]uint16
	in     [1 << 16]uint16
}

func newServer(cfg Config, lg *slog.Logger, inbound bool) *ServerConn {
	s := &ServerConn{cfg: cfg, log: lg, inbound: inbound}
	s.sup = kit.NewSupervisor(kit.SupervisorConfig[*listener]{
		Name:    "modbus server",
		Connect: s.listen,
		Backoff: backoff(cfg),
		Log:     lg,
	})
	if !inbound {
		s.sup.Start()
	}
	return s
}

// listener is one listening Modbus server: the supervisor's session.
type listener struct{ srv *mb.ModbusServer }

func (s *ServerConn) listen(context.Context) (*listener, error) {
	conf := &mb.ServerConfiguration{
		URL: "tcp://" + s.cfg.Address, Timeout: s.cfg.IdleTimeout, MaxClients: uint(s.cfg.MaxClients),
		Logger: libLogger(s.log),
	}
	if s.cfg.Transport == TLS {
		p, err := tlsParts(s.cfg)
		if err != nil {
			return nil, kit.Final(err)
		}
		conf.URL = "tcp+tls://" + s.cfg.Address
		conf.TLSServerCert, conf.TLSClientCAs = p.cert, p.pool
	}
	srv, err := mb.NewServer(conf, handler{s})
	if err != nil {
		return nil, kit.Final(fmt.Errorf("server configuration: %w", err))
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", s.cfg.Address, err)
	}
	return &listener{srv: srv}, nil
}

// Serve implements kit.Session: the library accepts and answers clients
// on goroutines of its own until Close.
func (l *listener) Serve(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Close implements kit.Session: it closes the listener and every client
// connection.
func (l *listener) Close() error { return l.srv.Stop() }

// Ready implements pipeline.Readiness: nil while listening.
func (s *ServerConn) Ready() error { return s.sup.Ready() }

// Stats returns the server's counters.
func (s *ServerConn) Stats() StatsSnapshot { return s.stats.snapshot() }

// Close implements pipeline.Connector: it stops listening and closes
// every client connection, within ctx.
func (s *ServerConn) Close(ctx context.Context) error { return s.sup.Close(ctx) }

// Publish implements pipeline.Connector: the record's fields (a JSON
// object, encode json) replace the served values of the link's registers
// and bits. A payload or value the map cannot take is pipeline.Permanent.
// It never waits for the network.
func (s *ServerConn) Publish(_ context.Context, dest string, opts any, env *pipeline.Envelope) error {
	w, ok := opts.(*Write)
	if !ok {
		return pipeline.Permanent(fmt.Errorf("modbus server: publish to %s: the link has no register map (options %T)", dest, opts))
	}
	m, err := w.regmap()
	if err != nil {
		return pipeline.Permanent(fmt.Errorf("modbus server: publish to %s: %w", dest, err))
	}
	e, err := encodeRecord(m, env.Payload)
	if err != nil {
		s.stats.writeErrs.Add(1)
		return pipeline.Permanent(fmt.Errorf("modbus server: publish to %s: %w", dest, err))
	}
	fields := m.Fields()
	s.img.mu.Lock()
	for _, i := range e.idx {
		f := fields[i]
		switch f.Table {
		case regmap.Coils:
			s.img.coils[f.Addr] = e.bits[i]
		case regmap.DiscreteInputs:
			s.img.inputs[f.Addr] = e.bits[i]
		case regmap.HoldingRegisters:
			copy(s.img.hold[f.Addr:], e.regs[i])
		case regmap.InputRegisters:
			copy(s.img.in[f.Addr:], e.regs[i])
		}
	}
	s.img.mu.Unlock()
	s.stats.writes.Add(1)
	return nil
}

// Serve implements pipeline.Source: it listens (until ctx ends) and
// dispatches a record of an inbound link's fields for each client write
// that touches them.
func (s *ServerConn) Serve(ctx context.Context, subs []pipeline.Subscription, d pipeline.Dispatcher) error {
	if err := distinct(subs); err != nil {
		return err
	}
	writable := map[regmap.Table]map[uint16]int{regmap.Coils: {}, regmap.HoldingRegisters: {}}
	var links []*serveLink
	for _, sub := range subs {
		o, ok := sub.Options.(*Serve)
		if !ok {
			return fmt.Errorf("modbus server: link %q has no register map (options %T)", sub.Filter, sub.Options)
		}
		m, err := o.regmap()
		if err != nil {
			return fmt.Errorf("modbus server: link %q: %w", sub.Filter, err)
		}
		l := &serveLink{name: sub.Filter, m: m}
		for _, f := range m.Fields() {
			q, _ := json.Marshal(f.Name)
			l.names = append(l.names, append(q, ':'))
			for a := int(f.Addr); a < f.End(); a++ {
				if other, taken := writable[f.Table][uint16(a)]; taken {
					return fmt.Errorf("modbus server: links %q and %q both take %s %d", links[other].name, sub.Filter, f.Table, a)
				}
				writable[f.Table][uint16(a)] = len(links)
			}
		}
		links = append(links, l)
	}
	s.mu.Lock()
	s.writable, s.links, s.d, s.ctx = writable, links, d, ctx
	s.mu.Unlock()
	err := s.sup.Run(ctx)
	s.mu.Lock()
	s.d = nil
	s.mu.Unlock()
	return err
}

// written renders, for each inbound link that a write of n entries of
// table t at addr touched, a record of the link's fields. The caller
// holds the image's write lock, so each record shows exactly that write.
func (s *ServerConn) written(t regmap.Table, addr uint16, n int) []pipeline.Envelope {
	s.mu.Lock()
	links, w := s.links, s.writable[t]
	s.mu.Unlock()
	var out []pipeline.Envelope
	seen := map[int]bool{}
	now := time.Now()
	for a := int(addr); a < int(addr)+n; a++ {
		if li, ok := w[uint16(a)]; ok && !seen[li] {
			seen[li] = true
			out = append(out, pipeline.Envelope{Payload: s.render(links[li]), Topic: links[li].name, Time: now, Partition: -1})
		}
	}
	return out
}

// dispatch hands the records of a client write to the pipeline, on the
// client's goroutine: a full buffer slows that client (backpressure). A
// write the pipeline could not take is answered with exception 6 (server
// device busy).
func (s *ServerConn) dispatch(envs []pipeline.Envelope) error {
	s.mu.Lock()
	d, ctx := s.d, s.ctx
	s.mu.Unlock()
	if d == nil {
		return mb.ErrServerDeviceBusy
	}
	for i := range envs {
		if err := d.Dispatch(ctx, &envs[i]); err != nil {
			return mb.ErrServerDeviceBusy
		}
	}
	return nil
}

// render makes the JSON object of l's fields from the image (the caller
// holds the image's lock).
func (s *ServerConn) render(l *serveLink) []byte {
	fields := l.m.Fields()
	out := append(make([]byte, 0, 16*len(fields)+2), '{')
	for i, f := range fields {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, l.names[i]...)
		switch f.Table {
		case regmap.Coils:
			out = regmap.AppendBit(out, s.img.coils[f.Addr])
		default:
			out, _ = f.AppendRegs(out, s.img.hold[f.Addr:f.End()])
		}
	}
	return append(out, '}')
}

// writableRange reports whether every address of the write is taken by
// an inbound link.
func (s *ServerConn) writableRange(t regmap.Table, addr uint16, n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.writable[t]
	for a := int(addr); a < int(addr)+n; a++ {
		if _, ok := w[uint16(a)]; !ok {
			return false
		}
	}
	return n > 0
}

// handler answers the library's requests from the image.
type handler struct{ s *ServerConn }

func (h handler) unit(id uint8) error {
	if h.s.cfg.UnitSet && id != h.s.cfg.Unit {
		return mb.ErrGWTargetFailedToRespond
	}
	return nil
}

func (h handler) HandleCoils(req *mb.CoilsRequest) ([]bool, error) {
	if err := h.unit(req.UnitId); err != nil {
		return nil, err
	}
	n := int(req.Quantity)
	img := &h.s.img
	if req.IsWrite {
		h.s.stats.clientWrites.Add(1)
		if !h.s.writableRange(regmap.Coils, req.Addr, n) || len(req.Args) != n {
			return nil, mb.ErrIllegalDataAddress
		}
		img.mu.Lock()
		copy(img.coils[req.Addr:], req.Args)
		envs := h.s.written(regmap.Coils, req.Addr, n)
		img.mu.Unlock()
		return nil, h.s.dispatch(envs)
	}
	img.mu.RLock()
	defer img.mu.RUnlock()
	return append([]bool(nil), img.coils[req.Addr:int(req.Addr)+n]...), nil
}

func (h handler) HandleDiscreteInputs(req *mb.DiscreteInputsRequest) ([]bool, error) {
	if err := h.unit(req.UnitId); err != nil {
		return nil, err
	}
	img := &h.s.img
	img.mu.RLock()
	defer img.mu.RUnlock()
	return append([]bool(nil), img.inputs[req.Addr:int(req.Addr)+int(req.Quantity)]...), nil
}

func (h handler) HandleHoldingRegisters(req *mb.HoldingRegistersRequest) ([]uint16, error) {
	if err := h.unit(req.UnitId); err != nil {
		return nil, err
	}
	n := int(req.Quantity)
	img := &h.s.img
	if int(req.Addr)+n > 1<<16 {
		return nil, mb.ErrIllegalDataAddress
	}
	if req.IsWrite {
		h.s.stats.clientWrites.Add(1)
		if !h.s.writableRange(regmap.HoldingRegisters, req.Addr, n) || len(req.Args) != n {
			return nil, mb.ErrIllegalDataAddress
		}
		img.mu.Lock()
		copy(img.hold[req.Addr:], req.Args)
		envs := h.s.written(regmap.HoldingRegisters, req.Addr, n)
		img.mu.Unlock()
		return nil, h.s.dispatch(envs)
	}
	img.mu.RLock()
	defer img.mu.RUnlock()
	return append([]uint16(nil), img.hold[req.Addr:int(req.Addr)+n]...), nil
}

func (h handler) HandleInputRegisters(req *mb.InputRegistersRequest) ([]uint16, error) {
	if err := h.unit(req.UnitId); err != nil {
		return nil, err
	}
	n := int(req.Quantity)
	if int(req.Addr)+n > 1<<16 {
		return nil, mb.ErrIllegalDataAddress
	}
	img := &h.s.img
	img.mu.RLock()
	defer img.mu.RUnlock()
	return append([]uint16(nil), img.in[req.Addr:int(req.Addr)+n]...), nil
}

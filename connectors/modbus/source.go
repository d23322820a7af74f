package modbus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/modbus/regmap"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	mb "github.com/simonvetter/modbus"
)

// Serve implements pipeline.Source: every inbound link is polled on its
// interval while the supervisor keeps the connection open (reconnecting
// with backoff). A failed poll (an exception, a timeout, a malformed
// answer) is counted and logged and dispatches nothing; a timeout or a
// broken frame also reopens the connection (see session.broken).
func (c *Conn) Serve(ctx context.Context, subs []pipeline.Subscription, d pipeline.Dispatcher) error {
	if err := distinct(subs); err != nil {
		return err
	}
	var pollers []*poller
	for _, s := range subs {
		o, ok := s.Options.(*Poll)
		if !ok {
			return fmt.Errorf("modbus: link %q has no register map (options %T)", s.Filter, s.Options)
		}
		m, err := o.regmap()
		if err != nil {
			return fmt.Errorf("modbus: link %q: %w", s.Filter, err)
		}
		pollers = append(pollers, newPoller(c, s.Filter, o, m))
	}
	c.started.Store(true)
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, p := range pollers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.run(pctx, d)
		}()
	}
	err := c.sup.Run(ctx)
	stop()
	wg.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// distinct refuses two inbound links with one address: the runner
// routes a dispatched record by its address to every record linked to
// it, so two register maps under one name would feed each other's
// records.
func distinct(subs []pipeline.Subscription) error {
	seen := map[string]string{}
	for _, s := range subs {
		if other, ok := seen[s.Filter]; ok {
			return fmt.Errorf("modbus: records %s and %s both read modbus link %q: give each register map its own name", other, s.Record, s.Filter)
		}
		seen[s.Filter] = s.Record
	}
	return nil
}

// poller polls one link.
type poller struct {
	c      *Conn
	name   string
	o      *Poll
	m      *regmap.Map
	blocks []regmap.Block
	unit   uint8
	names  [][]byte // JSON-quoted field names with the colon
	last   []byte   // last dispatched payload
	fails  uint64   // consecutive failed polls
	warned map[string]bool
}

func newPoller(c *Conn, name string, o *Poll, m *regmap.Map) *poller {
	p := &poller{c: c, name: name, o: o, m: m, unit: c.cfg.Unit, warned: map[string]bool{}}
	if o.UnitSet {
		p.unit = o.Unit
	}
	p.blocks = m.Reads(o.MaxRegisters, o.MaxBits, o.MaxGap)
	for _, f := range m.Fields() {
		q, _ := json.Marshal(f.Name)
		p.names = append(p.names, append(q, ':'))
	}
	return p
}

func (p *poller) run(ctx context.Context, d pipeline.Dispatcher) {
	interval := p.o.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := p.pollOnce(ctx, d); err != nil {
			return // ctx ended during a dispatch
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pollOnce reads every block and dispatches a record; it returns an error
// only when ctx ended.
func (p *poller) pollOnce(ctx context.Context, d pipeline.Dispatcher) error {
	s, err := p.c.sup.Session(ctx)
	if err != nil {
		return ctx.Err() // not connected: readiness says why; try at the next tick
	}
	pctx, cancel := context.WithTimeout(ctx, p.o.pollTimeout(p.c.cfg.Timeout))
	defer cancel()
	payload, err := p.read(pctx, s)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		cl := Classify(err)
		if errors.Is(err, context.DeadlineExceeded) {
			cl = Timeout
		}
		p.failed(cl, err)
		return nil
	}
	if p.fails > 0 {
		p.c.log.Info("modbus: polling again", "link", p.name, "failed_polls", p.fails)
		p.fails = 0
	}
	p.c.stats.polls.Add(1)
	if p.o.Emit == EmitChange && bytes.Equal(payload, p.last) {
		p.c.stats.unchanged.Add(1)
		return nil
	}
	p.last = payload
	env := pipeline.Envelope{Payload: payload, Topic: p.name, Time: time.Now(), Partition: -1}
	if err := d.Dispatch(ctx, &env); err != nil {
		return err
	}
	p.c.stats.records.Add(1)
	return nil
}

func (p *poller) failed(cl Class, err error) {
	p.fails++
	p.c.stats.fail(cl, err)
	lvl := p.c.log.Debug
	if flood(p.fails) {
		lvl = p.c.log.Warn
	}
	lvl("modbus: poll failed", "link", p.name, "class", cl.String(), "err", err, "consecutive", p.fails)
}

// read makes the poll's requests and renders the record: a JSON object
// of the fields in table and address order (a fresh slice each time).
func (p *poller) read(ctx context.Context, s *session) ([]byte, error) {
	fields := p.m.Fields()
	out := make([]byte, 0, 16*len(fields)+2)
	out = append(out, '{')
	for _, b := range p.blocks {
		var regs []uint16
		var bits []bool
		err := s.do(ctx, p.unit, func(mc *mb.ModbusClient) error {
			var err error
			switch b.Table {
			case regmap.Coils:
				bits, err = mc.ReadCoils(b.Start, uint16(b.Count))
			case regmap.DiscreteInputs:
				bits, err = mc.ReadDiscreteInputs(b.Start, uint16(b.Count))
			case regmap.HoldingRegisters:
				regs, err = mc.ReadRegisters(b.Start, uint16(b.Count), mb.HOLDING_REGISTER)
			case regmap.InputRegisters:
				regs, err = mc.ReadRegisters(b.Start, uint16(b.Count), mb.INPUT_REGISTER)
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("read %s %d (%d): %w", b.Table, b.Start, b.Count, err)
		}
		if (b.Table.Bits() && len(bits) != b.Count) || (!b.Table.Bits() && len(regs) != b.Count) {
			return nil, fmt.Errorf("read %s %d (%d): %w: answer of the wrong length", b.Table, b.Start, b.Count, mb.ErrProtocolError)
		}
		for i := b.First; i < b.Last; i++ {
			f := fields[i]
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, p.names[i]...)
			off := int(f.Addr) - int(b.Start)
			if b.Table.Bits() {
				out = regmap.AppendBit(out, bits[off])
				continue
			}
			var verr error
			out, verr = f.AppendRegs(out, regs[off:off+f.Len])
			if verr != nil {
				p.c.stats.badVal.Add(1)
				if !p.warned[f.Name] {
					p.warned[f.Name] = true
					p.c.log.Warn("modbus: field read as null", "link", p.name, "err", verr)
				}
			}
		}
	}
	return append(out, '}'), nil
}

package modbus

import (
	"context"
	"errors"
	"fmt"

	"github.com/aimdb-dev/aimdb-flow/connectors/modbus/regmap"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	mb "github.com/simonvetter/modbus"
)

// Publish implements pipeline.Connector: it writes the record's fields
// (a JSON object, encode json) to the link's coils and holding registers,
// contiguous fields in one request (FC 15, 16; FC 5, 6 for a single coil
// or register). A payload or value the map cannot take, and an exception
// that says the address, value or function is wrong, are
// pipeline.Permanent (the runner dead-letters the record); a timeout, a
// transport failure or a busy device is a plain error (retried). Without
// inbound links, the first Publish starts connecting.
func (c *Conn) Publish(ctx context.Context, dest string, opts any, env *pipeline.Envelope) error {
	w, ok := opts.(*Write)
	if !ok {
		return pipeline.Permanent(fmt.Errorf("modbus: publish to %s: the link has no register map (options %T)", dest, opts))
	}
	m, err := w.regmap()
	if err != nil {
		return pipeline.Permanent(fmt.Errorf("modbus: publish to %s: %w", dest, err))
	}
	e, err := encodeRecord(m, env.Payload)
	if err != nil {
		c.stats.writeErrs.Add(1)
		return pipeline.Permanent(fmt.Errorf("modbus: publish to %s: %w", dest, err))
	}
	if !c.inbound && !c.started.Load() {
		c.started.Store(true)
		c.sup.Start()
	}
	s, err := c.sup.Session(ctx)
	if err != nil {
		c.stats.writeErrs.Add(1)
		return fmt.Errorf("modbus: publish to %s: %w", dest, err)
	}
	unit := c.cfg.Unit
	if w.UnitSet {
		unit = w.Unit
	}
	for _, b := range m.Writes(e.idx) {
		err := s.do(ctx, unit, func(mc *mb.ModbusClient) error {
			switch {
			case b.Table == regmap.Coils && b.Count == 1:
				return mc.WriteCoil(b.Start, e.bits[b.First])
			case b.Table == regmap.Coils:
				return mc.WriteCoils(b.Start, e.blockBits(b))
			case b.Count == 1:
				return mc.WriteRegister(b.Start, e.regs[b.First][0])
			default:
				return mc.WriteRegisters(b.Start, e.blockRegs(b))
			}
		})
		if err != nil {
			c.stats.writeErrs.Add(1)
			err = fmt.Errorf("modbus: publish to %s: write %s %d (%d): %w", dest, b.Table, b.Start, b.Count, err)
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return err
			}
			cl := Classify(err)
			c.stats.fail(cl, err)
			if cl == Exception && permanentException(err) {
				return pipeline.Permanent(err)
			}
			return err
		}
	}
	c.stats.writes.Add(1)
	return nil
}

package modbus

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/connectors/modbus/regmap"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Emit says when a poll produces a record.
type Emit uint8

// Emit policies.
const (
	// EmitChange dispatches a record when a field's value differs from
	// the last dispatched record (and on the first poll): the default.
	EmitChange Emit = iota
	// EmitEvery dispatches a record on every successful poll.
	EmitEvery
)

// FieldPrefix starts the name of a field setting: `field.temp "input 0
// float32 scale 0.1"` declares the field temp.
const FieldPrefix = "field."

// Poll are the options of an inbound link of a client (a polled register
// map). A record is a JSON object of the named fields.
type Poll struct {
	// Fields is the register map (at least one field).
	Fields []regmap.Field
	// Interval between polls (default 1s).
	Interval time.Duration
	// Timeout bounds one poll, all its requests (default: the longer of
	// Interval and the connector's request timeout).
	Timeout time.Duration
	// Unit overrides the connector's unit id when UnitSet.
	Unit    uint8
	UnitSet bool
	// Emit: on change (default) or on every poll.
	Emit Emit
	// MaxGap is how many unused registers or bits a read may span to join
	// two fields in one request (default 0: only adjacent fields).
	MaxGap int
	// MaxRegisters and MaxBits bound one read request (defaults and
	// maxima 125 and 2000, the protocol's limits).
	MaxRegisters, MaxBits int

	once sync.Once
	m    *regmap.Map
	err  error
}

// Write are the options of an outbound link: the fields of each record
// written to holding registers and coils (client), or served (server).
type Write struct {
	// Fields is the register map (at least one field).
	Fields []regmap.Field
	// Unit overrides the connector's unit id when UnitSet (client only).
	Unit    uint8
	UnitSet bool

	once sync.Once
	m    *regmap.Map
	err  error
}

// Serve are the options of an inbound link of a server: the registers
// Modbus clients may write; each write that touches them dispatches a
// record of the link's fields.
type Serve struct {
	Fields []regmap.Field

	once sync.Once
	m    *regmap.Map
	err  error
}

func buildMap(once *sync.Once, m **regmap.Map, errp *error, fields []regmap.Field) (*regmap.Map, error) {
	once.Do(func() {
		if len(fields) == 0 {
			*errp = errors.New("a modbus link needs at least one field: field.NAME \"TABLE ADDRESS [TYPE]\" (e.g. field.temp \"input 0 float32\")")
			return
		}
		var errs []error
		seen := map[string]bool{}
		for _, f := range fields {
			if seen[f.Name] {
				errs = append(errs, &regmap.FieldError{Field: f.Name, Err: errors.New("declared twice")})
			}
			seen[f.Name] = true
		}
		mm, merrs := regmap.NewMap(fields)
		errs = append(errs, merrs...)
		if len(errs) > 0 {
			*errp = fieldErrors(errs)
			return
		}
		*m = mm
	})
	return *m, *errp
}

// fieldErrors turns *regmap.FieldError values into *kit.Error values
// naming the field setting, so the DSL reports each at its setting.
func fieldErrors(errs []error) error {
	out := make(kit.Errors, 0, len(errs))
	for _, e := range errs {
		var fe *regmap.FieldError
		if errors.As(e, &fe) {
			out = append(out, &kit.Error{Key: FieldPrefix + fe.Field, Err: fe.Err})
			continue
		}
		out = append(out, e)
	}
	return out
}

func (p *Poll) regmap() (*regmap.Map, error)  { return buildMap(&p.once, &p.m, &p.err, p.Fields) }
func (w *Write) regmap() (*regmap.Map, error) { return buildMap(&w.once, &w.m, &w.err, w.Fields) }
func (s *Serve) regmap() (*regmap.Map, error) { return buildMap(&s.once, &s.m, &s.err, s.Fields) }

// readFields reads the field.NAME settings.
func readFields(s *kit.Settings, d regmap.Defaults) []regmap.Field {
	var out []regmap.Field
	for _, pr := range s.Prefixed(FieldPrefix, FieldPrefix+"<name>") {
		if pr.Name == "" {
			s.Fail(&kit.Error{Key: pr.Key, Err: errors.New("a field needs a name: field.NAME")})
			continue
		}
		f, err := regmap.ParseField(pr.Name, pr.Value, d)
		if err != nil {
			s.Fail(&kit.Error{Key: pr.Key, Value: pr.Value, Err: err})
			continue
		}
		out = append(out, f)
	}
	return out
}

// ParseLinkOptions implements pipeline.LinkOptionParser: an inbound link
// of a client is a *Poll, an outbound link a *Write, an inbound link of a
// server a *Serve. Every problem is reported at once, each naming its
// setting (a field's own problems name its field.NAME setting).
func (b *Builder) ParseLinkOptions(dir pipeline.Direction, addr string, p pipeline.Params) (any, error) {
	s := kit.ReadLink(dir, p)
	var opts any
	server := b.cfg.Mode == Server
	var unit uint8
	var unitSet bool
	if !server && s.Has("unit") {
		unit, unitSet = uint8(s.Int("unit", 0, 0, 255)), true
	}
	d := readOrders(s, b.cfg.Defaults)
	switch {
	case dir == pipeline.Inbound && !server:
		o := &Poll{Unit: unit, UnitSet: unitSet}
		o.Interval = s.DurationIn("interval", DefaultInterval, time.Millisecond, 24*time.Hour)
		o.Timeout = s.Duration("timeout", 0)
		o.Emit = kit.Choose(s, "emit", EmitChange,
			kit.Choice[Emit]{Name: "change", Value: EmitChange},
			kit.Choice[Emit]{Name: "every", Aliases: []string{"always", "poll"}, Value: EmitEvery})
		o.MaxGap = s.Int("max_gap", 0, 0, regmap.MaxReadBits)
		o.MaxRegisters = s.Int("max_registers", regmap.MaxReadRegisters, 1, regmap.MaxReadRegisters)
		o.MaxBits = s.Int("max_bits", regmap.MaxReadBits, 1, regmap.MaxReadBits)
		o.Fields = readFields(s, d)
		opts = o
	case dir == pipeline.Inbound:
		opts = &Serve{Fields: readFields(s, d)}
	default:
		opts = &Write{Fields: readFields(s, d), Unit: unit, UnitSet: unitSet}
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	if err := b.ValidateLinkOptions(dir, addr, opts); err != nil {
		return nil, err
	}
	return opts, nil
}

// ValidateLinkOptions implements pipeline.LinkOptionValidator: the
// options' type must fit the direction and the mode, and the register
// map must be valid (no overlaps; writable tables only where written).
func (b *Builder) ValidateLinkOptions(dir pipeline.Direction, addr string, opts any) error {
	var errs []error
	if strings.TrimSpace(addr) == "" {
		errs = append(errs, errors.New("a modbus link needs a name: modbus://NAME (it names the record's register map in logs and traces)"))
	}
	server := b.cfg.Mode == Server
	var m *regmap.Map
	var err error
	switch o := opts.(type) {
	case *Poll:
		if dir != pipeline.Inbound || server {
			return fmt.Errorf("modbus: %s link of a %s connector: want %s, got *modbus.Poll", dir, b.modeName(), b.optsType(dir))
		}
		m, err = o.regmap()
		if o.Interval < 0 || o.Timeout < 0 || o.MaxGap < 0 || o.MaxRegisters < 0 || o.MaxBits < 0 ||
			o.MaxRegisters > regmap.MaxReadRegisters || o.MaxBits > regmap.MaxReadBits {
			errs = append(errs, errors.New("modbus: poll interval, timeout, max_gap, max_registers, max_bits out of range"))
		}
		if m != nil {
			for _, f := range m.Fields() {
				limit := max(o.MaxRegisters, 0)
				if limit == 0 {
					limit = regmap.MaxReadRegisters
				}
				if !f.Table.Bits() && f.Len > limit {
					errs = append(errs, &kit.Error{Key: FieldPrefix + f.Name, Err: fmt.Errorf("%d registers do not fit one read of max_registers %d", f.Len, limit)})
				}
			}
		}
	case *Write:
		if dir != pipeline.Outbound {
			return fmt.Errorf("modbus: %s link: want %s, got *modbus.Write", dir, b.optsType(dir))
		}
		if server && o.UnitSet {
			errs = append(errs, &kit.Error{Key: "unit", Err: errors.New("a server's unit is the connector's setting")})
		}
		m, err = o.regmap()
		if m != nil && !server {
			for _, f := range m.Fields() {
				if !f.Table.Writable() {
					errs = append(errs, &kit.Error{Key: FieldPrefix + f.Name,
						Err: fmt.Errorf("%s is read-only: a client writes coil and holding fields", f.Span())})
				}
			}
		}
	case *Serve:
		if dir != pipeline.Inbound || !server {
			return fmt.Errorf("modbus: %s link of a %s connector: want %s, got *modbus.Serve", dir, b.modeName(), b.optsType(dir))
		}
		m, err = o.regmap()
		if m != nil {
			for _, f := range m.Fields() {
				if !f.Table.Writable() {
					errs = append(errs, &kit.Error{Key: FieldPrefix + f.Name,
						Err: fmt.Errorf("%s is read-only for Modbus clients: a server's from link takes the coil and holding fields clients write", f.Span())})
				}
			}
		}
	case nil:
		return errors.New("a modbus link needs at least one field: field.NAME \"TABLE ADDRESS [TYPE]\" (e.g. field.temp \"input 0 float32\")")
	default:
		return fmt.Errorf("modbus: %s link: want %s, got %T", dir, b.optsType(dir), opts)
	}
	if err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (b *Builder) modeName() string {
	if b.cfg.Mode == Server {
		return "server"
	}
	return "client"
}

func (b *Builder) optsType(dir pipeline.Direction) string {
	switch {
	case dir == pipeline.Outbound:
		return "*modbus.Write"
	case b.cfg.Mode == Server:
		return "*modbus.Serve"
	}
	return "*modbus.Poll"
}

// pollTimeout is the bound of one poll: Timeout, or the longer of the
// interval and the request timeout.
func (p *Poll) pollTimeout(request time.Duration) time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	iv := p.Interval
	if iv <= 0 {
		iv = DefaultInterval
	}
	return max(iv, request)
}

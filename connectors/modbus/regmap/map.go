package regmap

import (
	"cmp"
	"fmt"
	"slices"
)

// Protocol limits on one request (Modbus application protocol v1.1b3).
const (
	MaxReadRegisters  = 125  // FC 3, 4
	MaxReadBits       = 2000 // FC 1, 2
	MaxWriteRegisters = 123  // FC 16
	MaxWriteBits      = 1968 // FC 15
)

// FieldError is a problem with one field of a map.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return "field " + e.Field + ": " + e.Err.Error() }

// Unwrap returns the problem.
func (e *FieldError) Unwrap() error { return e.Err }

// Map is a checked register map: fields sorted by table and address, no
// two overlapping.
type Map struct {
	fields []Field
}

// NewMap checks fields and returns their map. Every overlap is reported
// (a *FieldError naming the later field, by name order, and the field
// it overlaps), so all of them can be shown at once.
func NewMap(fields []Field) (*Map, []error) {
	fs := slices.Clone(fields)
	slices.SortStableFunc(fs, func(a, b Field) int {
		return cmp.Or(cmp.Compare(a.Table, b.Table), cmp.Compare(a.Addr, b.Addr), cmp.Compare(a.Name, b.Name))
	})
	var errs []error
	for i := 1; i < len(fs); i++ {
		// Any earlier field of the table that reaches past this start.
		for j := i - 1; j >= 0 && fs[j].Table == fs[i].Table; j-- {
			if fs[j].End() > int(fs[i].Addr) {
				a, b := fs[j], fs[i]
				if a.Name > b.Name {
					a, b = b, a
				}
				errs = append(errs, &FieldError{Field: b.Name, Err: fmt.Errorf("%s overlaps field %s (%s)", b.Span(), a.Name, a.Span())})
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return &Map{fields: fs}, nil
}

// Fields returns the fields in table and address order.
func (m *Map) Fields() []Field { return m.fields }

// Len is the number of fields.
func (m *Map) Len() int { return len(m.fields) }

// Block is one read request: Count registers or bits of Table from
// Start, covering the fields m.Fields()[First:Last].
type Block struct {
	Table       Table
	Start       uint16
	Count       int
	First, Last int
}

// Reads plans the read requests of a poll: fields of one table whose
// addresses follow each other (with at most maxGap unused registers or
// bits between them) share a request, as long as it stays within
// maxRegs registers (maxBits bits); 0 means the protocol's limit.
func (m *Map) Reads(maxRegs, maxBits, maxGap int) []Block {
	if maxRegs <= 0 || maxRegs > MaxReadRegisters {
		maxRegs = MaxReadRegisters
	}
	if maxBits <= 0 || maxBits > MaxReadBits {
		maxBits = MaxReadBits
	}
	var out []Block
	for i, f := range m.fields {
		limit := maxRegs
		if f.Table.Bits() {
			limit = maxBits
		}
		if n := len(out); n > 0 {
			b := &out[n-1]
			end := int(b.Start) + b.Count
			if b.Table == f.Table && int(f.Addr)-end <= maxGap && f.End()-int(b.Start) <= limit {
				b.Count, b.Last = f.End()-int(b.Start), i+1
				continue
			}
		}
		out = append(out, Block{Table: f.Table, Start: f.Addr, Count: f.Len, First: i, Last: i + 1})
	}
	return out
}

// Writes plans the write requests for the fields of m at the given
// indexes (ascending, into m.Fields()): contiguous fields of one table
// share a request within the protocol's write limits.
func (m *Map) Writes(idx []int) []Block {
	var out []Block
	for _, i := range idx {
		f := m.fields[i]
		limit := MaxWriteRegisters
		if f.Table.Bits() {
			limit = MaxWriteBits
		}
		if n := len(out); n > 0 {
			b := &out[n-1]
			if b.Table == f.Table && b.Last == i && int(b.Start)+b.Count == int(f.Addr) && f.End()-int(b.Start) <= limit {
				b.Count, b.Last = f.End()-int(b.Start), i+1
				continue
			}
		}
		out = append(out, Block{Table: f.Table, Start: f.Addr, Count: f.Len, First: i, Last: i + 1})
	}
	return out
}

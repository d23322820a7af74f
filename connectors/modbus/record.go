package modbus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aimdb-dev/aimdb-flow/connectors/modbus/regmap"
)

// encoded is a record's fields converted for writing: the indexes of the
// fields present (into m.Fields(), ascending) and, by index, their
// registers or bit.
type encoded struct {
	idx  []int
	regs map[int][]uint16
	bits map[int]bool
}

// encodeRecord converts a JSON object payload into the fields of m. A
// field absent from the object, or null, is not written; a record with
// none of the fields, a payload that is not a JSON object and a value a
// field cannot take are errors (permanent: retrying cannot help).
func encodeRecord(m *regmap.Map, payload []byte) (encoded, error) {
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return encoded{}, fmt.Errorf("want a JSON object of the link's fields (encode json), got %s", preview(payload))
	}
	e := encoded{regs: map[int][]uint16{}, bits: map[int]bool{}}
	var errs []error
	for i, f := range m.Fields() {
		v, ok := obj[f.Name]
		if !ok || v == nil {
			continue
		}
		if f.Table.Bits() {
			b, err := f.Bit(v)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			e.bits[i] = b
		} else {
			r, err := f.Regs(nil, v)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			e.regs[i] = r
		}
		e.idx = append(e.idx, i)
	}
	if err := errors.Join(errs...); err != nil {
		return encoded{}, err
	}
	if len(e.idx) == 0 {
		names := make([]string, 0, m.Len())
		for _, f := range m.Fields() {
			names = append(names, f.Name)
		}
		return encoded{}, fmt.Errorf("the record has none of the link's fields (%s)", strings.Join(names, ", "))
	}
	return e, nil
}

// blockRegs concatenates the registers of block b's fields.
func (e encoded) blockRegs(b regmap.Block) []uint16 {
	out := make([]uint16, 0, b.Count)
	for i := b.First; i < b.Last; i++ {
		out = append(out, e.regs[i]...)
	}
	return out
}

// blockBits concatenates the bits of block b's fields.
func (e encoded) blockBits(b regmap.Block) []bool {
	out := make([]bool, 0, b.Count)
	for i := b.First; i < b.Last; i++ {
		out = append(out, e.bits[i])
	}
	return out
}

func preview(b []byte) string {
	const n = 48
	if len(b) > n {
		return fmt.Sprintf("%q…", b[:n])
	}
	return fmt.Sprintf("%q", b)
}

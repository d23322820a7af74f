// Package dpt encodes and decodes KNX datapoint types (DPTs): the bytes
// of a group value and the typed value with its unit they stand for.
//
// A Type is found by its identifier ("9.001", "1.001", "16.000"). A known
// main type with an unlisted subtype ("9.099") uses the main type's
// format without a unit; Lookup reports an unknown main type ("232.600")
// as not found, and the caller passes its bytes on raw.
//
// Decoded values are bool (1.x), int64 (5.x, 6.x, 7.x, 8.x, 12.x, 13.x,
// 17.x, 20.x without a scale), float64 (9.x, 14.x and scaled subtypes
// such as 5.001 percent), string (16.x) and map[string]any (18.x scene
// control: learn, scene). Encode takes the same shapes, and also the
// shapes JSON decodes to (float64 for every number, the names of enum and
// boolean values).
package dpt

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Type is one datapoint type.
type Type struct {
	// ID is the canonical identifier, main.sub with the sub-number in
	// three digits ("9.001").
	ID string
	// Name describes the type ("temperature").
	Name string
	// Unit is the unit of the decoded value ("°C"), or "".
	Unit string
	// Short types (1.x) travel inside the APCI octet (6 bits at most).
	Short bool
	// Size is the length of the encoded value in bytes (the short ones
	// count 1).
	Size int

	kind  kind
	scale float64  // decoded = raw * scale (0: 1, integer result)
	names []string // enum (20.x) or boolean (1.x: false, true) value names
	lo    float64  // encodable range of the decoded value (for scaled types)
	hi    float64
}

type kind uint8

const (
	kBool kind = iota + 1
	kU8
	kI8
	kU16
	kI16
	kF16
	kU32
	kI32
	kF32
	kString
	kScene
	kSceneControl
	kEnum
)

// ErrMalformed wraps every problem with bytes that do not decode as the
// type.
var ErrMalformed = errors.New("malformed")

// ErrValue wraps every problem with a value the type cannot encode.
var ErrValue = errors.New("does not fit")

// ParseID reads a DPT identifier: "9.001", "9.1", "9" (the main type),
// optionally prefixed "DPT" ("DPT9.001", "DPT-9.001"). It returns the
// main and sub numbers (sub -1 when only the main type is given).
func ParseID(s string) (main, sub int, err error) {
	t := strings.TrimSpace(s)
	if len(t) >= 3 && strings.EqualFold(t[:3], "dpt") {
		t = strings.TrimLeft(t[3:], "-_ ")
	}
	ms, ss, hasSub := strings.Cut(t, ".")
	bad := fmt.Errorf("datapoint type %q: want main.sub, e.g. 9.001 or 1.001", s)
	m, err := strconv.Atoi(ms)
	if err != nil || m < 0 || m > 999 || ms == "" || ms[0] == '+' {
		return 0, 0, bad
	}
	if !hasSub {
		return m, -1, nil
	}
	n, err := strconv.Atoi(ss)
	if err != nil || n < 0 || n > 65535 || ss == "" || ss[0] == '+' || ss[0] == '-' {
		return 0, 0, bad
	}
	return m, n, nil
}

// Lookup returns the type for an identifier. ok is false for a well-formed
// identifier of a main type this package does not know (pass its bytes
// raw); err is set for a malformed identifier.
func Lookup(id string) (t Type, ok bool, err error) {
	m, s, err := ParseID(id)
	if err != nil {
		return Type{}, false, err
	}
	base, ok := mains[m]
	if !ok {
		return Type{}, false, nil
	}
	if s < 0 {
		s = 0
	}
	full := fmt.Sprintf("%d.%03d", m, s)
	if sub, ok := subs[full]; ok {
		t = sub
	} else {
		t = base
	}
	t.ID = full
	t.kind, t.Size, t.Short = base.kind, base.Size, base.Short
	if t.Name == "" {
		t.Name = base.Name
	}
	if t.kind == kBool && t.names == nil {
		t.names = []string{"false", "true"}
	}
	return t, true, nil
}

// IDs lists the identifiers with a name of their own, in table order.
func IDs() []string { return append([]string(nil), order...) }

func (t Type) String() string { return t.ID }

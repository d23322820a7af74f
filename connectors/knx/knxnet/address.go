package knxnet

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// GroupAddress is a 16-bit KNX group address.
type GroupAddress uint16

// IndividualAddress is a 16-bit KNX individual (physical) address,
// area.line.device.
type IndividualAddress uint16

// AddressStyle is how a group address is written.
type AddressStyle uint8

// Group address styles.
const (
	// ThreeLevel is main/middle/sub: 0-31 / 0-7 / 0-255.
	ThreeLevel AddressStyle = iota
	// TwoLevel is main/sub: 0-31 / 0-2047.
	TwoLevel
	// Free is the address as one number, 0-65535.
	Free
)

// levels returns the width in bits of each level of the style, most
// significant first.
func (s AddressStyle) levels() []uint {
	switch s {
	case TwoLevel:
		return []uint{5, 11}
	case Free:
		return []uint{16}
	}
	return []uint{5, 3, 8}
}

// Format writes a in style s ("1/2/3", "1/515", "2563").
func (a GroupAddress) Format(s AddressStyle) string {
	switch s {
	case TwoLevel:
		return fmt.Sprintf("%d/%d", a>>11, a&0x7ff)
	case Free:
		return strconv.Itoa(int(a))
	}
	return fmt.Sprintf("%d/%d/%d", a>>11, (a>>8)&0x7, a&0xff)
}

// String writes a in three-level style.
func (a GroupAddress) String() string { return a.Format(ThreeLevel) }

// ParseGroupAddress reads a group address in any style: three levels
// separated by "/", two levels, or one number. It returns the style it was
// written in.
func ParseGroupAddress(s string) (GroupAddress, AddressStyle, error) {
	p, err := ParsePattern(s)
	if err != nil {
		return 0, 0, err
	}
	if p.Wildcard() {
		return 0, 0, fmt.Errorf("group address %q: wildcard not allowed here", s)
	}
	return GroupAddress(p.value), p.style, nil
}

// Pattern matches group addresses: each level of an address in one of the
// styles is a number or "*" (any value of that level). "*" alone matches
// every group address.
type Pattern struct {
	style AddressStyle
	mask  uint16 // bits that must equal value
	value uint16
	text  string
}

// ParsePattern reads a group address pattern ("1/2/*", "1/*/*", "1/*",
// "*", "1/2/3").
func ParsePattern(s string) (Pattern, error) {
	if s == "" {
		return Pattern{}, errors.New("empty group address (want 1/2/3, 1/515 or 4660)")
	}
	parts := strings.Split(s, "/")
	var style AddressStyle
	switch len(parts) {
	case 1:
		style = Free
	case 2:
		style = TwoLevel
	case 3:
		style = ThreeLevel
	default:
		return Pattern{}, fmt.Errorf("group address %q: want 1 to 3 levels separated by / (1/2/3, 1/515, 4660)", s)
	}
	if s == "*" {
		return Pattern{style: ThreeLevel, text: s}, nil
	}
	widths := style.levels()
	shift := uint(16)
	p := Pattern{style: style, text: s}
	for i, part := range parts {
		w := widths[i]
		shift -= w
		if part == "*" {
			continue
		}
		n, err := strconv.ParseUint(part, 10, 16)
		if err != nil || part == "" || part[0] == '+' {
			return Pattern{}, fmt.Errorf("group address %q: level %d %q is not a number or *", s, i+1, part)
		}
		if max := uint64(1)<<w - 1; n > max {
			return Pattern{}, fmt.Errorf("group address %q: level %d is %d, want 0 to %d", s, i+1, n, max)
		}
		lm := uint16((1<<w - 1) << shift)
		p.mask |= lm
		p.value |= uint16(n) << shift
	}
	return p, nil
}

// Match reports whether a matches the pattern.
func (p Pattern) Match(a GroupAddress) bool { return uint16(a)&p.mask == p.value }

// Wildcard reports whether the pattern has a wildcard level.
func (p Pattern) Wildcard() bool { return p.mask != 0xffff }

// Address returns the address of a pattern without wildcards.
func (p Pattern) Address() GroupAddress { return GroupAddress(p.value) }

// Style returns the style the pattern was written in.
func (p Pattern) Style() AddressStyle { return p.style }

// String returns the pattern as written.
func (p Pattern) String() string { return p.text }

// String writes a as area.line.device.
func (a IndividualAddress) String() string {
	return fmt.Sprintf("%d.%d.%d", a>>12, (a>>8)&0xf, a&0xff)
}

// ParseIndividualAddress reads area.line.device (0-15.0-15.0-255).
func ParseIndividualAddress(s string) (IndividualAddress, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return 0, fmt.Errorf("individual address %q: want area.line.device (1.1.5)", s)
	}
	var a uint16
	for i, max := range []uint64{15, 15, 255} {
		n, err := strconv.ParseUint(parts[i], 10, 8)
		if err != nil || n > max || parts[i][0] == '+' {
			return 0, fmt.Errorf("individual address %q: level %d, want 0 to %d", s, i+1, max)
		}
		a = a<<[]uint{4, 4, 8}[i] | uint16(n)
	}
	return IndividualAddress(a), nil
}

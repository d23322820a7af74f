package kit

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Day is the unit "d" of the duration grammar: 24 hours (no calendar or
// daylight-saving arithmetic).
const Day = 24 * time.Hour

var durationUnits = map[string]time.Duration{
	"ns": time.Nanosecond,
	"us": time.Microsecond,
	"µs": time.Microsecond, // U+00B5 micro sign
	"μs": time.Microsecond, // U+03BC Greek mu
	"ms": time.Millisecond,
	"s":  time.Second,
	"m":  time.Minute,
	"h":  time.Hour,
	"d":  Day,
}

// ParseDuration parses the one duration grammar of every setting and of
// the DSL: a sequence of decimal numbers, each with a unit, e.g. "500ms",
// "2s", "1m30s", "1.5h", "7d", "1d12h". Units are ns, us (µs), ms, s, m, h
// and d (24 hours). An optional leading sign is accepted (getters refuse
// negative values). "0" is the only number allowed without a unit; any
// other bare number is an error that suggests the unit to write ("30" ->
// "write 30s"), because a bare number means seconds to one protocol and
// milliseconds to the next.
func ParseDuration(s string) (time.Duration, error) {
	d, err := parseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w", s, err)
	}
	return d, nil
}

// errNotDuration is the message for text that is not a duration at all.
var errNotDuration = errors.New("want a duration like 500ms, 2s or 1m30s")

// parseDuration is ParseDuration with errors that do not repeat the input
// (the settings reader prints it beside the setting's name).
func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errNotDuration
	}
	neg := false
	if s[0] == '+' || s[0] == '-' {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "0" {
		return 0, nil
	}
	if s == "" {
		return 0, errNotDuration
	}
	if isPlainNumber(s) {
		return 0, fmt.Errorf("a duration needs a unit: write %ss for seconds (or %sms, %sm, ...)", s, s, s)
	}
	var total float64 // nanoseconds; exact for every value below 2^53 ns (~104 days) and close beyond
	var whole int64
	exact := true
	for s != "" {
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		num := s[:i]
		if num == "" || strings.Count(num, ".") > 1 || num == "." {
			return 0, errNotDuration
		}
		s = s[i:]
		j := 0
		for j < len(s) && !(s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
			j++
		}
		unit := s[:j]
		s = s[j:]
		mult, ok := durationUnits[unit]
		if !ok {
			if unit == "" {
				return 0, fmt.Errorf("%s has no unit (units: ns, us, ms, s, m, h, d)", num)
			}
			return 0, fmt.Errorf("unknown unit %q (units: ns, us, ms, s, m, h, d)", unit)
		}
		if !strings.Contains(num, ".") {
			n, err := strconv.ParseInt(num, 10, 64)
			if err != nil || n > math.MaxInt64/int64(mult) || whole > math.MaxInt64-n*int64(mult) {
				return 0, errTooLong
			}
			whole += n * int64(mult)
			continue
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, errNotDuration
		}
		exact = false
		total += f * float64(mult)
	}
	if !exact {
		total += float64(whole)
		if total >= math.MaxInt64 {
			return 0, errTooLong
		}
		whole = int64(math.Round(total))
	}
	if neg {
		whole = -whole
	}
	return time.Duration(whole), nil
}

var errTooLong = errors.New("duration too long (the limit is about 106751d)")

// FormatDuration renders d in the grammar ParseDuration reads: whole
// multiples of a day as days ("7d"), anything else as Go does ("1m30s").
func FormatDuration(d time.Duration) string {
	if d != 0 && d%Day == 0 {
		return strconv.FormatInt(int64(d/Day), 10) + "d"
	}
	return d.String()
}

func isPlainNumber(s string) bool {
	if s == "" {
		return false
	}
	dot := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return s != "."
}

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	"kb": 1000, "mb": 1000_000, "gb": 1000_000_000, "tb": 1000_000_000_000,
}

// ParseSize parses the one byte-size grammar: a whole number of bytes with
// an optional unit, "1048576", "512B", "512KiB", "4MiB", "1GiB" (binary,
// powers of 1024) or "64kB", "1MB", "2GB" (decimal, powers of 1000); units
// are case-insensitive and a space before the unit is allowed ("2 GiB").
// Single letters (k, m, g) are refused as ambiguous, and so are fractions
// ("1.5MiB": write 1536KiB).
func ParseSize(s string) (int64, error) {
	n, err := parseSize(s)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	return n, nil
}

func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	if num == "" {
		return 0, errors.New("want a size like 4MiB, 512KiB, 1MB or a number of bytes")
	}
	if strings.HasPrefix(unit, ".") {
		return 0, errors.New("a size is a whole number of its unit (write 1536KiB, not 1.5MiB)")
	}
	mult, ok := sizeUnits[strings.ToLower(unit)]
	if !ok {
		switch strings.ToLower(unit) {
		case "k", "m", "g", "t":
			u := strings.ToUpper(unit)
			return 0, fmt.Errorf("unit %q is ambiguous: write %siB (powers of 1024) or %sB (powers of 1000)", unit, u, u)
		}
		return 0, fmt.Errorf("unknown unit %q (units: B, KiB, MiB, GiB, TiB, kB, MB, GB, TB)", unit)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, errors.New("size too large")
	}
	return n * mult, nil
}

// FormatSize renders n in the largest binary unit that divides it
// exactly ("4MiB", "1536KiB", "1000").
func FormatSize(n int64) string {
	for _, u := range []struct {
		name string
		mult int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// ParseBool parses the one boolean grammar, case-insensitively: true,
// yes, on, 1 (and t) are true; false, no, off, 0 (and f) are false.
func ParseBool(s string) (bool, error) {
	b, err := parseBool(s)
	if err != nil {
		return false, fmt.Errorf("%q: %w", s, err)
	}
	return b, nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "t", "yes", "on", "1":
		return true, nil
	case "false", "f", "no", "off", "0":
		return false, nil
	}
	return false, errors.New("want true or false")
}

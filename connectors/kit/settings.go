package kit

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Settings reads typed values out of pipeline.Params (the `name value`
// pairs of a connector declaration or a link). Each getter names one
// setting, returns its typed value (or the default when it is absent, or
// when it is malformed) and records any problem; Err then returns every
// problem at once, including each setting that no getter asked for
// (unknown, with a "did you mean" suggestion against the known names).
//
// The typical use reads everything, then checks once:
//
//	s := kit.Read(params)
//	timeout := s.Duration("timeout", 10*time.Second)
//	retries := s.Int("retries", 3, 0, 100)
//	token := s.Secret("token")
//	if err := s.Err(); err != nil {
//		return Config{}, err
//	}
//
// A Settings is not safe for concurrent use; it is meant for one parse.
type Settings struct {
	p        pipeline.Params
	noun     string
	known    []string        // names asked for, in order (for messages)
	used     map[string]bool // written names consumed by a getter
	prefixes []string
	aliases  map[string][]string // canonical name -> other spellings
	secrets  map[string]bool     // written names whose value is secret
	errs     Errors
}

// Read returns a reader over the settings of a connector declaration.
func Read(p pipeline.Params) *Settings {
	return &Settings{p: p, noun: "setting", used: map[string]bool{}}
}

// ReadLink returns a reader over the settings of an inbound or outbound
// link; errors speak of "inbound link setting" and "outbound link setting".
func ReadLink(dir pipeline.Direction, p pipeline.Params) *Settings {
	s := Read(p)
	s.noun = dir.String() + " link setting"
	return s
}

// Alias declares other spellings of a setting (insecure for
// insecure_skip_verify). Call it before the getter of name. Writing two
// spellings of one setting is an error.
func (s *Settings) Alias(name string, aliases ...string) {
	if s.aliases == nil {
		s.aliases = map[string][]string{}
	}
	s.aliases[name] = append(s.aliases[name], aliases...)
}

func (s *Settings) markKnown(name string) {
	if !slices.Contains(s.known, name) {
		s.known = append(s.known, name)
	}
	for _, a := range s.aliases[name] {
		if !slices.Contains(s.known, a) {
			s.known = append(s.known, a)
		}
	}
}

// lookup finds the setting name (or an alias) and marks it known and
// consumed. It returns the name as written.
func (s *Settings) lookup(name string) (written, value string, ok bool) {
	s.markKnown(name)
	for _, n := range append([]string{name}, s.aliases[name]...) {
		v, present := s.p[n]
		if !present {
			continue
		}
		s.used[n] = true
		if ok {
			s.errs = append(s.errs, &Error{Key: n,
				Err: fmt.Errorf("%s and %s are the same setting; give one", written, n)})
			continue
		}
		written, value, ok = n, v, true
	}
	return written, value, ok
}

// Has reports whether the setting (or an alias) is given. It counts as
// asking for it: the setting is then known.
func (s *Settings) Has(name string) bool {
	_, _, ok := s.lookup(name)
	return ok
}

// Errorf records a problem with the setting written as name (its value is
// shown unless it was read as a secret).
func (s *Settings) Errorf(name, format string, args ...any) {
	written := name
	if _, ok := s.p[name]; !ok {
		for _, a := range s.aliases[name] {
			if _, ok := s.p[a]; ok {
				written = a
				break
			}
		}
	}
	s.fail(written, s.p[written], fmt.Errorf(format, args...))
}

// Fail records err, a problem not tied to one setting (or already an
// *Error). It is reported with the rest by Err.
func (s *Settings) Fail(err error) {
	if err != nil {
		s.errs = append(s.errs, err)
	}
}

func (s *Settings) fail(written, value string, err error) {
	if s.secrets[written] {
		value = "" // never kept, never shown
	}
	s.errs = append(s.errs, &Error{Key: written, Value: value, Err: err})
}

// String returns the setting's text, or def when it is absent.
func (s *Settings) String(name, def string) string {
	if _, v, ok := s.lookup(name); ok {
		return v
	}
	return def
}

// Secret returns the setting as a Secret (write it as "${ENV}" in a .flow
// file). Its value never appears in an error or a log.
func (s *Settings) Secret(name string) Secret {
	if s.secrets == nil {
		s.secrets = map[string]bool{}
	}
	s.secrets[name] = true
	for _, a := range s.aliases[name] {
		s.secrets[a] = true
	}
	if _, v, ok := s.lookup(name); ok {
		return NewSecret(v)
	}
	return Secret{}
}

// Duration returns a non-negative duration in the one grammar (see
// ParseDuration: "500ms", "2s", "1m30s", "7d"; a bare number other than 0
// is an error), or def when the setting is absent or malformed.
func (s *Settings) Duration(name string, def time.Duration) time.Duration {
	return s.DurationIn(name, def, 0, math.MaxInt64)
}

// DurationIn is Duration limited to [lo, hi].
func (s *Settings) DurationIn(name string, def, lo, hi time.Duration) time.Duration {
	w, v, ok := s.lookup(name)
	if !ok {
		return def
	}
	d, err := parseDuration(strings.TrimSpace(v))
	if err == nil && (d < lo || d > hi) {
		err = errors.New(rangeText("a duration", d < 0 && lo == 0, FormatDuration(lo), FormatDuration(hi), lo > 0, hi < math.MaxInt64))
	}
	if err != nil {
		s.fail(w, v, err)
		return def
	}
	return d
}

// Size returns a non-negative byte size in the one grammar (see
// ParseSize: "4MiB", "512KiB", "1MB", "1048576"), or def.
func (s *Settings) Size(name string, def int64) int64 {
	return s.SizeIn(name, def, 0, math.MaxInt64)
}

// SizeIn is Size limited to [lo, hi] bytes.
func (s *Settings) SizeIn(name string, def, lo, hi int64) int64 {
	w, v, ok := s.lookup(name)
	if !ok {
		return def
	}
	n, err := parseSize(v)
	if err == nil && (n < lo || n > hi) {
		err = errors.New(rangeText("a size", false, FormatSize(lo), FormatSize(hi), lo > 0, hi < math.MaxInt64))
	}
	if err != nil {
		s.fail(w, v, err)
		return def
	}
	return n
}

// Int returns a whole number in [lo, hi] (use math.MinInt/math.MaxInt
// for an open end), or def.
func (s *Settings) Int(name string, def, lo, hi int) int {
	return int(s.Int64(name, int64(def), int64(lo), int64(hi)))
}

// Int64 is Int for int64.
func (s *Settings) Int64(name string, def, lo, hi int64) int64 {
	w, v, ok := s.lookup(name)
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < lo || n > hi {
		s.fail(w, v, errors.New(rangeText("a whole number", false, strconv.FormatInt(lo, 10), strconv.FormatInt(hi, 10),
			lo != math.MinInt64, hi != math.MaxInt64)))
		return def
	}
	return n
}

// Uint64 returns a whole number in [0, 2^64-1] (seeds, identifiers), or
// def.
func (s *Settings) Uint64(name string, def uint64) uint64 {
	w, v, ok := s.lookup(name)
	if !ok {
		return def
	}
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	if err != nil {
		s.fail(w, v, errors.New("want a whole number of at least 0"))
		return def
	}
	return n
}

// Float returns a finite number in [lo, hi] ("50", "0.5", "1e3"), or def.
func (s *Settings) Float(name string, def, lo, hi float64) float64 {
	w, v, ok := s.lookup(name)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < lo || f > hi {
		s.fail(w, v, errors.New(rangeText("a number", false, strconv.FormatFloat(lo, 'g', -1, 64), strconv.FormatFloat(hi, 'g', -1, 64),
			!math.IsInf(lo, -1) && lo != -math.MaxFloat64, !math.IsInf(hi, 1) && hi != math.MaxFloat64)))
		return def
	}
	return f
}

// Bool returns the setting as a boolean (true/false, yes/no, on/off, 1/0,
// case-insensitive), or def.
func (s *Settings) Bool(name string, def bool) bool {
	w, v, ok := s.lookup(name)
	if !ok {
		return def
	}
	b, err := parseBool(v)
	if err != nil {
		s.fail(w, v, err)
		return def
	}
	return b
}

// Enum returns the one of names the setting matches (case-insensitively,
// returned as spelled in names), or def. A mismatch lists the names and
// suggests the closest.
func (s *Settings) Enum(name, def string, names ...string) string {
	cs := make([]Choice[string], len(names))
	for i, n := range names {
		cs[i] = Choice[string]{Name: n, Value: n}
	}
	return Choose(s, name, def, cs...)
}

// Choice is one value of an enumerated setting: its name (shown in
// errors), other accepted spellings, and the typed value it stands for.
type Choice[T any] struct {
	Name    string
	Aliases []string
	Value   T
}

// Choose returns the Value of the choice the setting names
// (case-insensitively, by Name or an alias), or def.
func Choose[T any](s *Settings, name string, def T, choices ...Choice[T]) T {
	w, v, ok := s.lookup(name)
	if !ok {
		return def
	}
	t := strings.TrimSpace(v)
	var all []string
	for _, c := range choices {
		if strings.EqualFold(t, c.Name) {
			return c.Value
		}
		for _, a := range c.Aliases {
			if strings.EqualFold(t, a) {
				return c.Value
			}
		}
		all = append(all, c.Name)
		all = append(all, c.Aliases...)
	}
	names := make([]string, len(choices))
	for i, c := range choices {
		names[i] = c.Name
	}
	s.fail(w, v, fmt.Errorf("want %s%s", orList(names), pipeline.DidYouMean(strings.ToLower(t), all)))
	return def
}

// List returns the setting split at commas and white space ("a, b c"),
// or def when absent; "none" (or an empty value) is the empty, non-nil
// list.
func (s *Settings) List(name string, def []string) []string {
	_, v, ok := s.lookup(name)
	if !ok {
		return def
	}
	out := []string{}
	for _, x := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if !strings.EqualFold(x, "none") {
			out = append(out, x)
		}
	}
	return out
}

// Pair is one setting taken by a prefix: Name is the part after the
// prefix.
type Pair struct {
	Key, Name, Value string
}

// Prefixed returns every setting whose name starts with prefix, sorted by
// name, and makes them known; shown is how the family appears in the list
// of known settings ("header_<Name>").
func (s *Settings) Prefixed(prefix, shown string) []Pair {
	s.markKnown(shown)
	s.prefixes = append(s.prefixes, prefix)
	var out []Pair
	for k, v := range s.p {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			s.used[k] = true
			out = append(out, Pair{Key: k, Name: rest, Value: v})
		}
	}
	slices.SortFunc(out, func(a, b Pair) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// Known returns the names asked for so far, in order.
func (s *Settings) Known() []string { return slices.Clone(s.known) }

// Err returns every problem recorded so far plus one for each setting no
// getter asked for, as Errors (each an *Error naming its setting), or nil.
func (s *Settings) Err() error {
	errs := slices.Clone(s.errs)
	var unknown []string
	for k := range s.p {
		if !s.used[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		var hint string
		switch sug := pipeline.DidYouMean(k, s.known); {
		case len(s.known) == 0:
			hint = " (none are accepted here)"
		case sug != "":
			hint = sug
		default:
			hint = " (known: " + strings.Join(s.known, ", ") + ")"
		}
		errs = append(errs, &Error{Key: k, Err: fmt.Errorf("unknown %s%s", s.noun, hint)})
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// rangeText describes the accepted range of a value.
func rangeText(what string, negative bool, lo, hi string, hasLo, hasHi bool) string {
	switch {
	case negative:
		return "must not be negative"
	case hasLo && hasHi:
		return fmt.Sprintf("want %s from %s to %s", what, lo, hi)
	case hasLo:
		return fmt.Sprintf("want %s of at least %s", what, lo)
	case hasHi:
		return fmt.Sprintf("want %s of at most %s", what, hi)
	}
	return "want " + what
}

// orList renders "a", "a or b", "a, b or c".
func orList(names []string) string {
	switch len(names) {
	case 0:
		return "nothing"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

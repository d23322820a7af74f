package kit

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Error is one problem with one setting. It names the setting (Setting,
// for pipeline.SettingError), so that a front end that knows where the
// setting was written (the DSL) reports the problem there.
type Error struct {
	// Key is the setting's name as written ("keepalive", "header_X_Key").
	Key string
	// Value is the value as written, shown in the message; empty for
	// secrets (never kept, never shown) and for problems that are not
	// about the value (an unknown setting).
	Value string
	// Err is the problem.
	Err error
}

// maxShown bounds how much of a value an error message repeats.
const maxShown = 64

// Error renders `key "value": problem` (or `key: problem` for secrets and
// problems not about the value).
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Key)
	if e.Value != "" {
		v := e.Value
		if len(v) > maxShown {
			cut := maxShown
			for cut > 0 && !utf8.RuneStart(v[cut]) {
				cut--
			}
			v = v[:cut] + "…"
		}
		b.WriteByte(' ')
		b.WriteString(strconv.Quote(v))
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// Setting implements pipeline.SettingError.
func (e *Error) Setting() string { return e.Key }

// Unwrap returns the problem.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found by one Settings reader, one per line.
// Unwrap exposes each *Error (and any other error added with Fail) to
// errors.Is/As and to front ends that report each at its own position.
type Errors []error

func (l Errors) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the individual problems.
func (l Errors) Unwrap() []error { return l }

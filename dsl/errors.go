package dsl

import (
	"fmt"
	"sort"
	"strings"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Error is one problem in a .flow file.
type Error struct {
	Pos pipeline.Pos
	Msg string
}

func (e *Error) Error() string {
	if e.Pos.IsValid() {
		return e.Pos.String() + ": " + e.Msg
	}
	return e.Msg
}

// ErrorList collects every problem found while loading files. It is an
// error when not empty.
type ErrorList struct {
	Errors []*Error
	// sources maps file names to their text, for Pretty.
	sources map[string]string
}

// Add records a problem.
func (l *ErrorList) Add(p pipeline.Pos, format string, args ...any) {
	l.Errors = append(l.Errors, &Error{Pos: p, Msg: fmt.Sprintf(format, args...)})
}

// Len returns the number of problems.
func (l *ErrorList) Len() int {
	if l == nil {
		return 0
	}
	return len(l.Errors)
}

// Err returns l sorted by position when it holds problems, else nil.
func (l *ErrorList) Err() error {
	if l.Len() == 0 {
		return nil
	}
	l.sort()
	return l
}

func (l *ErrorList) sort() {
	sort.SliceStable(l.Errors, func(i, j int) bool {
		a, b := l.Errors[i].Pos, l.Errors[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	// Drop exact duplicates (the same problem reported by two passes).
	out := l.Errors[:0]
	for i, e := range l.Errors {
		if i > 0 && e.Pos == l.Errors[i-1].Pos && e.Msg == l.Errors[i-1].Msg {
			continue
		}
		out = append(out, e)
	}
	l.Errors = out
}

func (l *ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l.Errors {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap exposes the individual errors to errors.Is/As.
func (l *ErrorList) Unwrap() []error {
	out := make([]error, len(l.Errors))
	for i, e := range l.Errors {
		out[i] = e
	}
	return out
}

func (l *ErrorList) addSource(name string, src []byte) {
	if l.sources == nil {
		l.sources = map[string]string{}
	}
	l.sources[name] = string(src)
}

// Pretty renders every problem as "file:line:col: message" followed by the
// source line and a caret under the column.
func (l *ErrorList) Pretty() string {
	var b strings.Builder
	for _, e := range l.Errors {
		b.WriteString(e.Error())
		b.WriteByte('\n')
		if src, ok := l.sources[e.Pos.File]; ok && e.Pos.IsValid() {
			b.WriteString(caret(src, e.Pos.Line, e.Pos.Col))
		}
	}
	return b.String()
}

// caret returns the line'th line of src and a caret under column col
// (1-based, in characters); tabs in the prefix are kept so the caret
// lines up.
func caret(src string, line, col int) string {
	lines := strings.Split(src, "\n")
	if line < 1 || line > len(lines) {
		return ""
	}
	text := strings.TrimRight(lines[line-1], "\r")
	var pad strings.Builder
	i := 1
	for _, r := range text {
		if i >= col {
			break
		}
		if r == '\t' {
			pad.WriteByte('\t')
		} else {
			pad.WriteByte(' ')
		}
		i++
	}
	return "    " + text + "\n    " + pad.String() + "^\n"
}

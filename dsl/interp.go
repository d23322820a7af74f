package dsl

import (
	"fmt"
	"strings"
)

// expandEnv replaces ${NAME} and ${NAME:-default} in s using lookup.
// "$${" stands for a literal "${". It returns the byte offset in s of the
// first problem along with the error.
func expandEnv(s string, lookup func(string) (string, bool)) (string, int, error) {
	out, _, off, err := expandEnvMapped(s, lookup)
	return out, off, err
}

// expandEnvMapped is expandEnv that also returns, for every byte of the
// result (and one past its end), the offset in s it came from, so errors
// found in the result can be reported at their place in s.
func expandEnvMapped(s string, lookup func(string) (string, bool)) (string, []int, int, error) {
	var b strings.Builder
	var offs []int
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$${") {
			b.WriteString("${")
			offs = append(offs, i+1, i+2)
			i += 3
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			b.WriteByte(s[i])
			offs = append(offs, i)
			i++
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", nil, i, fmt.Errorf("unterminated ${ (write ${NAME} or ${NAME:-default})")
		}
		body := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(body, ":-")
		if !validEnvName(name) {
			return "", nil, i, fmt.Errorf("invalid environment variable name %q in ${%s}", name, body)
		}
		v, ok := lookup(name)
		switch {
		case ok && v != "":
		case hasDef:
			v = def
		case ok:
		default:
			return "", nil, i, fmt.Errorf("environment variable %s is not set (write ${%s:-default} to give a default)", name, name)
		}
		b.WriteString(v)
		for range len(v) {
			offs = append(offs, i)
		}
		i += end + 1
	}
	offs = append(offs, len(s))
	return b.String(), offs, 0, nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// Expand replaces ${NAME} and ${NAME:-default} in s the way the DSL does
// for strings and expressions ("$${" stands for a literal "${"), looking
// names up with lookup. Tools that read a parsed File themselves (the
// device build, dsl/devgen) use it to see the values Load sees.
func Expand(s string, lookup func(string) (string, bool)) (string, error) {
	out, _, err := expandEnv(s, lookup)
	return out, err
}

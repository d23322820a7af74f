package kit

import (
	"fmt"
	"log/slog"
)

// Redacted is what a Secret prints instead of its value.
const Redacted = "[redacted]"

// Secret holds a credential (a password, token, API key) read from a
// setting, normally written as "${ENV}" in a .flow file. It never shows
// its value: String, GoString, every fmt verb, slog and text/JSON
// marshalling print Redacted (or "" when it is empty). Value returns the
// credential for the one place that sends it.
//
// The value sits behind a pointer so that even reflection-based printing
// of a struct holding a Secret in an unexported field (fmt's %+v) shows an
// address, not the credential.
type Secret struct{ v *string }

// NewSecret wraps a credential (for the Go API; settings are read with
// Settings.Secret).
func NewSecret(v string) Secret {
	if v == "" {
		return Secret{}
	}
	return Secret{v: &v}
}

// Value returns the credential.
func (s Secret) Value() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// IsSet reports whether the secret holds a non-empty value.
func (s Secret) IsSet() bool { return s.v != nil && *s.v != "" }

// Equal reports whether both hold the same value (not in constant time:
// use crypto/subtle to check credentials presented by a peer).
func (s Secret) Equal(o Secret) bool { return s.Value() == o.Value() }

// String returns Redacted, or "" when the secret is empty.
func (s Secret) String() string {
	if !s.IsSet() {
		return ""
	}
	return Redacted
}

// GoString implements fmt.GoStringer (%#v).
func (s Secret) GoString() string { return "kit.Secret(" + fmt.Sprintf("%q", s.String()) + ")" }

// Format implements fmt.Formatter: every verb prints String.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	if verb == 'q' {
		_, _ = fmt.Fprintf(f, "%q", s.String())
		return
	}
	_, _ = f.Write([]byte(s.String()))
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler (JSON, YAML, ...).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

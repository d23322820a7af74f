package pipeline

import (
	"fmt"
	"strconv"
	"strings"
)

// Template is a destination computed per record: "alerts/{device}" takes
// the device field of the record's value. Placeholders name a field of a
// map value (dotted for nested maps: {meta.site}) or one of the envelope's
// own fields {topic}, {key}, {partition}. A template without placeholders
// costs nothing per record.
type Template struct {
	raw    string
	static bool
	parts  []tmplPart
}

type tmplPart struct {
	lit   string
	field []string // nil for a literal part
}

// ParseTemplate compiles a destination template.
func ParseTemplate(s string) (*Template, error) {
	t := &Template{raw: s}
	rest := s
	for rest != "" {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			t.parts = append(t.parts, tmplPart{lit: rest})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, tmplPart{lit: rest[:i]})
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("template %q: unclosed '{'", s)
		}
		name := strings.TrimSpace(rest[i+1 : i+j])
		if name == "" {
			return nil, fmt.Errorf("template %q: empty placeholder", s)
		}
		t.parts = append(t.parts, tmplPart{field: strings.Split(name, ".")})
		rest = rest[i+j+1:]
	}
	t.static = true
	for _, p := range t.parts {
		if p.field != nil {
			t.static = false
		}
	}
	return t, nil
}

// MustTemplate is ParseTemplate that panics, for literals in Go code.
func MustTemplate(s string) *Template {
	t, err := ParseTemplate(s)
	if err != nil {
		panic(err)
	}
	return t
}

// String returns the template text.
func (t *Template) String() string { return t.raw }

// Static reports whether the template has no placeholders.
func (t *Template) Static() bool { return t.static }

// Render computes the destination for env.
func (t *Template) Render(env *Envelope) (string, error) {
	if t.static {
		return t.raw, nil
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.field == nil {
			b.WriteString(p.lit)
			continue
		}
		s, err := lookupField(env, p.field)
		if err != nil {
			return "", fmt.Errorf("destination %q: %w", t.raw, err)
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

func lookupField(env *Envelope, path []string) (string, error) {
	if len(path) == 1 {
		// A value that is not a map (nil, raw bytes, an array) has no
		// fields: the envelope's own fields apply.
		switch path[0] {
		case "topic", "key", "partition":
			if _, has := field(env.Value, path[0]); !has {
				switch path[0] {
				case "topic":
					return env.Topic, nil
				case "key":
					return string(env.Key), nil
				default:
					return strconv.Itoa(int(env.Partition)), nil
				}
			}
		}
	}
	cur := env.Value
	for _, f := range path {
		var ok bool
		switch cur.(type) {
		case map[string]any, Fields:
		default:
			return "", fmt.Errorf("field %q: value is not an object", strings.Join(path, "."))
		}
		if cur, ok = field(cur, f); !ok {
			return "", fmt.Errorf("field %q missing", strings.Join(path, "."))
		}
	}
	return FormatScalar(cur)
}

// field reads one field of an object value (a map or Fields).
func field(v any, name string) (any, bool) {
	switch x := v.(type) {
	case map[string]any:
		f, ok := x[name]
		return f, ok
	case Fields:
		return x.Field(name)
	}
	return nil, false
}

// FormatScalar renders a scalar value as it appears in a topic or key.
func FormatScalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32), nil
	case nil:
		return "", fmt.Errorf("value is null")
	}
	return fmt.Sprint(v), nil
}

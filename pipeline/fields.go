package pipeline

// Fields is implemented by record values that can be read one top-level
// field at a time without being decoded whole: the lazily decoded JSON
// object (codec.Object) that the DSL's json codec produces. Templates,
// expressions and keys read fields through it; Go code that wants a map
// calls Map, or Plain.
type Fields interface {
	// Field returns the value of the top-level field name (float64,
	// string, bool, nil, map[string]any or []any) and whether it is set.
	Field(name string) (any, bool)
	// Map returns the whole value as a fresh map[string]any.
	Map() map[string]any
}

// Plain returns v as the plain Go value it stands for: a Fields value as
// its map[string]any, anything else unchanged. Use it where a value leaves
// the pipeline for Go code that type-switches on maps (Go callbacks,
// go-streams flows, batches and windows).
func Plain(v any) any {
	if f, ok := v.(Fields); ok {
		return f.Map()
	}
	return v
}

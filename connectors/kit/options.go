package kit

// LinkOptions returns a link's typed options as T: opts itself when it is
// a T, what it points to when it is a non-nil *T, and def otherwise (no
// options: nil, as the runner passes for a link without settings). Go users
// may give options by value or by pointer (pipeline.Options(v)); the
// connector reads them with one call.
func LinkOptions[T any](opts any, def T) T {
	switch o := opts.(type) {
	case T:
		return o
	case *T:
		if o != nil {
			return *o
		}
	}
	return def
}

//go:build tinygo

package codec

// valueSlab boxes decoded scalars the portable way under TinyGo, whose
// interface layout differs from gc's (see box.go).
type valueSlab struct{}

func (*valueSlab) boxFloat(f float64) any { return f }

func (*valueSlab) boxString(b []byte) any { return string(b) }

func boxFloatAt(p *float64) any { return *p }

func boxInt64At(p *int64) any { return *p }

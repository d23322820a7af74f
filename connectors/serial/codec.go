package serial

import (
	"fmt"
	"sort"

	"github.com/aimdb-dev/aimdb-flow/device/binflat"
	"github.com/aimdb-dev/aimdb-flow/device/value"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// BinFlat is the host codec for device/binflat records (the device
// subset's compact binary format): it decodes to map[string]any (int, float64,
// string, bool, nil values) and encodes such maps, so host pipelines read
// what devices write with binflat.Codec{} and can send records back.
type BinFlat struct{}

// Name implements pipeline.Codec.
func (BinFlat) Name() string { return "binflat" }

// Decode implements pipeline.Decoder.
func (BinFlat) Decode(p []byte) (any, error) {
	o := value.NewObject(len(p)/3+1, len(p)) // names and strings never exceed the payload
	if err := binflat.Decode(p, o); err != nil {
		return nil, err
	}
	m := make(map[string]any, o.Len())
	for i := 0; i < o.Len(); i++ {
		f := o.Field(i)
		var v any
		switch f.Val.K {
		case value.Bool:
			v = f.Val.B
		case value.Int:
			v = int(f.Val.I)
		case value.Float:
			v = f.Val.F
		case value.String:
			v = string(f.Val.S)
		}
		m[string(f.Name)] = v
	}
	return m, nil
}

// Encode implements pipeline.Encoder for map[string]any with scalar values
// (keys in sorted order).
func (BinFlat) Encode(v any) ([]byte, error) {
	m, ok := pipeline.Plain(v).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("binflat: cannot encode %T (want map[string]any)", v)
	}
	keys := make([]string, 0, len(m))
	size := 0
	for k, x := range m {
		keys = append(keys, k)
		size += len(k)
		if s, ok := x.(string); ok {
			size += len(s)
		}
	}
	sort.Strings(keys)
	o := value.NewObject(len(keys), size)
	for _, k := range keys {
		var val value.Value
		switch x := m[k].(type) {
		case nil:
		case bool:
			val = value.BoolOf(x)
		case int:
			val = value.IntOf(int64(x))
		case int64:
			val = value.IntOf(x)
		case float64:
			val = value.FloatOf(x)
		case string:
			val = value.StringOf(x)
		default:
			return nil, fmt.Errorf("binflat: field %q: unsupported value type %T (flat records hold scalars)", k, x)
		}
		if err := o.Set(k, val); err != nil {
			return nil, fmt.Errorf("binflat: %w", err)
		}
	}
	return binflat.Append(nil, o), nil
}

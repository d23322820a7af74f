//go:build !tinygo

package jsonflat_test

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/device/jsonflat"
	"github.com/aimdb-dev/aimdb-flow/device/value"
)

// FuzzDecode checks jsonflat against encoding/json: whatever jsonflat
// accepts, encoding/json accepts with the same values, and re-encoding
// gives JSON that encoding/json reads back to the same map.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"b":"x\u00e9","c":true,"d":null,"e":-1.5e-3}`, `{"a":{"b":1}}`,
		`{"s":"\ud83d\ude00 \ud800"}`, `{"n":123456789012345678901}`, `{"a":1,"a":"dup"}`, `{"x":"\t\"\\"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o := value.NewObject(64, 4096)
		err := jsonflat.Decode(data, o)
		if err != nil {
			return
		}
		var want map[string]any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("jsonflat accepted %q, encoding/json: %v", data, err)
		}
		check := func(label string) {
			if len(want) != o.Len() {
				t.Fatalf("%s %q: %d fields, encoding/json %d", label, data, o.Len(), len(want))
			}
			for k, wv := range want {
				gv, ok := o.Lookup(k)
				if !ok {
					t.Fatalf("%s %q: missing %q", label, data, k)
				}
				switch w := wv.(type) {
				case nil:
					ok = gv.K == value.Nil
				case bool:
					ok = gv.K == value.Bool && gv.B == w
				case string:
					ok = gv.K == value.String && string(gv.S) == w
				case json.Number:
					wf, _ := w.Float64()
					gf, _ := gv.Num()
					ok = gv.IsNumber() && (gf == wf || math.IsInf(wf, 0))
					if wi, err := w.Int64(); err == nil {
						ok = gv.K == value.Int && gv.I == wi
					}
				}
				if !ok {
					t.Fatalf("%s %q: field %q = %s, encoding/json %v", label, data, k, value.Format(gv), wv)
				}
			}
		}
		check("decode")
		out, err := jsonflat.Append(nil, o)
		if err != nil {
			return // an overflowing float decodes to Inf, which cannot be re-encoded
		}
		if err := jsonflat.Decode(out, o); err != nil {
			t.Fatalf("re-decode %q: %v", out, err)
		}
		check("round trip")
	})
}

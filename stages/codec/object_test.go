package codec

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// lazyPlain decodes doc lazily and returns the plain value it stands for.
func lazyPlain(t *testing.T, doc []byte) (any, error) {
	t.Helper()
	v, err := LazyJSON{}.Decode(doc)
	if o, ok := v.(*Object); ok {
		return o.Map(), err
	}
	return v, err
}

// checkLazyAgainstEager decodes doc both ways: the same documents are
// rejected with the same message, and accepted ones give equal values,
// through Map, Field and Range alike.
func checkLazyAgainstEager(t *testing.T, doc []byte) {
	t.Helper()
	want, werr := JSON{Ints: true}.Decode(doc)
	v, gerr := LazyJSON{}.Decode(doc)
	if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
		t.Fatalf("doc %q: eager err=%v, lazy err=%v", doc, werr, gerr)
	}
	if werr != nil {
		return
	}
	o, ok := v.(*Object)
	if !ok {
		if !sameValue(want, v) {
			t.Fatalf("doc %q: eager %#v, lazy %#v", doc, want, v)
		}
		return
	}
	wm := want.(map[string]any)
	if got := o.Map(); !sameValue(wm, got) {
		t.Fatalf("doc %q Map:\n eager %#v\n lazy  %#v", doc, wm, got)
	}
	if o.Len() != len(wm) {
		t.Fatalf("doc %q: Len %d, want %d", doc, o.Len(), len(wm))
	}
	for k, wv := range wm {
		gv, ok := o.Field(k)
		if !ok || !sameValue(wv, gv) {
			t.Fatalf("doc %q Field(%q) = %#v, %v; want %#v", doc, k, gv, ok, wv)
		}
	}
	seen := map[string]bool{}
	o.Range(func(k string, gv any) bool {
		if seen[k] {
			t.Fatalf("doc %q: Range visits %q twice", doc, k)
		}
		seen[k] = true
		if !sameValue(wm[k], gv) {
			t.Fatalf("doc %q Range %q = %#v, want %#v", doc, k, gv, wm[k])
		}
		return true
	})
	// Encoding an unchanged object gives back its bytes, or (invalid
	// UTF-8) an encoding that is valid and decodes to the same value.
	enc, err := LazyJSON{}.Encode(o)
	if err != nil {
		t.Fatalf("doc %q: encode: %v", doc, err)
	}
	if !utf8.Valid(enc) && utf8.Valid(doc) {
		t.Fatalf("doc %q: encoding %q is not valid UTF-8", doc, enc)
	}
	if o.idx.badUTF8 {
		if !utf8.Valid(enc) {
			t.Fatalf("doc %q: invalid UTF-8 forwarded: %q", doc, enc)
		}
	} else if !bytes.Equal(enc, bytes.TrimSpace(doc)) {
		t.Fatalf("doc %q: unchanged object encoded as %q", doc, enc)
	}
	back, err := JSON{Ints: true}.Decode(enc)
	if err != nil || !sameNumbers(wm, back) {
		t.Fatalf("doc %q: re-encoded %q decodes to %#v, %v", doc, enc, back, err)
	}
}

func TestLazyDecodeDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var b bytes.Buffer
	for i := 0; i < 4000; i++ {
		b.Reset()
		g := &jsonGen{r: r, b: &b}
		// Mostly objects: that is the lazy path.
		if r.IntN(5) > 0 {
			g.ws()
			b.WriteByte('{')
			n := r.IntN(7)
			for j := 0; j < n; j++ {
				if j > 0 {
					b.WriteByte(',')
				}
				g.ws()
				if r.IntN(4) == 0 {
					g.str()
				} else {
					b.WriteString([]string{`"temp"`, `"device"`, `"seq"`, `"a\u0062"`, `"temp"`}[r.IntN(5)])
				}
				g.ws()
				b.WriteByte(':')
				g.value(1)
			}
			g.ws()
			b.WriteByte('}')
			g.ws()
		} else {
			g.value(0)
		}
		doc := append([]byte(nil), b.Bytes()...)
		checkLazyAgainstEager(t, doc)
		// Damaged documents: truncations and byte flips must be
		// rejected (or accepted) exactly as the eager decoder does.
		if len(doc) > 0 {
			checkLazyAgainstEager(t, doc[:r.IntN(len(doc))])
			m := append([]byte(nil), doc...)
			m[r.IntN(len(m))] = "{}[]\":,x0-\\ "[r.IntN(12)]
			checkLazyAgainstEager(t, m)
		}
	}
}

func TestLazyDecodeCases(t *testing.T) {
	for _, doc := range []string{
		`{}`, ` { } `, `{"a":1}`, `{"a":1,"a":2}`, `{"a":{"b":[1,2,{"c":null}]},"d":"x"}`,
		`{"a":"\u00e9\n"}`, `{"\u0061":true}`, "{\"a\":\"\xff\"}", `{"a":1,}`, `{"a"}`, `{"a":}`,
		`{"a":01}`, `{"a":1e999}`, `{"a":[1,]}`, `{"a":tru}`, `{"a":1} x`, `{`, `{"a":"`, `[{"a":1}]`,
	} {
		t.Run(doc, func(t *testing.T) { checkLazyAgainstEager(t, []byte(doc)) })
	}
}

func TestObjectWith(t *testing.T) {
	tests := []struct {
		doc  string
		set  []KeyValue
		want string
	}{
		{`{"device":"d-1", "temp":30.50}`, []KeyValue{{"alert", true}}, `{"device":"d-1","temp":30.50,"alert":true}`},
		{`{"device":"d-1","temp":30}`, []KeyValue{{"temp", 31.5}}, `{"device":"d-1","temp":31.5}`},
		{`{"n":7}`, []KeyValue{{"m", int64(-9)}}, `{"n":7,"m":-9}`},
		{`{"a":1,"b":2,"a":3.0}`, []KeyValue{{"c", true}}, `{"b":2,"a":3.0,"c":true}`},
		{`{"t":1,"a":2,"t":3}`, []KeyValue{{"t", "x"}}, `{"t":"x","a":2}`},
		{`{"a":1}`, []KeyValue{{"b", 1.0}, {"b", 2.0}}, `{"a":1,"b":2}`},
		{`{"a":1}`, []KeyValue{{"m", map[string]any{"z": 1.0, "y": []any{"<"}}}}, `{"a":1,"m":{"y":["\u003c"],"z":1}}`},
		{`{"\u0061":1}`, []KeyValue{{"b", nil}}, `{"\u0061":1,"b":null}`},
		{"{\"s\":\"\xff\"}", []KeyValue{{"b", true}}, "{\"b\":true,\"s\":\"\ufffd\"}"},
	}
	for _, tc := range tests {
		t.Run(tc.doc, func(t *testing.T) {
			v, err := LazyJSON{}.Decode([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			o := v.(*Object)
			before := o.Map()
			o2 := o.With(tc.set...)
			got, err := LazyJSON{}.Encode(o2)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("encoded %s, want %s", got, tc.want)
			}
			// The original is untouched (readers share it).
			if !reflect.DeepEqual(o.Map(), before) || o.Changed() {
				t.Fatalf("With changed the original: %v", o.Map())
			}
			// Reading the new object agrees with its encoding.
			var fromJSON map[string]any
			if err := json.Unmarshal(got, &fromJSON); err != nil {
				t.Fatal(err)
			}
			norm, _ := json.Marshal(o2.Map())
			var m2 map[string]any
			_ = json.Unmarshal(norm, &m2)
			if !reflect.DeepEqual(fromJSON, m2) {
				t.Fatalf("Map %v, encoding %v", m2, fromJSON)
			}
			for _, kv := range tc.set {
				if fv, ok := o2.Field(kv.Key); !ok || !reflect.DeepEqual(fv, tc.set[lastIndex(tc.set, kv.Key)].Value) {
					t.Fatalf("Field(%q) = %v, %v", kv.Key, fv, ok)
				}
			}
		})
	}
}

func lastIndex(kv []KeyValue, k string) int {
	for i := len(kv) - 1; i >= 0; i-- {
		if kv[i].Key == k {
			return i
		}
	}
	return -1
}

// Appending to the bytes an unchanged object encodes to must not write
// into the payload it aliases (readers share the payload).
func TestLazyEncodeDoesNotShareCapacity(t *testing.T) {
	p := []byte(`{"a":1}` + "\nNEXT")
	v, err := LazyJSON{}.Decode(p[:7])
	if err != nil {
		t.Fatal(err)
	}
	out, _ := LazyJSON{}.Encode(v)
	_ = append(out, '\n')
	if string(p) != "{\"a\":1}\nNEXT" {
		t.Fatalf("payload changed: %q", p)
	}
}

func BenchmarkLazyDecodeField(b *testing.B) {
	doc := []byte(`{"device":"d-17","temp":27.25,"seq":123456}`)
	b.ReportAllocs()
	for b.Loop() {
		v, _ := LazyJSON{}.Decode(doc)
		if f, _ := v.(*Object).Field("temp"); f.(float64) < 0 {
			b.Fatal()
		}
	}
}

// The number model: integer literals are int64, other numbers float64,
// and the eager decoder in Ints mode agrees at every depth.
func TestLazyNumberModel(t *testing.T) {
	doc := []byte(`{"i":7,"n":-12,"z":-0,"f":7.0,"e":1e3,"x":23.5,"big":12345678901234567890,"max":9223372036854775807,"min":-9223372036854775808,"over":9223372036854775808,"nested":{"i":3,"f":3.5},"list":[1,2.0]}`)
	v, err := LazyJSON{}.Decode(doc)
	if err != nil {
		t.Fatal(err)
	}
	o := v.(*Object)
	want := map[string]any{
		"i": int64(7), "n": int64(-12), "z": int64(0), "f": 7.0, "e": 1000.0, "x": 23.5,
		"big": 12345678901234567890.0, "max": int64(9223372036854775807), "min": int64(-9223372036854775808),
		"over": 9223372036854775808.0, "nested": map[string]any{"i": int64(3), "f": 3.5}, "list": []any{int64(1), 2.0},
	}
	for k, w := range want {
		got, ok := o.Field(k)
		if !ok || !reflect.DeepEqual(got, w) {
			t.Fatalf("Field(%q) = %#v (%T), want %#v (%T)", k, got, got, w, w)
		}
	}
	if m, _ := (JSON{Ints: true}).Decode(doc); !reflect.DeepEqual(m, want) {
		t.Fatalf("JSON{Ints: true} = %#v", m)
	}
	if m, _ := (JSON{}).Decode(doc); m.(map[string]any)["i"] != 7.0 {
		t.Fatalf("JSON{} must keep float64 (encoding/json): %#v", m.(map[string]any)["i"])
	}
}

// sameNumbers is sameValue where an int64 and a float64 of equal value
// match: a re-encoded float that holds an integer is written as an integer
// literal and reads back as int64 (the number model keeps the literal).
func sameNumbers(a, b any) bool {
	switch x := a.(type) {
	case float64:
		if y, ok := b.(int64); ok {
			return float64(y) == x
		}
	case int64:
		if y, ok := b.(float64); ok {
			return float64(x) == y
		}
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k := range x {
			if !sameNumbers(x[k], y[k]) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameNumbers(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return sameValue(a, b)
}

// A key longer than a field keeps by position (over 65535 bytes quoted)
// is still found and written back, with and without an overlay.
func TestObjectLongKey(t *testing.T) {
	long := strings.Repeat("k", maxKeyLen+10)
	doc := `{"a":1,"` + long + `":2,"z":"x"}`
	v, err := LazyJSON{}.Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	o := v.(*Object)
	if got, ok := o.Field(long); !ok || got != int64(2) {
		t.Fatalf("Field(long) = %v %v", got, ok)
	}
	for _, tc := range []struct {
		o    *Object
		want string
	}{
		{o.With(KeyValue{"b", true}), `{"a":1,"` + long + `":2,"z":"x","b":true}`},
		{o.With(KeyValue{long, 3.5}), `{"a":1,"` + long + `":3.5,"z":"x"}`},
	} {
		got, err := LazyJSON{}.Encode(tc.o)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Fatalf("encoded %.60s…, want %.60s…", got, tc.want)
		}
	}
}

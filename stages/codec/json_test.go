package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sameValue compares decoded values strictly: float64 by bits (so -0 and 0
// differ), maps and slices element-wise, and distinguishes nil from empty.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	case int64:
		y, ok := b.(int64)
		return ok && x == y
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y) && (x == nil) == (y == nil)
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) || (x == nil) != (y == nil) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) || (x == nil) != (y == nil) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !sameValue(v, w) {
				return false
			}
		}
		return true
	}
	return false
}

func stdDecode(p []byte) (any, error) {
	var v any
	err := json.Unmarshal(p, &v)
	return v, err
}

// genText writes a random, valid JSON document to b, varying whitespace,
// escape styles and number spellings.
type jsonGen struct {
	r *rand.Rand
	b *bytes.Buffer
}

func (g *jsonGen) ws() {
	if g.r.IntN(4) == 0 {
		g.b.WriteString([]string{" ", "\n", "\t", "\r\n  ", ""}[g.r.IntN(5)])
	}
}

var stringPieces = []string{
	"a", "device", "temp", "Z", " ", "é", "日本", "😀", "\\n", "\\t", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\r",
	"\\u0041", "\\u00e9", "\\ud83d\\ude00", "\\ud83d", "\\ude00", "\\ud83dx", "\\ud83d\\u0041", "\\uDBFF\\uDFFF",
	"\\u0000", "\\u2028", "<", ">", "&", "\x80", "\xff", "\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\u2029", "\x7f",
}

func (g *jsonGen) str() {
	g.b.WriteByte('"')
	n := g.r.IntN(6)
	for i := 0; i < n; i++ {
		g.b.WriteString(stringPieces[g.r.IntN(len(stringPieces))])
	}
	g.b.WriteByte('"')
}

var numberPieces = []string{
	"0", "-0", "1", "-1", "23.5", "1700000000123", "0.1", "1e10", "1E-7", "-2.5e+3", "123456789012345678901234567890",
	"9007199254740993", "9007199254740992", "0.000001", "1e-400", "4.9e-324", "1.7976931348623157e308", "1e22", "1e23",
	"0.30000000000000004", "12345678901234567890", "1.00000000000000011102230246251565404236316680908203125",
	"2.2250738585072011e-308", "-0.0", "100", "3.14159", "0.0000000000000000000000001", "99999999999999999999e-5",
}

func (g *jsonGen) num() {
	if g.r.IntN(3) == 0 {
		g.b.WriteString(numberPieces[g.r.IntN(len(numberPieces))])
		return
	}
	switch g.r.IntN(4) {
	case 0:
		g.b.WriteString(strconv.FormatInt(g.r.Int64N(1<<62)-1<<61, 10))
	case 1:
		g.b.WriteString(strconv.FormatFloat(g.r.NormFloat64()*math.Pow(10, float64(g.r.IntN(40)-20)), 'g', -1, 64))
	case 2:
		g.b.WriteString(strconv.FormatFloat(g.r.Float64()*40, 'f', g.r.IntN(6), 64))
	default:
		g.b.WriteString(strconv.FormatFloat(math.Float64frombits(g.r.Uint64()&^(0x7ff<<52)|uint64(g.r.IntN(0x7fe))<<52), 'e', -1, 64))
	}
}

func (g *jsonGen) value(depth int) {
	g.ws()
	k := g.r.IntN(8)
	if depth > 4 && k >= 6 {
		k = g.r.IntN(6)
	}
	switch k {
	case 0:
		g.b.WriteString("null")
	case 1:
		g.b.WriteString([]string{"true", "false"}[g.r.IntN(2)])
	case 2, 3:
		g.num()
	case 4, 5:
		g.str()
	case 6:
		g.b.WriteByte('[')
		n := g.r.IntN(5)
		for i := 0; i < n; i++ {
			if i > 0 {
				g.b.WriteByte(',')
			}
			g.value(depth + 1)
		}
		g.ws()
		g.b.WriteByte(']')
	case 7:
		g.b.WriteByte('{')
		n := g.r.IntN(5)
		for i := 0; i < n; i++ {
			if i > 0 {
				g.b.WriteByte(',')
			}
			g.ws()
			g.str()
			g.ws()
			g.b.WriteByte(':')
			g.value(depth + 1)
		}
		g.ws()
		g.b.WriteByte('}')
	}
	g.ws()
}

func checkDecodeAgainstStd(t *testing.T, doc []byte) {
	t.Helper()
	want, werr := stdDecode(doc)
	got, gerr := decodeJSON(doc)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("doc %q: encoding/json err=%v, ours err=%v", doc, werr, gerr)
	}
	if werr == nil && !sameValue(want, got) {
		t.Fatalf("doc %q:\n std  %#v\n ours %#v", doc, want, got)
	}
}

func TestJSONDecodeDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	g := &jsonGen{r: r, b: &b}
	for i := 0; i < 20000; i++ {
		b.Reset()
		g.value(0)
		doc := append([]byte(nil), b.Bytes()...)
		checkDecodeAgainstStd(t, doc)
		// Mutations: truncation, byte flip, insertion, trailing garbage.
		if len(doc) > 0 {
			checkDecodeAgainstStd(t, doc[:r.IntN(len(doc))])
			m := append([]byte(nil), doc...)
			m[r.IntN(len(m))] = "{}[]\",:0-.eE+tfn\\u \x00\x80a"[r.IntN(22)]
			checkDecodeAgainstStd(t, m)
			p := r.IntN(len(doc) + 1)
			ins := append(append(append([]byte(nil), doc[:p]...), "{}[]\",:0-.eE+ \x01"[r.IntN(15)]), doc[p:]...)
			checkDecodeAgainstStd(t, ins)
		}
	}
}

func TestJSONDecodeCases(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    any
		wantErr string // substring; empty = success
	}{
		{"w1", `{"device":"d-17","temp":23.5,"seq":1,"ts":1700000000123}`,
			map[string]any{"device": "d-17", "temp": 23.5, "seq": 1.0, "ts": 1700000000123.0}, ""},
		{"surrogate pair", `"\ud83d\ude00"`, "😀", ""},
		{"lone high surrogate", `"\ud83dx"`, "\ufffdx", ""},
		{"lone low surrogate", `"\ude00"`, "\ufffd", ""},
		{"high then non-low", `"\ud83d\u0041"`, "\ufffdA", ""},
		{"invalid utf8", "\"a\xffb\"", "a\ufffdb", ""},
		{"negative zero", `-0`, math.Copysign(0, -1), ""},
		{"big int", `12345678901234567890`, 12345678901234567890.0, ""},
		{"empty containers", `{"a":[],"b":{}}`, map[string]any{"a": []any{}, "b": map[string]any{}}, ""},
		{"duplicate key last wins", `{"a":1,"a":2}`, map[string]any{"a": 2.0}, ""},
		{"empty input", ``, nil, "unexpected end of JSON input at offset 0"},
		{"trailing garbage", `{"a":1} x`, nil, "invalid character 'x' after top-level value at offset 8"},
		{"two values", `1 2`, nil, "after top-level value at offset 2"},
		{"bad escape", `"\q"`, nil, "in string escape code at offset 2"},
		{"control char", "\"a\nb\"", nil, "invalid character 0x0a in string literal at offset 2"},
		{"truncated object", `{"a":`, nil, "unexpected end of JSON input at offset 5"},
		{"missing colon", `{"a" 1}`, nil, "after object key at offset 5"},
		{"leading zero", `01`, nil, "after top-level value at offset 1"},
		{"bare dot", `1.`, nil, "unexpected end"},
		{"bad exponent", `1e+x`, nil, "in exponent of numeric literal at offset 3"},
		{"overflow", `1e400`, nil, "number 1e400 out of range of float64 at offset 0"},
		{"bad literal", `tru`, nil, "unexpected end"},
		{"bad literal char", `trux`, nil, "in literal true"},
		{"single quote", `'a'`, nil, "looking for beginning of value at offset 0"},
		{"trailing comma", `[1,]`, nil, "looking for beginning of value at offset 3"},
		{"bad hex", `"\u12g4"`, nil, "hexadecimal character escape at offset 5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := JSON{}.Decode([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				var se *SyntaxError
				if !errors.As(err, &se) {
					t.Fatalf("err %T is not a *SyntaxError", err)
				}
				if _, stdErr := stdDecode([]byte(tc.in)); stdErr == nil {
					t.Fatalf("encoding/json accepts %q", tc.in)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !sameValue(tc.want, got) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
			checkDecodeAgainstStd(t, []byte(tc.in))
		})
	}
}

func TestJSONDecodeDepth(t *testing.T) {
	for _, tc := range []struct {
		depth int
		ok    bool
	}{{maxJSONDepth, true}, {maxJSONDepth + 1, false}, {1_000_000, false}} {
		doc := strings.Repeat("[", tc.depth) + strings.Repeat("]", tc.depth)
		_, err := JSON{}.Decode([]byte(doc))
		if tc.ok != (err == nil) {
			t.Fatalf("depth %d: err = %v", tc.depth, err)
		}
		if !tc.ok && !errors.Is(err, ErrTooDeep) {
			t.Fatalf("depth %d: err %v does not wrap ErrTooDeep", tc.depth, err)
		}
		_, stdErr := stdDecode([]byte(doc))
		if (stdErr == nil) != tc.ok {
			t.Fatalf("depth %d: encoding/json disagrees: %v", tc.depth, stdErr)
		}
	}
	// Objects count too.
	doc := strings.Repeat(`{"a":`, maxJSONDepth+1) + "1" + strings.Repeat("}", maxJSONDepth+1)
	if _, err := (JSON{}).Decode([]byte(doc)); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("object nesting: err = %v", err)
	}
}

func TestJSONDecodeDoesNotAlias(t *testing.T) {
	p := []byte(`{"k":"value","l":["x"]}`)
	v, err := JSON{}.Decode(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := range p {
		p[i] = 'X'
	}
	want := map[string]any{"k": "value", "l": []any{"x"}}
	if !sameValue(v, want) {
		t.Fatalf("decoded value changed with the payload: %#v", v)
	}
}

type encStruct struct {
	A int    `json:"a"`
	B string `json:"b,omitempty"`
	C []any
}

// genValue builds a random Go value of the kinds Encode handles.
func genValue(r *rand.Rand, depth int) any {
	k := r.IntN(22)
	if depth > 3 && k >= 18 {
		k = r.IntN(18)
	}
	randString := func() string {
		var sb strings.Builder
		for i, n := 0, r.IntN(5); i < n; i++ {
			sb.WriteString([]string{"a", "<b>", "&", "\"", "\\", "\n", "\t", "\b", "\f", "\r", "\x00", "\x1f", "é", "\u2028", "\u2029", "\xff", "😀", "\x7f", "/"}[r.IntN(19)])
		}
		return sb.String()
	}
	switch k {
	case 0:
		return nil
	case 1:
		return r.IntN(2) == 0
	case 2, 3:
		return randString()
	case 4:
		return r.NormFloat64() * math.Pow(10, float64(r.IntN(60)-30))
	case 5:
		return math.Float64frombits(r.Uint64()&^(0x7ff<<52) | uint64(r.IntN(0x7fe))<<52)
	case 6:
		return float64(r.Int64N(1<<54) - 1<<53)
	case 7:
		return []float64{0, math.Copysign(0, -1), 1e21, 1e20, 1e-6, 1e-7, 123456789, 0.1}[r.IntN(8)]
	case 8:
		return r.Int64() - r.Int64()
	case 9:
		return []any{int(r.Int32()), int8(r.Int32()), int16(r.Int32()), int32(r.Int32()), uint(r.Uint32()), uint8(r.Uint32()), uint16(r.Uint32()), uint32(r.Uint32()), r.Uint64()}[r.IntN(9)]
	case 10:
		return float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(20)-10)))
	case 11:
		return []json.Number{"1", "-2.5e10", "", "0.25"}[r.IntN(4)]
	case 12:
		b := make([]byte, r.IntN(8))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if r.IntN(5) == 0 {
			return []byte(nil)
		}
		return b
	case 13:
		return time.Unix(r.Int64N(4e9), r.Int64N(1e9)).In(time.FixedZone("x", (r.IntN(48)-24)*1800))
	case 14:
		return encStruct{A: r.IntN(100), B: randString(), C: []any{randString(), 1.5}}
	case 15:
		return []string{randString(), randString()}
	case 16:
		return map[string]string{randString(): randString(), "k": randString()}
	case 17:
		return &encStruct{A: 1}
	case 18, 19:
		m := map[string]any{}
		for i, n := 0, r.IntN(6); i < n; i++ {
			m[randString()] = genValue(r, depth+1)
		}
		if r.IntN(10) == 0 {
			return map[string]any(nil)
		}
		return m
	default:
		a := make([]any, r.IntN(5))
		for i := range a {
			a[i] = genValue(r, depth+1)
		}
		if r.IntN(10) == 0 {
			return []any(nil)
		}
		return a
	}
}

func TestJSONEncodeDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 20000; i++ {
		v := genValue(r, 0)
		want, werr := json.Marshal(v)
		got, gerr := JSON{}.Encode(v)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%#v: encoding/json err=%v, ours err=%v", v, werr, gerr)
		}
		if !bytes.Equal(want, got) {
			t.Fatalf("%#v:\n std  %s\n ours %s", v, want, got)
		}
	}
}

func TestJSONEncodeErrors(t *testing.T) {
	for _, v := range []any{
		math.NaN(), math.Inf(1), []any{math.Inf(-1)}, map[string]any{"a": math.NaN()},
		json.Number("1.2.3"), make(chan int), float32(math.Inf(1)),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2020, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 24*3600)),
	} {
		if _, err := (JSON{}).Encode(v); err == nil || !strings.HasPrefix(err.Error(), "json: ") {
			t.Errorf("Encode(%#v) err = %v, want json: error", v, err)
		}
		if _, err := json.Marshal(v); err == nil {
			t.Errorf("encoding/json accepts %#v", v)
		}
	}
	// A self-referencing map is an error, not a stack overflow.
	m := map[string]any{}
	m["self"] = m
	if _, err := (JSON{}).Encode(m); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("cycle: err = %v", err)
	}
}

func TestJSONEncodeFresh(t *testing.T) {
	a, err := JSON{}.Encode(map[string]any{"a": 1.0})
	if err != nil {
		t.Fatal(err)
	}
	b, err := JSON{}.Encode(map[string]any{"b": 2.0})
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != `{"a":1}` || string(b) != `{"b":2}` {
		t.Fatalf("outputs share memory: %s %s", a, b)
	}
}

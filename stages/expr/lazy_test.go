package expr

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// genRecord writes a random JSON object with fields the expressions below
// read (some missing, some of unexpected types, some duplicated).
func genRecord(r *rand.Rand) []byte {
	var b strings.Builder
	b.WriteString("{")
	n := 0
	field := func(k, v string) {
		if n > 0 {
			b.WriteString(",")
		}
		n++
		fmt.Fprintf(&b, "%q:%s", k, v)
	}
	vals := []func() string{
		func() string { return strconv.FormatFloat(r.Float64()*50-5, 'f', r.IntN(4), 64) },
		func() string { return strconv.Itoa(r.IntN(60) - 10) },
		func() string { return []string{`"d-1"`, `"d-2"`, `"\u00e9t\u00e9"`, `"a\"b"`, `""`, `"25"`}[r.IntN(6)] },
		func() string { return []string{"true", "false", "null"}[r.IntN(3)] },
		func() string { return `{"a":` + strconv.Itoa(r.IntN(5)) + `,"b":"x"}` },
		func() string { return `[1,2,` + strconv.Itoa(r.IntN(5)) + `]` },
	}
	for _, k := range []string{"temp", "device", "ok", "nested", "list", "seq", "topic", "value"} {
		if r.IntN(4) == 0 {
			continue // missing
		}
		var v string
		switch k {
		case "temp", "seq":
			v = vals[r.IntN(2)]()
			if r.IntN(8) == 0 {
				v = vals[2+r.IntN(4)]()
			}
		case "device", "topic":
			v = vals[2]()
		case "ok":
			v = vals[3]()
		case "nested":
			v = vals[4]()
		case "list":
			v = vals[5]()
		default:
			v = vals[r.IntN(len(vals))]()
		}
		field(k, v)
		if r.IntN(10) == 0 {
			field(k, vals[0]()) // duplicate key: the last wins
		}
	}
	b.WriteString("}")
	return []byte(b.String())
}

var diffExprs = []string{
	`temp > 25.0`, `temp >= 25 && device == "d-1"`, `seq % 2 == 0`, `temp * 2 + seq`, `device + "/x"`,
	`ok == true`, `ok ?? false`, `nested.a > 1`, `nested?.b`, `len(list)`, `list[2] > 2`, `missing == nil`,
	`topic`, `key`, `value.temp`, `{"t": temp, "d": device}`, `temp > 25.0 ? "hot" : "cold"`,
	`"d" in $env`, `len($env)`, `upper(device)`, `sum(list)`, `temp in [1, 2, 3]`, `let x = temp; x + 1`,
}

var diffCEL = []string{
	`temp > 25.0`, `device == "d-1"`, `has(nested.a) && nested.a > 1`, `size(list) > 2`, `ok`,
	`temp * 2.0`, `device + "/x"`, `topic`, `key`, `value.temp`, `{"t": temp}`, `list[2]`,
}

// TestLazyFieldAccessDifferential evaluates generated expressions against
// generated records twice: with the record as the map[string]any the eager
// codec produces and as the lazily decoded codec.Object. Results (values
// and whether an error occurs) must be identical, for expr-lang and CEL.
func TestLazyFieldAccessDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	type prog struct {
		lang Lang
		src  string
		p    *Program
	}
	var progs []prog
	for _, src := range diffExprs {
		progs = append(progs, prog{ExprLang, src, MustCompile(ExprLang, src, Any)})
	}
	for _, src := range diffCEL {
		progs = append(progs, prog{CEL, src, MustCompile(CEL, src, Any)})
	}
	checked := 0
	for i := 0; i < 3000; i++ {
		doc := genRecord(r)
		eager, err := codec.JSON{Ints: true}.Decode(doc)
		if err != nil {
			t.Fatalf("generated %s: %v", doc, err)
		}
		lazy, err := codec.LazyJSON{}.Decode(doc)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := lazy.(*codec.Object); !ok {
			t.Fatalf("lazy decode gave %T", lazy)
		}
		for _, pr := range progs {
			me := &pipeline.Envelope{Value: eager, Topic: "t/1", Key: []byte("k")}
			le := &pipeline.Envelope{Value: lazy, Topic: "t/1", Key: []byte("k")}
			want, werr := pr.p.Eval(me)
			got, gerr := pr.p.Eval(le)
			if (werr == nil) != (gerr == nil) {
				t.Fatalf("%s %s on %s: map err=%v, lazy err=%v", pr.lang, pr.src, doc, werr, gerr)
			}
			if werr == nil && !reflect.DeepEqual(want, got) {
				t.Fatalf("%s %s on %s: map %#v, lazy %#v", pr.lang, pr.src, doc, want, got)
			}
			checked++
		}
	}
	if checked < 3000*len(progs) {
		t.Fatalf("checked %d", checked)
	}
}

// The set stage gives the same record on both representations.
func TestLazySetDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	set := Set(
		Assignment{"alert", MustCompile(ExprLang, `true`, Any)},
		Assignment{"temp", MustCompile(ExprLang, `temp ?? 0`, Any)},
		Assignment{"hot", MustCompile(ExprLang, `(temp ?? 0) > 25`, Any)},
		Assignment{"alert", MustCompile(ExprLang, `device ?? "none"`, Any)},
	)
	for i := 0; i < 2000; i++ {
		doc := genRecord(r)
		eager, _ := codec.JSON{Ints: true}.Decode(doc)
		lazy, _ := codec.LazyJSON{}.Decode(doc)
		mo, merr := run(t, set, &pipeline.Envelope{Value: eager})
		lo, lerr := run(t, set, &pipeline.Envelope{Value: lazy})
		if (merr == nil) != (lerr == nil) {
			t.Fatalf("%s: map err=%v, lazy err=%v", doc, merr, lerr)
		}
		if merr != nil {
			continue
		}
		if got := pipeline.Plain(lo.Value); !reflect.DeepEqual(mo.Value, got) {
			t.Fatalf("%s: map %#v, lazy %#v", doc, mo.Value, got)
		}
		// Encoded, both decode to the same record.
		me, _ := codec.JSON{}.Encode(mo.Value)
		le, err := codec.LazyJSON{}.Encode(lo.Value)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := codec.JSON{Ints: true}.Decode(me)
		b, err := codec.JSON{Ints: true}.Decode(le)
		if err != nil || !sameNumbers(a, b) {
			t.Fatalf("%s: encoded map %s, lazy %s (%v)", doc, me, le, err)
		}
	}
}

// A misspelled field fails per record; the error names it, suggests the
// field it resembles and lists the record's fields (map and lazy values,
// both languages).
func TestRunErrorNamesMissingField(t *testing.T) {
	doc := []byte(`{"device":"d-1","temp":30}`)
	eager, _ := codec.JSON{Ints: true}.Decode(doc)
	lazy, _ := codec.LazyJSON{}.Decode(doc)
	for _, tc := range []struct {
		lang Lang
		src  string
	}{{ExprLang, `tmp > 25`}, {CEL, `tmp > 25`}} {
		p := MustCompile(tc.lang, tc.src, Bool)
		for _, v := range []any{eager, lazy} {
			_, err := p.Eval(&pipeline.Envelope{Value: v})
			if err == nil {
				t.Fatalf("%s %s: no error", tc.lang, tc.src)
			}
			for _, want := range []string{`field tmp is not in the record`, `did you mean "temp"?`, `it has device, temp`} {
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("%s on %T: %q lacks %q", tc.lang, v, err, want)
				}
			}
		}
	}
	// A field that is present is not blamed.
	p := MustCompile(ExprLang, `device > 25`, Bool)
	if _, err := p.Eval(&pipeline.Envelope{Value: lazy}); err == nil || strings.Contains(err.Error(), "not in the record") {
		t.Fatalf("err %v", err)
	}
}

// sameNumbers is reflect.DeepEqual where int64 and float64 of equal value
// match: the map encoder writes 0.0 as 0, raw forwarding keeps 0.0.
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
	return reflect.DeepEqual(a, b)
}

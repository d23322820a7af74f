//go:build !tinygo

package expr_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	exprlang "github.com/expr-lang/expr"

	"github.com/aimdb-dev/aimdb-flow/device/expr"
	"github.com/aimdb-dev/aimdb-flow/device/value"
)

// gen produces well-typed random expressions of the device subset over the
// fields of a record. Binary expressions are parenthesised only sometimes,
// so that operator precedence and associativity are exercised too.
type gen struct {
	r *rand.Rand
}

type typ int

const (
	tInt typ = iota
	tFloat
	tStr
	tBool
)

var fields = map[typ][]string{
	tInt:   {"i1", "i2", "count"},
	tFloat: {"f1", "f2", "temp"},
	tStr:   {"s1", "s2", "device"},
	tBool:  {"b1", "b2"},
}

// Strings whose letters are ASCII, plus non-ASCII characters without case
// (the device's lower/upper map ASCII only).
var strLits = []string{"", "d-", "d-1", "D-12", "sensor", "abc", "ABC", "x", "°C", "€5 ✓", "  pad ", "a\tb", "zz-top"}

func (g *gen) pick(s []string) string { return s[g.r.IntN(len(s))] }

func (g *gen) paren(s string) string {
	if g.r.IntN(10) < 7 {
		return "(" + s + ")"
	}
	return s
}

func (g *gen) lit(t typ) string {
	switch t {
	case tInt:
		return strconv.Itoa(g.r.IntN(41) - 20)
	case tFloat:
		return g.pick([]string{"0.5", "1.25", "3.0", "25.5", "100.75", "2e1", "0.0", ".5"})
	case tStr:
		return strconv.Quote(g.pick(strLits))
	}
	return g.pick([]string{"true", "false"})
}

func (g *gen) num(d int) string {
	if g.r.IntN(2) == 0 {
		return g.expr(tInt, d)
	}
	return g.expr(tFloat, d)
}

func (g *gen) expr(t typ, d int) string {
	if d <= 0 || g.r.IntN(4) == 0 {
		if g.r.IntN(2) == 0 {
			return g.lit(t)
		}
		return g.pick(fields[t])
	}
	d--
	if g.r.IntN(12) == 0 {
		return g.paren(g.expr(tBool, d) + " ? " + g.expr(t, d) + " : " + g.expr(t, d))
	}
	switch t {
	case tInt:
		switch g.r.IntN(7) {
		case 0, 1:
			return g.paren(g.expr(tInt, d) + " " + g.pick([]string{"+", "-", "*"}) + " " + g.expr(tInt, d))
		case 2:
			return g.paren(g.expr(tInt, d) + " % " + g.expr(tInt, d))
		case 3:
			return "-" + g.paren(g.expr(tInt, d))
		case 4:
			return "len(" + g.expr(tStr, d) + ")"
		case 5:
			return "abs(" + g.expr(tInt, d) + ")"
		}
		return "int(" + g.expr(tFloat, d) + ")"
	case tFloat:
		switch g.r.IntN(7) {
		case 0, 1:
			return g.paren(g.expr(tFloat, d) + " " + g.pick([]string{"+", "-", "*"}) + " " + g.num(d))
		case 2:
			return g.paren(g.num(d) + " / " + g.num(d))
		case 3:
			return g.paren(g.num(d) + " " + g.pick([]string{"**", "^"}) + " " + strconv.Itoa(g.r.IntN(4)))
		case 4:
			return "-" + g.paren(g.expr(tFloat, d))
		case 5:
			return "abs(" + g.expr(tFloat, d) + ")"
		}
		return "float(" + g.expr(tInt, d) + ")"
	case tStr:
		switch g.r.IntN(4) {
		case 0:
			return g.paren(g.expr(tStr, d) + " + " + g.expr(tStr, d))
		case 1:
			return g.pick([]string{"lower", "upper"}) + "(" + g.expr(tStr, d) + ")"
		case 2:
			return "trim(" + g.expr(tStr, d) + ")"
		}
		return g.expr(tStr, d)
	}
	switch g.r.IntN(11) {
	case 0, 1:
		return g.paren(g.num(d) + " " + g.pick([]string{"<", "<=", ">", ">=", "==", "!="}) + " " + g.num(d))
	case 2:
		return g.paren(g.num(d) + " < " + g.num(d) + " <= " + g.num(d)) // chained comparison
	case 3:
		return g.paren(g.expr(tStr, d) + " " + g.pick([]string{"==", "!=", "<", ">="}) + " " + g.expr(tStr, d))
	case 4:
		return g.paren(g.expr(tStr, d) + " " + g.pick([]string{"contains", "startsWith", "endsWith", "not contains", "not startsWith"}) + " " + g.expr(tStr, d))
	case 5:
		return g.pick([]string{"hasPrefix", "hasSuffix"}) + "(" + g.expr(tStr, d) + ", " + g.expr(tStr, d) + ")"
	case 6:
		return g.pick([]string{"!", "not "}) + g.paren(g.expr(tBool, d))
	case 7, 8:
		return g.paren(g.expr(tBool, d) + " " + g.pick([]string{"&&", "||", "and", "or"}) + " " + g.expr(tBool, d))
	case 9:
		et := typ(g.r.IntN(3))
		n := 1 + g.r.IntN(4)
		els := make([]string, n)
		for i := range els {
			els[i] = g.expr(et, 0)
		}
		return g.paren(g.expr(et, d) + g.pick([]string{" in ", " not in "}) + "[" + strings.Join(els, ", ") + "]")
	}
	return g.paren(g.expr(tBool, d) + " == " + g.expr(tBool, d))
}

func (g *gen) record() (map[string]any, *value.Object) {
	m := map[string]any{}
	o := value.NewObject(16, 512)
	for _, name := range fields[tInt] {
		v := g.r.IntN(41) - 20
		m[name] = v
		o.Set(name, value.IntOf(int64(v)))
	}
	for _, name := range fields[tFloat] {
		v := []float64{-2.5, 0, 0.5, 1.25, 3, 25.5, 100.75, -0.125}[g.r.IntN(8)]
		m[name] = v
		o.Set(name, value.FloatOf(v))
	}
	for _, name := range fields[tStr] {
		v := g.pick(strLits)
		m[name] = v
		o.Set(name, value.StringOf(v))
	}
	for _, name := range fields[tBool] {
		v := g.r.IntN(2) == 0
		m[name] = v
		o.Set(name, value.BoolOf(v))
	}
	return m, o
}

func schemaOf(o *value.Object) expr.Schema {
	s := expr.Schema{}
	for i := 0; i < o.Len(); i++ {
		f := o.Field(i)
		s[string(f.Name)] = f.Val.K
	}
	return s
}

func sameResult(want any, got value.Value) bool {
	switch w := want.(type) {
	case nil:
		return got.K == value.Nil
	case bool:
		return got.K == value.Bool && got.B == w
	case int:
		return got.K == value.Int && got.I == int64(w)
	case float64:
		return got.K == value.Float && (got.F == w || math.IsNaN(got.F) && math.IsNaN(w))
	case string:
		return got.K == value.String && string(got.S) == w
	}
	return false
}

func runExprLang(src string, env map[string]any) (out any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	prog, err := exprlang.Compile(src, exprlang.Env(env))
	if err != nil {
		return nil, err
	}
	return exprlang.Run(prog, env)
}

// TestDifferentialAgainstExprLang evaluates thousands of generated
// expressions on generated records with both evaluators and requires the
// same outcome: the same value (and type), or an error from both.
func TestDifferentialAgainstExprLang(t *testing.T) {
	const exprs, recordsPer = 3000, 4
	g := &gen{r: rand.New(rand.NewPCG(7, 2026))}
	var agreedOK, agreedErr, mismatches int
	for i := 0; i < exprs; i++ {
		typ := typ(g.r.IntN(4))
		src := g.expr(typ, 1+g.r.IntN(4))
		for j := 0; j < recordsPer; j++ {
			env, obj := g.record()
			prog, cerr := expr.Compile(src, expr.WithSchema(schemaOf(obj)))
			want, werr := runExprLang(src, env)
			if cerr != nil {
				if werr == nil {
					mismatches++
					t.Errorf("%q: device rejects (%v), expr-lang gives %v", src, cerr, want)
				} else {
					agreedErr++
				}
				continue
			}
			got, gerr := prog.Eval(obj)
			switch {
			case werr != nil && gerr != nil:
				agreedErr++
			case werr != nil:
				mismatches++
				t.Errorf("%q on %v: expr-lang error %v, device %s", src, env, werr, value.Format(got))
			case gerr != nil:
				mismatches++
				t.Errorf("%q on %v: expr-lang %v (%T), device error %v", src, env, want, want, gerr)
			case !sameResult(want, got):
				mismatches++
				t.Errorf("%q on %v: expr-lang %v (%T), device %s (%s)", src, env, want, want, value.Format(got), got.K)
			default:
				agreedOK++
			}
			if mismatches > 20 {
				t.Fatal("too many mismatches")
			}
		}
	}
	t.Logf("agreed on %d values and %d errors", agreedOK, agreedErr)
	// The generator emits well-typed expressions: errors come only from
	// integer division by zero, so most cases must produce values.
	if agreedOK < exprs*recordsPer*9/10 {
		t.Fatalf("only %d of %d evaluations produced a value: the generator is not exercising the evaluator", agreedOK, exprs*recordsPer)
	}
}

// TestDifferentialMapLiterals checks map literals (the device map stage)
// field by field.
func TestDifferentialMapLiterals(t *testing.T) {
	g := &gen{r: rand.New(rand.NewPCG(11, 5))}
	dst := value.NewObject(16, 1024)
	for i := 0; i < 300; i++ {
		n := 1 + g.r.IntN(5)
		parts := make([]string, n)
		for k := range parts {
			parts[k] = fmt.Sprintf("%q: %s", "k"+strconv.Itoa(k), g.expr(typ(g.r.IntN(4)), 2))
		}
		src := "{" + strings.Join(parts, ", ") + "}"
		env, obj := g.record()
		want, werr := runExprLang(src, env)
		prog, err := expr.Compile(src, expr.WithSchema(schemaOf(obj)))
		if err != nil {
			if werr == nil {
				t.Fatalf("%q: device rejects (%v), expr-lang accepts", src, err)
			}
			continue
		}
		gerr := prog.EvalInto(obj, dst)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("%q: expr-lang err %v, device err %v", src, werr, gerr)
		}
		if werr != nil {
			continue
		}
		wm := want.(map[string]any)
		if len(wm) != dst.Len() {
			t.Fatalf("%q: %d fields vs %d", src, len(wm), dst.Len())
		}
		for k, wv := range wm {
			gv, ok := dst.Lookup(k)
			if !ok || !sameResult(wv, gv) {
				t.Fatalf("%q: field %s: expr-lang %v, device %s", src, k, wv, value.Format(gv))
			}
		}
	}
}

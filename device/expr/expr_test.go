package expr_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/device/expr"
	"github.com/aimdb-dev/aimdb-flow/device/internal/alloctest"
	"github.com/aimdb-dev/aimdb-flow/device/value"
)

func record() *value.Object {
	o := value.NewObject(8, 128)
	o.Set("device", value.StringOf("d-7"))
	o.Set("temp", value.FloatOf(27.5))
	o.Set("count", value.IntOf(3))
	o.Set("ok", value.BoolOf(true))
	return o
}

func TestEval(t *testing.T) {
	tests := []struct {
		src  string
		want string // value.Format of the result, or "error: <substring>"
	}{
		{`temp > 25.0 && device startsWith "d-"`, "true"},
		{`temp > 25 and not ok`, "false"},
		{`count * 2 + 1`, "7"},
		{`count / 2`, "1.5"},
		{`count % 2`, "1"},
		{`count % 0`, "error: integer divide by zero"},
		{`2 ** 3`, "8"},
		{`-2 ** 2`, "-4"},
		{`1 < count < 5`, "true"},
		{`device + "/" + upper(device)`, "d-7/D-7"},
		{`len("héllo")`, "5"},
		{`count in [1, 2, 3.0]`, "true"},
		{`device not in ["a", "b"]`, "true"},
		{`missing == nil`, "true"},
		{`missing > 1`, "error: invalid operand types"},
		{`ok ? "yes" : "no"`, "yes"},
		{`trim("  x ") == "x" && hasSuffix(device, "7")`, "true"},
		{`int("42") + int(2.9)`, "44"},
		{`float("1.5") * 2`, "3"},
		{`abs(-3)`, "3"},
		{`missing == 1`, "false"},
		{`0x1F + 1_000`, "1031"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			p, err := expr.Compile(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			v, err := p.Eval(record())
			if e, ok := strings.CutPrefix(tt.want, "error: "); ok {
				if err == nil || !strings.Contains(err.Error(), e) {
					t.Fatalf("got %s, %v; want error %q", value.Format(v), err, e)
				}
				return
			}
			if err != nil || value.Format(v) != tt.want {
				t.Fatalf("got %s, %v; want %s", value.Format(v), err, tt.want)
			}
		})
	}
}

func TestCheckRejectsOutsideSubset(t *testing.T) {
	tests := []struct{ src, msg string }{
		{`a.b > 1`, "member access"},
		{`a[0]`, "indexing"},
		{`name matches "^d"`, "regular expressions"},
		{`filter(xs, # > 1)`, "function filter is outside"},
		{`1..3`, "ranges"},
		{`a ?? 1`, "nil coalescing"},
		{`x | upper()`, "pipe"},
		{`let x = 1; x`, "variables"},
		{`x in xs`, "array literal on the right"},
		{`len([1, 2])`, "array literal is only allowed"},
		{`{"a": {"b": 1}}`, "nested"},
		{`1 + {"a": 1}`, "map literal is only allowed"},
		{`temp >`, "unexpected end"},
		{`"unterminated`, "unterminated"},
		{`upper(a, b)`, "takes 1 argument"},
	}
	for _, tt := range tests {
		err := expr.Check(tt.src)
		var ce *expr.Error
		if !errors.As(err, &ce) || !strings.Contains(ce.Msg, tt.msg) {
			t.Errorf("Check(%q) = %v, want error containing %q", tt.src, err, tt.msg)
		}
	}
}

func TestSchemaTypeErrors(t *testing.T) {
	s := expr.Schema{"temp": value.Float, "device": value.String}
	for _, src := range []string{`temp + device`, `unknown > 1`, `device > 1`, `temp % 2`, `!temp`, `temp ? 1 : 2`} {
		if _, err := expr.Compile(src, expr.WithSchema(s)); err == nil {
			t.Errorf("%q: accepted with schema", src)
		}
	}
	if _, err := expr.Compile(`temp > 2 && device contains "x"`, expr.WithSchema(s)); err != nil {
		t.Fatal(err)
	}
}

func TestEvalIntoMapLiteral(t *testing.T) {
	p := expr.MustCompile(`{"device": device, "temp_f": temp * 9 / 5 + 32, alert: temp > 25}`)
	if !p.IsMap() {
		t.Fatal("not a map")
	}
	dst := value.NewObject(8, 64)
	if err := p.EvalInto(record(), dst); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for i := 0; i < dst.Len(); i++ {
		f := dst.Field(i)
		fmt.Fprintf(&sb, "%s=%s ", f.Name, value.Format(f.Val))
	}
	if got := sb.String(); got != "device=d-7 temp_f=81.5 alert=true " {
		t.Fatalf("got %q", got)
	}
	if err := p.EvalInto(record(), value.NewObject(1, 64)); !errors.Is(err, value.ErrTooManyFields) {
		t.Fatalf("small destination: %v", err)
	}
}

func TestScratchExhaustion(t *testing.T) {
	p := expr.MustCompile(`device + device + device`, expr.WithScratch(4))
	if _, err := p.Eval(record()); !errors.Is(err, expr.ErrScratch) {
		t.Fatalf("err = %v, want ErrScratch", err)
	}
}

func TestEvalAllocatesNothing(t *testing.T) {
	rec := record()
	for _, src := range []string{
		`temp > 25.0 && device startsWith "d-"`,
		`lower(device + "-X") contains "d-7" && count in [1, 2, 3]`,
		`(temp - 32) * 5 / 9 > 0 ? len(device) : count % 2`,
	} {
		p := expr.MustCompile(src)
		allocs := alloctest.PerRun(200, func() {
			if _, err := p.Eval(rec); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%q: %.1f allocs per Eval", src, allocs)
		}
	}
	m := expr.MustCompile(`{"d": upper(device), "t": temp}`)
	dst := value.NewObject(4, 64)
	if allocs := alloctest.PerRun(200, func() { m.EvalInto(rec, dst) }); allocs != 0 {
		t.Errorf("EvalInto: %.1f allocs", allocs)
	}
}

func ExampleCompile() {
	p, err := expr.Compile(`temp > 25.0 && device startsWith "d-"`)
	if err != nil {
		panic(err)
	}
	rec := value.NewObject(8, 64)
	rec.Set("device", value.StringOf("d-1"))
	rec.Set("temp", value.FloatOf(26.5))
	ok, err := p.EvalBool(rec)
	fmt.Println(ok, err, p.Fields())
	fmt.Println(expr.Check(`payload.temp > 1`))
	// Output:
	// true <nil> [temp device]
	// offset 7: member access is outside the device subset
}

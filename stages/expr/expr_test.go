package expr

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// run passes env through p and returns what came out (nil if dropped).
func run(t *testing.T, p pipeline.Processor, env *pipeline.Envelope) (*pipeline.Envelope, error) {
	t.Helper()
	var out *pipeline.Envelope
	err := p.Process(context.Background(), env, func(_ context.Context, e *pipeline.Envelope) error {
		c := *e
		out = &c
		return nil
	})
	return out, err
}

func reading(dev string, temp float64) *pipeline.Envelope {
	return &pipeline.Envelope{Value: map[string]any{"device": dev, "temp": temp}, Topic: "sensors/" + dev + "/temp", Key: []byte("k-" + dev)}
}

func TestFilter(t *testing.T) {
	tests := []struct {
		lang    Lang
		src     string
		env     *pipeline.Envelope
		keep    bool
		wantErr string
	}{
		{ExprLang, `temp > 25.0`, reading("d-1", 30), true, ""},
		{ExprLang, `temp > 25.0`, reading("d-1", 20), false, ""},
		{ExprLang, `device startsWith "d-" && topic == "sensors/d-1/temp"`, reading("d-1", 20), true, ""},
		{ExprLang, `key == "k-d-1"`, reading("d-1", 20), true, ""},
		{ExprLang, `temp > 25.0`, &pipeline.Envelope{Value: map[string]any{"device": "x"}}, false, "invalid operation: <nil> > float64"},
		{ExprLang, `len(value) == 2`, &pipeline.Envelope{Value: []any{1, 2}}, true, ""},
		{CEL, `temp > 25`, reading("d-1", 30), true, ""},
		{CEL, `device.startsWith("d-") && temp < 25.0`, reading("d-1", 20), true, ""},
		{CEL, `topic.endsWith("/temp")`, reading("d-1", 20), true, ""},
		{CEL, `temp > 25`, &pipeline.Envelope{Value: map[string]any{"temp": "hot"}}, false, "no such overload"},
	}
	for _, tc := range tests {
		t.Run(tc.lang.String()+" "+tc.src, func(t *testing.T) {
			p, err := Compile(tc.lang, tc.src, Bool)
			if err != nil {
				t.Fatal(err)
			}
			out, err := run(t, Filter(p), tc.env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (out != nil) != tc.keep {
				t.Fatalf("kept = %v, want %v", out != nil, tc.keep)
			}
		})
	}
}

func TestMap(t *testing.T) {
	tests := []struct {
		lang Lang
		src  string
		env  *pipeline.Envelope
		want any
	}{
		{ExprLang, `{"device": device, "alert": temp > 25}`, reading("d-1", 30), map[string]any{"device": "d-1", "alert": true}},
		{ExprLang, `{"where": topic, "t": temp * 2}`, reading("d-2", 2), map[string]any{"where": "sensors/d-2/temp", "t": 4.0}},
		{ExprLang, `{"n": len(value), "avg": mean(map(value, .temp))}`, &pipeline.Envelope{Value: []any{map[string]any{"temp": 1.0}, map[string]any{"temp": 3.0}}}, map[string]any{"n": 2, "avg": 2.0}},
		// A field of the value shadows the helper of the same name.
		{ExprLang, `topic`, &pipeline.Envelope{Value: map[string]any{"topic": "mine"}, Topic: "theirs"}, "mine"},
		{CEL, `{"device": device, "nested": {"t": temp}, "list": [1, 2]}`, reading("d-1", 30), map[string]any{"device": "d-1", "nested": map[string]any{"t": 30.0}, "list": []any{int64(1), int64(2)}}},
		{CEL, `temp * 2.0`, reading("d-1", 30), 60.0},
	}
	for _, tc := range tests {
		t.Run(tc.lang.String()+" "+tc.src, func(t *testing.T) {
			p, err := Compile(tc.lang, tc.src, Any)
			if err != nil {
				t.Fatal(err)
			}
			tc.env.Payload = []byte("stale")
			out, err := run(t, Map(p), tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(out.Value, tc.want) {
				t.Fatalf("value = %#v, want %#v", out.Value, tc.want)
			}
			if out.Payload != nil {
				t.Fatal("map kept the stale payload")
			}
		})
	}
}

func TestSetCopiesTheValue(t *testing.T) {
	in := map[string]any{"temp": 30.0}
	st := Set(Assignment{"alert", MustCompile(ExprLang, "temp > 25", Any)}, Assignment{"f", MustCompile(CEL, "temp * 2.0", Any)})
	out, err := run(t, st, &pipeline.Envelope{Value: in})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"temp": 30.0, "alert": true, "f": 60.0}
	if !reflect.DeepEqual(out.Value, want) {
		t.Fatalf("value = %v, want %v", out.Value, want)
	}
	if len(in) != 1 {
		t.Fatalf("set changed the input value: %v", in)
	}
	if _, err := run(t, st, &pipeline.Envelope{Value: "text"}); err == nil {
		t.Fatal("set on a non-object: no error")
	}
}

func TestKey(t *testing.T) {
	k := Key(MustCompile(ExprLang, `device + "/" + string(seq)`, Any))
	b, err := k(&pipeline.Envelope{Value: map[string]any{"device": "d-1", "seq": 7.0}})
	if err != nil || string(b) != "d-1/7" {
		t.Fatalf("key = %q, %v", b, err)
	}
	if _, err := Key(MustCompile(ExprLang, `missing`, Any))(&pipeline.Envelope{Value: map[string]any{}}); err == nil {
		t.Fatal("null key: no error")
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		lang      Lang
		src       string
		want      Want
		line, col int
		msg       string
	}{
		{ExprLang, "temp > ", Bool, 1, 7, "unexpected token EOF"},
		{ExprLang, "{\n  \"a\": 1 +\n}", Any, 3, 1, "unexpected token Bracket(\"}\")"},
		{ExprLang, "1 + 2", Bool, 1, 1, "expected bool, but got int"},
		{ExprLang, "  ", Any, 1, 1, "empty expression"},
		{CEL, "temp >", Bool, 1, 7, "Syntax error"},
		{CEL, "'a' + 1", Any, 1, 5, "found no matching overload for '_+_'"},
		{CEL, "1 + 2", Bool, 1, 1, "a filter must be boolean"},
	}
	for _, tc := range tests {
		_, err := Compile(tc.lang, tc.src, tc.want)
		var ce *CompileError
		if !errors.As(err, &ce) {
			t.Fatalf("%s %q: err = %v, want a *CompileError", tc.lang, tc.src, err)
		}
		if ce.Line != tc.line || ce.Col != tc.col || !strings.Contains(ce.Msg, tc.msg) {
			t.Errorf("%s %q: got %d:%d %q, want %d:%d containing %q", tc.lang, tc.src, ce.Line, ce.Col, ce.Msg, tc.line, tc.col, tc.msg)
		}
	}
}

// TestConcurrentUse runs one compiled stage on many goroutines, as a
// parallel pipeline does (run under -race).
func TestConcurrentUse(t *testing.T) {
	for _, lang := range []Lang{ExprLang, CEL} {
		f := Filter(MustCompile(lang, "temp > 25.0", Bool))
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				kept := 0
				for i := 0; i < 500; i++ {
					env := reading("d", float64(i%50))
					f.Process(context.Background(), env, func(context.Context, *pipeline.Envelope) error { kept++; return nil })
				}
				if kept != 240 {
					errs <- errors.New(lang.String() + ": wrong count")
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
}

var sink bool

func benchEnv() *pipeline.Envelope {
	return &pipeline.Envelope{Value: map[string]any{"device": "d-1", "temp": 30.5, "seq": 1.0, "ts": 1.7e12}}
}

// BenchmarkFilterStage is the filter stage as a pipeline runs it.
func BenchmarkFilterStage(b *testing.B) {
	f := Filter(MustCompile(ExprLang, "temp > 25.0", Bool))
	env := benchEnv()
	next := func(context.Context, *pipeline.Envelope) error { sink = !sink; return nil }
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		f.Process(ctx, env, next)
	}
}

// BenchmarkFilterStageParallel is the same stage shared by all Ps.
func BenchmarkFilterStageParallel(b *testing.B) {
	f := Filter(MustCompile(ExprLang, "temp > 25.0", Bool))
	next := func(context.Context, *pipeline.Envelope) error { return nil }
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		env := benchEnv()
		ctx := context.Background()
		for pb.Next() {
			f.Process(ctx, env, next)
		}
	})
}

// BenchmarkExprDirectVM is the hand-written baseline: one VM reused.
func BenchmarkExprDirectVM(b *testing.B) {
	prog, err := expr.Compile("temp > 25.0", expr.Env(map[string]any{}), expr.AllowUndefinedVariables(), expr.AsBool())
	if err != nil {
		b.Fatal(err)
	}
	m := benchEnv().Value.(map[string]any)
	var machine vm.VM
	b.ReportAllocs()
	for b.Loop() {
		out, _ := machine.Run(prog, m)
		sink = out.(bool)
	}
}

// BenchmarkExprRun is expr.Run (a new VM per call).
func BenchmarkExprRun(b *testing.B) {
	prog, err := expr.Compile("temp > 25.0", expr.Env(map[string]any{}), expr.AllowUndefinedVariables(), expr.AsBool())
	if err != nil {
		b.Fatal(err)
	}
	m := benchEnv().Value.(map[string]any)
	b.ReportAllocs()
	for b.Loop() {
		out, _ := expr.Run(prog, m)
		sink = out.(bool)
	}
}

func BenchmarkCELFilterStage(b *testing.B) {
	f := Filter(MustCompile(CEL, "temp > 25.0", Bool))
	env := benchEnv()
	next := func(context.Context, *pipeline.Envelope) error { return nil }
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		f.Process(ctx, env, next)
	}
}

func BenchmarkSetStage(b *testing.B) {
	s := Set(Assignment{"alert", MustCompile(ExprLang, "true", Any)})
	next := func(context.Context, *pipeline.Envelope) error { return nil }
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		env := benchEnv()
		s.Process(ctx, env, next)
	}
}

func BenchmarkMapLiteralStage(b *testing.B) {
	s := Map(MustCompile(ExprLang, `{"device": device, "temp": temp, "seq": seq, "ts": ts, "alert": true}`, Any))
	next := func(context.Context, *pipeline.Envelope) error { return nil }
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		env := benchEnv()
		s.Process(ctx, env, next)
	}
}

// Package expr provides filter, map and key stages driven by expressions,
// compiled once when a pipeline is loaded: expr-lang
// (github.com/expr-lang/expr) by default and CEL (github.com/google/cel-go)
// on request.
//
// The environment of an expression is the record's value: when the value
// is an object (map[string]any) its fields are variables (`temp > 25`).
// Three helpers are also defined: topic (the inbound topic or destination),
// key (the record key as a string) and value (the whole value, e.g. the
// list a batch or window produces). A field of the value shadows a helper
// of the same name. expr-lang's builtins are available (now(), len, sum,
// mean, map, filter, ...).
//
// A syntax or type error is reported by Compile with its line and column
// inside the expression. An error while evaluating one record (a missing
// field compared with a number, a filter that does not yield a bool) is a
// stage error: the runner dead-letters that record and continues.
//
// Compiled programs are safe for concurrent use: an expr-lang virtual
// machine is not, so each evaluation takes one (an idle cached one, else
// one from a sync.Pool) and a stage may run on several goroutines
// (parallel N).
package expr

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/interpreter"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Lang selects an expression language.
type Lang uint8

// Expression languages.
const (
	ExprLang Lang = iota // expr-lang, the default
	CEL                  // Common Expression Language
)

func (l Lang) String() string {
	if l == CEL {
		return "cel"
	}
	return "expr"
}

// Want is the result an expression must produce.
type Want uint8

// Result kinds.
const (
	Any  Want = iota // map and key expressions
	Bool             // filter expressions
)

// CompileError is a syntax or type error in an expression. Line and Col
// are 1-based and relative to the expression text (Col counts characters).
type CompileError struct {
	Line, Col int
	Msg       string
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg)
}

// helpers are the variables defined besides the value's fields.
var helpers = []string{"topic", "key", "value"}

// Program is a compiled expression.
type Program struct {
	lang Lang
	src  string
	want Want

	// expr-lang
	prog *vm.Program
	// fast holds one idle evaluation state (the common case: one
	// goroutine runs the stage); states pools more when several goroutines
	// run it at once.
	fast   atomic.Pointer[evalState]
	states sync.Pool
	// helpers reports whether the expression names a helper variable (or
	// the value is not an object), in which case an environment map is
	// built per record; otherwise the record's own map is the environment.
	usesHelpers bool
	// names are the identifiers the expression reads: for a lazily decoded
	// value (pipeline.Fields) the environment holds only these. wholeEnv
	// is set when it reads $env, which needs every field.
	names    []string
	wholeEnv bool
	// constant holds the result of an expression that is a literal after
	// the compiler folded it (`true`, `"hot"`, `2 * 21`): Eval returns it
	// without running anything.
	constant    any
	hasConstant bool

	// CEL
	cel cel.Program
}

// Compile compiles src once. want Bool makes a non-boolean result a
// compile error where the type is known, and a run-time error otherwise.
func Compile(lang Lang, src string, want Want) (*Program, error) {
	p := &Program{lang: lang, src: src, want: want}
	if strings.TrimSpace(src) == "" {
		return nil, &CompileError{Line: 1, Col: 1, Msg: "empty expression"}
	}
	var err error
	if lang == CEL {
		err = p.compileCEL()
	} else {
		err = p.compileExpr()
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// MustCompile is Compile that panics, for literals in Go code.
func MustCompile(lang Lang, src string, want Want) *Program {
	p, err := Compile(lang, src, want)
	if err != nil {
		panic(err)
	}
	return p
}

// Source returns the expression text.
func (p *Program) Source() string { return p.src }

// Lang returns the expression's language.
func (p *Program) Lang() Lang { return p.lang }

func (p *Program) String() string {
	if p.lang == CEL {
		return "cel `" + p.src + "`"
	}
	return "`" + p.src + "`"
}

// evalState is what one evaluation needs: a VM (not safe for concurrent
// use) and a small environment map reused for lazily decoded values.
type evalState struct {
	vm  vm.VM
	env map[string]any
}

type identVisitor struct{ names map[string]bool }

func (v *identVisitor) Visit(n *ast.Node) {
	if id, ok := (*n).(*ast.IdentifierNode); ok {
		v.names[id.Value] = true
	}
}

func (p *Program) compileExpr() error {
	opts := []expr.Option{expr.Env(map[string]any{}), expr.AllowUndefinedVariables()}
	if p.want == Bool {
		opts = append(opts, expr.AsBool())
	}
	prog, err := expr.Compile(p.src, opts...)
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return &CompileError{Line: max(fe.Line, 1), Col: fe.Column + 1, Msg: fe.Message}
		}
		return &CompileError{Line: 1, Col: 1, Msg: err.Error()}
	}
	p.prog = prog
	v := &identVisitor{names: map[string]bool{}}
	node := prog.Node()
	ast.Walk(&node, v)
	for _, h := range helpers {
		if v.names[h] {
			p.usesHelpers = true
		}
	}
	for n := range v.names {
		if n == "$env" {
			p.wholeEnv = true
			continue
		}
		p.names = append(p.names, n)
	}
	sort.Strings(p.names)
	if c, ok := literal(prog.Node()); ok && (p.want != Bool || isBool(c)) {
		p.constant, p.hasConstant = c, true
	}
	p.states.New = func() any { return &evalState{env: make(map[string]any, len(p.names))} }
	return nil
}

// literal returns the value of a literal node (the compiler folds constant
// subexpressions into one).
func literal(n ast.Node) (any, bool) {
	switch x := n.(type) {
	case *ast.BoolNode:
		return x.Value, true
	case *ast.IntegerNode:
		return x.Value, true
	case *ast.FloatNode:
		return x.Value, true
	case *ast.StringNode:
		return x.Value, true
	case *ast.NilNode:
		return nil, true
	}
	return nil, false
}

func isBool(v any) bool { _, ok := v.(bool); return ok }

// Eval evaluates the expression for env.
func (p *Program) Eval(env *pipeline.Envelope) (any, error) {
	if p.hasConstant {
		return p.constant, nil
	}
	if p.lang == CEL {
		return p.evalCEL(env)
	}
	st := p.fast.Swap(nil)
	if st == nil {
		st = p.states.Get().(*evalState)
	}
	var vars map[string]any
	switch v := env.Value.(type) {
	case map[string]any:
		if p.usesHelpers {
			vars = helperEnv(env)
		} else {
			vars = v
		}
	case pipeline.Fields:
		switch {
		case p.wholeEnv && p.usesHelpers:
			vars = helperEnv(env)
		case p.wholeEnv:
			vars = v.Map() // $env is the record itself, as for a map value
		default:
			vars = st.env
			p.fieldEnv(vars, v, env)
		}
	default:
		vars = helperEnv(env)
	}
	out, err := st.vm.Run(p.prog, vars)
	clear(st.env)
	if !p.fast.CompareAndSwap(nil, st) {
		p.states.Put(st)
	}
	if err != nil {
		return nil, p.runError(err, env)
	}
	return out, nil
}

// fieldEnv fills vars with the identifiers the expression reads: a field
// of the value, else a helper, else nothing (an undefined variable is nil,
// as with a map environment).
func (p *Program) fieldEnv(vars map[string]any, f pipeline.Fields, env *pipeline.Envelope) {
	for _, n := range p.names {
		if v, ok := f.Field(n); ok {
			vars[n] = v
		} else if v, ok := helperValue(n, env); ok {
			vars[n] = v
		}
	}
}

// helperValue returns the value of the helper variable name (topic, key,
// value) for env, and whether name is one.
func helperValue(name string, env *pipeline.Envelope) (any, bool) {
	switch name {
	case "topic":
		return env.Topic, true
	case "key":
		return string(env.Key), true
	case "value":
		return pipeline.Plain(env.Value), true
	}
	return nil, false
}

func helperEnv(env *pipeline.Envelope) map[string]any {
	val := pipeline.Plain(env.Value)
	m, _ := val.(map[string]any)
	vars := make(map[string]any, len(m)+len(helpers))
	vars["topic"] = env.Topic
	vars["key"] = string(env.Key)
	vars["value"] = val
	for k, v := range m {
		vars[k] = v
	}
	return vars
}

func (p *Program) runError(err error, env *pipeline.Envelope) error {
	hint := missingFields(p.names, env)
	var fe *file.Error
	if errors.As(err, &fe) {
		return fmt.Errorf("%s: %s%s", p, fe.Message, hint)
	}
	return fmt.Errorf("%s: %w%s", p, err, hint)
}

// missingFields explains a failed evaluation by the identifiers the
// expression names that the record does not have (a misspelled field
// reads as nil and fails as `<nil> > int`): "; field tmp is not in the
// record (did you mean temp?; it has device, temp)". It runs only on the
// error path.
func missingFields(names []string, env *pipeline.Envelope) string {
	var fields []string
	has := func(n string) bool { return false }
	switch v := env.Value.(type) {
	case map[string]any:
		for k := range v {
			fields = append(fields, k)
		}
		has = func(n string) bool { _, ok := v[n]; return ok }
	case pipeline.Fields:
		for k := range v.Map() {
			fields = append(fields, k)
		}
		has = func(n string) bool { _, ok := v.Field(n); return ok }
	default:
		return ""
	}
	sort.Strings(fields)
	var b strings.Builder
	for _, n := range names {
		if has(n) || n == "topic" || n == "key" || n == "value" {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("; ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "field %s is not in the record", n)
		if s := pipeline.DidYouMean(n, fields); s != "" {
			b.WriteString(s)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	list := strings.Join(fields, ", ")
	if len(fields) > 8 {
		list = strings.Join(fields[:8], ", ") + ", ..."
	}
	if len(fields) == 0 {
		list = "no fields"
	}
	return b.String() + " (it has " + list + ")"
}

// ---- CEL ----

func (p *Program) compileCEL() error {
	base, err := cel.NewEnv()
	if err != nil {
		return err
	}
	parsed, iss := base.Parse(p.src)
	if iss.Err() != nil {
		return celError(iss)
	}
	names := map[string]bool{}
	celast.PreOrderVisit(parsed.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() == celast.IdentKind {
			names[e.AsIdent()] = true
		}
	}))
	for _, h := range helpers {
		names[h] = true
	}
	opts := []cel.EnvOption{cel.CrossTypeNumericComparisons(true)}
	for n := range names {
		if strings.Contains(n, ".") {
			continue
		}
		p.names = append(p.names, n)
		opts = append(opts, cel.Variable(n, cel.DynType))
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return err
	}
	sort.Strings(p.names)
	checked, iss := env.Check(parsed)
	if iss.Err() != nil {
		return celError(iss)
	}
	if p.want == Bool {
		if t := checked.OutputType(); !t.IsExactType(types.BoolType) && !t.IsExactType(types.DynType) {
			return &CompileError{Line: 1, Col: 1, Msg: fmt.Sprintf("a filter must be boolean, this expression is %s", t)}
		}
	}
	prg, err := env.Program(checked)
	if err != nil {
		return &CompileError{Line: 1, Col: 1, Msg: err.Error()}
	}
	p.cel = prg
	return nil
}

func celError(iss *cel.Issues) error {
	errs := iss.Errors()
	if len(errs) == 0 {
		return &CompileError{Line: 1, Col: 1, Msg: iss.String()}
	}
	e := errs[0]
	line, col := e.Location.Line(), e.Location.Column()+1
	if line < 1 {
		line, col = 1, 1
	}
	if col < 1 { // some macro errors carry no column
		col = 1
	}
	return &CompileError{Line: line, Col: col, Msg: e.Message}
}

// activation resolves CEL variables from an envelope without copying the
// value's fields.
type activation struct{ env *pipeline.Envelope }

func (a activation) ResolveName(name string) (any, bool) {
	switch x := a.env.Value.(type) {
	case map[string]any:
		if v, ok := x[name]; ok {
			return v, true
		}
	case pipeline.Fields:
		if v, ok := x.Field(name); ok {
			return v, true
		}
	}
	return helperValue(name, a.env)
}

func (a activation) Parent() interpreter.Activation { return nil }

func (p *Program) evalCEL(env *pipeline.Envelope) (any, error) {
	out, _, err := p.cel.Eval(activation{env})
	if err != nil {
		return nil, fmt.Errorf("%s: %w%s", p, err, missingFields(p.names, env))
	}
	return nativeValue(out)
}

// nativeValue converts a CEL result to the plain Go values the rest of
// the pipeline uses: map[string]any, []any, float64/int64/string/bool, nil.
func nativeValue(v ref.Val) (any, error) {
	switch x := v.(type) {
	case traits.Mapper:
		out := map[string]any{}
		it := x.Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			nv, err := nativeValue(x.Get(k))
			if err != nil {
				return nil, err
			}
			ks, ok := k.Value().(string)
			if !ok {
				ks = fmt.Sprint(k.Value())
			}
			out[ks] = nv
		}
		return out, nil
	case traits.Lister:
		n, _ := x.Size().(types.Int)
		out := make([]any, 0, int(n))
		for i := types.Int(0); i < n; i++ {
			nv, err := nativeValue(x.Get(i))
			if err != nil {
				return nil, err
			}
			out = append(out, nv)
		}
		return out, nil
	case *types.Err:
		return nil, x
	}
	if v.Type() == types.NullType {
		return nil, nil
	}
	return v.Value(), nil
}

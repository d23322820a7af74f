// Package expr is a small expression evaluator for the device subset of the
// aimdb-flow filter/map language. It accepts a subset of expr-lang's syntax
// and gives the same results as expr-lang on it (a differential test checks
// this on generated expressions): field access on flat records, int, float,
// string, bool and nil literals, arithmetic (+ - * / % ** ^), comparisons
// (== != < <= > >=, chained as in expr-lang), boolean logic (&& || ! and or
// not), the conditional c ? a : b, `in` / `not in` against an array literal,
// the string operators contains, startsWith and endsWith, the functions len,
// lower, upper, trim, hasPrefix, hasSuffix, abs, int and float, and a flat
// map literal {"k": expr, ...} as the top-level result of a map stage.
//
// Compile once (it allocates); Eval then runs with no allocation per record:
// string results are built in a preallocated scratch buffer owned by the
// Program. A Program is therefore not safe for concurrent use; Clone it per
// goroutine.
//
// Differences from expr-lang, all reported by Check/Compile as outside the
// subset unless noted: no member access, indexing, closures, predicates,
// ranges, pipes, regexes, let or if; lower and upper map ASCII letters only
// (other characters are kept unchanged); integers are 64-bit on every target.
package expr

import (
	"errors"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/aimdb-dev/aimdb-flow/device/value"
)

// Runtime errors. Eval wraps them with the operand types in an *EvalError.
var (
	ErrType      = errors.New("invalid operand types")
	ErrDivZero   = errors.New("integer divide by zero")
	ErrScratch   = errors.New("string scratch buffer exhausted")
	ErrNotBool   = errors.New("expression did not return a bool")
	ErrNotMap    = errors.New("expression is not a map literal")
	ErrConvert   = errors.New("invalid conversion")
	errNoProgram = errors.New("nil program")
)

// EvalError is a run-time error with its source position.
type EvalError struct {
	Offset int    // byte offset of the failing operator in the source
	Op     string // operator or function
	A, B   value.Kind
	Err    error
}

func (e *EvalError) Error() string {
	return "offset " + strconv.Itoa(e.Offset) + ": " + e.Op + " (" + e.A.String() + ", " + e.B.String() + "): " + e.Err.Error()
}

func (e *EvalError) Unwrap() error { return e.Err }

// DefaultScratch is the default size of a Program's string scratch buffer.
const DefaultScratch = 256

// Program is a compiled expression.
type Program struct {
	src     string
	nodes   []node
	root    int32
	scratch []byte
	idents  []string
	schema  Schema
	stage   []value.Value // map literal staging
}

// Option configures Compile.
type Option func(*Program)

// WithScratch sets the scratch buffer size (bytes) for strings produced by
// +, lower and upper during one evaluation.
func WithScratch(n int) Option { return func(p *Program) { p.scratch = make([]byte, 0, n) } }

// Compile parses src. Any construct outside the device subset is an *Error
// naming it.
func Compile(src string, opts ...Option) (*Program, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	ps := &parser{toks: toks, src: src}
	root, err := ps.parseExpression(0)
	if err != nil {
		return nil, err
	}
	if t := ps.cur(); t.kind != tEOF {
		if _, bad := unsupportedOp(t.text); bad && t.kind == tOp {
			return nil, unsupported(t)
		}
		return nil, errAt(t.pos, "unexpected "+describe(t))
	}
	for i := range ps.nodes {
		n := &ps.nodes[i]
		if n.op == opMap && int32(i) != root {
			return nil, errAt(n.pos, "a map literal is only allowed as the whole expression in the device subset")
		}
		if n.op == opArray {
			used := false
			for j := range ps.nodes {
				if ps.nodes[j].op == opIn && ps.nodes[j].b == int32(i) {
					used = true
				}
			}
			if !used {
				return nil, errAt(n.pos, "an array literal is only allowed on the right of 'in' in the device subset")
			}
		}
	}
	p := &Program{src: src, nodes: ps.nodes, root: root}
	if n := &ps.nodes[root]; n.op == opMap {
		p.stage = make([]value.Value, 0, len(n.args))
	}
	seen := map[string]bool{}
	for _, n := range ps.nodes {
		if n.op == opIdent && !seen[n.name] {
			seen[n.name] = true
			p.idents = append(p.idents, n.name)
		}
	}
	for _, o := range opts {
		o(p)
	}
	if p.scratch == nil {
		p.scratch = make([]byte, 0, DefaultScratch)
	}
	if _, err := p.typecheck(root, p.schema); err != nil {
		return nil, err
	}
	return p, nil
}

// Check reports whether src is inside the device subset: nil if it
// compiles, otherwise an *Error with the byte offset and the reason. Use it
// to validate expressions of pipelines meant for a device.
func Check(src string) error {
	_, err := Compile(src)
	return err
}

// MustCompile is Compile that panics on error, for expressions fixed in code.
func MustCompile(src string, opts ...Option) *Program {
	p, err := Compile(src, opts...)
	if err != nil {
		panic("expr: " + err.Error())
	}
	return p
}

// Source returns the expression text.
func (p *Program) Source() string { return p.src }

// Fields returns the field names the expression reads, in first-use order.
func (p *Program) Fields() []string { return p.idents }

// IsMap reports whether the expression is a map literal (use EvalInto).
func (p *Program) IsMap() bool { return p.nodes[p.root].op == opMap }

// Clone returns a copy with its own scratch buffer, for another goroutine.
func (p *Program) Clone() *Program {
	c := *p
	c.nodes = append([]node(nil), p.nodes...)
	c.scratch = make([]byte, 0, cap(p.scratch))
	c.stage = make([]value.Value, 0, cap(p.stage))
	return &c
}

// Eval evaluates the expression against env. String results borrow the
// Program's scratch buffer or env's storage and are valid until the next
// Eval. A map literal cannot be returned as a Value: use EvalInto.
func (p *Program) Eval(env value.Env) (value.Value, error) {
	if p == nil {
		return value.Value{}, errNoProgram
	}
	if p.IsMap() {
		return value.Value{}, ErrNotMap
	}
	p.scratch = p.scratch[:0]
	return p.eval(p.root, env)
}

// EvalBool evaluates a filter: the result must be a bool.
func (p *Program) EvalBool(env value.Env) (bool, error) {
	v, err := p.Eval(env)
	if err != nil {
		return false, err
	}
	if v.K != value.Bool {
		return false, &EvalError{Offset: 0, Op: "filter", A: v.K, Err: ErrNotBool}
	}
	return v.B, nil
}

// EvalInto evaluates a map literal into dst (reset first), copying string
// values into dst's arena. A non-map expression is an error.
func (p *Program) EvalInto(env value.Env, dst *value.Object) error {
	n := &p.nodes[p.root]
	if n.op != opMap {
		return ErrNotMap
	}
	p.scratch = p.scratch[:0]
	// Evaluate every field before resetting dst (values are staged in a
	// buffer preallocated at compile time, so nothing escapes per call).
	vals := p.stage[:0]
	for _, a := range n.args {
		v, err := p.eval(a, env)
		if err != nil {
			return err
		}
		vals = append(vals, v)
	}
	if o, ok := env.(*value.Object); ok && o == dst { // pointer compare: no interface equality in device builds
		return errors.New("expr: EvalInto needs a destination distinct from env")
	}
	dst.Reset()
	for i, k := range n.keys {
		if err := dst.Set(k, vals[i]); err != nil {
			return err
		}
	}
	return nil
}

func (p *Program) fail(n *node, opName string, a, b value.Value, err error) (value.Value, error) {
	return value.Value{}, &EvalError{Offset: n.pos, Op: opName, A: a.K, B: b.K, Err: err}
}

var opNames = [...]string{opAdd: "+", opSub: "-", opMul: "*", opDiv: "/", opMod: "%", opPow: "**",
	opLt: "<", opLe: "<=", opGt: ">", opGe: ">=", opEq: "==", opNe: "!=", opAnd: "&&", opOr: "||",
	opNeg: "-", opPos: "+", opNot: "!", opContains: "contains", opStartsWith: "startsWith",
	opEndsWith: "endsWith", opIn: "in", opCond: "?:", opCall: "call", opArray: "[]", opMap: "{}",
	opConst: "const", opIdent: "ident"}

func (p *Program) lookup(n *node, env value.Env) value.Value {
	if o, ok := env.(*value.Object); ok {
		if h := int(n.hint); h < o.Len() {
			if f := o.Field(h); value.EqualString(f.Name, n.name) {
				return f.Val
			}
		}
		for i := 0; i < o.Len(); i++ {
			if f := o.Field(i); value.EqualString(f.Name, n.name) {
				n.hint = int32(i)
				return f.Val
			}
		}
		return value.Value{}
	}
	v, _ := env.Lookup(n.name)
	return v
}

func (p *Program) eval(i int32, env value.Env) (value.Value, error) {
	n := &p.nodes[i]
	switch n.op {
	case opConst:
		return n.v, nil
	case opIdent:
		return p.lookup(n, env), nil
	case opNeg, opPos, opNot:
		x, err := p.eval(n.a, env)
		if err != nil {
			return x, err
		}
		switch {
		case n.op == opNot && x.K == value.Bool:
			return value.BoolOf(!x.B), nil
		case n.op == opNeg && x.K == value.Int:
			return value.IntOf(-x.I), nil
		case n.op == opNeg && x.K == value.Float:
			return value.FloatOf(-x.F), nil
		case n.op == opPos && x.IsNumber():
			return x, nil
		}
		return p.fail(n, opNames[n.op], x, value.Value{}, ErrType)
	case opAnd, opOr:
		a, err := p.eval(n.a, env)
		if err != nil {
			return a, err
		}
		if a.K != value.Bool {
			return p.fail(n, opNames[n.op], a, value.Value{}, ErrType)
		}
		if n.op == opAnd && !a.B || n.op == opOr && a.B {
			return a, nil
		}
		b, err := p.eval(n.b, env)
		if err != nil {
			return b, err
		}
		if b.K != value.Bool {
			return p.fail(n, opNames[n.op], a, b, ErrType)
		}
		return b, nil
	case opCond:
		c, err := p.eval(n.a, env)
		if err != nil {
			return c, err
		}
		if c.K != value.Bool {
			return p.fail(n, "?:", c, value.Value{}, ErrType)
		}
		if c.B {
			return p.eval(n.b, env)
		}
		return p.eval(n.c, env)
	case opIn:
		x, err := p.eval(n.a, env)
		if err != nil {
			return x, err
		}
		for _, e := range p.nodes[n.b].args {
			y, err := p.eval(e, env)
			if err != nil {
				return y, err
			}
			if x.Equal(y) {
				return value.BoolOf(true), nil
			}
		}
		return value.BoolOf(false), nil
	case opCall:
		return p.call(n, env)
	case opArray, opMap:
		return p.fail(n, opNames[n.op], value.Value{}, value.Value{}, ErrType)
	}
	a, err := p.eval(n.a, env)
	if err != nil {
		return a, err
	}
	b, err := p.eval(n.b, env)
	if err != nil {
		return b, err
	}
	return p.binary(n, a, b)
}

func (p *Program) binary(n *node, a, b value.Value) (value.Value, error) {
	switch n.op {
	case opEq, opNe:
		// Like expr-lang at run time, values of different kinds are unequal;
		// a Schema makes mismatched kinds a compile error instead.
		return value.BoolOf(a.Equal(b) == (n.op == opEq)), nil
	case opLt, opLe, opGt, opGe:
		c, ok := compare(a, b)
		if !ok {
			return p.fail(n, opNames[n.op], a, b, ErrType)
		}
		if c == unordered {
			return value.BoolOf(false), nil
		}
		switch n.op {
		case opLt:
			return value.BoolOf(c < 0), nil
		case opLe:
			return value.BoolOf(c <= 0), nil
		case opGt:
			return value.BoolOf(c > 0), nil
		}
		return value.BoolOf(c >= 0), nil
	case opContains, opStartsWith, opEndsWith:
		if a.K != value.String || b.K != value.String {
			return p.fail(n, opNames[n.op], a, b, ErrType)
		}
		switch n.op {
		case opContains:
			return value.BoolOf(index(a.S, b.S) >= 0), nil
		case opStartsWith:
			return value.BoolOf(len(a.S) >= len(b.S) && value.BytesEqual(a.S[:len(b.S)], b.S)), nil
		}
		return value.BoolOf(len(a.S) >= len(b.S) && value.BytesEqual(a.S[len(a.S)-len(b.S):], b.S)), nil
	case opAdd:
		if a.K == value.String && b.K == value.String {
			return p.concat(n, a, b)
		}
	case opMod:
		if a.K == value.Int && b.K == value.Int {
			if b.I == 0 {
				return p.fail(n, "%", a, b, ErrDivZero)
			}
			if b.I == -1 { // avoid the MinInt64 % -1 trap; Go defines it as 0
				return value.IntOf(0), nil
			}
			return value.IntOf(a.I % b.I), nil
		}
		return p.fail(n, "%", a, b, ErrType)
	}
	if !a.IsNumber() || !b.IsNumber() {
		return p.fail(n, opNames[n.op], a, b, ErrType)
	}
	if a.K == value.Int && b.K == value.Int {
		switch n.op {
		case opAdd:
			return value.IntOf(a.I + b.I), nil
		case opSub:
			return value.IntOf(a.I - b.I), nil
		case opMul:
			return value.IntOf(a.I * b.I), nil
		}
	}
	x, _ := a.Num()
	y, _ := b.Num()
	switch n.op {
	case opAdd:
		return value.FloatOf(x + y), nil
	case opSub:
		return value.FloatOf(x - y), nil
	case opMul:
		return value.FloatOf(x * y), nil
	case opDiv:
		return value.FloatOf(x / y), nil
	case opPow:
		return value.FloatOf(math.Pow(x, y)), nil
	}
	return p.fail(n, opNames[n.op], a, b, ErrType)
}

const unordered = 2

// compare orders numbers (across int and float) and strings (bytewise).
func compare(a, b value.Value) (int, bool) {
	switch {
	case a.K == value.Int && b.K == value.Int:
		switch {
		case a.I < b.I:
			return -1, true
		case a.I > b.I:
			return 1, true
		}
		return 0, true
	case a.IsNumber() && b.IsNumber():
		x, _ := a.Num()
		y, _ := b.Num()
		switch {
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		case x == y:
			return 0, true
		}
		return unordered, true // NaN: every ordering comparison is false
	case a.K == value.String && b.K == value.String:
		s, t := a.S, b.S
		for i := 0; i < len(s) && i < len(t); i++ {
			if s[i] != t[i] {
				if s[i] < t[i] {
					return -1, true
				}
				return 1, true
			}
		}
		switch {
		case len(s) < len(t):
			return -1, true
		case len(s) > len(t):
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func index(s, sub []byte) int {
	if len(sub) == 0 {
		return 0
	}
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i] == sub[0] && value.BytesEqual(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

func (p *Program) alloc(n int) ([]byte, bool) {
	l := len(p.scratch)
	if cap(p.scratch)-l < n {
		return nil, false
	}
	p.scratch = p.scratch[:l+n]
	return p.scratch[l : l+n : l+n], true
}

func (p *Program) concat(n *node, a, b value.Value) (value.Value, error) {
	buf, ok := p.alloc(len(a.S) + len(b.S))
	if !ok {
		return p.fail(n, "+", a, b, ErrScratch)
	}
	copy(buf, a.S)
	copy(buf[len(a.S):], b.S)
	return value.BytesOf(buf), nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func (p *Program) call(n *node, env value.Env) (value.Value, error) {
	var args [2]value.Value
	for i, a := range n.args {
		v, err := p.eval(a, env)
		if err != nil {
			return v, err
		}
		args[i] = v
	}
	a, b := args[0], args[1]
	switch n.fn {
	case fnLen:
		if a.K == value.String {
			return value.IntOf(int64(utf8.RuneCount(a.S))), nil
		}
	case fnLower, fnUpper:
		if a.K == value.String {
			buf, ok := p.alloc(len(a.S))
			if !ok {
				return p.fail(n, n.name, a, b, ErrScratch)
			}
			for i, c := range a.S {
				if n.fn == fnLower && c >= 'A' && c <= 'Z' {
					c += 'a' - 'A'
				} else if n.fn == fnUpper && c >= 'a' && c <= 'z' {
					c -= 'a' - 'A'
				}
				buf[i] = c
			}
			return value.BytesOf(buf), nil
		}
	case fnTrim:
		if a.K == value.String {
			s := a.S
			for len(s) > 0 && isSpace(s[0]) {
				s = s[1:]
			}
			for len(s) > 0 && isSpace(s[len(s)-1]) {
				s = s[:len(s)-1]
			}
			return value.BytesOf(s), nil
		}
	case fnHasPrefix, fnHasSuffix:
		if a.K == value.String && b.K == value.String {
			if len(a.S) < len(b.S) {
				return value.BoolOf(false), nil
			}
			if n.fn == fnHasPrefix {
				return value.BoolOf(value.BytesEqual(a.S[:len(b.S)], b.S)), nil
			}
			return value.BoolOf(value.BytesEqual(a.S[len(a.S)-len(b.S):], b.S)), nil
		}
	case fnAbs:
		switch a.K {
		case value.Int:
			if a.I < 0 {
				return value.IntOf(-a.I), nil
			}
			return a, nil
		case value.Float:
			return value.FloatOf(math.Abs(a.F)), nil
		}
	case fnInt:
		switch a.K {
		case value.Int:
			return a, nil
		case value.Float:
			return value.IntOf(int64(a.F)), nil
		case value.String:
			i, ok := parseInt(bytesString(a.S), 10)
			if !ok {
				return p.fail(n, n.name, a, b, ErrConvert)
			}
			return value.IntOf(i), nil
		}
	case fnFloat:
		switch a.K {
		case value.Int:
			return value.FloatOf(float64(a.I)), nil
		case value.Float:
			return a, nil
		case value.String:
			f, ok := parseFloat(bytesString(a.S))
			if !ok {
				return p.fail(n, n.name, a, b, ErrConvert)
			}
			return value.FloatOf(f), nil
		}
	}
	return p.fail(n, n.name, a, b, ErrType)
}

package expr

import (
	"strconv"
	"strings"

	"github.com/aimdb-dev/aimdb-flow/device/value"
)

type op uint8

const (
	opConst op = iota
	opIdent
	opNeg
	opPos
	opNot
	opAdd
	opSub
	opMul
	opDiv
	opMod
	opPow
	opEq
	opNe
	opLt
	opLe
	opGt
	opGe
	opAnd
	opOr
	opIn
	opContains
	opStartsWith
	opEndsWith
	opCond
	opCall
	opArray
	opMap
)

type fn uint8

const (
	fnLen fn = iota
	fnLower
	fnUpper
	fnTrim
	fnHasPrefix
	fnHasSuffix
	fnAbs
	fnInt
	fnFloat
)

// lookupFunction returns the built-in function called name and its arity;
// they behave like expr-lang's builtins of the same name. (Switches rather
// than package-level maps: smaller on microcontrollers, and no map
// initialisation at start-up.)
func lookupFunction(name string) (fn, int, bool) {
	switch name {
	case "len":
		return fnLen, 1, true
	case "lower":
		return fnLower, 1, true
	case "upper":
		return fnUpper, 1, true
	case "trim":
		return fnTrim, 1, true
	case "hasPrefix":
		return fnHasPrefix, 2, true
	case "hasSuffix":
		return fnHasSuffix, 2, true
	case "abs":
		return fnAbs, 1, true
	case "int":
		return fnInt, 1, true
	case "float":
		return fnFloat, 1, true
	}
	return 0, 0, false
}

type node struct {
	op   op
	fn   fn
	a    int32 // first operand
	b    int32 // second operand
	c    int32 // third operand (conditional)
	args []int32
	keys []string // map literal keys (same order as args)
	v    value.Value
	name string // identifier
	hint int32  // last field index where name was found (Object fast path)
	pos  int
}

type binOp struct {
	prec  int
	right bool
	op    op
}

// lookupBinOp returns a binary operator of the subset with expr-lang's
// precedence and associativity.
func lookupBinOp(text string) (binOp, bool) {
	switch text {
	case "or", "||":
		return binOp{10, false, opOr}, true
	case "and", "&&":
		return binOp{15, false, opAnd}, true
	case "==":
		return binOp{20, false, opEq}, true
	case "!=":
		return binOp{20, false, opNe}, true
	case "<":
		return binOp{20, false, opLt}, true
	case ">":
		return binOp{20, false, opGt}, true
	case ">=":
		return binOp{20, false, opGe}, true
	case "<=":
		return binOp{20, false, opLe}, true
	case "in":
		return binOp{20, false, opIn}, true
	case "contains":
		return binOp{20, false, opContains}, true
	case "startsWith":
		return binOp{20, false, opStartsWith}, true
	case "endsWith":
		return binOp{20, false, opEndsWith}, true
	case "+":
		return binOp{30, false, opAdd}, true
	case "-":
		return binOp{30, false, opSub}, true
	case "*":
		return binOp{60, false, opMul}, true
	case "/":
		return binOp{60, false, opDiv}, true
	case "%":
		return binOp{60, false, opMod}, true
	case "**", "^":
		return binOp{100, true, opPow}, true
	}
	return binOp{}, false
}

// unsupportedOp names expr-lang operators the device subset does not
// implement.
func unsupportedOp(text string) (string, bool) {
	switch text {
	case "|":
		return "the pipe operator", true
	case "matches":
		return "regular expressions (matches)", true
	case "..":
		return "ranges (..)", true
	case "??":
		return "nil coalescing (??)", true
	case "?.":
		return "optional chaining (?.)", true
	case ".":
		return "member access", true
	case "#":
		return "predicates (#)", true
	case "::":
		return "namespaced calls (::)", true
	case "let":
		return "variables (let)", true
	case "if":
		return "if/else", true
	}
	return "", false
}

type parser struct {
	toks  []token
	i     int
	nodes []node
	src   string
}

func (p *parser) cur() token { return p.toks[p.i] }
func (p *parser) next()      { p.i++ }

func (p *parser) add(n node) int32 {
	p.nodes = append(p.nodes, n)
	return int32(len(p.nodes) - 1)
}

func (p *parser) isOp(s string) bool {
	t := p.cur()
	return t.kind == tOp && t.text == s
}

func (p *parser) isPunct(s string) bool {
	t := p.cur()
	return t.kind == tPunct && t.text == s
}

func unsupported(t token) *Error {
	if what, ok := unsupportedOp(t.text); ok {
		return errAt(t.pos, what+" is outside the device subset")
	}
	return errAt(t.pos, "unexpected "+describe(t))
}

func describe(t token) string {
	switch t.kind {
	case tEOF:
		return "end of expression"
	case tStr:
		return "string " + strconv.Quote(t.str)
	}
	return strconv.Quote(t.text)
}

// parseExpression mirrors expr-lang's precedence climbing so that the same
// text parses to the same tree (including comparison chaining a < b < c).
func (p *parser) parseExpression(prec int) (int32, error) {
	if t := p.cur(); prec == 0 && t.kind == tOp && (t.text == "let" || t.text == "if") {
		return 0, unsupported(t)
	}
	left, err := p.parsePrimary()
	if err != nil {
		return 0, err
	}
	for {
		t := p.cur()
		if t.kind != tOp {
			break
		}
		negate := false
		if t.text == "not" {
			nt := p.toks[p.i+1]
			if nt.kind == tOp && (nt.text == "in" || nt.text == "contains" || nt.text == "startsWith" || nt.text == "endsWith" || nt.text == "matches") {
				if bo, _ := lookupBinOp(nt.text); bo.prec < prec && nt.text != "matches" {
					break
				}
				negate = true
				p.next()
				t = p.cur()
			} else {
				return 0, errAt(nt.pos, "unexpected "+describe(nt))
			}
		}
		bo, ok := lookupBinOp(t.text)
		if !ok {
			if _, bad := unsupportedOp(t.text); bad {
				return 0, unsupported(t)
			}
			break
		}
		if bo.prec < prec {
			break
		}
		p.next()
		if bo.op == opLt || bo.op == opGt || bo.op == opLe || bo.op == opGe {
			left, err = p.parseComparison(left, t, bo.prec)
			if err != nil {
				return 0, err
			}
			continue
		}
		rp := bo.prec + 1
		if bo.right {
			rp = bo.prec
		}
		right, err := p.parseExpression(rp)
		if err != nil {
			return 0, err
		}
		if bo.op == opIn && p.nodes[right].op != opArray {
			return 0, errAt(t.pos, "'in' needs an array literal on the right in the device subset")
		}
		left = p.add(node{op: bo.op, a: left, b: right, pos: t.pos})
		if negate {
			left = p.add(node{op: opNot, a: left, pos: t.pos})
		}
	}
	if prec == 0 && p.isOp("?") {
		return p.parseConditional(left)
	}
	return left, nil
}

func (p *parser) parseComparison(left int32, t token, prec int) (int32, error) {
	root := int32(-1)
	for {
		right, err := p.parseExpression(prec + 1)
		if err != nil {
			return 0, err
		}
		bo, _ := lookupBinOp(t.text)
		cmp := p.add(node{op: bo.op, a: left, b: right, pos: t.pos})
		if root < 0 {
			root = cmp
		} else {
			root = p.add(node{op: opAnd, a: root, b: cmp, pos: t.pos})
		}
		left = right
		t = p.cur()
		if !(t.kind == tOp && (t.text == "<" || t.text == ">" || t.text == "<=" || t.text == ">=")) {
			return root, nil
		}
		p.next()
	}
}

func (p *parser) parseConditional(cond int32) (int32, error) {
	for p.isOp("?") {
		pos := p.cur().pos
		p.next()
		var a, b int32
		var err error
		if p.isPunct(":") {
			return 0, errAt(p.cur().pos, "the short ternary ?: is outside the device subset")
		}
		if a, err = p.parseExpression(0); err != nil {
			return 0, err
		}
		if !p.isPunct(":") {
			return 0, errAt(p.cur().pos, "expected ':' in conditional, found "+describe(p.cur()))
		}
		p.next()
		if b, err = p.parseExpression(0); err != nil {
			return 0, err
		}
		cond = p.add(node{op: opCond, a: cond, b: a, c: b, pos: pos})
	}
	return cond, nil
}

func (p *parser) parsePrimary() (int32, error) {
	t := p.cur()
	if t.kind == tOp {
		var o op
		prec := 0
		switch t.text {
		case "not", "!":
			o, prec = opNot, 50
		case "-":
			o, prec = opNeg, 90
		case "+":
			o, prec = opPos, 90
		default:
			return 0, unsupported(t)
		}
		p.next()
		x, err := p.parseExpression(prec)
		if err != nil {
			return 0, err
		}
		return p.postfix(p.add(node{op: o, a: x, pos: t.pos}))
	}
	if p.isPunct("(") {
		p.next()
		x, err := p.parseExpression(0)
		if err != nil {
			return 0, err
		}
		if !p.isPunct(")") {
			return 0, errAt(p.cur().pos, "expected ')', found "+describe(p.cur()))
		}
		p.next()
		return p.postfix(x)
	}
	return p.parseSecondary()
}

func (p *parser) postfix(x int32) (int32, error) {
	t := p.cur()
	if t.kind == tOp && (t.text == "." || t.text == "?.") || p.isPunct("[") {
		if t.kind == tPunct {
			return 0, errAt(t.pos, "indexing is outside the device subset")
		}
		return 0, unsupported(t)
	}
	return x, nil
}

func (p *parser) parseSecondary() (int32, error) {
	t := p.cur()
	switch t.kind {
	case tNum:
		p.next()
		v, err := parseNumber(t.text)
		if err != nil {
			return 0, errAt(t.pos, err.Error())
		}
		return p.postfix(p.add(node{op: opConst, v: v, pos: t.pos}))
	case tStr:
		p.next()
		return p.postfix(p.add(node{op: opConst, v: value.StringOf(t.str), pos: t.pos}))
	case tIdent:
		p.next()
		switch t.text {
		case "true", "false":
			return p.postfix(p.add(node{op: opConst, v: value.BoolOf(t.text == "true"), pos: t.pos}))
		case "nil":
			return p.postfix(p.add(node{op: opConst, pos: t.pos}))
		}
		if p.isPunct("(") {
			return p.parseCall(t)
		}
		return p.postfix(p.add(node{op: opIdent, name: t.text, pos: t.pos}))
	case tPunct:
		switch t.text {
		case "[":
			return p.parseArray()
		case "{":
			return p.parseMap()
		}
	}
	return 0, errAt(t.pos, "unexpected "+describe(t))
}

func (p *parser) parseCall(name token) (int32, error) {
	f, arity, ok := lookupFunction(name.text)
	if !ok {
		return 0, errAt(name.pos, "function "+name.text+" is outside the device subset (have "+functionNames()+")")
	}
	p.next() // (
	var args []int32
	for !p.isPunct(")") {
		if len(args) > 0 {
			if !p.isPunct(",") {
				return 0, errAt(p.cur().pos, "expected ',' or ')', found "+describe(p.cur()))
			}
			p.next()
			if p.isPunct(")") {
				break
			}
		}
		a, err := p.parseExpression(0)
		if err != nil {
			return 0, err
		}
		args = append(args, a)
	}
	p.next()
	if len(args) != arity {
		return 0, errAt(name.pos, name.text+" takes "+strconv.Itoa(arity)+" argument(s), got "+strconv.Itoa(len(args)))
	}
	return p.postfix(p.add(node{op: opCall, fn: f, args: args, name: name.text, pos: name.pos}))
}

func functionNames() string {
	return "len, lower, upper, trim, hasPrefix, hasSuffix, abs, int, float"
}

func (p *parser) parseArray() (int32, error) {
	pos := p.cur().pos
	p.next()
	var args []int32
	for !p.isPunct("]") {
		if len(args) > 0 {
			if !p.isPunct(",") {
				return 0, errAt(p.cur().pos, "expected ',' or ']', found "+describe(p.cur()))
			}
			p.next()
			if p.isPunct("]") {
				break
			}
		}
		a, err := p.parseExpression(0)
		if err != nil {
			return 0, err
		}
		if o := p.nodes[a].op; o == opArray || o == opMap {
			return 0, errAt(p.nodes[a].pos, "nested arrays and maps are outside the device subset")
		}
		args = append(args, a)
	}
	p.next()
	return p.postfix(p.add(node{op: opArray, args: args, pos: pos}))
}

func (p *parser) parseMap() (int32, error) {
	pos := p.cur().pos
	p.next()
	var args []int32
	var keys []string
	for !p.isPunct("}") {
		if len(args) > 0 {
			if !p.isPunct(",") {
				return 0, errAt(p.cur().pos, "expected ',' or '}', found "+describe(p.cur()))
			}
			p.next()
			if p.isPunct("}") {
				break
			}
		}
		k := p.cur()
		var key string
		switch k.kind {
		case tStr:
			key = k.str
		case tIdent:
			key = k.text
		case tNum:
			key = k.text
		default:
			return 0, errAt(k.pos, "map key must be a name or a string, found "+describe(k))
		}
		p.next()
		if !p.isPunct(":") {
			return 0, errAt(p.cur().pos, "expected ':' after map key, found "+describe(p.cur()))
		}
		p.next()
		a, err := p.parseExpression(0)
		if err != nil {
			return 0, err
		}
		if o := p.nodes[a].op; o == opArray || o == opMap {
			return 0, errAt(p.nodes[a].pos, "nested arrays and maps are outside the device subset (objects are flat)")
		}
		for _, prev := range keys {
			if prev == key {
				return 0, errAt(k.pos, "duplicate map key "+strconv.Quote(key))
			}
		}
		keys = append(keys, key)
		args = append(args, a)
	}
	p.next()
	return p.postfix(p.add(node{op: opMap, args: args, keys: keys, pos: pos}))
}

func parseNumber(s string) (value.Value, error) {
	clean := strings.ReplaceAll(s, "_", "")
	if strings.HasPrefix(clean, "0x") || strings.HasPrefix(clean, "0X") {
		i, ok := parseInt(clean[2:], 16)
		if !ok || clean[2:] == "" || clean[2] == '+' || clean[2] == '-' {
			return value.Value{}, strError("invalid number " + s)
		}
		return value.IntOf(i), nil
	}
	if strings.ContainsAny(clean, ".eE") {
		f, ok := parseFloat(clean)
		if !ok {
			return value.Value{}, strError("float literal " + s + " is outside the device subset (at most 15 significant digits and |exponent| <= 22)")
		}
		return value.FloatOf(f), nil
	}
	i, ok := parseInt(clean, 10)
	if !ok {
		return value.Value{}, strError("invalid integer " + s)
	}
	return value.IntOf(i), nil
}

package expr

import "github.com/aimdb-dev/aimdb-flow/device/value"

// Schema gives the kinds of a record's fields. Compiling with WithSchema
// type-checks the expression statically (as expr-lang does with an Env):
// unknown fields and operands of the wrong kind are compile errors even in
// branches that would not run.
type Schema map[string]value.Kind

// WithSchema type-checks the expression against the record schema s.
func WithSchema(s Schema) Option { return func(p *Program) { p.schema = s } }

// any is the type of an operand whose kind is only known at run time.
const anyKind value.Kind = 255

func typeName(k value.Kind) string {
	if k == anyKind {
		return "any"
	}
	return k.String()
}

func isNum(k value.Kind) bool  { return k == value.Int || k == value.Float || k == anyKind }
func isStr(k value.Kind) bool  { return k == value.String || k == anyKind }
func isBool(k value.Kind) bool { return k == value.Bool || k == anyKind }

func (p *Program) typeErr(n *node, opName string, a, b value.Kind) error {
	msg := "invalid operation: " + opName + " (mismatched types " + typeName(a)
	if b != value.Nil || n.op == opEq || n.op == opNe {
		msg += " and " + typeName(b)
	}
	return errAt(n.pos, msg+")")
}

// typecheck infers the kind of node i; schema may be nil (fields are any).
func (p *Program) typecheck(i int32, schema Schema) (value.Kind, error) {
	n := &p.nodes[i]
	sub := func(j int32) (value.Kind, error) { return p.typecheck(j, schema) }
	switch n.op {
	case opConst:
		return n.v.K, nil
	case opIdent:
		if schema == nil {
			return anyKind, nil
		}
		k, ok := schema[n.name]
		if !ok {
			return 0, errAt(n.pos, "unknown name "+n.name)
		}
		return k, nil
	case opArray, opMap:
		for _, a := range n.args {
			if _, err := sub(a); err != nil {
				return 0, err
			}
		}
		return anyKind, nil
	case opCall:
		var ks [2]value.Kind
		for j, a := range n.args {
			k, err := sub(a)
			if err != nil {
				return 0, err
			}
			ks[j] = k
		}
		a := ks[0]
		switch n.fn {
		case fnLen:
			if isStr(a) {
				return value.Int, nil
			}
		case fnLower, fnUpper, fnTrim:
			if isStr(a) {
				return value.String, nil
			}
		case fnHasPrefix, fnHasSuffix:
			if isStr(a) && isStr(ks[1]) {
				return value.Bool, nil
			}
		case fnAbs:
			if isNum(a) {
				return a, nil
			}
		case fnInt, fnFloat:
			if isNum(a) || a == value.String {
				if n.fn == fnInt {
					return value.Int, nil
				}
				return value.Float, nil
			}
		}
		return 0, errAt(n.pos, "invalid argument for "+n.name+" (type "+typeName(a)+")")
	case opNot, opNeg, opPos:
		a, err := sub(n.a)
		if err != nil {
			return 0, err
		}
		if n.op == opNot {
			if isBool(a) {
				return value.Bool, nil
			}
		} else if isNum(a) {
			return a, nil
		}
		return 0, p.typeErr(n, opNames[n.op], a, value.Nil)
	case opCond:
		c, err := sub(n.a)
		if err != nil {
			return 0, err
		}
		if !isBool(c) {
			return 0, errAt(n.pos, "non-bool expression (type "+typeName(c)+") used as condition")
		}
		a, err := sub(n.b)
		if err != nil {
			return 0, err
		}
		b, err := sub(n.c)
		if err != nil {
			return 0, err
		}
		if a == b {
			return a, nil
		}
		return anyKind, nil
	}
	a, err := sub(n.a)
	if err != nil {
		return 0, err
	}
	b, err := sub(n.b)
	if err != nil {
		return 0, err
	}
	known := a != anyKind && b != anyKind
	switch n.op {
	case opIn:
		return value.Bool, nil
	case opAnd, opOr:
		if isBool(a) && isBool(b) {
			return value.Bool, nil
		}
	case opEq, opNe:
		if !known || a == b || a == value.Nil || b == value.Nil || isNum(a) && isNum(b) {
			return value.Bool, nil
		}
	case opLt, opLe, opGt, opGe:
		if isNum(a) && isNum(b) || isStr(a) && isStr(b) {
			return value.Bool, nil
		}
	case opContains, opStartsWith, opEndsWith:
		if isStr(a) && isStr(b) {
			return value.Bool, nil
		}
	case opAdd, opSub, opMul:
		switch {
		case a == value.Int && b == value.Int:
			return value.Int, nil
		case known && isNum(a) && isNum(b):
			return value.Float, nil
		case n.op == opAdd && isStr(a) && isStr(b) && (a == value.String || b == value.String):
			return value.String, nil
		case !known && (isNum(a) && isNum(b) || n.op == opAdd && isStr(a) && isStr(b)):
			return anyKind, nil
		}
	case opDiv, opPow:
		if isNum(a) && isNum(b) {
			return value.Float, nil
		}
	case opMod:
		if (a == value.Int || a == anyKind) && (b == value.Int || b == anyKind) {
			return value.Int, nil
		}
	}
	return 0, p.typeErr(n, opNames[n.op], a, b)
}

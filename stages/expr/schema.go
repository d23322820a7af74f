package expr

import (
	"errors"
	"regexp"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/google/cel-go/cel"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Check type-checks the expression against a record schema: the fields
// it names must exist (a misspelled one is an error with "did you mean")
// and be used as their types allow (`device > 25` on a string field is an
// error). The helpers topic, key and value stay available. Check compiles
// a typed twin of the program and discards it: evaluation is unchanged.
func (p *Program) Check(schema pipeline.Schema) error {
	if p.lang == CEL {
		return p.checkCEL(schema)
	}
	env := map[string]any{"topic": "", "key": "", "value": nil}
	for _, f := range schema {
		env[f.Name] = sample(f.Type)
	}
	opts := []expr.Option{expr.Env(env)}
	if p.want == Bool {
		opts = append(opts, expr.AsBool())
	}
	if _, err := expr.Compile(p.src, opts...); err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return &CompileError{Line: max(fe.Line, 1), Col: fe.Column + 1, Msg: fe.Message + schemaHint(fe.Message, unknownExpr, schema)}
		}
		return &CompileError{Line: 1, Col: 1, Msg: err.Error()}
	}
	return nil
}

// sample is a value of the type, for expr-lang's typed environment (nil:
// any type).
func sample(t pipeline.FieldType) any {
	switch t {
	case pipeline.String:
		return ""
	case pipeline.Float:
		return 0.0
	case pipeline.Int:
		return 0
	case pipeline.Bool:
		return false
	case pipeline.Object:
		return map[string]any{}
	case pipeline.List:
		return []any{}
	}
	return nil
}

var (
	unknownExpr = regexp.MustCompile(`unknown name (\w+)`)
	unknownCEL  = regexp.MustCompile(`undeclared reference to '(\w+)'`)
)

// schemaHint suggests a schema field for an unknown name in msg.
func schemaHint(msg string, re *regexp.Regexp, schema pipeline.Schema) string {
	m := re.FindStringSubmatch(msg)
	if m == nil {
		return ""
	}
	hint := " (not a field of the record's schema"
	if dym := pipeline.DidYouMean(m[1], schema.Names()); dym != "" {
		hint += "; " + strings.TrimSuffix(strings.TrimPrefix(dym, " ("), ")")
	}
	return hint + ")"
}

func (p *Program) checkCEL(schema pipeline.Schema) error {
	opts := []cel.EnvOption{cel.CrossTypeNumericComparisons(true),
		cel.Variable("topic", cel.StringType), cel.Variable("key", cel.StringType), cel.Variable("value", cel.DynType)}
	for _, f := range schema {
		opts = append(opts, cel.Variable(f.Name, celType(f.Type)))
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return err
	}
	_, iss := env.Compile(p.src)
	if iss.Err() != nil {
		ce := celError(iss).(*CompileError)
		ce.Msg += schemaHint(ce.Msg, unknownCEL, schema)
		return ce
	}
	return nil
}

func celType(t pipeline.FieldType) *cel.Type {
	switch t {
	case pipeline.String:
		return cel.StringType
	case pipeline.Float:
		return cel.DoubleType
	case pipeline.Int:
		return cel.IntType
	case pipeline.Bool:
		return cel.BoolType
	case pipeline.Object:
		return cel.MapType(cel.StringType, cel.DynType)
	case pipeline.List:
		return cel.ListType(cel.DynType)
	}
	return cel.DynType
}

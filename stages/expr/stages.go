package expr

import (
	"context"
	"fmt"
	"strings"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

type filterStage struct{ p *Program }

// Filter returns a stage keeping the records for which p is true. A
// non-boolean result or an evaluation error is a stage error (the record is
// dead-lettered).
func Filter(p *Program) pipeline.Processor { return filterStage{p} }

func (filterStage) Kind() string { return "filter" }

// PreservesValue implements pipeline.ValuePreserver: an expression reads
// the record, never changes it.
func (filterStage) PreservesValue() bool { return true }

func (f filterStage) String() string { return "filter " + f.p.String() }

func (f filterStage) Process(ctx context.Context, env *pipeline.Envelope, next pipeline.Emit) error {
	out, err := f.p.Eval(env)
	if err != nil {
		return err
	}
	keep, ok := out.(bool)
	if !ok {
		return fmt.Errorf("%s: result is %T, want bool", f.p, out)
	}
	if !keep {
		return nil
	}
	return next(ctx, env)
}

type mapStage struct{ p *Program }

// Map returns a stage replacing each record's value with p's result
// (typically an object literal: `{"device": device, "alert": true}`). The
// payload is cleared: outputs encode the new value.
func Map(p *Program) pipeline.Processor { return mapStage{p} }

func (mapStage) Kind() string { return "map" }

func (m mapStage) String() string { return "map " + m.p.String() }

func (m mapStage) Process(ctx context.Context, env *pipeline.Envelope, next pipeline.Emit) error {
	out, err := m.p.Eval(env)
	if err != nil {
		return err
	}
	env.Value, env.Payload = out, nil
	return next(ctx, env)
}

// Key returns a key function (for outbound keys and dedupe) evaluating p
// and rendering the scalar result as bytes.
func Key(p *Program) pipeline.KeyFunc {
	return func(env *pipeline.Envelope) ([]byte, error) {
		out, err := p.Eval(env)
		if err != nil {
			return nil, err
		}
		s, err := pipeline.FormatScalar(out)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", p, err)
		}
		return []byte(s), nil
	}
}

// Assignment is one field set by a Set stage.
type Assignment struct {
	Field string
	Expr  *Program
}

type setStage struct{ as []Assignment }

// Set returns a stage that sets fields of an object value (the DSL's
// set alert `true`): the value is copied, the expressions are evaluated against
// the original, and the results stored in the copy, so other readers of the
// same record never see the change. A value that is not an object, or an
// evaluation error, is a stage error.
func Set(as ...Assignment) pipeline.Processor { return setStage{as} }

func (setStage) Kind() string { return "set" }

func (s setStage) String() string {
	parts := make([]string, len(s.as))
	for i, a := range s.as {
		parts[i] = "set " + a.Field + " " + a.Expr.String()
	}
	return strings.Join(parts, "\n")
}

func (s setStage) Process(ctx context.Context, env *pipeline.Envelope, next pipeline.Emit) error {
	if o, ok := env.Value.(*codec.Object); ok {
		// A lazily decoded object: the new fields go into an overlay
		// (the index and the payload bytes are shared, not copied).
		var buf [4]codec.KeyValue
		kv := buf[:0]
		for _, a := range s.as {
			v, err := a.Expr.Eval(env)
			if err != nil {
				return err
			}
			kv = append(kv, codec.KeyValue{Key: a.Field, Value: v})
		}
		env.Value, env.Payload = o.With(kv...), nil
		return next(ctx, env)
	}
	m, ok := env.Value.(map[string]any)
	if !ok {
		return fmt.Errorf("set %s: value is %T, want an object", s.as[0].Field, env.Value)
	}
	out := make(map[string]any, len(m)+len(s.as))
	for k, v := range m {
		out[k] = v
	}
	for _, a := range s.as {
		v, err := a.Expr.Eval(env)
		if err != nil {
			return err
		}
		out[a.Field] = v
	}
	env.Value, env.Payload = out, nil
	return next(ctx, env)
}

// Package stages provides the standard pipeline stages: filter, map, tap,
// decode/encode, dedupe (fused, synchronous Processors) and batch, throttle
// and windows (AsyncStages that cut the pipeline into concurrent parts).
//
// Function-based stages take the envelope; the typed variants (FilterValue,
// MapValue) take the decoded value and report a type mismatch as a stage
// error, which dead-letters the record.
package stages

import (
	"context"
	"fmt"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

type filter struct {
	fn func(*pipeline.Envelope) (bool, error)
}

// Filter keeps the envelopes for which fn returns true. An error
// dead-letters the envelope.
func Filter(fn func(env *pipeline.Envelope) (bool, error)) pipeline.Processor { return filter{fn} }

func (filter) Kind() string { return "filter" }

func (f filter) Process(ctx context.Context, env *pipeline.Envelope, next pipeline.Emit) error {
	ok, err := f.fn(env)
	if err != nil || !ok {
		return err
	}
	return next(ctx, env)
}

type mapper struct {
	fn func(*pipeline.Envelope) error
}

// Map transforms the envelope in place (typically replacing env.Value).
func Map(fn func(env *pipeline.Envelope) error) pipeline.Processor { return mapper{fn} }

func (mapper) Kind() string { return "map" }

func (m mapper) Process(ctx context.Context, env *pipeline.Envelope, next pipeline.Emit) error {
	if err := m.fn(env); err != nil {
		return err
	}
	return next(ctx, env)
}

// FilterValue keeps values of type T for which fn returns true; a value of
// another type is a stage error. When T is map[string]any (or an interface
// a map satisfies, such as any), a lazily decoded object
// (pipeline.Fields, what the DSL's json codec produces) is converted to
// its map first.
func FilterValue[T any](fn func(T) bool) pipeline.Processor {
	return Filter(func(env *pipeline.Envelope) (bool, error) {
		v, ok := valueAs[T](env.Value)
		if !ok {
			return false, typeError[T](env.Value)
		}
		return fn(v), nil
	})
}

// MapValue replaces a value of type T with fn's result; T is converted as
// for FilterValue.
func MapValue[T, U any](fn func(T) (U, error)) pipeline.Processor {
	return Map(func(env *pipeline.Envelope) error {
		v, ok := valueAs[T](env.Value)
		if !ok {
			return typeError[T](env.Value)
		}
		u, err := fn(v)
		if err != nil {
			return err
		}
		env.Value = u
		return nil
	})
}

// valueAs returns v as a T, converting a pipeline.Fields value to its map
// when a map is a T and the value itself is not.
func valueAs[T any](v any) (T, bool) {
	if f, ok := v.(pipeline.Fields); ok {
		if t, ok := v.(T); ok {
			if _, isIface := any((*T)(nil)).(*any); !isIface {
				return t, true // T is the Fields type itself
			}
		}
		if t, ok := any(f.Map()).(T); ok {
			return t, true
		}
	}
	t, ok := v.(T)
	return t, ok
}

func typeError[T any](v any) error {
	var want T
	return fmt.Errorf("value has type %T, want %T", v, any(want))
}

type tap struct{ fn func(*pipeline.Envelope) }

// Tap calls fn for every envelope and passes it on unchanged. fn must not
// keep env (copy it if needed).
func Tap(fn func(env *pipeline.Envelope)) pipeline.Processor { return tap{fn} }

func (tap) Kind() string { return "tap" }

func (t tap) Process(ctx context.Context, env *pipeline.Envelope, next pipeline.Emit) error {
	t.fn(env)
	return next(ctx, env)
}

type decode struct{ dec pipeline.Decoder }

// Decode decodes env.Payload into env.Value (for raw inbound links whose
// payload is decoded later in the pipeline).
func Decode(dec pipeline.Decoder) pipeline.Processor { return decode{dec} }

func (decode) Kind() string { return "decode" }

func (d decode) Process(ctx context.Context, env *pipeline.Envelope, next pipeline.Emit) error {
	v, err := d.dec.Decode(env.Payload)
	if err != nil {
		return err
	}
	env.Value = v
	return next(ctx, env)
}

type encode struct{ enc pipeline.Encoder }

// Encode encodes env.Value into env.Payload and clears the value, so later
// outputs pass the payload through unchanged.
func Encode(enc pipeline.Encoder) pipeline.Processor { return encode{enc} }

func (encode) Kind() string { return "encode" }

func (e encode) Process(ctx context.Context, env *pipeline.Envelope, next pipeline.Emit) error {
	p, err := e.enc.Encode(env.Value)
	if err != nil {
		return err
	}
	env.Payload, env.Value = p, nil
	return next(ctx, env)
}

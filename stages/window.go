package stages

import (
	"context"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	streams "github.com/reugn/go-streams"
	"github.com/reugn/go-streams/flow"
)

// TumblingWindow groups envelopes into fixed, non-overlapping windows of
// size (processing time), using go-streams' TumblingWindow. Each window is
// emitted as one envelope built by Group.
func TumblingWindow(size time.Duration) pipeline.AsyncStage {
	return &window{kind: "window tumbling", mk: func() streams.Flow { return flow.NewTumblingWindow[pipeline.Envelope](size) }}
}

// SlidingWindow groups envelopes into windows of size that start every
// slide, using go-streams' SlidingWindow (event time = Envelope.Time).
// An envelope belongs to every window covering it; its ack completes when
// the last of those windows completes.
func SlidingWindow(size, slide time.Duration) pipeline.AsyncStage {
	return &window{kind: "window sliding", overlapping: true, mk: func() streams.Flow {
		return flow.NewSlidingWindowWithOpts[pipeline.Envelope](size, slide, flow.SlidingWindowOpts[pipeline.Envelope]{
			EventTimeExtractor: func(e pipeline.Envelope) time.Time { return e.Time },
		})
	}}
}

// SessionWindow groups envelopes separated by less than gap, using
// go-streams' SessionWindow.
func SessionWindow(gap time.Duration) pipeline.AsyncStage {
	return &window{kind: "window session", mk: func() streams.Flow { return flow.NewSessionWindow[pipeline.Envelope](gap) }}
}

type window struct {
	kind        string
	overlapping bool
	mk          func() streams.Flow
	by          *keyBy // nil: one output per window
}

// keyBy makes a window keyed: each window's records are split by key.
type keyBy struct {
	field string                                    // the output field holding the key
	value func(env *pipeline.Envelope) (any, error) // the key's value, for the field
}

// ByKey returns w keyed: every window emits one record per distinct key
// among its records (in order of first appearance), whose value is an
// object {FIELD: key, "items": [...]} (the window's values with that key; "items", since values is an expr-lang builtin).
// The key is the record's Key (bytes): set it before the window, as the
// DSL's `window tumbling 10s by `device“ does with a KeyBy stage; value
// gives the key's typed value for FIELD (it is called on the first record
// of each key). Only tumbling and sliding windows can be keyed: a session
// window is one session for all keys.
func ByKey(w pipeline.AsyncStage, field string, value func(env *pipeline.Envelope) (any, error)) pipeline.AsyncStage {
	win, ok := w.(*window)
	if !ok || win.kind == "window session" {
		panic("stages.ByKey: want a tumbling or sliding window")
	}
	c := *win
	c.kind += " by key"
	c.by = &keyBy{field: field, value: value}
	return &c
}

func (w *window) Kind() string { return w.kind }

// Run feeds the go-streams flow from in and emits each window. Tumbling
// and session windows hold each input in exactly one window, so the
// window's ack completes the inputs' acks (at-least-once through the
// window). A sliding window holds an input in several windows with no point
// at which it is known to be finished, so its inputs are acknowledged when
// they enter the window (at-most-once for sliding aggregates; documented).
func (w *window) Run(ctx context.Context, in <-chan pipeline.Envelope, emit pipeline.Emit) error {
	f := w.mk()
	go func() {
		defer close(f.In())
		for env := range in {
			if w.overlapping {
				env.Ack.Done()
				env.Ack = nil
			}
			select {
			case f.In() <- env:
			case <-ctx.Done():
				env.Ack.Nack(ctx.Err())
				return
			}
		}
	}()
	var err error
	for out := range f.Out() {
		envs, ok := out.([]pipeline.Envelope)
		if !ok || len(envs) == 0 {
			continue
		}
		if err != nil {
			for _, e := range envs {
				e.Ack.Nack(err)
			}
			continue
		}
		if w.by != nil {
			err = w.by.emit(ctx, envs, emit)
			continue
		}
		g := Group(envs)
		err = emit(ctx, &g)
	}
	return err
}

// emit splits one window's envelopes by key and emits a group per key.
func (k *keyBy) emit(ctx context.Context, envs []pipeline.Envelope, emit pipeline.Emit) error {
	var order []string
	groups := map[string][]pipeline.Envelope{}
	for _, e := range envs {
		key := string(e.Key)
		if _, ok := groups[key]; !ok {
			order = append(order, key)
		}
		groups[key] = append(groups[key], e)
	}
	var err error
	for _, key := range order {
		g := groups[key]
		if err != nil {
			for _, e := range g {
				e.Ack.Nack(err)
			}
			continue
		}
		kv, kerr := k.value(&g[0])
		if kerr != nil {
			kv = key
		}
		out := Group(g)
		out.Value = map[string]any{k.field: kv, "items": out.Value}
		out.Key = g[0].Key
		err = emit(ctx, &out)
	}
	return err
}

type keyByStage struct {
	key func(env *pipeline.Envelope) ([]byte, error)
}

// KeyBy returns a stage setting each record's Key from key (for a keyed
// window after it). A key that cannot be computed is a stage error.
func KeyBy(key func(env *pipeline.Envelope) ([]byte, error)) pipeline.Processor {
	return keyByStage{key}
}

func (keyByStage) Kind() string { return "key by" }

// PreservesValue implements pipeline.ValuePreserver.
func (keyByStage) PreservesValue() bool { return true }

func (s keyByStage) Process(ctx context.Context, env *pipeline.Envelope, next pipeline.Emit) error {
	k, err := s.key(env)
	if err != nil {
		return err
	}
	env.Key = k
	return next(ctx, env)
}

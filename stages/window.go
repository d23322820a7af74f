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
		g := Group(envs)
		err = emit(ctx, &g)
	}
	return err
}

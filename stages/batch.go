package stages

import (
	"context"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Batch groups up to size envelopes, or whatever arrived within interval
// of the first one, into one envelope whose Value is a []any of the input
// values and whose Ack completes every input's ack. Zero interval means
// size only.
func Batch(size int, interval time.Duration) pipeline.AsyncStage {
	if size <= 0 {
		size = 100
	}
	return &batch{size: size, interval: interval}
}

type batch struct {
	size     int
	interval time.Duration
}

func (*batch) Kind() string { return "batch" }

func (b *batch) Run(ctx context.Context, in <-chan pipeline.Envelope, emit pipeline.Emit) error {
	var pending []pipeline.Envelope
	var timer *time.Timer
	var tick <-chan time.Time
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		if timer != nil {
			timer.Stop()
			tick = nil
		}
		out := Group(pending)
		pending = pending[:0:0]
		return emit(ctx, &out)
	}
	for {
		select {
		case env, ok := <-in:
			if !ok {
				return flush()
			}
			pending = append(pending, env)
			if len(pending) == 1 && b.interval > 0 {
				if timer == nil {
					timer = time.NewTimer(b.interval)
				} else {
					timer.Reset(b.interval)
				}
				tick = timer.C
			}
			if len(pending) >= b.size {
				if err := flush(); err != nil {
					return err
				}
			}
		case <-tick:
			tick = nil
			if err := flush(); err != nil {
				return err
			}
		case <-ctx.Done():
			for _, e := range pending {
				e.Ack.Nack(ctx.Err())
			}
			return ctx.Err()
		}
	}
}

// Group builds the envelope standing for a group of inputs (a batch or a
// window): Value is the []any of input values, Payload is nil, Topic, Key and
// Headers are the first input's, Time is the last input's, and its Ack
// finishes every input's ack with the group's outcome (the shares the inputs
// carry are transferred to it).
func Group(inputs []pipeline.Envelope) pipeline.Envelope {
	vals := make([]any, len(inputs))
	acks := make([]*pipeline.Ack, len(inputs))
	for i := range inputs {
		vals[i] = pipeline.Plain(inputs[i].Value)
		acks[i] = inputs[i].Ack
	}
	out := pipeline.Envelope{Value: vals, Ack: pipeline.GroupAck(acks)}
	if len(inputs) > 0 {
		out.Topic, out.Key, out.Headers = inputs[0].Topic, inputs[0].Key, inputs[0].Headers
		out.Time = inputs[len(inputs)-1].Time
		out.Trace = inputs[0].Trace
	}
	if len(inputs) > 1 && inputs[0].Trace != nil {
		// Keep every input's trace state so a tracer can link the group's
		// span to each input (otelflow.TraceGroup). With tracing off Trace
		// is nil and nothing is allocated.
		tg := make(traceGroup, len(inputs))
		for i := range inputs {
			tg[i] = inputs[i].Trace
		}
		out.Trace = tg
	}
	return out
}

// traceGroup carries a group's input trace states; tracers recognise it by
// its TraceInputs method.
type traceGroup []any

// TraceInputs returns the trace state of each input of the group.
func (g traceGroup) TraceInputs() []any { return g }

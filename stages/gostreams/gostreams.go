// Package gostreams adapts aimdb-flow to github.com/reugn/go-streams in both
// directions:
//
//   - RecordSource turns a record into a streams.Source, RecordSink turns a
//     streams.Sink inlet into a record writer: a go-streams pipeline can
//     consume from and produce into an aimdb-flow graph.
//   - Stage wraps any streams.Flow as a pipeline.AsyncStage, so go-streams
//     operators (flow.Map, flow.Reduce, keyed flows, ...) run inside an
//     aimdb-flow pipeline; Flow wraps a pipeline.Processor (filter, map,
//     expression stages) as a streams.Flow.
//
// go-streams moves bare values without acknowledgements: where an envelope
// crosses into go-streams its ack is released when the value is handed over
// (at-most-once across that boundary). Use aimdb-flow's own stages where
// at-least-once must hold end to end.
package gostreams

import (
	"context"
	"errors"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
	streams "github.com/reugn/go-streams"
	"github.com/reugn/go-streams/extension"
	"github.com/reugn/go-streams/flow"
)

// RecordSource emits the value of every envelope read from r (obtain r with
// Runner.Subscribe before Run) until the record is closed or ctx ends.
func RecordSource(ctx context.Context, r buffer.Reader[pipeline.Envelope]) streams.Source {
	ch := make(chan any)
	go func() {
		defer close(ch)
		for {
			env, err := r.Recv(ctx)
			var lag *buffer.LagError
			if errors.As(err, &lag) {
				continue
			}
			if err != nil {
				return
			}
			v := pipeline.Plain(env.Value)
			if v == nil {
				v = env.Payload
			}
			select {
			case ch <- v:
				env.Ack.Done()
			case <-ctx.Done():
				env.Ack.Nack(ctx.Err())
				return
			}
		}
	}()
	return extension.NewChanSource(ch)
}

// Sink is a streams.Sink writing every element into a record.
type Sink struct {
	in   chan any
	done chan struct{}
	err  error
}

// RecordSink returns a Sink writing each element it receives as the value
// of a new envelope into the record behind w (see Runner.Writer).
func RecordSink(ctx context.Context, w *pipeline.Writer) *Sink {
	s := &Sink{in: make(chan any), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for v := range s.in {
			if s.err != nil {
				continue // keep draining so upstream never blocks
			}
			if err := w.WriteValue(ctx, v); err != nil {
				s.err = err
			}
		}
	}()
	return s
}

// In implements streams.Inlet.
func (s *Sink) In() chan<- any { return s.in }

// AwaitCompletion implements streams.Sink.
func (s *Sink) AwaitCompletion() { <-s.done }

// Err reports the first write error (valid after AwaitCompletion).
func (s *Sink) Err() error { return s.err }

var _ streams.Sink = (*Sink)(nil)

// Stage runs a go-streams flow (built fresh per run by mk) inside a
// pipeline. The flow receives envelope values and each element it emits
// becomes the value of an output envelope. Input acks are released when
// the value enters the flow.
func Stage(kind string, mk func() streams.Flow) pipeline.AsyncStage {
	return &stage{kind: kind, mk: mk}
}

type stage struct {
	kind string
	mk   func() streams.Flow
}

func (s *stage) Kind() string { return s.kind }

func (s *stage) Run(ctx context.Context, in <-chan pipeline.Envelope, emit pipeline.Emit) error {
	f := s.mk()
	go func() {
		defer close(f.In())
		for env := range in {
			select {
			case f.In() <- pipeline.Plain(env.Value):
				env.Ack.Done()
			case <-ctx.Done():
				env.Ack.Nack(ctx.Err())
			}
		}
	}()
	var err error
	for v := range f.Out() {
		if err != nil {
			continue
		}
		out := pipeline.Envelope{Value: v}
		err = emit(ctx, &out)
	}
	return err
}

// Flow wraps a pipeline processor as a go-streams flow: each input element
// becomes an envelope's value, and every envelope the processor emits
// becomes an output element. Elements the processor rejects with an error
// are dropped (go-streams has no error channel); count them with a Tap.
func Flow(p pipeline.Processor) streams.Flow {
	return flow.NewFlatMap(func(v any) []any {
		var outs []any
		env := pipeline.Envelope{Value: v}
		_ = p.Process(context.Background(), &env, func(_ context.Context, e *pipeline.Envelope) error {
			outs = append(outs, e.Value)
			return nil
		})
		return outs
	}, 1)
}

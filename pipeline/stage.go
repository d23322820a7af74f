package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
)

// Emit hands an envelope to the next step of a chain. The callee does not
// keep env beyond the call; a step that needs to keep it copies the
// envelope and takes an ack share (env.Ack.Add(1)) for the copy.
type Emit func(ctx context.Context, env *Envelope) error

// Stage is a step of a pipeline. Every stage is either a Processor, which
// runs synchronously and is fused with its neighbours into one goroutine,
// or an AsyncStage, which owns a goroutine and cuts the pipeline.
type Stage interface {
	// Kind names the stage type for provenance and metrics ("filter", "map").
	Kind() string
}

// Processor is a synchronous stage. Process may call next zero times
// (filter), once (map) or several times (split); it must not call next after
// returning. Returning an error sends the envelope to the dead-letter path
// with this stage as provenance; the pipeline continues with the next one.
type Processor interface {
	Stage
	Process(ctx context.Context, env *Envelope, next Emit) error
}

// AsyncStage is a stage that needs its own goroutine: it batches, delays or
// windows records in time. Run consumes in until it is closed, calls emit for
// its outputs, and returns after flushing. Envelopes arriving on in carry one
// ack share each that the stage must release (normally by building an
// output whose Ack releases the inputs, see GroupAck).
type AsyncStage interface {
	Stage
	Run(ctx context.Context, in <-chan Envelope, emit Emit) error
}

// ProcessorFunc adapts a function to a Processor.
type ProcessorFunc struct {
	Name string
	Fn   func(ctx context.Context, env *Envelope, next Emit) error
}

// Kind implements Stage.
func (p ProcessorFunc) Kind() string { return p.Name }

// Process implements Processor.
func (p ProcessorFunc) Process(ctx context.Context, env *Envelope, next Emit) error {
	return p.Fn(ctx, env, next)
}

// StageError records which stage of which pipeline failed on an envelope.
type StageError struct {
	Pipeline string
	Stage    string // "<index>:<kind>", e.g. "2:map"
	Err      error
}

func (e *StageError) Error() string {
	return fmt.Sprintf("pipeline %s, stage %s: %v", e.Pipeline, e.Stage, e.Err)
}

func (e *StageError) Unwrap() error { return e.Err }

// GroupAck returns an Ack that, when completed, finishes every input ack with
// the same outcome. It takes no shares of the inputs: the caller transfers
// the shares it holds. Use it for batches and windows.
func GroupAck(inputs []*Ack) *Ack {
	n := 0
	for _, a := range inputs {
		if a != nil {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	held := make([]*Ack, 0, n)
	for _, a := range inputs {
		if a != nil {
			held = append(held, a)
		}
	}
	return NewAck(func(err error) {
		for _, a := range held {
			a.Finish(err)
		}
	})
}

// fuse builds one Emit that runs procs in order and ends in last. The
// closures are built once per pipeline, so the per-record path allocates
// nothing. cur receives the 1-based pipeline index (first+i+1) of the last
// stage entered, so a stage that hangs the shutdown can be named.
func fuse(pipeline string, procs []Processor, names []string, hooks *hookSet, stats []*stageStats, cur *atomic.Int32, first int, last Emit) Emit {
	next := last
	for i := len(procs) - 1; i >= 0; i-- {
		p, downstream, name, st := procs[i], next, names[i], stats[i]
		idx := int32(first + i + 1)
		info := &HopInfo{Hop: HopStage, Pipeline: pipeline, Stage: name}
		next = func(ctx context.Context, env *Envelope) error {
			st.In.Add(1)
			cur.Store(idx)
			var span Span
			if hooks.traced(env) {
				span = hooks.tracer.StartHop(ctx, env, info)
			}
			err := process(ctx, p, env, downstream)
			if span != nil {
				span.End(err)
			}
			if err != nil {
				var se *StageError
				if !errors.As(err, &se) {
					st.Errors.Add(1)
					err = &StageError{Pipeline: pipeline, Stage: name, Err: err}
				}
			}
			return err
		}
	}
	return next
}

// process runs one stage on env. A panic in the stage (not in the stages
// after it, which recover their own) becomes a *PanicError, so the record
// is dead-lettered with this stage as provenance and the pipeline goes on.
func process(ctx context.Context, p Processor, env *Envelope, next Emit) (err error) {
	defer catch(&err)
	return p.Process(ctx, env, next)
}

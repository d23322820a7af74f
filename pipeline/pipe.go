package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
)

// This file: running a pipeline, its fused stage chains, async stage
// segments and parallel workers.

type pipeRun struct {
	r          *Runner
	name       string
	spec       *PipelineSpec
	in         buffer.Reader[Envelope]
	inRec      *record
	into       *record
	outs       []*outRun
	dl         *outRun
	stageNames []string
	stageStats []*stageStats
	segments   []segment
	inN        atomic.Uint64
	// For Workers > 1: the first segment's processors and what follows them.
	seg0Procs []Processor
	seg0Next  Emit
	out       atomic.Uint64
	errors    atomic.Uint64
	lagged    atomic.Uint64
	// stage is the 1-based index of the last stage entered (0: none yet);
	// hold tracks the records taken from the input and not yet settled;
	// stopped is set when run returned. Together they let Run name and
	// abandon a pipeline that ignores cancellation.
	stage   atomic.Int32
	hold    *inflight
	stopped atomic.Bool
}

// A segment is a run of processors fused into one Emit, optionally fed by
// an async stage's goroutine.
type segment struct {
	async AsyncStage // nil for the first segment
	name  string
	chain Emit
	in    chan Envelope // input of the async stage (nil for the first segment)
}

func (r *Runner) newPipe(spec *PipelineSpec) (*pipeRun, error) {
	p := &pipeRun{r: r, name: spec.Name, spec: spec, inRec: r.records[spec.Input]}
	p.hold = newInflight(1)
	if spec.Workers > 1 {
		p.hold = newInflight(parallelSlots(spec.Workers))
	}
	p.in = p.inRec.subscribe()
	if spec.IntoRecord != "" {
		p.into = r.records[spec.IntoRecord]
		p.into.writer = writerPipeline
	}
	for _, l := range spec.Outputs {
		o := r.newOut(l, spec.Name, spec.Input)
		o.passthrough = preservesValues(spec.Stages) && passthroughFrom(r.recordSpec(spec.Input), l.Encoder)
		p.outs = append(p.outs, o)
	}
	p.dl = r.graphDL
	if spec.DeadLetter != nil {
		p.dl = r.newOut(spec.DeadLetter, spec.Name, "")
	}
	for i, s := range spec.Stages {
		p.stageNames = append(p.stageNames, strconv.Itoa(i+1)+":"+s.Kind())
		p.stageStats = append(p.stageStats, &stageStats{})
	}
	// Cut the stage list at async stages; build chains back to front.
	type cut struct {
		async AsyncStage
		name  string
		from  int
	}
	cuts := []cut{{from: 0}}
	for i, s := range spec.Stages {
		if a, ok := s.(AsyncStage); ok {
			cuts = append(cuts, cut{async: a, name: p.stageNames[i], from: i + 1})
		} else if _, ok := s.(Processor); !ok {
			return nil, fmt.Errorf("pipeline %s: stage %s is neither a Processor nor an AsyncStage", spec.Name, p.stageNames[i])
		}
	}
	p.segments = make([]segment, len(cuts))
	var next Emit = p.terminal
	for ci := len(cuts) - 1; ci >= 0; ci-- {
		end := len(spec.Stages)
		if ci+1 < len(cuts) {
			end = cuts[ci+1].from - 1
		}
		var procs []Processor
		for i := cuts[ci].from; i < end; i++ {
			procs = append(procs, spec.Stages[i].(Processor))
		}
		from := cuts[ci].from
		if ci == 0 {
			p.seg0Procs, p.seg0Next = procs, next
		}
		chain := fuse(spec.Name, procs, p.stageNames[from:from+len(procs)], r.hooks, p.stageStats[from:from+len(procs)], &p.stage, from, next)
		seg := segment{async: cuts[ci].async, name: cuts[ci].name, chain: chain}
		if ci > 0 {
			// The previous segment ends by handing envelopes to this
			// segment's async stage through a bounded channel.
			seg.in = make(chan Envelope, 256)
			next = feed(seg.in, p.stageStats[cuts[ci].from-1])
		}
		p.segments[ci] = seg
	}
	return p, nil
}

func (p *pipeRun) terminal(ctx context.Context, env *Envelope) error {
	p.out.Add(1)
	var nack error
	if p.into != nil {
		if err := p.into.write(ctx, env); err != nil {
			nack = err
		}
	}
	for _, o := range p.outs {
		if err := p.r.deliverOut(ctx, o, p.dl, env); err != nil {
			nack = errors.Join(nack, err)
		}
	}
	if nack != nil {
		return &nackError{nack}
	}
	return nil
}

// settle releases the share env carries after its chain ran: success acks;
// a stage error is dead-lettered (with provenance) and acked; an output
// that could not deliver nor dead-letter, or any error once the drain
// timeout cancelled the stages, nacks so the source redelivers.
func (p *pipeRun) settle(ctx context.Context, env *Envelope, err error) {
	if err == nil {
		env.Ack.Done()
		return
	}
	var ne *nackError
	if errors.As(err, &ne) {
		env.Ack.Nack(ne.err)
		return
	}
	if ctx.Err() != nil {
		// The drain timed out and cancelled the stages: the record was
		// not processed, so the source must redeliver it.
		env.Ack.Nack(err)
		return
	}
	p.errors.Add(1)
	stage := ""
	cause := err
	var se *StageError
	if errors.As(err, &se) {
		stage, cause = se.Stage, se.Err
	}
	// The record is the pipeline's input: the one the failing record was
	// read from (README: dead letters carry pipeline, stage, record, link).
	if dlErr := p.r.deadLetter(ctx, p.dl, env, p.name, stage, p.spec.Input, "", cause); dlErr != nil {
		env.Ack.Nack(dlErr)
		return
	}
	env.Ack.Done()
}

func (p *pipeRun) run(ctx context.Context) error {
	defer func() {
		if p.into != nil {
			p.into.close()
		}
	}()
	// Segment i>0 runs in its async stage's goroutine, fed by segment i-1.
	n := len(p.segments)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 1; i < n; i++ {
		seg := p.segments[i]
		last := i == n-1
		emit := func(ctx context.Context, env *Envelope) error {
			p.settle(ctx, env, seg.chain(ctx, env))
			if last {
				// The stage emits when it chooses: no batch end to wait
				// for, so hand the outputs off at once.
				p.flushOuts(ctx)
			}
			return nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if i+1 < n {
					close(p.segments[i+1].in)
				}
			}()
			errs[i] = runAsync(ctx, seg.async, seg.name, seg.in, emit)
		}()
	}
	first := p.segments[0].chain
	var runErr error
	if p.spec.Workers > 1 {
		runErr = p.runParallel(ctx)
	} else {
		runErr = p.runSerial(ctx, first)
	}
	if n > 1 {
		close(p.segments[1].in)
	}
	wg.Wait()
	return errors.Join(append([]error{runErr}, errs...)...)
}

// flushOuts flushes the pipeline's outputs (see outRun.flush); it is
// called on the goroutine that runs the terminal step.
func (p *pipeRun) flushOuts(ctx context.Context) {
	for _, o := range p.outs {
		o.flush(ctx)
	}
}

// feed returns an Emit that hands a copy of env (with its own ack share) to
// an async stage's input channel, counting it as the stage's input.
func feed(ch chan Envelope, st *stageStats) Emit {
	return func(ctx context.Context, env *Envelope) error {
		st.In.Add(1)
		e := *env
		e.Ack.Add(1)
		select {
		case ch <- e:
			return nil
		case <-ctx.Done():
			e.Ack.Nack(ctx.Err())
			return ctx.Err()
		}
	}
}

func (p *pipeRun) runSerial(ctx context.Context, chain Emit) error {
	// Receive in batches: one lock acquisition hands over everything the
	// writer has queued (up to recvBatchSize), so producer and consumer
	// do not contend on the buffer's lock once per record.
	batch := make([]Envelope, recvBatchSize)
	for {
		n, err := p.recvBatch(ctx, batch)
		if n == 0 {
			return err
		}
		p.hold.hold(0, batch[:n])
		for i := 0; i < n; i++ {
			env := &batch[i]
			p.settle(ctx, env, chain(ctx, env))
		}
		if len(p.segments) == 1 { // this goroutine runs the outputs
			p.flushOuts(ctx)
		}
		p.hold.release(0)
	}
}

// recvBatchSize bounds how many envelopes a pipeline takes from its input
// buffer at once.
const recvBatchSize = 64

// recvBatch fills dst from the input record; it returns 0 and nil when the
// record is closed and drained.
func (p *pipeRun) recvBatch(ctx context.Context, dst []Envelope) (int, error) {
	for {
		n, err := p.in.RecvBatch(ctx, dst)
		if n > 0 {
			p.inN.Add(uint64(n))
			return n, nil
		}
		var lag *buffer.LagError
		switch {
		case errors.As(err, &lag):
			p.lagged.Add(lag.Missed)
			p.r.log.Warn("pipeline lagged behind its input record", "pipeline", p.name, "record", p.inRec.name, "missed", lag.Missed)
			continue
		case errors.Is(err, buffer.ErrClosed):
			return 0, nil
		}
		return 0, err
	}
}

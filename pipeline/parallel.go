package pipeline

import (
	"context"
	"sync"
)

// Ordered parallel execution of a pipeline's first fused segment.
//
// The input goroutine reads envelopes in batches and hands each batch both
// to a shared work channel (any worker may take it) and to an order channel.
// Workers run the fused processors, collecting what the last processor
// emits into the batch. The sequencer takes batches from the order channel
// in input order, waits for each to be processed, and runs the outputs
// (terminal or async stage) in order, so the output order equals the input
// order. Batches are recycled through a free list: no allocation per record
// in steady state.

const parallelBatch = 64

type pbatch struct {
	slot int          // the batch's slot in the pipeline's inflight
	envs []Envelope   // inputs, filled by one RecvBatch
	errs []error      // chain outcome per input
	outs [][]Envelope // what the processors emitted per input
	n    int
	done chan struct{}
}

type pworker struct {
	cur   *[]Envelope // outs of the input being processed
	chain Emit
}

// parallelSlots is the number of batches a parallel pipeline circulates.
func parallelSlots(workers int) int { return workers*2 + 2 }

func (p *pipeRun) runParallel(ctx context.Context) error {
	workers := p.spec.Workers
	nb := parallelSlots(workers)
	free := make(chan *pbatch, nb)
	for i := 0; i < nb; i++ {
		free <- &pbatch{slot: i, envs: make([]Envelope, parallelBatch), errs: make([]error, parallelBatch),
			outs: make([][]Envelope, parallelBatch), done: make(chan struct{}, 1)}
	}
	work := make(chan *pbatch, nb)
	order := make(chan *pbatch, nb)

	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		pw := &pworker{}
		collect := func(_ context.Context, env *Envelope) error {
			e := *env
			e.Ack.Add(1)
			*pw.cur = append(*pw.cur, e)
			return nil
		}
		pw.chain = fuse(p.name, p.seg0Procs, p.stageNames[:len(p.seg0Procs)], p.r.hooks, p.stageStats[:len(p.seg0Procs)], &p.stage, 0, collect)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				for i := 0; i < b.n; i++ {
					pw.cur = &b.outs[i]
					b.errs[i] = pw.chain(ctx, &b.envs[i])
				}
				b.done <- struct{}{}
			}
		}()
	}

	seqDone := make(chan struct{})
	go func() {
		defer close(seqDone)
		for b := range order {
			<-b.done
			for i := 0; i < b.n; i++ {
				outs := b.outs[i]
				for j := range outs {
					out := &outs[j]
					p.settle(ctx, out, p.seg0Next(ctx, out))
				}
				b.outs[i] = outs[:0]
				p.settle(ctx, &b.envs[i], b.errs[i])
				b.errs[i] = nil
			}
			if len(p.segments) == 1 { // seg0Next is the terminal step
				p.flushOuts(ctx)
			}
			b.n = 0
			p.hold.release(b.slot)
			free <- b
		}
	}()

	var runErr error
	for {
		var b *pbatch
		select {
		case b = <-free:
		case <-ctx.Done():
			runErr = ctx.Err()
		}
		if b == nil {
			break
		}
		n, err := p.recvBatch(ctx, b.envs)
		if n == 0 {
			free <- b
			runErr = err
			break
		}
		b.n = n
		p.hold.hold(b.slot, b.envs[:n])
		order <- b
		work <- b
	}
	close(work)
	close(order)
	wg.Wait()
	<-seqDone
	return runErr
}

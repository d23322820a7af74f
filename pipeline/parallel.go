package pipeline

import (
	"context"
	"errors"
	"sync"

	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
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

type pitem struct {
	env  Envelope
	err  error
	outs []Envelope
}

type pbatch struct {
	items []pitem
	n     int
	done  chan struct{}
}

type pworker struct {
	cur   *pitem
	chain Emit
}

func (p *pipeRun) runParallel(ctx context.Context, _ Emit) error {
	workers := p.spec.Workers
	nb := workers*2 + 2
	free := make(chan *pbatch, nb)
	for i := 0; i < nb; i++ {
		free <- &pbatch{items: make([]pitem, parallelBatch), done: make(chan struct{}, 1)}
	}
	work := make(chan *pbatch, nb)
	order := make(chan *pbatch, nb)

	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		pw := &pworker{}
		collect := func(_ context.Context, env *Envelope) error {
			e := *env
			e.Ack.Add(1)
			pw.cur.outs = append(pw.cur.outs, e)
			return nil
		}
		pw.chain = fuse(p.name, p.seg0Procs, p.stageNames[:len(p.seg0Procs)], p.r.hooks, p.stageStats[:len(p.seg0Procs)], collect)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				for i := 0; i < b.n; i++ {
					it := &b.items[i]
					pw.cur = it
					it.err = pw.chain(ctx, &it.env)
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
				it := &b.items[i]
				for j := range it.outs {
					out := &it.outs[j]
					p.settle(ctx, out, p.seg0Next(ctx, out))
					it.outs[j] = Envelope{}
				}
				it.outs = it.outs[:0]
				p.settle(ctx, &it.env, it.err)
				it.env, it.err = Envelope{}, nil
			}
			b.n = 0
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
		env, ok, err := p.recv(ctx)
		if !ok {
			free <- b
			runErr = err
			break
		}
		b.items[0].env = env
		b.n = 1
		for b.n < parallelBatch {
			env, ok, err := p.in.TryRecv()
			var lag *buffer.LagError
			if errors.As(err, &lag) {
				p.lagged.Add(lag.Missed)
				continue
			}
			if err != nil || !ok {
				break
			}
			p.inN.Add(1)
			b.items[b.n].env = env
			b.n++
		}
		order <- b
		work <- b
	}
	close(work)
	close(order)
	wg.Wait()
	<-seqDone
	return runErr
}

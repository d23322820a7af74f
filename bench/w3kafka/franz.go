package w3kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// franzRef rides in an output record's Context field: the input record the
// output came from, so the promise can finish it without a closure per
// record. It embeds context.Background, which is never cancelled.
type franzRef struct {
	context.Context
	inRef
}

// franzOut is an output record and its input reference, allocated one
// array per poll.
type franzOut struct {
	rec kgo.Record
	ref franzRef
}

// Franz runs the hand-written franz-go loop until every input offset is
// committed (see the package documentation).
func Franz(ctx context.Context, job Job) (Result, error) {
	var (
		mu      sync.Mutex
		marks   Watermarks
		epochs  = map[int32]int32{} // latest leader epoch seen per partition
		failure error
	)
	fail := func(err error) { // with mu held
		if failure == nil {
			failure = err
		}
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(job.Brokers...),
		kgo.ConsumerGroup(job.Group),
		kgo.ConsumeTopics(Input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.BlockRebalanceOnPoll(),
		// Marks are what may be committed: only watermarks are marked.
		// Autocommit of the marks also runs on revoke and on close.
		kgo.AutoCommitMarks(),
		kgo.SessionTimeout(10*time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.FetchMaxBytes(1<<20),
		kgo.DefaultProduceTopic(job.Output),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(Linger),
		kgo.MaxBufferedRecords(MaxInFlight), // Produce blocks beyond it
	)
	if err != nil {
		return Result{}, fmt.Errorf("w3 franz-go: %w", err)
	}
	promise := func(r *kgo.Record, err error) {
		ref := r.Context.(*franzRef)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			fail(fmt.Errorf("w3 franz-go: produce: %w", err))
			return
		}
		if err := marks.Finish(ref.part, ref.off); err != nil {
			fail(err)
		}
	}

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	loopErr := make(chan error, 1)
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		var f Filter
		var pass []bool
		for {
			fs := cl.PollFetches(rctx)
			if rctx.Err() != nil {
				cl.AllowRebalance()
				return
			}
			var ferr error
			fs.EachError(func(t string, p int32, err error) {
				ferr = errors.Join(ferr, fmt.Errorf("w3 franz-go: fetch %s/%d: %w", t, p, err))
			})
			if ferr != nil {
				loopErr <- ferr
				return
			}
			pass = pass[:0]
			n := 0
			fs.EachRecord(func(r *kgo.Record) {
				ok := f.Pass(r.Value)
				pass = append(pass, ok)
				if ok {
					n++
				}
			})
			// Offsets are taken in (the filtered ones finished) before
			// any output is produced, so no promise can find one missing.
			mu.Lock()
			i := 0
			fs.EachRecord(func(r *kgo.Record) {
				epochs[r.Partition] = r.LeaderEpoch
				if err := marks.Add(int(r.Partition), r.Offset); err != nil {
					fail(err)
				} else if !pass[i] {
					_ = marks.Finish(int(r.Partition), r.Offset) // just added: cannot fail
				}
				i++
			})
			err := failure
			mu.Unlock()
			if err != nil {
				loopErr <- err
				return
			}
			outs := make([]franzOut, n)
			i, j := 0, 0
			fs.EachRecord(func(r *kgo.Record) {
				if pass[i] {
					o := &outs[j]
					o.ref = franzRef{context.Background(), inRef{int(r.Partition), r.Offset}}
					o.rec = kgo.Record{Key: r.Key, Value: r.Value, Headers: r.Headers, Context: &o.ref}
					cl.Produce(rctx, &o.rec, promise)
					j++
				}
				i++
			})
			cl.AllowRebalance()
		}
	}()

	var ms []Mark
	commit := func(ctx context.Context) error {
		mu.Lock()
		ms = marks.Advanced(ms[:0])
		parts := make(map[int32]kgo.EpochOffset, len(ms))
		for _, m := range ms {
			p := int32(m.Partition)
			parts[p] = kgo.EpochOffset{Epoch: epochs[p], Offset: m.Next}
		}
		mu.Unlock()
		if len(parts) == 0 {
			return nil
		}
		cl.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{Input: parts})
		if err := cl.CommitMarkedOffsets(ctx); err != nil {
			return fmt.Errorf("w3 franz-go: commit: %w", err)
		}
		return nil
	}
	commitDone, failed := commitEvery(rctx, commit, loopErr)

	res, err := waitDone(ctx, job, failed)
	// Shut down: stop polling, wait for every promise, commit what is
	// finished, leave the group.
	cancel()
	<-loopDone
	<-commitDone
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer fcancel()
	err = errors.Join(err, cl.Flush(fctx))
	err = errors.Join(err, commit(fctx))
	mu.Lock()
	err = errors.Join(err, failure)
	mu.Unlock()
	cl.Close()
	return res, err
}

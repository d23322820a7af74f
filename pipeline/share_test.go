package pipeline

import (
	"errors"
	"runtime"
	"testing"
)

// The shares handed to asynchronous publishers are recycled: once the
// in-flight high-water mark is reached, a record costs no allocation.
func TestAsyncShareAllocatesNothingOnceWarm(t *testing.T) {
	o := &outRun{}
	env := Envelope{Topic: "t", Payload: []byte("x")}
	o.share(&env).ack.Done() // warm: the first slab
	// Counted over many records: a slab every shareSlab records would be
	// lost in testing.AllocsPerRun's integer average.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < 10*shareSlab; i++ {
		o.share(&env).ack.Done()
	}
	runtime.ReadMemStats(&after)
	if n := after.Mallocs - before.Mallocs; n != 0 {
		t.Fatalf("share + settle of %d records: %d allocations, want 0", 10*shareSlab, n)
	}
}

// A share is never handed out twice while in flight, and a recycled one
// reports its new record's outcome to its new source, once.
func TestAsyncShareReuse(t *testing.T) {
	o := &outRun{}
	const inFlight = 3 * shareSlab
	type src struct {
		calls int
		err   error
	}
	srcs := make([]src, inFlight)
	seen := map[*asyncShare]bool{}
	var shares []*asyncShare
	for round := 0; round < 3; round++ {
		shares = shares[:0]
		for i := range srcs {
			srcs[i] = src{}
			i := i
			env := Envelope{Ack: NewAck(func(err error) { srcs[i].calls++; srcs[i].err = err })}
			env.Ack.Add(1) // the runner's share taken before the hand-off
			s := o.share(&env)
			env.Ack.Done() // the pipeline's own share
			if round == 0 {
				if seen[s] {
					t.Fatalf("share %p handed out twice while in flight", s)
				}
				seen[s] = true
			} else if !seen[s] {
				t.Fatalf("round %d: a new share was allocated with %d settled ones free", round, inFlight)
			}
			shares = append(shares, s)
		}
		for i, s := range shares {
			if i%2 == 0 {
				s.ack.Done()
			} else {
				s.ack.Finish(errors.New("transient")) // no dead-letter path: rejected
			}
		}
		for i, sr := range srcs {
			if sr.calls != 1 {
				t.Fatalf("round %d record %d: source settled %d times, want 1", round, i, sr.calls)
			}
			if (sr.err != nil) != (i%2 == 1) {
				t.Fatalf("round %d record %d: source outcome %v", round, i, sr.err)
			}
		}
	}
}

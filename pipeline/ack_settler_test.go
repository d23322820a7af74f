package pipeline_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// recorder is a Settler that records each outcome by tag.
type recorder struct {
	mu   sync.Mutex
	runs map[uint64]int
	errs map[uint64]error
}

func newRecorder() *recorder { return &recorder{runs: map[uint64]int{}, errs: map[uint64]error{}} }

func (r *recorder) Settle(tag uint64, err error) {
	r.mu.Lock()
	r.runs[tag]++
	r.errs[tag] = err
	r.mu.Unlock()
}

// TestAckSettler: an ack made with NewAckFor or InitAck (a slab element)
// follows the fan-in contract of NewAck and reports its outcome, with its
// tag, to the Settler exactly once.
func TestAckSettler(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name  string
		slab  bool
		fails []error // outcomes of extra shares, released concurrently
		want  error
	}{
		{"source only", false, nil, nil},
		{"all succeed", false, []error{nil, nil, nil}, nil},
		{"one fails", false, []error{nil, boom, nil}, boom},
		{"slab, all succeed", true, []error{nil, nil}, nil},
		{"slab, nack without cause", true, []error{nil, pipeline.ErrNacked}, pipeline.ErrNacked},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecorder()
			const n = 4
			acks := make([]*pipeline.Ack, n)
			slab := make([]pipeline.Ack, n)
			for i := range acks {
				if tc.slab {
					pipeline.InitAck(&slab[i], r, uint64(100+i))
					acks[i] = &slab[i]
				} else {
					acks[i] = pipeline.NewAckFor(r, uint64(100+i))
				}
			}
			var wg sync.WaitGroup
			for _, a := range acks {
				a.Add(len(tc.fails))
				for _, f := range tc.fails {
					wg.Add(1)
					go func() { defer wg.Done(); a.Finish(f) }()
				}
			}
			wg.Wait()
			if len(r.runs) != 0 {
				t.Fatal("settled before the source released its share")
			}
			for _, a := range acks {
				a.Done()
			}
			for i := range acks {
				tag := uint64(100 + i)
				if r.runs[tag] != 1 {
					t.Fatalf("tag %d settled %d times", tag, r.runs[tag])
				}
				if !errors.Is(r.errs[tag], tc.want) || (tc.want == nil) != (r.errs[tag] == nil) {
					t.Fatalf("tag %d: err %v, want %v", tag, r.errs[tag], tc.want)
				}
			}
		})
	}
}

// counter is a Settler that counts settled acks.
type counter struct{ n, failed int }

func (c *counter) Settle(_ uint64, err error) {
	c.n++
	if err != nil {
		c.failed++
	}
}

// A slab of acks costs one allocation for all of them; InitAck none.
func TestInitAckAllocatesNothing(t *testing.T) {
	r := &counter{}
	slab := make([]pipeline.Ack, 1000)
	i := 0
	n := testing.AllocsPerRun(len(slab)-1, func() {
		pipeline.InitAck(&slab[i], r, uint64(i))
		slab[i].Done()
		i++
	})
	if n != 0 {
		t.Fatalf("InitAck + Done: %v allocations, want 0", n)
	}
	if r.n != len(slab) || r.failed != 0 {
		t.Fatalf("settled %d (%d failed), want %d", r.n, r.failed, len(slab))
	}
}

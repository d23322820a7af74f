package kafka

import (
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// testPass returns a partition whose current pass starts at next.
func testPass(next int64) (*partition, *pass) {
	p := &partition{log: slog.New(slog.DiscardHandler)}
	p.pass = newPass(p, next)
	return p, p.pass
}

func commitOf(p *partition) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	off, ok := p.pass.commitOffset()
	if !ok {
		return -1
	}
	return off
}

func TestTrackerWatermark(t *testing.T) {
	type step struct {
		op   string // add, ok, fail
		off  int64
		want int64 // commit offset after the step (-1: none)
	}
	// many tracks n records from 0, several chunks' worth, and settles
	// them last first: the watermark moves only with the first.
	many := func(n int) []step {
		var s []step
		for i := 0; i < n; i++ {
			s = append(s, step{"add", int64(i), 0})
		}
		for i := n - 1; i > 0; i-- {
			s = append(s, step{"ok", int64(i), 0})
		}
		return append(s, step{"ok", 0, int64(n)})
	}
	tests := []struct {
		name  string
		start int64
		steps []step
	}{
		{"in order", -1, []step{{"add", 5, 5}, {"add", 6, 5}, {"ok", 5, 6}, {"ok", 6, 7}}},
		{"out of order waits for the lowest", 10, []step{{"add", 10, 10}, {"add", 11, 10}, {"add", 12, 10},
			{"ok", 12, 10}, {"ok", 11, 10}, {"ok", 10, 13}}},
		{"failure holds the watermark", 0, []step{{"add", 0, 0}, {"add", 1, 0}, {"add", 2, 0},
			{"ok", 0, 1}, {"fail", 1, 1}, {"ok", 2, 1}}},
		{"gaps (compaction)", -1, []step{{"add", 3, 3}, {"add", 7, 3}, {"ok", 3, 7}, {"ok", 7, 8}}},
		{"nothing dispatched yet", 42, []step{{"add", 42, 42}, {"ok", 42, 43}}},
		{"across chunks", 0, many(3*chunkSize + 5)},
		{"a full chunk then the next", 0, many(chunkSize + 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, ps := testPass(tc.start)
			if got := commitOf(p); got != tc.start {
				t.Fatalf("before any record: commit = %d, want %d", got, tc.start)
			}
			acks := map[int64]*pipeline.Ack{}
			for i, s := range tc.steps {
				switch s.op {
				case "add":
					ps.pending.Add(1)
					acks[s.off] = ps.track(s.off)
				case "ok":
					acks[s.off].Done()
				case "fail":
					acks[s.off].Nack(errors.New("sink failed"))
				}
				if got := commitOf(p); got != s.want {
					t.Fatalf("step %d (%s %d): commit = %d, want %d", i, s.op, s.off, got, s.want)
				}
			}
			if n := ps.pending.Load(); n != 0 {
				t.Fatalf("pending = %d after every record settled", n)
			}
		})
	}
}

// TestTrackerNack: a failed record halts its pass and marks the partition
// nacked; a failure in a pass that is no longer current, or that ended, is
// only counted.
func TestTrackerNack(t *testing.T) {
	tests := []struct {
		name       string
		replace    bool // a rewind replaced the pass before the failure
		end        bool // the generation ended before the failure
		wantNacked bool
	}{
		{"current pass", false, false, true},
		{"replaced pass", true, false, false},
		{"ended pass", false, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, ps := testPass(0)
			interrupted := false
			p.interrupt = func() { interrupted = true }
			ps.pending.Add(2)
			a, b := ps.track(0), ps.track(1)
			a.Done()
			p.mu.Lock()
			if tc.replace {
				p.pass = newPass(p, 1)
			}
			ps.ended = tc.end
			p.mu.Unlock()
			b.Nack(nil)
			if p.nacked != tc.wantNacked || interrupted != tc.wantNacked || ps.halted.Load() != tc.wantNacked {
				t.Fatalf("nacked %v interrupted %v halted %v, want %v", p.nacked, interrupted, ps.halted.Load(), tc.wantNacked)
			}
			if n := ps.pending.Load(); n != 0 {
				t.Fatalf("pending = %d", n)
			}
			p.mu.Lock()
			off, _ := ps.commitOffset()
			p.mu.Unlock()
			if off != 1 {
				t.Fatalf("the old pass's watermark = %d, want 1 (the failed record)", off)
			}
		})
	}
}

// TestTrackerConcurrent: one goroutine tracks records (as dispatch does)
// while others settle them in random order and commits run; a commit
// never passes a record that had not settled, never moves back, and
// reaches the end once everything settled.
func TestTrackerConcurrent(t *testing.T) {
	const n = 50 * chunkSize
	p, ps := testPass(0)
	var settled [n]atomic.Bool
	type rec struct {
		off int
		ack *pipeline.Ack
	}
	work := make(chan rec, 64)
	go func() {
		for i := 0; i < n; i++ {
			ps.pending.Add(1)
			work <- rec{i, ps.track(int64(i))}
		}
		close(work)
	}()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var held []rec
			settle := func() {
				rand.Shuffle(len(held), func(i, j int) { held[i], held[j] = held[j], held[i] })
				for _, r := range held {
					settled[r.off].Store(true) // before Done: a commit past off implies this
					r.ack.Done()
				}
				held = held[:0]
			}
			for r := range work {
				if held = append(held, r); len(held) == 1+rand.IntN(8) {
					settle()
				}
			}
			settle()
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	last := int64(0)
	check := func() {
		w := commitOf(p)
		if w < last {
			t.Fatalf("watermark moved back: %d after %d", w, last)
		}
		for off := last; off < w; off++ {
			if !settled[off].Load() {
				t.Fatalf("watermark %d passes unsettled offset %d", w, off)
			}
		}
		last = w
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		check()
	}
	check()
	if last != n {
		t.Fatalf("final watermark %d, want %d", last, n)
	}
}

// TestTrackerKeepsOnlyUnfinishedChunks: records that finish in order
// between commits do not pile up: the chunks reachable from the pass are
// those from the oldest unfinished record on.
func TestTrackerKeepsOnlyUnfinishedChunks(t *testing.T) {
	tests := []struct {
		name       string
		unfinished int64 // an offset left pending (-1: none)
		wantMax    int   // chunks reachable from the head, at most
	}{
		{"all finished", -1, 2},
		{"one unfinished early", 5, 101},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ps := testPass(0)
			for i := int64(0); i < 100*chunkSize; i++ {
				ps.pending.Add(1)
				a := ps.track(i)
				if i != tc.unfinished {
					a.Done()
				}
			}
			n := 0
			for c := ps.head; c != nil; c = c.next.Load() {
				n++
			}
			if n > tc.wantMax || tc.unfinished >= 0 && n < 100 {
				t.Fatalf("%d chunks reachable, want at most %d", n, tc.wantMax)
			}
		})
	}
}

package kafka

import "sort"

// tracker is the commit watermark of one partition. Records are added in
// offset order as they are dispatched and settle in any order; the commit
// offset is the lowest offset not yet settled successfully (Kafka commits
// name the next record to read), or the offset after the last dispatched
// record when nothing is outstanding. A failed record stays outstanding,
// so the watermark can never pass it.
type tracker struct {
	q       []trackEntry // dispatched, not yet popped; offsets increasing
	next    int64        // offset after the last dispatched record; -1 unknown
	pending int          // entries not settled at all
	failed  int          // entries settled with an error
}

type trackEntry struct {
	off   int64
	state uint8
}

const (
	statePending uint8 = iota
	stateDone
	stateFailed
)

func newTracker(next int64) tracker { return tracker{next: next} }

// add records a dispatched offset (offsets must increase).
func (t *tracker) add(off int64) {
	t.q = append(t.q, trackEntry{off: off})
	t.next = off + 1
	t.pending++
}

// settle marks off finished; ok=false marks it failed. It reports whether
// off was outstanding.
func (t *tracker) settle(off int64, ok bool) bool {
	i := sort.Search(len(t.q), func(i int) bool { return t.q[i].off >= off })
	if i == len(t.q) || t.q[i].off != off || t.q[i].state != statePending {
		return false
	}
	t.pending--
	if !ok {
		t.q[i].state = stateFailed
		t.failed++
		return true
	}
	t.q[i].state = stateDone
	n := 0
	for n < len(t.q) && t.q[n].state == stateDone {
		n++
	}
	if n > 0 {
		t.q = t.q[n:]
		if len(t.q) == 0 {
			t.q = t.q[:0:0] // let the old backing array go
		}
	}
	return true
}

// commitOffset returns the offset to commit and whether one is known.
func (t *tracker) commitOffset() (int64, bool) {
	if len(t.q) > 0 {
		return t.q[0].off, true
	}
	return t.next, t.next >= 0
}

// reset forgets every entry and resumes at off.
func (t *tracker) reset(off int64) { *t = tracker{next: off} }

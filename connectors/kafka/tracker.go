package kafka

import (
	"sync/atomic"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// chunkSize is how many records' acks and watermark entries one chunk
// holds (one allocation per chunkSize dispatched records).
const chunkSize = 64

// Watermark entry states.
const (
	statePending uint32 = iota
	stateDone
	stateFailed
)

// pass is the commit watermark of one partition for one pass over it: from
// the partition's assignment, or from a rewind after a nack, until the
// next rewind or the end of the generation. Records are tracked in offset
// order as they are dispatched and settle in any order; the commit offset
// is the lowest offset not yet settled successfully (Kafka commits name
// the next record to read), or the offset after the last dispatched record
// when nothing is outstanding. A failed record stays outstanding, so the
// watermark can never pass it.
//
// Entries live in a list of chunks, each holding chunkSize records'
// offsets, states and acks (a slab: the acks are the chunk's elements, and
// the chunk is their pipeline.Settler). Settling a record successfully is
// two atomic operations and takes no lock; only a failure takes the
// partition's lock.
//
// Ownership: track is called by the dispatch goroutine only (it owns
// tail); commitOffset by holders of the partition's mutex (they own head
// and hi); pending, halted, progressed and next are atomic.
type pass struct {
	p *partition
	// pending counts tracked records not settled yet.
	pending atomic.Int64
	// halted is set when the pass stops taking records (a nack, the end of
	// the generation); dispatch then drops what it still holds.
	halted atomic.Bool
	// progressed is set by the first successful settle.
	progressed atomic.Bool
	// next is the offset after the last tracked record; -1 unknown.
	next atomic.Int64
	// ended is set (under p.mu) once the pass was committed for the last
	// time: later settles no longer count.
	ended bool

	tail *chunk // dispatch goroutine
	head *chunk // under p.mu: the chunk of the first entry not known done
	hi   int    // under p.mu: that entry's index in head
}

// chunk holds chunkSize consecutive watermark entries of a pass.
type chunk struct {
	pass *pass
	// n counts the entries published; entry i < n is readable.
	n     atomic.Int32
	next  atomic.Pointer[chunk]
	off   [chunkSize]int64
	state [chunkSize]atomic.Uint32
	acks  [chunkSize]pipeline.Ack
}

func newPass(p *partition, next int64) *pass {
	ps := &pass{p: p}
	ps.next.Store(next)
	c := &chunk{pass: ps}
	ps.head, ps.tail = c, c
	return ps
}

// track adds a dispatched offset (offsets must increase) and returns the
// record's ack, with one share held by the caller. The caller has counted
// it in pending. Dispatch goroutine only.
//
// When it starts a new chunk it also moves the watermark's head past the
// finished records (under p.mu), so that the chunks kept between commits
// are those from the oldest unfinished record on, not every chunk since
// the last commit.
func (ps *pass) track(off int64) *pipeline.Ack {
	c := ps.tail
	i := int(c.n.Load())
	if i == chunkSize {
		ps.p.mu.Lock()
		ps.commitOffset()
		ps.p.mu.Unlock()
		nc := &chunk{pass: ps}
		c.next.Store(nc)
		ps.tail, c, i = nc, nc, 0
	}
	c.off[i] = off
	a := &c.acks[i]
	pipeline.InitAck(a, c, uint64(i))
	c.n.Store(int32(i + 1)) // publishes off[i] to commitOffset
	ps.next.Store(off + 1)  // after n: a reader of next finds every entry below it
	return a
}

// Settle implements pipeline.Settler: the record in slot tag finished.
// Success marks it done without a lock; a failure halts the pass and
// stops the partition (see partition.nack).
func (c *chunk) Settle(tag uint64, err error) {
	ps := c.pass
	if err == nil {
		c.state[tag].Store(stateDone)
		if !ps.progressed.Load() {
			ps.progressed.Store(true)
		}
		ps.pending.Add(-1) // after the state: a reader that sees 0 sees every outcome
		return
	}
	ps.p.nack(ps, c.off[tag], &c.state[tag], err)
}

// commitOffset returns the offset to commit and whether one is known. It
// is called with p.mu held.
func (ps *pass) commitOffset() (int64, bool) {
	next := ps.next.Load() // first: every entry below next is published
	c, i := ps.head, ps.hi
	for {
		n := int(c.n.Load())
		for i < n && c.state[i].Load() == stateDone {
			i++
		}
		if i < n {
			ps.head, ps.hi = c, i
			return c.off[i], true
		}
		nc := c.next.Load()
		if i < chunkSize || nc == nil {
			break
		}
		// c is done and no longer the tail: unlink it, so that an ack of
		// it that something still holds keeps only its own chunk alive.
		c.next.Store(nil)
		c, i = nc, 0
	}
	ps.head, ps.hi = c, i
	return next, next >= 0
}

package w3kafka

import (
	"fmt"
	"sort"
)

// Watermarks is the at-least-once bookkeeping of the hand-written loops:
// per input partition, the offsets the loop has taken in (in fetch order,
// ascending, possibly with gaps) and which of them are finished (filtered
// out, or acknowledged by the producer). The watermark of a partition is
// the offset after the longest finished prefix of its taken-in offsets:
// committing it never skips an unfinished record. Offsets that were never
// taken in (gaps left by compaction or transaction markers) are not waited
// for.
//
// Watermarks is not safe for concurrent use; the loops hold a mutex
// around it.
type Watermarks struct {
	parts []partMarks // indexed by partition
}

type partMarks struct {
	offs     []int64 // taken-in offsets from head on, ascending
	done     []bool  // done[i]: offs[i] is finished
	head     int     // first unfinished entry
	last     int64   // last offset taken in (-1: none)
	next     int64   // watermark: the offset to commit (-1: nothing finished yet)
	reported int64   // the watermark Advanced last returned
}

// Mark is a partition's watermark: Next is the offset to commit (the next
// offset the group should read).
type Mark struct {
	Partition int
	Next      int64
}

func (w *Watermarks) part(p int) *partMarks {
	for len(w.parts) <= p {
		w.parts = append(w.parts, partMarks{last: -1, next: -1, reported: -1})
	}
	return &w.parts[p]
}

// Add records that the loop took in offset off of partition p. Offsets of
// a partition must be added in ascending order.
func (w *Watermarks) Add(p int, off int64) error {
	pm := w.part(p)
	if off <= pm.last {
		return fmt.Errorf("w3: partition %d: offset %d taken in after %d", p, off, pm.last)
	}
	pm.last = off
	pm.offs = append(pm.offs, off)
	pm.done = append(pm.done, false)
	return nil
}

// Finish records that offset off of partition p is done with (filtered
// out, or its output acknowledged) and advances the partition's watermark
// over the finished prefix. Finishing an offset that was not added, or
// finishing one twice, is an error.
func (w *Watermarks) Finish(p int, off int64) error {
	if p < 0 || p >= len(w.parts) {
		return fmt.Errorf("w3: partition %d: offset %d finished but never taken in", p, off)
	}
	pm := &w.parts[p]
	pending := pm.offs[pm.head:]
	i := sort.Search(len(pending), func(i int) bool { return pending[i] >= off })
	if i == len(pending) || pending[i] != off {
		return fmt.Errorf("w3: partition %d: offset %d finished but not pending", p, off)
	}
	i += pm.head
	if pm.done[i] {
		return fmt.Errorf("w3: partition %d: offset %d finished twice", p, off)
	}
	pm.done[i] = true
	for pm.head < len(pm.offs) && pm.done[pm.head] {
		pm.next = pm.offs[pm.head] + 1
		pm.head++
	}
	// Drop the finished prefix once it is the larger part of the slices.
	if pm.head >= 1024 && pm.head*2 >= len(pm.offs) {
		n := copy(pm.offs, pm.offs[pm.head:])
		copy(pm.done, pm.done[pm.head:])
		pm.offs, pm.done, pm.head = pm.offs[:n], pm.done[:n], 0
	}
	return nil
}

// Next returns partition p's watermark: the offset to commit, or -1 when
// no offset of p is finished yet.
func (w *Watermarks) Next(p int) int64 {
	if p < 0 || p >= len(w.parts) {
		return -1
	}
	return w.parts[p].next
}

// Pending returns how many taken-in offsets of partition p are not yet
// covered by its watermark.
func (w *Watermarks) Pending(p int) int {
	if p < 0 || p >= len(w.parts) {
		return 0
	}
	return len(w.parts[p].offs) - w.parts[p].head
}

// Advanced appends to dst the marks of the partitions whose watermark
// moved since the last call, and returns it.
func (w *Watermarks) Advanced(dst []Mark) []Mark {
	for p := range w.parts {
		pm := &w.parts[p]
		if pm.next > pm.reported {
			pm.reported = pm.next
			dst = append(dst, Mark{Partition: p, Next: pm.next})
		}
	}
	return dst
}

package w3kafka

import (
	"slices"
	"strings"
	"testing"
)

// op is one step of a watermark scenario: add or finish an offset of
// partition 0 (or of part), then expect that partition's watermark.
type op struct {
	add  bool
	part int
	off  int64
	want int64 // Next(part) after the step
}

func add(off, want int64) op { return op{add: true, off: off, want: want} }
func fin(off, want int64) op { return op{off: off, want: want} }

func TestWatermarks(t *testing.T) {
	cases := []struct {
		name string
		ops  []op
	}{
		{"in order", []op{add(0, -1), add(1, -1), fin(0, 1), fin(1, 2)}},
		{"out of order completions wait for the oldest", []op{
			add(0, -1), add(1, -1), add(2, -1), add(3, -1),
			fin(3, -1), fin(1, -1), fin(2, -1), // 0 unfinished: nothing to commit
			fin(0, 4)}},
		{"filtered records finish at once, in any order", []op{
			add(0, -1), add(1, -1), fin(1, -1), // 1 filtered while 0 is in flight
			add(2, -1), fin(2, -1), fin(0, 3)}},
		{"gaps are not waited for", []op{
			add(10, -1), add(11, -1), add(15, -1), add(20, -1), // 12-14, 16-19 never fetched
			fin(11, -1), fin(10, 12), fin(20, 12), fin(15, 21)}},
		{"watermark stops at the first unfinished offset", []op{
			add(0, -1), add(1, -1), add(2, -1), add(3, -1), add(4, -1),
			fin(0, 1), fin(2, 1), fin(4, 1), fin(1, 3), fin(3, 5)}},
		{"partitions are independent", []op{
			{add: true, part: 0, off: 0, want: -1}, {add: true, part: 1, off: 0, want: -1},
			{add: true, part: 1, off: 1, want: -1}, {part: 1, off: 1, want: -1},
			{part: 0, off: 0, want: 1}, {part: 1, off: 0, want: 2}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var w Watermarks
			for i, o := range c.ops {
				var err error
				if o.add {
					err = w.Add(o.part, o.off)
				} else {
					err = w.Finish(o.part, o.off)
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if got := w.Next(o.part); got != o.want {
					t.Fatalf("step %d (add=%v p%d off %d): watermark %d, want %d", i, o.add, o.part, o.off, got, o.want)
				}
			}
		})
	}
}

// TestWatermarksLong drives many offsets with completions in a scrambled
// order (and compaction of the finished prefix) against a brute-force
// model: the watermark is the offset after the longest finished prefix.
func TestWatermarksLong(t *testing.T) {
	var w Watermarks
	const n = 10_000
	offs := make([]int64, 0, n)
	for i := int64(0); len(offs) < n; i++ {
		if i%7 == 3 { // gaps
			continue
		}
		offs = append(offs, i)
		if err := w.Add(2, i); err != nil {
			t.Fatal(err)
		}
	}
	finished := make([]bool, n)
	// Finish in blocks of 64 in reverse, so every block completes
	// newest first.
	for base := 0; base < n; base += 64 {
		for i := min(base+63, n-1); i >= base; i-- {
			if err := w.Finish(2, offs[i]); err != nil {
				t.Fatal(err)
			}
			finished[i] = true
			want := int64(-1)
			for j := 0; j < n && finished[j]; j++ {
				want = offs[j] + 1
			}
			if got := w.Next(2); got != want {
				t.Fatalf("after finishing %d: watermark %d, want %d", offs[i], got, want)
			}
		}
	}
	if p := w.Pending(2); p != 0 {
		t.Fatalf("%d offsets still pending", p)
	}
}

func TestWatermarksErrors(t *testing.T) {
	var w Watermarks
	if err := w.Add(0, 5); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"offset not ascending", w.Add(0, 5), "taken in after"},
		{"finish of an unknown offset", w.Finish(0, 4), "not pending"},
		{"finish of an unknown partition", w.Finish(3, 0), "never taken in"},
		{"finish of a committed offset", func() error { _ = w.Finish(0, 5); return w.Finish(0, 5) }(), "not pending"},
		{"finish twice behind an unfinished offset", func() error {
			_, _, _ = w.Add(0, 6), w.Add(0, 7), w.Finish(0, 7)
			return w.Finish(0, 7)
		}(), "finished twice"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, c.err, c.want)
		}
	}
}

func TestWatermarksAdvanced(t *testing.T) {
	var w Watermarks
	for p := range 3 {
		for off := range int64(3) {
			if err := w.Add(p, off); err != nil {
				t.Fatal(err)
			}
		}
	}
	_ = w.Finish(0, 0)
	_ = w.Finish(2, 1) // 2/0 unfinished: partition 2 has not advanced
	if got, want := w.Advanced(nil), []Mark{{0, 1}}; !slices.Equal(got, want) {
		t.Fatalf("Advanced = %v, want %v", got, want)
	}
	if got := w.Advanced(nil); len(got) != 0 {
		t.Fatalf("Advanced again = %v, want nothing", got)
	}
	_ = w.Finish(2, 0)
	_ = w.Finish(0, 1)
	if got, want := w.Advanced(nil), []Mark{{0, 2}, {2, 2}}; !slices.Equal(got, want) {
		t.Fatalf("Advanced = %v, want %v", got, want)
	}
}

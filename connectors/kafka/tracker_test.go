package kafka

import "testing"

func TestTrackerWatermark(t *testing.T) {
	type step struct {
		op   string // add, ok, fail
		off  int64
		want int64 // commit offset after the step (-1: none)
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
		{"unknown settle ignored", 0, []step{{"add", 0, 0}, {"ok", 5, 0}, {"ok", 0, 1}, {"ok", 0, 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTracker(tc.start)
			for i, s := range tc.steps {
				switch s.op {
				case "add":
					tr.add(s.off)
				case "ok":
					tr.settle(s.off, true)
				case "fail":
					tr.settle(s.off, false)
				}
				got, ok := tr.commitOffset()
				if !ok {
					got = -1
				}
				if got != s.want {
					t.Fatalf("step %d (%s %d): commit = %d, want %d", i, s.op, s.off, got, s.want)
				}
			}
		})
	}
}

func TestTrackerNoCommitBeforeFirstRecord(t *testing.T) {
	tr := newTracker(-1)
	if _, ok := tr.commitOffset(); ok {
		t.Fatal("commit offset known before any record")
	}
	tr.reset(42)
	if off, ok := tr.commitOffset(); !ok || off != 42 {
		t.Fatalf("after reset: %d %v", off, ok)
	}
}

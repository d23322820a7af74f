package alloctest_test

import (
	"testing"

	"github.com/aimdb-dev/aimdb-flow/device/internal/alloctest"
)

var sink []*[64]byte

// The counter must see allocations, or the zero-allocation tests built on it
// could not fail (this is what guards them under TinyGo).
func TestCountsAllocations(t *testing.T) {
	if got := alloctest.PerRun(100, func() { sink = append(sink[:0], new([64]byte)) }); got < 1 || len(sink) != 1 {
		t.Fatalf("PerRun = %v for a function that allocates once per call", got)
	}
	if got := alloctest.PerRun(100, func() { sink = sink[:1] }); got != 0 || sink[0] == nil {
		t.Fatalf("PerRun = %v for a function that does not allocate", got)
	}
}

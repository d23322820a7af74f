package alloctest_test

import (
	"testing"

	"github.com/aimdb-dev/aimdb-flow/device/internal/alloctest"
)

var sink []byte

// The counter must see allocations, or the zero-allocation tests built on it
// could not fail (this is what guards them under TinyGo).
func TestCountsAllocations(t *testing.T) {
	n := 1
	if got := alloctest.PerRun(100, func() { sink = make([]byte, 64+n) }); got < 1 {
		t.Fatalf("PerRun = %v for a function that allocates once per call", got)
	}
	if got := alloctest.PerRun(100, func() { sink = sink[:0] }); got != 0 {
		t.Fatalf("PerRun = %v for a function that does not allocate", got)
	}
}

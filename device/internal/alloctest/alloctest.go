// Package alloctest counts heap allocations in a way that works under both
// Go and TinyGo (TinyGo's testing.AllocsPerRun always reports 0; its
// runtime.MemStats.Mallocs is real with the precise and conservative GCs).
package alloctest

import "runtime"

// PerRun calls f once to warm up, then runs times, and returns the average
// number of heap allocations per call.
func PerRun(runs int, f func()) float64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < runs; i++ {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / float64(runs)
}

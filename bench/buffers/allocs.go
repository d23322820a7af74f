package buffers

import "runtime"

// testingAllocs is testing.AllocsPerRun without importing testing into a
// program.
func testingAllocs(f func()) float64 {
	const runs = 10000
	f()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for i := 0; i < runs; i++ {
		f()
	}
	runtime.ReadMemStats(&m1)
	return float64(m1.Mallocs-m0.Mallocs) / runs
}

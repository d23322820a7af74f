package codec

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user+system) the process has used,
// including the garbage collector's background workers. Benchmarks report
// it per operation because wall time is unreliable on a shared, loaded
// machine.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

//go:build race

package buffers_test

// The race detector allocates on its own; allocation checks are skipped.
const raceEnabled = true

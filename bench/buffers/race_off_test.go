//go:build !race

package buffers_test

const raceEnabled = false

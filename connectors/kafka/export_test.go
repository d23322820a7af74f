package kafka

import "github.com/aimdb-dev/aimdb-flow/pipeline"

// Pending returns how many records a connector built by this package
// holds in its producers' batches, not yet handed to a writer.
func Pending(c pipeline.Connector) int {
	n := 0
	for _, b := range c.(*conn).batcherList() {
		b.mu.Lock()
		n += len(b.pending)
		b.mu.Unlock()
	}
	return n
}

// BatchEverything makes c put every record into the pending batch, none
// handed off alone, so that a rejection inside a batch can be provoked.
// Call it before the first publish.
func BatchEverything(c pipeline.Connector) { c.(*conn).batchAll = true }

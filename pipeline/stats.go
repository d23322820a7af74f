package pipeline

import (
	"sync/atomic"

	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
)

// stageStats counts what a stage saw. Out is counted by the next stage's In
// (or the terminal), so a stage's drops are In minus the next In.
type stageStats struct {
	In     atomic.Uint64
	Errors atomic.Uint64
}

// linkStats counts what a link moved.
type linkStats struct {
	Messages     atomic.Uint64 // inbound: received; outbound: published
	Errors       atomic.Uint64 // inbound: decode errors; outbound: publish/encode failures
	DeadLettered atomic.Uint64
}

// Snapshot is a point-in-time copy of every counter of a running graph.
type Snapshot struct {
	Records     map[string]RecordSnapshot
	Pipelines   map[string]PipelineSnapshot
	Links       map[string]LinkSnapshot // keyed by "record|link" or "pipeline|link"
	Unrouted    uint64                  // inbound messages that matched no record
	DeadLetters uint64                  // dead letters produced (all causes)
}

// RecordSnapshot is a record's buffer counters.
type RecordSnapshot struct {
	Writes uint64
	Buffer buffer.Stats
}

// PipelineSnapshot is a pipeline's counters.
type PipelineSnapshot struct {
	In     uint64 // envelopes read from the input record
	Out    uint64 // envelopes that reached an output
	Errors uint64 // envelopes that failed in a stage
	Stages []StageSnapshot
}

// StageSnapshot is one stage's counters.
type StageSnapshot struct {
	Name   string
	In     uint64
	Errors uint64
}

// LinkSnapshot is one link's counters.
type LinkSnapshot struct {
	Direction    Direction
	Link         string
	Messages     uint64
	Errors       uint64
	DeadLettered uint64
}

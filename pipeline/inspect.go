package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// This file: what a running graph shows to inspection tools (the records
// API): the graph it runs and setting a value into a settable record. The
// counters are in Stats, the latest values in Latest, live values in Watch.

// ErrUnknownRecord is returned (wrapped, with the name) for a record the
// graph does not declare.
var ErrUnknownRecord = errors.New("unknown record")

// ErrNotSettable is returned (wrapped) by Set for a record not declared
// settable (RecordSpec.Settable).
var ErrNotSettable = errors.New("record is not settable")

// Graph returns the graph the runner runs. It must not be modified.
func (r *Runner) Graph() *Graph { return r.g }

// Set writes env into a settable record (RecordSpec.Settable), as its
// writer, blocking on a full queue buffer until ctx ends. A zero env.Time
// is set to now. Concurrent calls are serialized. The error wraps
// ErrUnknownRecord, ErrNotSettable, buffer.ErrClosed (the graph stopped) or
// ctx's error. Go code may also write a settable record through
// Runner.Writer; writes of the two are serialized.
func (r *Runner) Set(ctx context.Context, name string, env Envelope) error {
	rec := r.records[name]
	if rec == nil {
		return fmt.Errorf("pipeline: %w %q", ErrUnknownRecord, name)
	}
	if !rec.settable {
		return fmt.Errorf("pipeline: record %q: %w (declare it settable)", name, ErrNotSettable)
	}
	if env.Time.IsZero() {
		env.Time = time.Now()
	}
	env.Ack = nil
	return (&Writer{rec: rec}).Write(ctx, &env) // serialized with other writers of rec
}

package pipeline

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// DefaultWatchCapacity is the number of values a Watch holds for its
// reader when Runner.Watch is given a capacity of zero or less.
const DefaultWatchCapacity = 256

// WatchEvent is one value written to a watched record.
type WatchEvent struct {
	// Record is the record's name.
	Record string
	// Env is the envelope as written, without its Ack and Trace: a watcher
	// never holds up an acknowledgement. Its Value and byte slices are
	// shared with the pipeline and must not be modified.
	Env Envelope
}

// Watch receives the values written to some records, for inspection (the
// records API's live stream). It never slows the graph down: each write
// offers the value to the watch without blocking, and a value the watch
// has no room for is dropped and counted (Dropped). A watch takes no ack
// share, so a watched lossless record still applies backpressure only to
// its writer's real readers.
//
// While no Watch is open on a record, a write pays one atomic load for
// watching.
type Watch struct {
	r       *Runner
	ch      chan WatchEvent
	recs    []*record
	dropped atomic.Uint64
	closed  sync.Once
}

// Watch opens a watch on the named records (each must exist), holding up
// to capacity values for its reader (DefaultWatchCapacity if capacity <=
// 0). It may be called at any time, also while the graph runs; the watch
// sees the values written after it returned. Close it when done.
func (r *Runner) Watch(capacity int, names ...string) (*Watch, error) {
	if capacity <= 0 {
		capacity = DefaultWatchCapacity
	}
	w := &Watch{r: r, ch: make(chan WatchEvent, capacity)}
	for _, n := range names {
		rec := r.records[n]
		if rec == nil {
			return nil, fmt.Errorf("%w %q", ErrUnknownRecord, n)
		}
		if !slices.Contains(w.recs, rec) {
			w.recs = append(w.recs, rec)
		}
	}
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	for _, rec := range w.recs {
		var list []*Watch
		if old := rec.watchers.Load(); old != nil {
			list = append(list, *old...)
		}
		list = append(list, w)
		rec.watchers.Store(&list)
	}
	return w, nil
}

// C is the channel the watched values arrive on. It is never closed: stop
// reading when done and call Close.
func (w *Watch) C() <-chan WatchEvent { return w.ch }

// Dropped is how many values the watch missed because its reader did not
// keep up (its channel was full).
func (w *Watch) Dropped() uint64 { return w.dropped.Load() }

// Records returns the names of the watched records.
func (w *Watch) Records() []string {
	out := make([]string, len(w.recs))
	for i, rec := range w.recs {
		out[i] = rec.name
	}
	return out
}

// Close stops the watch. Values may still be in C; nothing is added after
// Close returns, except by a write that was already offering its value.
// Close is idempotent.
func (w *Watch) Close() {
	w.closed.Do(func() {
		w.r.watchMu.Lock()
		defer w.r.watchMu.Unlock()
		for _, rec := range w.recs {
			old := rec.watchers.Load()
			if old == nil {
				continue
			}
			list := slices.DeleteFunc(slices.Clone(*old), func(x *Watch) bool { return x == w })
			if len(list) == 0 {
				rec.watchers.Store(nil)
			} else {
				rec.watchers.Store(&list)
			}
		}
	})
}

// offer hands a copy of env to the reader, or counts a drop.
func (w *Watch) offer(name string, env *Envelope) {
	select {
	case w.ch <- WatchEvent{Record: name, Env: Envelope{Value: env.Value, Payload: env.Payload, Topic: env.Topic,
		Key: env.Key, Headers: env.Headers, Time: env.Time, Partition: env.Partition, Offset: env.Offset}}:
	default:
		w.dropped.Add(1)
	}
}

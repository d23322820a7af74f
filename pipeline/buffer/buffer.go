// Package buffer implements the four hand-off disciplines a record can use
// between its single writer and its readers:
//
//   - Ring N: every reader has its own cursor over the last N values. A reader
//     that falls more than N behind receives one *LagError carrying the number
//     of values it missed, then resumes from the oldest value still held.
//     The writer never blocks. Lossy (at-most-once for slow readers).
//   - Latest: one slot. A new reader first receives the current value (if
//     any); a slow reader skips intermediate values and receives the newest.
//     The writer never blocks. Lossy; collapsed values are counted as drops.
//   - Mailbox: one slot, taken on read. Readers compete: each value is
//     delivered to at most one reader. A value overwritten before it was taken
//     is counted as a drop. The writer never blocks. Lossy.
//   - Queue N: every reader has its own bounded FIFO of N values and receives
//     every value. When any reader's FIFO is full the writer blocks
//     (backpressure), so nothing is lost. Lossless.
//
// All kinds preallocate their storage at construction and perform no
// allocation per value. The package depends only on the standard library's
// sync and context packages so that it builds under TinyGo.
package buffer

import (
	"context"
	"errors"
	"strconv"
	"strings"
)

// Kind selects a buffer discipline.
type Kind uint8

// The buffer kinds.
const (
	Ring Kind = iota + 1
	Latest
	Mailbox
	Queue
)

// String returns the DSL keyword of the kind.
func (k Kind) String() string {
	switch k {
	case Ring:
		return "ring"
	case Latest:
		return "latest"
	case Mailbox:
		return "mailbox"
	case Queue:
		return "queue"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Lossless reports whether the kind never drops a value (only Queue).
func (k Kind) Lossless() bool { return k == Queue }

// Config describes a buffer: its kind and, for Ring and Queue, its capacity.
type Config struct {
	Kind Kind
	Size int
}

// Default is the buffer used when none is configured: a lossless queue.
var Default = Config{Kind: Queue, Size: 1024}

// String renders the config in DSL form ("ring 1024", "latest").
func (c Config) String() string {
	if c.Kind == Ring || c.Kind == Queue {
		return c.Kind.String() + " " + strconv.Itoa(c.Size)
	}
	return c.Kind.String()
}

// Validate reports a configuration mistake.
func (c Config) Validate() error {
	switch c.Kind {
	case Ring, Queue:
		if c.Size <= 0 {
			return errors.New("buffer " + c.Kind.String() + " needs a positive size, got " + strconv.Itoa(c.Size))
		}
	case Latest, Mailbox:
	default:
		return errors.New("unknown buffer kind " + strconv.Itoa(int(c.Kind)))
	}
	return nil
}

// Parse reads a DSL buffer spec: "ring 1024", "queue 64", "latest", "mailbox".
func Parse(s string) (Config, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return Config{}, errors.New("empty buffer spec")
	}
	var c Config
	switch f[0] {
	case "ring":
		c.Kind = Ring
	case "queue":
		c.Kind = Queue
	case "latest":
		c.Kind = Latest
	case "mailbox":
		c.Kind = Mailbox
	default:
		return Config{}, errors.New("unknown buffer kind " + strconv.Quote(f[0]) + " (want ring, queue, latest or mailbox)")
	}
	switch {
	case (c.Kind == Ring || c.Kind == Queue) && len(f) != 2:
		return Config{}, errors.New("buffer " + f[0] + " needs a size, e.g. " + strconv.Quote(f[0]+" 1024"))
	case (c.Kind == Latest || c.Kind == Mailbox) && len(f) != 1:
		return Config{}, errors.New("buffer " + f[0] + " takes no size")
	}
	if len(f) == 2 {
		n, err := strconv.Atoi(f[1])
		if err != nil {
			return Config{}, &wrapError{msg: "buffer size " + strconv.Quote(f[1]) + ": " + err.Error(), err: err}
		}
		c.Size = n
	}
	return c, c.Validate()
}

// wrapError is fmt.Errorf("...: %w") without fmt, which would add ~15 KB of
// flash to a TinyGo device build.
type wrapError struct {
	msg string
	err error
}

func (e *wrapError) Error() string { return e.msg }
func (e *wrapError) Unwrap() error { return e.err }

// ErrClosed is returned by Push after Close, and by Recv once the buffer is
// closed and the reader has drained everything it was owed.
var ErrClosed = errors.New("buffer closed")

// LagError is returned once by a Ring reader that fell behind; the next Recv
// resumes from the oldest value still held. The *LagError belongs to the
// reader and is reused (a lagging reader allocates nothing): read Missed
// before that reader's next Recv.
type LagError struct{ Missed uint64 }

func (e *LagError) Error() string {
	return "reader lagged: missed " + strconv.FormatUint(e.Missed, 10) + " values"
}

// Stats is a snapshot of a buffer's counters.
type Stats struct {
	Kind      Kind
	Capacity  int
	Pushed    uint64 // values written
	Delivered uint64 // values handed to readers (summed over readers)
	Dropped   uint64 // values lost: overwritten mailbox values, collapsed latest values
	Lagged    uint64 // values missed by lagging ring readers (summed over readers)
	Readers   int    // current readers
	Occupancy int    // values held and not yet read by the slowest reader
}

// Buffer is a single-writer, multi-reader hand-off.
// BatchPusher is implemented by buffers that push several values at once
// more cheaply than one by one (Queue: one lock acquisition and one
// wake-up). PushBatch(ctx, vs) is Push of each value in order; it returns
// how many were pushed (all of them unless err is non-nil).
type BatchPusher[T any] interface {
	PushBatch(ctx context.Context, vs []T) (int, error)
}

type Buffer[T any] interface {
	// Push hands v to the readers. Only a Queue blocks (until every reader
	// has room, ctx is done, or the buffer is closed).
	Push(ctx context.Context, v T) error
	// Subscribe adds a reader. A reader subscribed after values were pushed
	// sees: Ring, nothing older than now; Latest, the current value;
	// Mailbox, an untaken value; Queue, nothing older than now.
	Subscribe() Reader[T]
	// Close ends the stream: readers drain what they are owed, then get
	// ErrClosed. Close is idempotent.
	Close()
	// Stats returns a snapshot of the counters.
	Stats() Stats
	// Config returns the configuration the buffer was built with.
	Config() Config
	// Last returns the most recently pushed value, whether or not a reader
	// has taken it; ok is false before the first push.
	Last() (v T, ok bool)
}

// Reader receives values from a Buffer. A Reader is used by one goroutine.
type Reader[T any] interface {
	// Recv blocks until a value is available, the buffer is closed and
	// drained (ErrClosed), ctx is done (ctx.Err()), or, for Ring, the reader
	// lagged (*LagError, once per lag).
	Recv(ctx context.Context) (T, error)
	// TryRecv returns a value if one is available without blocking.
	// ok is false when none is; err reports a lag or the closed end.
	TryRecv() (v T, ok bool, err error)
	// RecvBatch blocks like Recv until at least one value is available,
	// then copies up to len(dst) available values into dst under a single
	// lock acquisition and returns how many. A lag or the closed end is
	// returned (with n == 0) only when no value precedes it.
	RecvBatch(ctx context.Context, dst []T) (n int, err error)
	// Close unsubscribes the reader; a Queue writer no longer waits for it.
	Close()
}

// New builds a buffer for cfg. It panics on an invalid config; call
// cfg.Validate first when the config comes from user input.
func New[T any](cfg Config) Buffer[T] {
	if err := cfg.Validate(); err != nil {
		panic("buffer: " + err.Error())
	}
	switch cfg.Kind {
	case Ring:
		return newRing[T](cfg.Size)
	case Latest:
		return newLatest[T]()
	case Mailbox:
		return newMailbox[T]()
	default:
		return newQueue[T](cfg.Size)
	}
}

package pipeline

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
)

type writerKind uint8

const (
	writerNone writerKind = iota // a producer: Go code writes it through Runner.Writer
	writerSource
	writerPipeline
)

// record is the runtime side of a RecordSpec.
type record struct {
	name     string
	buf      buffer.Buffer[Envelope]
	lossless bool
	readers  int // fixed before Run starts
	writer   writerKind

	settable bool

	writes atomic.Uint64
	closed atomic.Bool
	// watchers is nil while nobody watches: then a write pays one atomic
	// load for it. The list is replaced, never modified (see Runner.Watch).
	watchers atomic.Pointer[[]*Watch]
	// setMu serializes the writers of a settable record (Runner.Set and
	// Runner.Writer): a buffer has one writer at a time.
	setMu sync.Mutex
}

func newRecord(spec *RecordSpec) *record {
	return &record{name: spec.Name, buf: buffer.New[Envelope](spec.Buffer), lossless: spec.Buffer.Kind.Lossless(), settable: spec.Settable}
}

// notify offers env to every watcher, without blocking (see Watch).
func (r *record) notify(env *Envelope) {
	if ws := r.watchers.Load(); ws != nil {
		for _, w := range *ws {
			w.offer(r.name, env)
		}
	}
}

func (r *record) subscribe() buffer.Reader[Envelope] {
	r.readers++
	return r.buf.Subscribe()
}

// write hands env to every reader. Lossless buffers pass the ack on (one
// share per reader); lossy buffers strip it, so a lossy record acknowledges
// its source as soon as it is written (at-most-once, by the user's choice).
// The caller keeps its own share either way.
func (r *record) write(ctx context.Context, env *Envelope) error {
	r.writes.Add(1)
	// The buffer keeps the latest value (Last), so the write is one copy
	// of the envelope into the buffer and nothing else.
	if !r.lossless {
		a := env.Ack
		env.Ack = nil
		err := r.buf.Push(ctx, *env)
		env.Ack = a
		if err == nil {
			r.notify(env)
		}
		return err
	}
	a := env.Ack
	a.Add(r.readers)
	if err := r.buf.Push(ctx, *env); err != nil {
		for i := 0; i < r.readers; i++ {
			a.Nack(err)
		}
		return err
	}
	r.notify(env)
	return nil
}

func (r *record) close() {
	if r.closed.CompareAndSwap(false, true) {
		r.buf.Close()
	}
}

func (r *record) get() (Envelope, bool) {
	e, ok := r.buf.Last()
	e.Ack = nil
	return e, ok
}

// writeBatch is write for each of envs in order, in one buffer hand-off
// when the buffer can take batches (a queue). Each env keeps its own ack
// share, as with write. It returns how many were written.
func (r *record) writeBatch(ctx context.Context, envs []Envelope) (int, error) {
	bp, ok := r.buf.(buffer.BatchPusher[Envelope])
	if !ok || !r.lossless {
		for i := range envs {
			if err := r.write(ctx, &envs[i]); err != nil {
				return i, err
			}
		}
		return len(envs), nil
	}
	r.writes.Add(uint64(len(envs)))
	for i := range envs {
		envs[i].Ack.Add(r.readers)
	}
	n, err := bp.PushBatch(ctx, envs)
	if r.watchers.Load() != nil {
		for i := range envs[:n] {
			r.notify(&envs[i])
		}
	}
	if err != nil {
		for i := n; i < len(envs); i++ {
			for j := 0; j < r.readers; j++ {
				envs[i].Ack.Nack(err)
			}
		}
	}
	return n, err
}

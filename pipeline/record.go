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

	mu     sync.Mutex
	latest Envelope
	has    bool
	writes atomic.Uint64
	closed atomic.Bool
}

func newRecord(spec *RecordSpec) *record {
	return &record{name: spec.Name, buf: buffer.New[Envelope](spec.Buffer), lossless: spec.Buffer.Kind.Lossless()}
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
	r.mu.Lock()
	r.latest = *env
	r.latest.Ack = nil
	r.has = true
	r.mu.Unlock()
	if r.readers == 0 {
		return nil
	}
	e := *env
	if !r.lossless {
		e.Ack = nil
		return r.buf.Push(ctx, e)
	}
	e.Ack.Add(r.readers)
	if err := r.buf.Push(ctx, e); err != nil {
		for i := 0; i < r.readers; i++ {
			e.Ack.Nack(err)
		}
		return err
	}
	return nil
}

func (r *record) close() {
	if r.closed.CompareAndSwap(false, true) {
		r.buf.Close()
	}
}

func (r *record) get() (Envelope, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.latest, r.has
}

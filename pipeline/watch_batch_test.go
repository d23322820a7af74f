package pipeline_test

import (
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// Values written by a batch hand-off (DispatchBatch into a queue) reach
// watchers too, in order.
func TestWatchSeesBatchWrites(t *testing.T) {
	src := &batchSource{acks: map[int][]error{}, served: make(chan struct{}),
		payloads: []string{`{"n":0}`, `{"n":1}`, `{"n":2}`, `{"n":3}`}}
	bus := mem.NewBus()
	g := pipeline.New().Connector("", src).Connector("", mem.New(bus))
	g.Record("in").WithBuffer(buffer.Config{Kind: buffer.Queue, Size: 8}).From("batch://in", codec.LazyJSON{})
	g.Pipeline("p").From("in").To("mem://out", codec.LazyJSON{})
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := r.Watch(16, "in")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	_, stop := runMem(t, r)
	<-src.served
	for i, want := range src.payloads {
		var ev pipeline.WatchEvent
		select {
		case ev = <-w.C():
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d never came (the batch write did not notify the watcher)", i)
		}
		if string(ev.Env.Payload) != want || ev.Env.Ack != nil {
			t.Fatalf("event %d: %s (ack %v), want %s", i, ev.Env.Payload, ev.Env.Ack, want)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if w.Dropped() != 0 {
		t.Errorf("dropped %d", w.Dropped())
	}
}

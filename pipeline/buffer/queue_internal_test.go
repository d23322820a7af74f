package buffer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// PushBatch delivers every value in order through a queue smaller than
// the batch (the writer waits for the reader and wakes it first), and
// reports how many it pushed when ctx ends.
func TestQueuePushBatch(t *testing.T) {
	q := newQueue[int](4)
	rd := q.Subscribe()
	vals := make([]int, 50)
	for i := range vals {
		vals[i] = i
	}
	got := make(chan error, 1)
	go func() {
		for i := range vals {
			v, err := rd.Recv(context.Background())
			if err != nil || v != i {
				got <- fmt.Errorf("value %d: got %d, %v", i, v, err)
				return
			}
		}
		got <- nil
	}()
	// Start once the reader is parked on the empty queue: the batch must
	// wake it before the writer waits for room.
	for parked := false; !parked; {
		q.mu.Lock()
		parked = rd.(*queueReader[int]).w.waiting
		q.mu.Unlock()
		if !parked {
			runtime.Gosched()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if n, err := q.PushBatch(ctx, vals); n != len(vals) || err != nil {
		t.Fatalf("pushed %d of %d: %v (a reader that was never woken?)", n, len(vals), err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if v, ok := q.Last(); !ok || v != 49 {
		t.Fatalf("Last = %d, %v", v, ok)
	}
	// A full queue and a cancelled ctx: the values that fitted are pushed.
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	n, err := q.PushBatch(cctx, []int{1, 2, 3, 4, 5, 6})
	if n != 4 || !errors.Is(err, context.Canceled) {
		t.Fatalf("PushBatch on a full queue = %d, %v; want 4, context.Canceled", n, err)
	}
}

// A value read from a queue is no longer referenced by the buffer.
func TestQueueClearsReadSlots(t *testing.T) {
	q := newQueue[*int](8)
	rd := q.Subscribe()
	for i := 0; i < 5; i++ {
		v := i
		if err := q.Push(context.Background(), &v); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 5; i++ {
		if _, err := rd.Recv(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range rd.(*queueReader[*int]).items {
		if p != nil {
			t.Fatalf("slot %d still holds %d after it was read", i, *p)
		}
	}
}

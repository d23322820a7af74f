package buffer

import (
	"context"
	"sync"
)

// waiter is the park/unpark primitive shared by all kinds: a reader (or a
// blocked writer) sets waiting under the buffer's lock and then blocks on ch;
// the other side wakes it with a non-blocking send. The channel has capacity
// one, so a wake-up that races the park is never lost and never blocks.
type waiter struct {
	ch      chan struct{}
	waiting bool
}

func newWaiter() waiter { return waiter{ch: make(chan struct{}, 1)} }

// wake must be called with the buffer's lock held.
func (w *waiter) wake() {
	if w.waiting {
		w.waiting = false
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}
}

// park is called with mu held and w.waiting already set; it unlocks, waits
// for a wake-up or ctx, and returns with mu unlocked.
func (w *waiter) park(ctx context.Context, mu *sync.Mutex) error {
	mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		mu.Lock()
		w.waiting = false
		mu.Unlock()
		// Drain a wake-up that may have raced the cancellation.
		select {
		case <-w.ch:
		default:
		}
		return ctx.Err()
	}
}

package w3kafka

import (
	"context"
	"time"
)

// commitEvery runs commit every CommitInterval until ctx ends, in its own
// goroutine. done closes when it stopped; failed receives the first error
// of loopErr or of a commit (the run's failure signal for waitDone).
func commitEvery(ctx context.Context, commit func(context.Context) error, loopErr <-chan error) (done <-chan struct{}, failed <-chan error) {
	commitErr := make(chan error, 1)
	commitDone := make(chan struct{})
	go func() {
		defer close(commitDone)
		t := time.NewTicker(CommitInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := commit(ctx); err != nil && ctx.Err() == nil {
					commitErr <- err
					return
				}
			}
		}
	}()
	fail := make(chan error, 1)
	go func() {
		select {
		case err := <-loopErr:
			fail <- err
		case err := <-commitErr:
			fail <- err
		case <-ctx.Done():
		}
	}()
	return commitDone, fail
}

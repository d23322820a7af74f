package stages

import (
	"context"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Throttle passes at most n envelopes per period, delaying (never
// dropping) the rest: backpressure reaches the source through the bounded
// channel feeding the stage.
func Throttle(n int, per time.Duration) pipeline.AsyncStage {
	if n <= 0 {
		n = 1
	}
	if per <= 0 {
		per = time.Second
	}
	return &throttle{n: n, per: per, now: time.Now, sleep: sleepCtx}
}

type throttle struct {
	n   int
	per time.Duration
	// now and sleep are the clock (tests inject a virtual one).
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (*throttle) Kind() string { return "throttle" }

// PreservesValue implements pipeline.ValuePreserver.
func (*throttle) PreservesValue() bool { return true }

func (t *throttle) Run(ctx context.Context, in <-chan pipeline.Envelope, emit pipeline.Emit) error {
	windowStart := t.now()
	count := 0
	for env := range in {
		if count >= t.n {
			wait := t.per - t.now().Sub(windowStart)
			if wait > 0 {
				if err := t.sleep(ctx, wait); err != nil {
					env.Ack.Nack(err)
					return err
				}
			}
			windowStart, count = t.now(), 0
		}
		count++
		if err := emit(ctx, &env); err != nil {
			return err
		}
	}
	return nil
}

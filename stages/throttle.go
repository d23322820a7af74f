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
	return &throttle{n: n, per: per}
}

type throttle struct {
	n   int
	per time.Duration
}

func (*throttle) Kind() string { return "throttle" }

func (t *throttle) Run(ctx context.Context, in <-chan pipeline.Envelope, emit pipeline.Emit) error {
	windowStart := time.Now()
	count := 0
	for env := range in {
		if count >= t.n {
			wait := t.per - time.Since(windowStart)
			if wait > 0 {
				timer := time.NewTimer(wait)
				select {
				case <-timer.C:
				case <-ctx.Done():
					timer.Stop()
					env.Ack.Nack(ctx.Err())
					return ctx.Err()
				}
			}
			windowStart, count = time.Now(), 0
		}
		count++
		if err := emit(ctx, &env); err != nil {
			return err
		}
	}
	return nil
}

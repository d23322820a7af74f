package stages

import (
	"context"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// ThrottleWithClock is Throttle reading the time from now and waiting with
// sleep, so tests run it on a virtual clock.
func ThrottleWithClock(n int, per time.Duration, now func() time.Time, sleep func(context.Context, time.Duration) error) pipeline.AsyncStage {
	t := Throttle(n, per).(*throttle)
	t.now, t.sleep = now, sleep
	return t
}

package pipeline_test

import (
	"context"
	"fmt"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
)

// Watch a settable record while values are set into it: a watch that
// has no room drops and counts instead of holding up the writer.
func ExampleRunner_Watch() {
	g := pipeline.New()
	g.Record("setpoint").WithBuffer(buffer.Config{Kind: buffer.Latest}).WithSettable()
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	w, _ := r.Watch(2, "setpoint")
	defer w.Close()
	ctx := context.Background()
	for _, v := range []float64{20, 20.5, 21, 21.5} {
		if err := r.Set(ctx, "setpoint", pipeline.Envelope{Value: v}); err != nil {
			fmt.Println(err)
		}
	}
	fmt.Println((<-w.C()).Env.Value, (<-w.C()).Env.Value, "dropped", w.Dropped())
	latest, _ := r.Latest("setpoint")
	fmt.Println("latest", latest.Value)
	// Output:
	// 20 20.5 dropped 2
	// latest 21.5
}

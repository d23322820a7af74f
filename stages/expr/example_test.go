package expr_test

import (
	"context"
	"fmt"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/expr"
)

// Expression stages in Go: compile once, then use the stages in a
// pipeline (g.Pipeline("p").Via(...)) or, as here, call them directly.
func Example() {
	hot := expr.Filter(expr.MustCompile(expr.ExprLang, `temp > 25 && device startsWith "d-"`, expr.Bool))
	alert := expr.Map(expr.MustCompile(expr.CEL, `{"device": device, "alert": true}`, expr.Any))
	print := func(_ context.Context, env *pipeline.Envelope) error {
		fmt.Println(env.Value)
		return nil
	}
	chain := func(ctx context.Context, env *pipeline.Envelope) error { return alert.Process(ctx, env, print) }
	for _, v := range []map[string]any{{"device": "d-1", "temp": 31.0}, {"device": "d-2", "temp": 12.0}} {
		if err := hot.Process(context.Background(), &pipeline.Envelope{Value: v}, chain); err != nil {
			fmt.Println(err)
		}
	}
	// Output:
	// map[alert:true device:d-1]
}

package pipeline_test

import (
	"context"
	"fmt"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/gen"
	"github.com/aimdb-dev/aimdb-flow/connectors/mem"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// A generator feeds a record; a pipeline filters hot readings, marks them
// and publishes each one to a topic computed from the record.
func Example() {
	bus := mem.NewBus()
	alerts, unsubscribe := bus.Subscribe("alerts/#", 16)
	defer unsubscribe()

	g := pipeline.New().
		Connector("", gen.New()).
		Connector("", mem.New(bus))
	g.Record("sensor.temp").
		WithBuffer(buffer.Config{Kind: buffer.Queue, Size: 256}).
		From("gen://readings", codec.JSON{}, pipeline.WithParams(pipeline.Params{
			"count":    "6",
			"template": `{"device":"d-{{seq}}","temp":{{choice 20 30 31}}}`,
			"seed":     "3",
		}))
	g.Pipeline("alerts").From("sensor.temp").
		Via(stages.FilterValue(func(m map[string]any) bool { return m["temp"].(float64) > 25 })).
		Via(stages.MapValue(func(m map[string]any) (map[string]any, error) { m["alert"] = true; return m, nil })).
		To("mem://alerts/{device}", codec.JSON{})

	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Run(ctx); err != nil { // gen with a count is finite: Run returns when drained
		fmt.Println(err)
	}
	for len(alerts) > 0 {
		e := <-alerts
		fmt.Println(e.Topic, string(e.Payload))
	}
	// Output:
	// alerts/d-1 {"alert":true,"device":"d-1","temp":31}
	// alerts/d-4 {"alert":true,"device":"d-4","temp":31}
	// alerts/d-6 {"alert":true,"device":"d-6","temp":30}
}

// Validation reports every mistake of a graph at once.
func ExampleGraph_Validate() {
	g := pipeline.New().Connector("", mem.New(nil))
	g.Record("sensor.temp").From("mqtt://sensors/+/temp", codec.JSON{})
	g.Pipeline("alerts").From("sensor.tmp").To("mem://alerts", nil)
	fmt.Println(g.Validate())
	// Output:
	// record sensor.temp: unknown connector "mqtt" in "mqtt://sensors/+/temp"
	// pipeline alerts: unknown input record "sensor.tmp" (did you mean "sensor.temp"?)
	// pipeline alerts: missing codec for "mem://alerts" (add encode json, msgpack or raw)
}

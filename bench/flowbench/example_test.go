package flowbench_test

import (
	"context"
	"fmt"

	"github.com/aimdb-dev/aimdb-flow/bench/flowbench"
)

// Drive pipelines/w1.flow with 1000 generated readings (about half of
// them hot; the generator is seeded, so the counts repeat) and read the
// counts (the same report also carries rates and latency percentiles per
// stage and sink; WriteText prints it all).
func ExampleRun() {
	rep, err := flowbench.Run(context.Background(), flowbench.Options{
		Records:  1000,
		Getenv:   func(string) (string, bool) { return "", false }, // the file's defaults
		Template: `{"device":"d-{{int 1 8}}","temp":{{choice 12.5 31.0}},"seq":{{seq}}}`,
	}, "../../pipelines/w1.flow")
	if err != nil {
		fmt.Println(err)
		return
	}
	src := rep.Sources[0]
	fmt.Printf("%s: generated %d\n", src.Link, src.Generated)
	for _, p := range rep.Pipelines {
		fmt.Printf("pipeline %s: in %d, filter in %d, latency samples %d\n", p.Name, p.In, p.Stages[0].In, p.Stages[0].Latency.Count)
	}
	s := rep.Sinks[0]
	fmt.Printf("%s: %d messages = pipeline out %v\n", s.Link, s.Messages, s.Messages == rep.Pipelines[0].Out)
	// Output:
	// file:///tmp/w1-in.jsonl: generated 1000
	// pipeline w1: in 1000, filter in 1000, latency samples 1000
	// file:///tmp/w1-out.jsonl: 504 messages = pipeline out true
}

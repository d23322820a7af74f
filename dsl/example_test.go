package dsl_test

import (
	"context"
	"fmt"
	"time"

	"github.com/aimdb-dev/aimdb-flow/dsl"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Load a .flow source, run it, and let its finite source end the run.
func Example() {
	src := []byte(`
connector gen "gen://"
connector stdio "stdio://"

record readings {
  from "gen://readings" decode json count 4
      template ` + "`" + `{"device":"d-{{seq}}","temp":{{int 20 20}}}` + "`" + `
}

pipeline alerts {
  from readings
  filter ` + "`device != \"d-2\"`" + `
  set alert ` + "`temp >= 20`" + `
  to "stdio://stdout" encode json
}
`)
	g, err := dsl.Load(dsl.Options{}, dsl.Source{Name: "example.flow", Src: src})
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Run(ctx); err != nil {
		fmt.Println(err)
	}
	// Output:
	// {"device":"d-1","temp":20,"alert":true}
	// {"device":"d-3","temp":20,"alert":true}
	// {"device":"d-4","temp":20,"alert":true}
}

// Problems are reported all at once, with positions inside the file.
func ExampleLoad_errors() {
	src := []byte("connector gen \"gen://\"\nrecord r {\n  from \"gen://x\" decode yaml\n}\npipeline p {\n  from r\n  filter `temp >`\n}\n")
	_, err := dsl.Load(dsl.Options{}, dsl.Source{Name: "bad.flow", Src: src})
	fmt.Println(err)
	// Output:
	// bad.flow:3:25: unknown codec "yaml" (known: [json msgpack raw])
	// bad.flow:5:1: pipeline p: no output (add to "connector://destination" or into RECORD)
	// bad.flow:7:16: filter: expr expression: unexpected token EOF
}

// Package scaling runs W1 as many independent pipelines in one process:
// pipeline i reads its own record (a file source over the same input),
// filters temp > 25.0, adds "alert": true and writes its own output file.
// The benchmark harness runs it with 1 to 64 pipelines to draw throughput
// and memory against the number of pipelines.
package scaling

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/aimdb-dev/aimdb-flow/bench/w1"
	"github.com/aimdb-dev/aimdb-flow/connectors/file"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// Graph builds n W1 pipelines over input, writing outDir/out-<i>.jsonl.
// Each has W1's configuration: a queue 4096 record, the compiled filter,
// the map and JSON codecs. Each pipeline reads its own link
// (outDir/in-<i>.jsonl, a symbolic link to input): the file connector
// routes a line to every record whose link names the same path, so
// sharing one path would multiply the work.
func Graph(input, outDir string, n int) (*pipeline.Graph, error) {
	if n < 1 {
		return nil, errors.New("scaling: at least one pipeline")
	}
	abs, err := filepath.Abs(input)
	if err != nil {
		return nil, err
	}
	alert := stages.MapValue(func(m map[string]any) (map[string]any, error) {
		m["alert"] = true
		return m, nil
	})
	g := pipeline.New().Connector("", file.New())
	for i := 0; i < n; i++ {
		filter, err := w1.ExprFilter(w1.FilterExpr)
		if err != nil {
			return nil, err
		}
		rec := fmt.Sprintf("readings.%d", i)
		in := filepath.Join(outDir, fmt.Sprintf("in-%d.jsonl", i))
		if err := os.Symlink(abs, in); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		g.Record(rec).WithBuffer(buffer.Config{Kind: buffer.Queue, Size: 4096}).From("file://"+in, codec.JSON{})
		g.Pipeline(fmt.Sprintf("w1.%d", i)).From(rec).Via(filter, alert).
			To("file://"+filepath.Join(outDir, fmt.Sprintf("out-%d.jsonl", i)), codec.JSON{})
	}
	return g, nil
}

// Run runs n pipelines to the end of their input and returns the number
// of records written by all of them.
func Run(ctx context.Context, input, outDir string, n int) (int, error) {
	g, err := Graph(input, outDir, n)
	if err != nil {
		return 0, err
	}
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		return 0, err
	}
	if err := r.Run(ctx); err != nil {
		return 0, err
	}
	total := 0
	for _, p := range r.Stats().Pipelines {
		total += int(p.Out)
	}
	return total, nil
}

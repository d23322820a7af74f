// Command decode is the host side of the device example: it reads the
// device's framed UART output from stdin with the serial connector, runs
// the same filter text under expr-lang in a host pipeline, and prints the
// records as JSON lines.
//
//	go run ./examples/device/decode < uart.bin
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	exprlang "github.com/expr-lang/expr"

	"github.com/aimdb-dev/aimdb-flow/connectors/file"
	"github.com/aimdb-dev/aimdb-flow/connectors/serial"
	"github.com/aimdb-dev/aimdb-flow/examples/device/shared"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

func main() {
	wantMin := flag.Int("want-min", 0, "exit 1 unless at least this many records pass the filter")
	in := flag.String("in", "/dev/stdin", "device stream: a file, FIFO, tty or host:port")
	format := flag.String("codec", "binflat", "record encoding the device uses: binflat or json")
	flag.Parse()
	var dec pipeline.Decoder = serial.BinFlat{}
	if *format == "json" {
		dec = codec.JSON{}
	}
	if err := run(*in, dec, *wantMin); err != nil {
		fmt.Fprintln(os.Stderr, "decode:", err)
		os.Exit(1)
	}
}

func run(in string, dec pipeline.Decoder, wantMin int) error {
	dev, err := serial.Factory("serial://"+in, nil) // serial:///dev/stdin or serial://host:port
	if err != nil {
		return err
	}
	prog, err := exprlang.Compile(shared.HotFilter, exprlang.AsBool())
	if err != nil {
		return err
	}
	var n atomic.Int64
	g := pipeline.New().Connector("dev", dev).Connector("", file.NewStdio(nil, nil, nil))
	g.Record("alerts").From("dev://#", dec)
	g.Pipeline("edge").From("alerts").
		Via(stages.Filter(func(env *pipeline.Envelope) (bool, error) {
			ok, err := exprlang.Run(prog, env.Value)
			if err != nil {
				return false, err
			}
			return ok.(bool), nil
		}), stages.Tap(func(*pipeline.Envelope) { n.Add(1) })).
		To("stdio://stdout", codec.JSON{})
	r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.Run(ctx); err != nil {
		return err
	}
	if got := n.Load(); got < int64(wantMin) {
		return fmt.Errorf("%d records passed the filter, want at least %d", got, wantMin)
	}
	return nil
}

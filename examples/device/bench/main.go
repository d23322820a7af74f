// Command bench measures the device pipeline per record: throughput and
// heap allocations (runtime.MemStats.Mallocs, which TinyGo's precise and
// conservative collectors maintain). Run it under Go, TinyGo host, or
// cortex-m-qemu (with qemu -icount shift=0, virtual nanoseconds equal
// executed instructions, so ns/record reads as instructions/record).
//
//	tinygo run -gc=precise ./examples/device/bench
package main

import (
	"context"
	"io"
	"runtime"
	"strconv"
	"time"

	"github.com/aimdb-dev/aimdb-flow/device/binflat"
	"github.com/aimdb-dev/aimdb-flow/device/flow"
	"github.com/aimdb-dev/aimdb-flow/device/frame"
	"github.com/aimdb-dev/aimdb-flow/device/value"
	"github.com/aimdb-dev/aimdb-flow/examples/device/shared"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
)

func main() {
	n := 200000
	if runtime.GOARCH == "arm" {
		n = 2000
	}
	f := flow.New(flow.Config{MaxFields: 8, ArenaBytes: 96, Scratch: 32})
	readings := f.Record("sensor.temp", buffer.Config{Kind: buffer.Mailbox})
	alerts := f.Record("alerts", buffer.Config{Kind: buffer.Ring, Size: 8})
	f.Pipeline("hot").From(readings).Filter(shared.HotFilter).Map(shared.AlertMap).Into("", alerts)
	f.Pipeline("uplink").From(alerts).To("", flow.NewFrameSink(frame.NewWriter(io.Discard, 160), binflat.Codec{}, 140))
	if err := f.Validate(); err != nil {
		println(err.Error())
		return
	}
	ctx := context.Background()
	obj := value.NewObject(4, 32)
	name := value.StringOf("d-1")
	step := func(i int) {
		obj.Reset()
		obj.Set("device", name)
		obj.Set("temp", value.FloatOf(float64(200+i%100)/10)) // half pass the filter
		obj.Set("seq", value.IntOf(int64(i)))
		readings.Write(ctx, "sensors/d-1/temp", obj)
		f.Poll(ctx)
	}
	for i := 0; i < 100; i++ { // warm up
		step(i)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	for i := 0; i < n; i++ {
		step(i)
	}
	el := time.Since(start)
	runtime.ReadMemStats(&after)
	allocs := float64(after.Mallocs-before.Mallocs) / float64(n)
	println("records:", n, "elapsed_ns:", el.Nanoseconds(),
		"ns/record:", el.Nanoseconds()/int64(n),
		"records/s:", int64(float64(n)/el.Seconds()),
		"allocs/record:", strconv.FormatFloat(allocs, 'f', 3, 64))
}

// Command sensor is the example device pipeline, for a microcontroller under
// TinyGo (it also runs under Go):
//
//	sensor readings -> filter (device/expr) -> map -> ring buffer -> encode (flat JSON) -> framed writer (UART)
//
// Frames go to os.Stdout, which on a TinyGo board is the default UART; on
// cortex-m-qemu it is the emulated UART that qemu -nographic connects to its
// own stdout. Pipe that into the host (examples/device/decode or a `serial`
// connector) to continue the pipeline on the edge.
//
//	tinygo build -target=cortex-m-qemu -o sensor.elf ./examples/device/sensor
//	qemu-system-arm -machine lm3s6965evb -semihosting -nographic -kernel sensor.elf > uart.bin
//	go run ./examples/device/decode < uart.bin
package main

import (
	"context"
	"os"

	"github.com/aimdb-dev/aimdb-flow/device/binflat"
	"github.com/aimdb-dev/aimdb-flow/device/flow"
	"github.com/aimdb-dev/aimdb-flow/device/frame"
	"github.com/aimdb-dev/aimdb-flow/device/value"
	"github.com/aimdb-dev/aimdb-flow/examples/device/shared"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
)

// Storage is sized once, here: nothing is allocated per reading.
var (
	uart = frame.NewWriter(os.Stdout, 160)
	obj  = value.NewObject(4, 32)
)

func main() {
	f := flow.New(flow.Config{MaxFields: 8, ArenaBytes: 96, Scratch: 32})
	readings := f.Record("sensor.temp", buffer.Config{Kind: buffer.Mailbox})
	alerts := f.Record("alerts", buffer.Config{Kind: buffer.Ring, Size: 8})
	f.Pipeline("hot").From(readings).
		Filter(shared.HotFilter).
		Map(shared.AlertMap).
		Into("", alerts)
	f.Pipeline("uplink").From(alerts).To("", flow.NewFrameSink(uart, binflat.Codec{}, 140))
	if err := f.Validate(); err != nil {
		println("invalid flow:", err.Error())
		return
	}
	ctx := context.Background()
	temp := int64(240) // tenths of a degree; a stand-in for an ADC reading
	for seq := int64(0); seq < 40; seq++ {
		temp += (seq*37)%29 - 13 // deterministic wander
		obj.Reset()
		obj.Set("device", value.StringOf("d-1"))
		obj.Set("temp", value.FloatOf(float64(temp)/10))
		obj.Set("seq", value.IntOf(seq))
		if err := readings.Write(ctx, "sensors/d-1/temp", obj); err != nil {
			println("write:", err.Error())
		}
		f.Poll(ctx)
	}
}

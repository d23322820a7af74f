// Package replay is a sensor driver for `aimdb-flow build --driver`: it
// replays a fixed list of temperature readings for the sensor "temp"
// (from "sensor://temp" in pipelines/device.flow), then reports
// flow.SensorDone, so a device build of device.flow takes exactly
// these readings and exits. The differential test feeds the same list to
// the server runtime and compares the outputs record by record.
//
// A driver for real hardware has the same shape: Open configures the
// peripheral and returns a flow.Sensors whose Read fills the record from
// it (an ADC conversion, an I²C transfer) without allocating.
package replay

import (
	"github.com/aimdb-dev/aimdb-flow/device/flow"
	"github.com/aimdb-dev/aimdb-flow/device/value"
)

// Reading is one replayed reading.
type Reading struct {
	Temp float64
	Seq  int64
}

// Readings are the replayed readings, in order: a wander around 40 °C,
// with values on both sides of device.flow's threshold (40.0), the
// threshold itself, and whole and fractional temperatures. There are as
// many as device.flow's ring buffer holds (16), so a server run fed them
// all at once drops none (a ring's slow reader loses the oldest: that is
// the buffer's policy, not a difference between the runtimes).
var Readings = [...]Reading{
	{38.5, 1}, {39.9, 2}, {40.0, 3}, {40.1, 4}, {41.2, 5}, {44.75, 6}, {37, 7}, {45, 8},
	{39.99, 9}, {42.5, 10}, {40.5, 11}, {43.125, 12}, {41, 13}, {40.01, 14}, {44.4, 15}, {42, 16},
}

// Sensors replays Readings for the sensor "temp".
type Sensors struct{ next int }

// Open returns a replay from the first reading.
func Open() (flow.Sensors, error) { return &Sensors{}, nil }

// Read implements flow.Sensors.
func (s *Sensors) Read(name string, o *value.Object) flow.Status {
	if name != "temp" || s.next >= len(Readings) {
		return flow.SensorDone // this driver knows one sensor
	}
	r := Readings[s.next]
	s.next++
	o.Set("temp", value.FloatOf(r.Temp))
	o.Set("seq", value.IntOf(r.Seq))
	return flow.Reading
}

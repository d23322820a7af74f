package flow

import "github.com/aimdb-dev/aimdb-flow/device/value"

// Sensors reads the sensors of a device: what a driver package provides for
// the `from "sensor://NAME"` sources of a .flow file built with
// `aimdb-flow build --driver PKG`. The package exports
//
//	func Open() (flow.Sensors, error)
//
// which the generated program calls once at start-up (configure the ADC,
// the I²C bus, ... there), then calls Read for each sensor at its link's
// rate. Read fills o, which the caller has reset, with one reading of the
// sensor NAME (the link's address) and returns Reading; NoReading when
// none is ready now (the sensor is asked again at its next period);
// SensorDone when the sensor will produce no more (a replay or a test has
// ended: once every sensor is done, the program drains its outputs and
// exits); SensorFailed when the read failed (counted, the reading is
// skipped). Read must not keep o, and should not allocate: it runs once
// per reading.
//
// Read returns a Status rather than an error: comparing errors (== on
// interfaces, errors.Is) links reflection into device builds.
type Sensors interface {
	Read(name string, o *value.Object) Status
}

// Status is the outcome of one Sensors.Read.
type Status uint8

// The outcomes of Sensors.Read.
const (
	Reading      Status = iota // o holds a reading
	NoReading                  // no reading is ready now
	SensorDone                 // the sensor produces no more readings
	SensorFailed               // the read failed; the reading is skipped
)

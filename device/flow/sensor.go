package flow

import (
	"errors"

	"github.com/aimdb-dev/aimdb-flow/device/value"
)

// Sensors reads the sensors of a device: what a driver package provides for
// the `from "sensor://NAME"` sources of a .flow file built with
// `aimdb-flow build --driver PKG`. The package exports
//
//	func Open() (flow.Sensors, error)
//
// which the generated program calls once at start-up (configure the ADC,
// the I²C bus, ... there), then calls Read for each sensor at its link's
// rate. Read fills o, which the caller has reset, with one reading of the
// sensor NAME (the link's address) and returns nil; it returns
// ErrNoReading when no reading is ready now, and ErrSensorDone when the
// sensor will produce no more (a replay or a test has ended: once every
// sensor is done, the program drains its outputs and exits). Any other
// error is counted and the reading skipped. Read must not keep o, and
// should not allocate: it runs once per reading.
type Sensors interface {
	Read(name string, o *value.Object) error
}

// Errors a Sensors.Read returns (compared with ==: errors.Is would link
// reflection into device builds).
var (
	// ErrNoReading says no reading is ready now; the sensor is asked
	// again at its next period.
	ErrNoReading = errors.New("flow: no reading")
	// ErrSensorDone says the sensor produces no more readings.
	ErrSensorDone = errors.New("flow: sensor done")
)

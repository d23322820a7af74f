package gen

import (
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// SensorScheme is the scheme of sensor sources: `connector sensor
// "sensor://"` and `from "sensor://NAME"`.
const SensorScheme = "sensor"

// SensorFactory is the pipeline.Factory of the "sensor" scheme. A
// sensor://NAME source is bound to a device driver when the file is built
// for a device (aimdb-flow build --driver PKG, see dsl/devgen); on the
// server it is simulated by this generator, with the same link settings as
// gen:// (rate, count, seed, template), so one .flow file runs in both
// places. A sensor connector takes no settings.
func SensorFactory(endpoint string, p pipeline.Params) (pipeline.Builder, error) {
	if _, err := Factory(endpoint, p); err != nil {
		return nil, err // per setting, so the DSL reports each where it is written
	}
	return sensorBuilder{New()}, nil
}

// sensorBuilder is a gen builder reporting the sensor scheme.
type sensorBuilder struct{ *Builder }

// Scheme implements pipeline.Builder.
func (sensorBuilder) Scheme() string { return SensorScheme }

package dpt

// mains are the main types, each with its format.
var mains = map[int]Type{
	1:  {Name: "boolean", kind: kBool, Size: 1, Short: true},
	5:  {Name: "8-bit unsigned", kind: kU8, Size: 1},
	6:  {Name: "8-bit signed", kind: kI8, Size: 1},
	7:  {Name: "16-bit unsigned", kind: kU16, Size: 2},
	8:  {Name: "16-bit signed", kind: kI16, Size: 2},
	9:  {Name: "16-bit float", kind: kF16, Size: 2},
	12: {Name: "32-bit unsigned", kind: kU32, Size: 4},
	13: {Name: "32-bit signed", kind: kI32, Size: 4},
	14: {Name: "32-bit float", kind: kF32, Size: 4},
	16: {Name: "string", kind: kString, Size: 14},
	17: {Name: "scene number", kind: kScene, Size: 1},
	18: {Name: "scene control", kind: kSceneControl, Size: 1},
	20: {Name: "8-bit enumeration", kind: kEnum, Size: 1},
}

type entry struct {
	id   string
	name string
	unit string
	// scale for integer types (decoded = raw*scale); 0 is 1.
	scale float64
	names []string
}

var table = []entry{
	{id: "1.001", name: "switch", names: []string{"off", "on"}},
	{id: "1.002", name: "boolean", names: []string{"false", "true"}},
	{id: "1.003", name: "enable", names: []string{"disable", "enable"}},
	{id: "1.005", name: "alarm", names: []string{"no alarm", "alarm"}},
	{id: "1.007", name: "step", names: []string{"decrease", "increase"}},
	{id: "1.008", name: "up/down", names: []string{"up", "down"}},
	{id: "1.009", name: "open/close", names: []string{"open", "close"}},
	{id: "1.010", name: "start", names: []string{"stop", "start"}},
	{id: "1.011", name: "state", names: []string{"inactive", "active"}},
	{id: "1.017", name: "trigger", names: []string{"trigger", "trigger"}},
	{id: "1.018", name: "occupancy", names: []string{"not occupied", "occupied"}},
	{id: "1.019", name: "window/door", names: []string{"closed", "open"}},
	{id: "1.024", name: "day/night", names: []string{"day", "night"}},

	{id: "5.001", name: "percentage (0..100%)", unit: "%", scale: 100.0 / 255},
	{id: "5.003", name: "angle", unit: "°", scale: 360.0 / 255},
	{id: "5.004", name: "percentage (0..255%)", unit: "%"},
	{id: "5.005", name: "ratio"},
	{id: "5.006", name: "tariff"},
	{id: "5.010", name: "counter pulses", unit: "pulses"},

	{id: "6.001", name: "percentage (-128..127%)", unit: "%"},
	{id: "6.010", name: "counter pulses", unit: "pulses"},

	{id: "7.001", name: "pulses", unit: "pulses"},
	{id: "7.002", name: "time period", unit: "ms"},
	{id: "7.003", name: "time period (10 ms)", unit: "ms", scale: 10},
	{id: "7.004", name: "time period (100 ms)", unit: "ms", scale: 100},
	{id: "7.005", name: "time period", unit: "s"},
	{id: "7.006", name: "time period", unit: "min"},
	{id: "7.007", name: "time period", unit: "h"},
	{id: "7.011", name: "length", unit: "mm"},
	{id: "7.012", name: "bus current", unit: "mA"},
	{id: "7.013", name: "brightness", unit: "lx"},
	{id: "7.600", name: "colour temperature", unit: "K"},

	{id: "8.001", name: "pulses difference", unit: "pulses"},
	{id: "8.002", name: "time lag", unit: "ms"},
	{id: "8.003", name: "time lag (10 ms)", unit: "ms", scale: 10},
	{id: "8.004", name: "time lag (100 ms)", unit: "ms", scale: 100},
	{id: "8.005", name: "time lag", unit: "s"},
	{id: "8.006", name: "time lag", unit: "min"},
	{id: "8.007", name: "time lag", unit: "h"},
	{id: "8.010", name: "percentage difference", unit: "%", scale: 0.01},
	{id: "8.011", name: "rotation angle", unit: "°"},
	{id: "8.012", name: "length", unit: "m"},

	{id: "9.001", name: "temperature", unit: "°C"},
	{id: "9.002", name: "temperature difference", unit: "K"},
	{id: "9.003", name: "kelvin per hour", unit: "K/h"},
	{id: "9.004", name: "illuminance", unit: "lx"},
	{id: "9.005", name: "wind speed", unit: "m/s"},
	{id: "9.006", name: "pressure", unit: "Pa"},
	{id: "9.007", name: "humidity", unit: "%"},
	{id: "9.008", name: "air quality", unit: "ppm"},
	{id: "9.009", name: "air flow", unit: "m³/h"},
	{id: "9.010", name: "time", unit: "s"},
	{id: "9.011", name: "time", unit: "ms"},
	{id: "9.020", name: "voltage", unit: "mV"},
	{id: "9.021", name: "current", unit: "mA"},
	{id: "9.022", name: "power density", unit: "W/m²"},
	{id: "9.023", name: "kelvin per percent", unit: "K/%"},
	{id: "9.024", name: "power", unit: "kW"},
	{id: "9.025", name: "volume flow", unit: "l/h"},
	{id: "9.026", name: "rain amount", unit: "l/m²"},
	{id: "9.027", name: "temperature", unit: "°F"},
	{id: "9.028", name: "wind speed", unit: "km/h"},
	{id: "9.029", name: "absolute humidity", unit: "g/m³"},
	{id: "9.030", name: "concentration", unit: "µg/m³"},

	{id: "12.001", name: "counter pulses", unit: "pulses"},
	{id: "12.100", name: "counter time", unit: "s"},
	{id: "12.101", name: "counter time", unit: "min"},
	{id: "12.102", name: "counter time", unit: "h"},

	{id: "13.001", name: "counter pulses", unit: "pulses"},
	{id: "13.002", name: "flow rate", unit: "m³/h", scale: 0.0001},
	{id: "13.010", name: "active energy", unit: "Wh"},
	{id: "13.011", name: "apparent energy", unit: "VAh"},
	{id: "13.012", name: "reactive energy", unit: "VARh"},
	{id: "13.013", name: "active energy", unit: "kWh"},
	{id: "13.014", name: "apparent energy", unit: "kVAh"},
	{id: "13.015", name: "reactive energy", unit: "kVARh"},
	{id: "13.100", name: "long time period", unit: "s"},

	{id: "14.000", name: "acceleration", unit: "m/s²"},
	{id: "14.007", name: "angle", unit: "°"},
	{id: "14.019", name: "electric current", unit: "A"},
	{id: "14.027", name: "electric potential", unit: "V"},
	{id: "14.031", name: "energy", unit: "J"},
	{id: "14.033", name: "frequency", unit: "Hz"},
	{id: "14.056", name: "power", unit: "W"},
	{id: "14.057", name: "power factor"},
	{id: "14.065", name: "speed", unit: "m/s"},
	{id: "14.068", name: "temperature", unit: "°C"},
	{id: "14.069", name: "absolute temperature", unit: "K"},
	{id: "14.076", name: "volume", unit: "m³"},
	{id: "14.077", name: "volume flux", unit: "m³/s"},
	{id: "14.080", name: "apparent power", unit: "VA"},

	{id: "16.000", name: "string (ASCII)"},
	{id: "16.001", name: "string (ISO 8859-1)"},

	{id: "17.001", name: "scene number"},
	{id: "18.001", name: "scene control"},

	{id: "20.102", name: "HVAC mode", names: []string{"auto", "comfort", "standby", "economy", "building_protection"}},
}

// subs and order are derived from table once, at package initialisation
// (read-only afterwards).
var subs, order = func() (map[string]Type, []string) {
	m := map[string]Type{}
	var ids []string
	for _, e := range table {
		m[e.id] = Type{Name: e.name, Unit: e.unit, scale: e.scale, names: e.names}
		ids = append(ids, e.id)
	}
	return m, ids
}()

package modbus_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/dsl"
)

// TestFlowFileErrorsAtTheirSettings: every mistake in a register map or a
// setting is reported at once, each at the file:line:col of the setting
// it concerns (the field.NAME setting for a field's own problems).
func TestFlowFileErrorsAtTheirSettings(t *testing.T) {
	check(t, `connector plc "modbus://127.0.0.1:1502" unit 300 baud 9600
connector scada "modbus://127.0.0.1:1503" mode sever
connector tank "modbus+rtu:///dev/ttyUSB0" parity mark timeout 1
`,
		`t.flow:1:41: connector plc: unit "300": want a whole number from 0 to 255`,
		`t.flow:1:50: connector plc: baud "9600": applies to a serial line (a modbus+rtu:///dev/ttyX endpoint)`,
		`t.flow:2:43: connector scada: mode "sever": want client or server (did you mean "server"?)`,
		`t.flow:3:44: connector tank: parity "mark": want none, even or odd`,
		`t.flow:3:56: connector tank: timeout "1": a duration needs a unit: write 1s for seconds (or 1ms, 1m, ...)`,
	)
	check(t, `connector plc "modbus://127.0.0.1:1502"
record boiler {
  from "plc://boiler" decode json interval 10
      field.temp "input 0 flaot32"
      field.a    "holding 0 float32"
      field.b    "holding 1"
      field.c    "holdng 3"
      field.d    "coil 1 int16"
      emit chnage
}
pipeline out {
  from boiler
  to "plc://setpoints" encode json field.sp "input 4"
}
`,
		`t.flow:3:35: record boiler: "plc://boiler": interval "10": a duration needs a unit: write 10s for seconds (or 10ms, 10m, ...)`,
		`t.flow:4:7: record boiler: "plc://boiler": field.temp "input 0 flaot32": unknown type "flaot32": want bool, int16, uint16, int32, uint32, int64, uint64, float32, float64, string (did you mean "float32"?)`,
		`t.flow:7:7: record boiler: "plc://boiler": field.c "holdng 3": unknown table "holdng": want coil, discrete, holding or input (did you mean "holding"?)`,
		`t.flow:8:7: record boiler: "plc://boiler": field.d "coil 1 int16": a coil holds one bit: its type is bool, not int16`,
		`t.flow:9:7: record boiler: "plc://boiler": emit "chnage": want change or every (did you mean "change"?)`,
		`t.flow:13:36: pipeline out: "plc://setpoints": field.sp: input 4 is read-only: a client writes coil and holding fields`,
	)
}

func check(t *testing.T, src string, want ...string) {
	t.Helper()
	_, err := dsl.Load(dsl.Options{}, dsl.Source{Name: "t.flow", Src: []byte(src)})
	var el *dsl.ErrorList
	if !errors.As(err, &el) {
		t.Fatalf("error %T %v, want *dsl.ErrorList", err, err)
	}
	var got []string
	for _, e := range el.Errors {
		got = append(got, e.Error())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\n\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestFlowFileOverlapAtTheField: overlapping fields are found once the
// others parse, and reported at the later field's setting.
func TestFlowFileOverlapAtTheField(t *testing.T) {
	src := `connector plc "modbus://127.0.0.1:1502"
record boiler {
  from "plc://boiler" decode json
      field.a "holding 0 float32"
      field.b "holding 1"
}
`
	_, err := dsl.Load(dsl.Options{}, dsl.Source{Name: "t.flow", Src: []byte(src)})
	want := `t.flow:5:7: record boiler: "plc://boiler": field.b: holding 1 overlaps field a (holding 0-1)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

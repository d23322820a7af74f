package modbus_test

import (
	"strings"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/connectors/modbus"
	"github.com/aimdb-dev/aimdb-flow/connectors/modbus/regmap"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// TestTypedOptionsAreValidated: register maps given in Go
// (pipeline.Options) are checked at validation as the DSL's settings are.
func TestTypedOptionsAreValidated(t *testing.T) {
	f := func(name, spec string) regmap.Field {
		fl, err := regmap.ParseField(name, spec, regmap.Defaults{})
		if err != nil {
			t.Fatal(err)
		}
		return fl
	}
	for _, tc := range []struct {
		name   string
		server bool
		in     bool
		opts   any
		want   string
	}{
		{"good poll", false, true, &modbus.Poll{Fields: []regmap.Field{f("a", "holding 0"), f("b", "coil 0")}}, ""},
		{"overlap", false, true, &modbus.Poll{Fields: []regmap.Field{f("a", "holding 0 float32"), f("b", "holding 1")}}, "field.b: holding 1 overlaps field a (holding 0-1)"},
		{"twice", false, true, &modbus.Poll{Fields: []regmap.Field{f("a", "holding 0"), f("a", "holding 5")}}, "field.a: declared twice"},
		{"no fields", false, true, &modbus.Poll{}, "needs at least one field"},
		{"write options on a from link", false, true, &modbus.Write{Fields: []regmap.Field{f("a", "coil 0")}}, "want *modbus.Poll, got *modbus.Write"},
		{"poll options on a to link", false, false, &modbus.Poll{Fields: []regmap.Field{f("a", "coil 0")}}, "want *modbus.Write, got *modbus.Poll"},
		{"write to an input register", false, false, &modbus.Write{Fields: []regmap.Field{f("a", "input 0")}}, "input 0 is read-only"},
		{"server write to an input register", true, false, &modbus.Write{Fields: []regmap.Field{f("a", "input 0")}}, ""},
		{"poll options on a server", true, true, &modbus.Poll{Fields: []regmap.Field{f("a", "coil 0")}}, "want *modbus.Serve, got *modbus.Poll"},
		{"too wide for max_registers", false, true, &modbus.Poll{Fields: []regmap.Field{f("a", "holding 0 string 20")}, MaxRegisters: 10}, "field.a: 20 registers do not fit one read of max_registers 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeline.Params{}
			if tc.server {
				p["mode"] = "server"
			}
			g := pipeline.New().Connector("plc", builder(t, "modbus://127.0.0.1:1502", p))
			if tc.in {
				g.Record("r").From("plc://m", codec.JSON{}, pipeline.Options(tc.opts))
			} else {
				g.Record("r").From("plc://m", codec.JSON{}, pipeline.Options(&modbus.Poll{Fields: []regmap.Field{f("z", "coil 9")}})).
					To("plc://out", codec.JSON{}, pipeline.Options(tc.opts))
				if tc.server {
					g = pipeline.New().Connector("plc", builder(t, "modbus://127.0.0.1:1502", p))
					g.Record("r").To("plc://out", codec.JSON{}, pipeline.Options(tc.opts))
				}
			}
			err := g.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

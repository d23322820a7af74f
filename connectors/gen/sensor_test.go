package gen_test

import (
	"testing"

	"github.com/aimdb-dev/aimdb-flow/connectors/gen"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// sensor:// is the gen generator under another scheme: no connector
// settings, gen's link settings.
func TestSensorFactory(t *testing.T) {
	tests := []struct {
		name    string
		params  pipeline.Params
		wantErr string
	}{
		{"no settings", nil, ""},
		{"a setting", pipeline.Params{"rate": "5"}, "rate: gen takes no connector settings (set rate, count, seed and template on the link)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := gen.SensorFactory("sensor://", tt.params)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.Scheme() != "sensor" {
				t.Fatalf("scheme %q", b.Scheme())
			}
			lp, ok := b.(pipeline.LinkOptionParser)
			if !ok {
				t.Fatal("not a LinkOptionParser")
			}
			o, err := lp.ParseLinkOptions(pipeline.Inbound, "temp", pipeline.Params{"rate": "10", "count": "3"})
			if err != nil {
				t.Fatal(err)
			}
			if got := o.(gen.Options); got.Rate != 10 || got.Count != 3 || got.Template == nil {
				t.Fatalf("link options %+v", got)
			}
		})
	}
}

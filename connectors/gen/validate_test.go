package gen_test

import (
	"math"
	"strings"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/connectors/file"
	"github.com/aimdb-dev/aimdb-flow/connectors/gen"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// Typed Go options of gen and file links are checked at validation as
// their DSL settings are.
func TestTypedOptionsAreValidated(t *testing.T) {
	tests := []struct {
		name string
		opts any
		out  bool // on the file sink instead of the gen source
		want string
	}{
		{"good gen", gen.Options{Rate: 10, Count: 5}, false, ""},
		{"negative rate", gen.Options{Rate: -1}, false, "Options.Rate -1: want a number of at least 0"},
		{"NaN rate", gen.Options{Rate: math.NaN()}, false, "Options.Rate NaN"},
		{"negative count", gen.Options{Count: -3}, false, "Options.Count -3: want at least 0"},
		{"wrong type", file.Options{}, false, "gen link options are gen.Options, not file.Options"},
		{"good file", file.Options{Truncate: true}, true, ""},
		{"follow on a sink", file.Options{Follow: true}, true, "Options.Follow applies to inbound links only"},
		{"file wrong type", gen.Options{}, true, "file link options are file.Options, not gen.Options"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := pipeline.New().Connector("gen", gen.New()).Connector("file", file.New())
			if tc.out {
				g.Record("r").From("gen://x", codec.Raw{}).To("file:///tmp/out", codec.Raw{}, pipeline.Options(tc.opts))
			} else {
				g.Record("r").From("gen://x", codec.Raw{}, pipeline.Options(tc.opts))
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

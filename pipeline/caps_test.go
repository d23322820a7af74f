package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// capsBuilder declares caps and checks typed options: only capsOpts with
// a positive N.
type capsBuilder struct {
	scheme string
	caps   pipeline.Caps
}

type capsOpts struct{ N int }

func (b capsBuilder) Scheme() string      { return b.scheme }
func (b capsBuilder) Caps() pipeline.Caps { return b.caps }
func (capsBuilder) Build(context.Context, pipeline.BuildEnv) (pipeline.Connector, error) {
	return nil, errors.New("unused")
}
func (capsBuilder) ParseLinkOptions(pipeline.Direction, string, pipeline.Params) (any, error) {
	return capsOpts{N: 1}, nil
}
func (capsBuilder) ValidateLinkOptions(dir pipeline.Direction, _ string, opts any) error {
	o, ok := opts.(capsOpts)
	if !ok {
		return fmt.Errorf("%s link options are capsOpts, not %T", dir, opts)
	}
	if o.N <= 0 {
		return fmt.Errorf("n %d: want at least 1", o.N)
	}
	return nil
}

// Links are checked against what their connector declares, and typed Go
// options go through the connector's validator.
func TestValidateChecksDeclaredCaps(t *testing.T) {
	src := capsBuilder{"gen", pipeline.Caps{Inbound: true}}
	sink := capsBuilder{"sink", pipeline.Caps{Outbound: true}}
	topics := capsBuilder{"mqtt", pipeline.Caps{Inbound: true, Outbound: true, Topics: true}}
	plain := capsBuilder{"http", pipeline.Caps{Inbound: true, Outbound: true}}
	tests := []struct {
		name  string
		build func(g *pipeline.Graph)
		want  string // "" = valid
	}{
		{"to on a source-only connector", func(g *pipeline.Graph) {
			g.Connector("gen", src).Record("r").From("gen://a", codec.Raw{}).To("gen://b", codec.Raw{})
		}, `record r: "gen://b": gen is a source only: it cannot be a ` + "`to`" + ` destination`},
		{"a named source-only connector", func(g *pipeline.Graph) {
			g.Connector("g1", src).Record("r").From("g1://a", codec.Raw{})
			g.Pipeline("p").From("r").To("g1://b", codec.Raw{})
		}, `pipeline p: "g1://b": g1 (gen) is a source only`},
		{"from on a sink-only connector", func(g *pipeline.Graph) {
			g.Connector("sink", sink).Record("r").From("sink://a", codec.Raw{})
		}, `record r: "sink://a": sink is a sink only: it cannot be a ` + "`from`" + ` source`},
		{"wildcard on a connector without topics", func(g *pipeline.Graph) {
			g.Connector("http", plain).Record("r").From("http://a/+/b", codec.Raw{})
		}, `record r: "http://a/+/b": http addresses are not topic filters (wildcard level "+"`},
		{"wildcard inbound on a topic connector", func(g *pipeline.Graph) {
			g.Connector("mqtt", topics).Record("r").From("mqtt://a/+/b", codec.Raw{})
		}, ""},
		{"bad filter on a topic connector", func(g *pipeline.Graph) {
			g.Connector("mqtt", topics).Record("r").From("mqtt://a/#/b", codec.Raw{})
		}, `record r: "mqtt://a/#/b": `},
		{"publish to a filter", func(g *pipeline.Graph) {
			g.Connector("mqtt", topics).Record("r").From("mqtt://a", codec.Raw{}).To("mqtt://b/#", codec.Raw{})
		}, `record r: "mqtt://b/#": cannot publish to a topic filter (wildcard # in the destination)`},
		{"templated destination is checked per record", func(g *pipeline.Graph) {
			g.Connector("mqtt", topics).Record("r").From("mqtt://a", codec.Raw{}).To("mqtt://b/{device}", codec.Raw{})
		}, ""},
		{"typed options validated", func(g *pipeline.Graph) {
			g.Connector("http", plain).Record("r").From("http://a", codec.Raw{}, pipeline.Options(capsOpts{N: 0}))
		}, `record r: "http://a": n 0: want at least 1`},
		{"typed options of the wrong type", func(g *pipeline.Graph) {
			g.Connector("http", plain).Record("r").From("http://a", codec.Raw{}).To("http://b", codec.Raw{}, pipeline.Options("x"))
		}, `record r: "http://b": outbound link options are capsOpts, not string`},
		{"good typed options", func(g *pipeline.Graph) {
			g.Connector("http", plain).Record("r").From("http://a", codec.Raw{}, pipeline.Options(capsOpts{N: 2}))
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := pipeline.New()
			tc.build(g)
			err := g.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// Validating twice (the DSL validates, then the runner does) neither
// re-reports nor rejects options the first pass parsed.
func TestValidateTwiceKeepsParsedOptions(t *testing.T) {
	g := pipeline.New().Connector("http", capsBuilder{"http", pipeline.AllDirections})
	g.Record("r").From("http://a", codec.Raw{}, pipeline.WithParams(pipeline.Params{"x": "1"}))
	for i := 0; i < 2; i++ {
		if err := g.Validate(); err != nil {
			t.Fatalf("pass %d: %v", i+1, err)
		}
	}
}

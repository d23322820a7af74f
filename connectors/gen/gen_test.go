package gen_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/connectors/gen"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

func TestParseTemplate(t *testing.T) {
	tests := []struct {
		tmpl, err string
	}{
		{`{"a":{{seq}}}`, ""},
		{`{{int 1 5}} {{float 0 1}} {{choice a b}} {{now_ms}}`, ""},
		{`{{seq`, "unclosed"},
		{`{{}}`, "empty"},
		{`{{int 5 1}}`, "bad bounds"},
		{`{{int 1}}`, "two bounds"},
		{`{{choice}}`, "at least one"},
		{`{{rand}}`, "unknown function"},
		{`{{seq 1}}`, "no arguments"},
	}
	for _, tt := range tests {
		_, err := gen.ParseTemplate(tt.tmpl)
		if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("ParseTemplate(%q) = %v, want error containing %q", tt.tmpl, err, tt.err)
		}
	}
}

func TestTemplateIsDeterministic(t *testing.T) {
	tp, err := gen.ParseTemplate(`{"d":"d-{{int 1 3}}","t":{{float 0 40}},"s":{{seq}},"c":"{{choice x y}}"}`)
	if err != nil {
		t.Fatal(err)
	}
	render := func() string {
		rng := rand.New(rand.NewPCG(7, 7))
		var b []byte
		for i := int64(1); i <= 5; i++ {
			b = tp.Append(b, rng, i)
			b = append(b, '\n')
		}
		return string(b)
	}
	if a, b := render(), render(); a != b {
		t.Fatalf("same seed, different output:\n%s\n%s", a, b)
	}
}

func TestLinkOptions(t *testing.T) {
	b := gen.New()
	if _, err := b.ParseLinkOptions(pipeline.Outbound, "x", nil); err == nil || err.Error() != "gen is a source only" {
		t.Errorf("outbound link: %v", err)
	}
	tests := []struct {
		p       pipeline.Params
		wantErr string
	}{
		{pipeline.Params{"rate": "x"}, `rate "x": want a number of at least 0`},
		{pipeline.Params{"rate": "-5"}, `rate "-5": want a number of at least 0`},
		{pipeline.Params{"count": "-1"}, `count "-1": want a whole number of at least 0`},
		{pipeline.Params{"seed": "-1"}, `seed "-1": want a whole number of at least 0`},
		{pipeline.Params{"bogus": "1"}, `bogus: unknown inbound link setting (known: rate, count, seed, template)`},
		{pipeline.Params{"template": "{{"}, `template "{{": template: unclosed {{`},
		{pipeline.Params{"rate": "x", "cout": "3"}, `rate "x": want a number of at least 0` + "\n" + `cout: unknown inbound link setting (did you mean "count"?)`},
	}
	for _, tc := range tests {
		if _, err := b.ParseLinkOptions(pipeline.Inbound, "x", tc.p); err == nil || err.Error() != tc.wantErr {
			t.Errorf("%v: err %v, want %q", tc.p, err, tc.wantErr)
		}
	}
	o, err := b.ParseLinkOptions(pipeline.Inbound, "x", pipeline.Params{"count": "3", "rate": "0.5", "seed": "9"})
	if opts, _ := o.(gen.Options); err != nil || opts.Count != 3 || opts.Rate != 0.5 || opts.Seed != 9 || opts.Template == nil {
		t.Fatalf("%+v %v", o, err)
	}
}

func TestFactory(t *testing.T) {
	if b, err := gen.Factory("gen://", nil); err != nil || b.Scheme() != "gen" {
		t.Fatalf("%v %v", b, err)
	}
	_, err := gen.Factory("gen://", pipeline.Params{"rate": "5"})
	if err == nil || err.Error() != "rate: gen takes no connector settings (set rate, count, seed and template on the link)" {
		t.Fatalf("err = %v", err)
	}
}

type collect struct {
	mu   sync.Mutex
	msgs []string
}

func (c *collect) Dispatch(_ context.Context, env *pipeline.Envelope) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, env.Topic+" "+string(env.Payload))
	return nil
}

func TestGenerateCount(t *testing.T) {
	tp, _ := gen.ParseTemplate(`{{seq}}`)
	var c collect
	gen.Generate(context.Background(), "t", gen.Options{Count: 4, Template: tp}, &c)
	if got := strings.Join(c.msgs, ","); got != "t 1,t 2,t 3,t 4" {
		t.Fatalf("got %s", got)
	}
}

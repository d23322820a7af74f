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
	if _, err := b.ParseLinkOptions(pipeline.Outbound, "x", nil); err == nil {
		t.Error("gen accepted an outbound link")
	}
	for _, p := range []pipeline.Params{{"rate": "x"}, {"count": "-1"}, {"bogus": "1"}, {"template": "{{"}} {
		if _, err := b.ParseLinkOptions(pipeline.Inbound, "x", p); err == nil {
			t.Errorf("accepted %v", p)
		}
	}
	o, err := b.ParseLinkOptions(pipeline.Inbound, "x", pipeline.Params{"count": "3", "rate": "0", "seed": "9"})
	if err != nil || o.(gen.Options).Count != 3 {
		t.Fatalf("%v %v", o, err)
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

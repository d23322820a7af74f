// Package gen is a generator source for demos, tests and benchmarks. An
// inbound link gen://NAME produces messages on topic NAME from a template,
// at a rate, up to a count:
//
//	from "gen://readings" decode json  rate 50  count 1000  seed 7
//	     template `{"device":"d-{{int 1 20}}","temp":{{float 0 40}},"seq":{{seq}}}`
//
// Template functions: {{seq}} (1, 2, ...), {{now_ms}} (Unix ms), {{int A B}}
// (uniform integer in [A,B]), {{float A B}} (uniform in [A,B), two
// decimals), {{choice a b c}} (one of the words). Output is deterministic
// for a given seed (except now_ms). rate 0 means as fast as the pipeline
// takes them; count 0 means forever.
package gen

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// DefaultTemplate is the sensor reading used when no template is given.
const DefaultTemplate = `{"device":"d-{{int 1 32}}","temp":{{float 0 40}},"seq":{{seq}},"ts":{{now_ms}}}`

// Options are the typed inbound link options.
type Options struct {
	Rate     float64 // messages per second; 0 = unlimited
	Count    int64   // messages to produce; 0 = unlimited
	Seed     uint64
	Template *Template
}

// Builder builds gen connectors.
type Builder struct{}

// New returns a gen builder.
func New() *Builder { return &Builder{} }

// Scheme implements pipeline.Builder.
func (*Builder) Scheme() string { return "gen" }

// Caps implements pipeline.CapsDeclarer: gen is a source only.
func (*Builder) Caps() pipeline.Caps { return pipeline.Caps{Inbound: true} }

// Factory is the pipeline.Factory of the "gen" scheme. A gen connector
// takes no settings: rate, count, seed and template belong to its links.
func Factory(_ string, p pipeline.Params) (pipeline.Builder, error) {
	var errs kit.Errors
	for _, k := range slices.Sorted(maps.Keys(p)) {
		errs = append(errs, &kit.Error{Key: k, Err: errors.New("gen takes no connector settings (set rate, count, seed and template on the link)")})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return New(), nil
}

// ParseLinkOptions implements pipeline.LinkOptionParser: inbound links
// take rate (messages per second, 0 = unlimited), count (0 = forever),
// seed and template.
func (*Builder) ParseLinkOptions(dir pipeline.Direction, addr string, p pipeline.Params) (any, error) {
	if dir != pipeline.Inbound {
		return nil, errors.New("gen is a source only")
	}
	s := kit.ReadLink(dir, p)
	o := Options{
		Rate:  s.Float("rate", 0, 0, math.Inf(1)),
		Count: s.Int64("count", 0, 0, math.MaxInt64),
		Seed:  s.Uint64("seed", 1),
	}
	tmpl := s.String("template", DefaultTemplate)
	var err error
	if o.Template, err = ParseTemplate(tmpl); err != nil {
		s.Errorf("template", "%v", err)
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return o, nil
}

// ValidateLinkOptions implements pipeline.LinkOptionValidator: typed Go
// options (gen.Options) get the checks DSL settings get.
func (*Builder) ValidateLinkOptions(dir pipeline.Direction, _ string, opts any) error {
	o, ok := opts.(Options)
	if !ok {
		return fmt.Errorf("gen link options are gen.Options, not %T", opts)
	}
	var errs []error
	if !(o.Rate >= 0) {
		errs = append(errs, fmt.Errorf("Options.Rate %v: want a number of at least 0", o.Rate))
	}
	if o.Count < 0 {
		errs = append(errs, fmt.Errorf("Options.Count %d: want at least 0", o.Count))
	}
	return errors.Join(errs...)
}

// Build implements pipeline.Builder.
func (*Builder) Build(context.Context, pipeline.BuildEnv) (pipeline.Connector, error) {
	return conn{}, nil
}

type conn struct{}

func (conn) Publish(context.Context, string, any, *pipeline.Envelope) error {
	return errors.New("gen is a source only")
}

func (conn) Close(context.Context) error { return nil }

// Finite implements pipeline.FiniteSource.
func (conn) Finite(subs []pipeline.Subscription) bool {
	for _, s := range subs {
		if o, _ := s.Options.(Options); o.Count == 0 {
			return false
		}
	}
	return true
}

// Serve implements pipeline.Source.
func (conn) Serve(ctx context.Context, subs []pipeline.Subscription, d pipeline.Dispatcher) error {
	var wg sync.WaitGroup
	for _, s := range subs {
		o, _ := s.Options.(Options)
		if o.Template == nil {
			o.Template, _ = ParseTemplate(DefaultTemplate)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			Generate(ctx, s.Filter, o, d)
		}()
	}
	wg.Wait()
	return nil
}

// Generate dispatches messages per o until the count is reached or ctx ends.
func Generate(ctx context.Context, topic string, o Options, d pipeline.Dispatcher) {
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	var interval time.Duration
	if o.Rate > 0 {
		interval = time.Duration(float64(time.Second) / o.Rate)
	}
	start := time.Now()
	var slab []byte
	var env pipeline.Envelope // hoisted: escapes once, not once per message
	for seq := int64(1); o.Count == 0 || seq <= o.Count; seq++ {
		if ctx.Err() != nil {
			return
		}
		if interval > 0 {
			due := start.Add(time.Duration(seq-1) * interval)
			if wait := time.Until(due); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return
				}
			}
		}
		if cap(slab)-len(slab) < 512 {
			slab = make([]byte, 0, 64<<10)
		}
		n := len(slab)
		slab = o.Template.Append(slab, rng, seq)
		p := slab[n:len(slab):len(slab)]
		env = pipeline.Envelope{Payload: p, Topic: topic, Time: time.Now()}
		if d.Dispatch(ctx, &env) != nil {
			return
		}
	}
}

// Template is a compiled generator template.
type Template struct{ parts []part }

type part struct {
	lit    string
	fn     string
	a, b   float64
	choice []string
}

// ParseTemplate compiles a template.
func ParseTemplate(s string) (*Template, error) {
	t := &Template{}
	for s != "" {
		i := strings.Index(s, "{{")
		if i < 0 {
			t.parts = append(t.parts, part{lit: s})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, part{lit: s[:i]})
		}
		j := strings.Index(s[i:], "}}")
		if j < 0 {
			return nil, errors.New("template: unclosed {{")
		}
		f := strings.Fields(s[i+2 : i+j])
		s = s[i+j+2:]
		if len(f) == 0 {
			return nil, errors.New("template: empty {{}}")
		}
		p := part{fn: f[0]}
		switch f[0] {
		case "seq", "now_ms":
			if len(f) != 1 {
				return nil, fmt.Errorf("template: %s takes no arguments", f[0])
			}
		case "int", "float":
			if len(f) != 3 {
				return nil, fmt.Errorf("template: %s takes two bounds, e.g. {{%s 0 40}}", f[0], f[0])
			}
			var err1, err2 error
			p.a, err1 = strconv.ParseFloat(f[1], 64)
			p.b, err2 = strconv.ParseFloat(f[2], 64)
			if err1 != nil || err2 != nil || p.b < p.a {
				return nil, fmt.Errorf("template: bad bounds in {{%s}}", strings.Join(f, " "))
			}
		case "choice":
			if len(f) < 2 {
				return nil, errors.New("template: choice needs at least one word")
			}
			p.choice = f[1:]
		default:
			return nil, fmt.Errorf("template: unknown function %q (known: seq, now_ms, int, float, choice)", f[0])
		}
		t.parts = append(t.parts, p)
	}
	return t, nil
}

// Append renders message seq into dst.
func (t *Template) Append(dst []byte, rng *rand.Rand, seq int64) []byte {
	for _, p := range t.parts {
		switch p.fn {
		case "":
			dst = append(dst, p.lit...)
		case "seq":
			dst = strconv.AppendInt(dst, seq, 10)
		case "now_ms":
			dst = strconv.AppendInt(dst, time.Now().UnixMilli(), 10)
		case "int":
			dst = strconv.AppendInt(dst, int64(p.a)+rng.Int64N(int64(p.b-p.a)+1), 10)
		case "float":
			v := p.a + rng.Float64()*(p.b-p.a)
			dst = strconv.AppendFloat(dst, float64(int64(v*100))/100, 'f', -1, 64)
		case "choice":
			dst = append(dst, p.choice[rng.IntN(len(p.choice))]...)
		}
	}
	return dst
}

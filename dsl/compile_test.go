package dsl

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/connectors/file"
	"github.com/aimdb-dev/aimdb-flow/connectors/gen"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
	"github.com/aimdb-dev/aimdb-flow/stages/expr"
)

// describe renders everything a graph declares (connectors, records,
// links with codecs, settings and positions, pipelines with their stages)
// as text, so two graphs can be compared.
func describe(g *pipeline.Graph, withPos bool) string {
	var b strings.Builder
	pos := func(p pipeline.Pos) string {
		if !withPos {
			return ""
		}
		return " @" + p.String()
	}
	params := func(p pipeline.Params) string {
		keys := make([]string, 0, len(p))
		for k := range p {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var s []string
		for _, k := range keys {
			s = append(s, k+"="+p[k])
		}
		return "{" + strings.Join(s, " ") + "}"
	}
	out := func(l *pipeline.OutLink) string {
		return fmt.Sprintf("%s enc=%s key=%v params=%s%s", l.Raw, codecName(l.Encoder), l.Key != nil, params(l.Params), pos(l.Pos))
	}
	conns := g.ConnectorNames()
	names := make([]string, 0, len(conns))
	for n := range conns {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "connector %s scheme=%s\n", n, conns[n])
	}
	for _, r := range g.Records() {
		fmt.Fprintf(&b, "record %s buffer=%s%s\n", r.Name, r.Buffer, pos(r.Pos))
		for _, l := range r.Inbound {
			dec := "?"
			if c, ok := l.Decoder.(pipeline.Codec); ok {
				dec = c.Name()
			} else if l.Decoder == pipeline.PayloadOnly {
				dec = "none"
			}
			fmt.Fprintf(&b, "  from %s dec=%s params=%s%s\n", l.Raw, dec, params(l.Params), pos(l.Pos))
		}
		for _, l := range r.Outbound {
			fmt.Fprintf(&b, "  to %s\n", out(l))
		}
	}
	for _, p := range g.Pipelines() {
		fmt.Fprintf(&b, "pipeline %s from=%s into=%s workers=%d%s\n", p.Name, p.Input, p.IntoRecord, p.Workers, pos(p.Pos))
		for i, s := range p.Stages {
			label := s.Kind()
			if st, ok := s.(fmt.Stringer); ok {
				label = st.String()
			}
			sp := pipeline.Pos{}
			if i < len(p.StagePos) {
				sp = p.StagePos[i]
			}
			fmt.Fprintf(&b, "  stage %s%s\n", label, pos(sp))
		}
		for _, l := range p.Outputs {
			fmt.Fprintf(&b, "  to %s\n", out(l))
		}
		if p.DeadLetter != nil {
			fmt.Fprintf(&b, "  deadletter %s\n", out(p.DeadLetter))
		}
	}
	if d := g.DeadLetter(); d != nil {
		fmt.Fprintf(&b, "deadletter %s\n", out(d))
	}
	return b.String()
}

const equivFlow = `connector gen "gen://"
connector file "file://"

record readings {
  from "gen://readings" decode json count 200 seed 9 template ` + "`" + tmpl + "`" + `
  buffer ring 512
}

record hot {
  buffer queue 64
  to "file://${OUT}/hot-copy.jsonl" encode json
}

pipeline pick {
  from readings
  filter ` + "`temp > 25.0`" + `
  set alert ` + "`true`" + `
  into hot
}

pipeline publish {
  from hot
  map cel ` + "`{\"device\": device, \"temp\": temp}`" + `
  parallel 2
  to "file://${OUT}/hot.jsonl" key ` + "`device`" + ` encode json
  deadletter "file://${OUT}/dead.jsonl"
}

deadletter "file://${OUT}/all-dead.jsonl"
`

const tmpl = `{"device":"d-{{int 1 9}}","temp":{{float 0 40}}}`

// goAPIGraph builds by hand the graph equivFlow describes.
func goAPIGraph(out string) *pipeline.Graph {
	pos := func(line, col int) pipeline.Pos { return pipeline.Pos{File: "equiv.flow", Line: line, Col: col} }
	at := func(line, col int) pipeline.Position { return pipeline.At(pos(line, col)) }
	g := pipeline.New()
	g.Connector("gen", gen.New(), at(1, 1))
	g.Connector("file", file.New(), at(2, 1))
	g.Record("readings").At(pos(4, 1)).
		From("gen://readings", codec.LazyJSON{}, at(5, 8), pipeline.WithParams(pipeline.Params{"count": "200", "seed": "9", "template": tmpl})).
		WithBuffer(buffer.Config{Kind: buffer.Ring, Size: 512})
	g.Record("hot").At(pos(9, 1)).WithBuffer(buffer.Config{Kind: buffer.Queue, Size: 64}).
		To("file://"+out+"/hot-copy.jsonl", codec.LazyJSON{}, at(11, 6))
	g.Pipeline("pick").At(pos(14, 1)).From("readings", at(15, 8)).
		Add(expr.Filter(expr.MustCompile(expr.ExprLang, "temp > 25.0", expr.Bool)), at(16, 3)).
		Add(expr.Set(expr.Assignment{Field: "alert", Expr: expr.MustCompile(expr.ExprLang, "true", expr.Any)}), at(17, 3)).
		Into("hot", at(18, 8))
	g.Pipeline("publish").At(pos(21, 1)).From("hot", at(22, 8)).
		Add(expr.Map(expr.MustCompile(expr.CEL, `{"device": device, "temp": temp}`, expr.Any)), at(23, 3)).
		Parallel(2).
		To("file://"+out+"/hot.jsonl", codec.LazyJSON{}, at(25, 6), pipeline.Key(expr.Key(expr.MustCompile(expr.ExprLang, "device", expr.Any)))).
		DeadLetterTo("file://"+out+"/dead.jsonl", codec.JSON{}, at(26, 14))
	g.DeadLetterTo("file://"+out+"/all-dead.jsonl", codec.JSON{}, at(29, 12))
	return g
}

// TestCompileEqualsGoAPI checks that the DSL builds exactly the graph the
// Go API builds (same declarations, settings, codecs, stages and source
// positions), and that both graphs produce the same output.
func TestCompileEqualsGoAPI(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Getenv: func(k string) (string, bool) {
		if k == "OUT" {
			return dir + "/dsl", true
		}
		return "", false
	}}
	g1, err := Load(opts, Source{Name: "equiv.flow", Src: []byte(equivFlow)})
	if err != nil {
		t.Fatal(err)
	}
	g2 := goAPIGraph(dir + "/dsl")
	if err := g2.Validate(); err != nil {
		t.Fatal(err)
	}
	if d1, d2 := describe(g1, true), describe(g2, true); d1 != d2 {
		t.Fatalf("DSL graph:\n%s\nGo API graph:\n%s", d1, d2)
	}

	// Same behaviour: run each into its own directory and compare.
	runGraph := func(g *pipeline.Graph) {
		r, err := pipeline.NewRunner(g, pipeline.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := r.Run(ctx); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(dir+"/dsl", 0o755)
	os.MkdirAll(dir+"/api", 0o755)
	runGraph(g1)
	runGraph(goAPIGraph(dir + "/api"))
	for _, name := range []string{"hot.jsonl", "hot-copy.jsonl"} {
		a, err1 := os.ReadFile(filepath.Join(dir, "dsl", name))
		b, err2 := os.ReadFile(filepath.Join(dir, "api", name))
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if len(a) == 0 || string(a) != string(b) {
			t.Fatalf("%s differs or is empty:\nDSL: %.300s\nAPI: %.300s", name, a, b)
		}
	}
}

// TestCompileStatements checks each pipeline statement compiles to the
// stage the Go API would use.
func TestCompileStatements(t *testing.T) {
	src := okHeader + `record r {
  from "gen://x" decode none
}
pipeline p {
  from r
  decode json
  filter cel ` + "`temp > 1`" + `
  map ` + "`{\"t\": temp}`" + `
  set a ` + "`1`" + `
  set b ` + "`2`" + `
  log "seen"
  dedupe ` + "`t`" + ` 10
  batch 10 every 1s
  window tumbling 5s
  window sliding 1m every 10s
  window session 30s
  window tumbling 10s by ` + "`t`" + `
  split
  split ` + "`items`" + `
  throttle 5 per 1s
  encode json
  to "stdio://stdout" encode raw
}
`
	g, err := Load(Options{}, Source{Name: "s.flow", Src: []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, s := range g.Pipelines()[0].Stages {
		kinds = append(kinds, s.Kind())
	}
	want := "decode filter map set log dedupe batch window tumbling window sliding window session key by window tumbling by key split split throttle encode"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("stages %q, want %q", got, want)
	}
	if g.Records()[0].Inbound[0].Decoder != pipeline.PayloadOnly {
		t.Fatal("decode none is not PayloadOnly")
	}
	if _, ok := g.Pipelines()[0].Stages[3].(fmt.Stringer); !ok {
		t.Fatal("set stage has no label")
	}
	_ = stages.Group
}

// Every pipeline statement is listed in messages, and every listed one
// has an entry.
func TestPipelineKeywordsMatchTheTable(t *testing.T) {
	if len(pipelineKeywords) != len(pipelineStatements) {
		t.Errorf("%d keywords, %d statements", len(pipelineKeywords), len(pipelineStatements))
	}
	for _, kw := range pipelineKeywords {
		if _, ok := pipelineStatements[kw]; !ok {
			t.Errorf("keyword %q has no statement", kw)
		}
	}
}

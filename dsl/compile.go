package dsl

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"

	"github.com/aimdb-dev/aimdb-flow/connectors/registry"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/stages"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
	"github.com/aimdb-dev/aimdb-flow/stages/expr"
)

// Options configure loading.
type Options struct {
	// Registry builds connectors from their endpoint URLs (default
	// registry.Default()).
	Registry registry.Registry
	// Codecs resolves codec names (default codec.Default()).
	Codecs codec.Registry
	// Embedded says Go code runs the graph and may write records itself
	// (Runner.Writer): a record that pipelines read but no link or
	// pipeline writes is then a warning, not an error.
	Embedded bool
	// NoLinkChecks skips Graph.CheckLinks (which looks at the environment:
	// a file source's file must exist). fmt and graph set it: they read a
	// file, they do not run it.
	NoLinkChecks bool
	// Placeholders keeps an unset ${NAME} (without a default) as the text
	// "${NAME}" instead of reporting it, and does not build connectors
	// whose endpoint holds one (a stand-in keeps their links valid): for
	// tools that draw a file rather than run it (aimdb-flow graph).
	Placeholders bool
	// Getenv looks up ${NAME} (default os.LookupEnv).
	Getenv func(name string) (string, bool)
	// Logger receives the output of log stages (default slog.Default()).
	Logger *slog.Logger
	// WrapConnector, when set, is called with every connector built from
	// the registry and returns the builder to use instead (pipeline tests
	// swap connectors for in-process ones this way).
	WrapConnector func(name, endpoint string, b pipeline.Builder) pipeline.Builder
}

// Source is one file to load.
type Source struct {
	Name string
	Src  []byte
}

// LoadFiles reads, parses, checks and compiles the named .flow files into
// one graph, and validates it. The error, if any, is an *ErrorList holding
// every problem of every file.
func LoadFiles(opts Options, paths ...string) (*pipeline.Graph, error) {
	srcs := make([]Source, 0, len(paths))
	var errs ErrorList
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			errs.Add(pipeline.Pos{}, "%v", err)
			continue
		}
		srcs = append(srcs, Source{Name: p, Src: b})
	}
	if errs.Len() > 0 {
		return nil, errs.Err()
	}
	return Load(opts, srcs...)
}

// Load parses, checks and compiles sources into one graph (declarations
// of all files share one namespace) and validates it. The error, if any, is
// an *ErrorList with every problem found, in file and position order.
func Load(opts Options, srcs ...Source) (*pipeline.Graph, error) {
	errs := &ErrorList{}
	files := make([]*File, 0, len(srcs))
	for _, s := range srcs {
		files = append(files, Parse(s.Name, s.Src, errs))
	}
	g := Compile(opts, errs, files...)
	err := g.Validate()
	if err == nil && !opts.NoLinkChecks && errs.Len() == 0 {
		err = g.CheckLinks()
	}
	if err != nil {
		var ve *pipeline.ValidationError
		if errors.As(err, &ve) {
			for _, ce := range dropFollowOns(errs.Errors, files, ve.Errors) {
				errs.Errors = append(errs.Errors, &Error{Pos: ce.Pos, Msg: ce.Msg})
			}
		} else {
			errs.Add(pipeline.Pos{}, "%v", err)
		}
	}
	if err := errs.Err(); err != nil {
		return g, err
	}
	return g, nil
}

// Compile turns parsed files into a graph with the Go API, reporting
// semantic problems (unknown statements, malformed arguments, expression
// errors, unknown codecs, undefined ${ENV}) in errs. It does not validate
// the graph (Load does).
func Compile(opts Options, errs *ErrorList, files ...*File) *pipeline.Graph {
	if opts.Registry == nil {
		opts.Registry = registry.Default()
	}
	if opts.Codecs == nil {
		opts.Codecs = codec.Default()
	}
	if opts.Getenv == nil {
		opts.Getenv = os.LookupEnv
	}
	if opts.Placeholders {
		get := opts.Getenv
		opts.Getenv = func(name string) (string, bool) {
			if v, ok := get(name); ok {
				return v, true
			}
			return "${" + name + "}", true
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &compiler{opts: opts, errs: errs, g: pipeline.New(), records: map[string]pipeline.Pos{}, conns: map[string]pipeline.Pos{}, schemas: map[string]pipeline.Schema{}}
	c.collectSchemas(files)
	for _, f := range files {
		for _, d := range f.Decls {
			c.decl(d)
		}
	}
	c.checkUse()
	return c.g
}

// collectSchemas reads every record's schema statement before the
// declarations are compiled, so a pipeline is checked against the schema
// of a record declared after it (or in another file). Problems are
// reported when the record itself is compiled.
func (c *compiler) collectSchemas(files []*File) {
	quiet := &compiler{opts: c.opts, errs: &ErrorList{}}
	for _, f := range files {
		for _, d := range f.Decls {
			if d.Kw.Text != "record" || d.Block == nil || len(d.Args) == 0 {
				continue
			}
			for _, st := range d.Block.Stmts {
				if st.Kw.Text == "schema" {
					c.schemas[d.Args[0].Text] = quiet.schema(&args{c: quiet, s: st})
				}
			}
		}
	}
}

// schema reads `schema NAME TYPE NAME TYPE ...`.
func (c *compiler) schema(b *args) pipeline.Schema {
	s := pipeline.Schema{}
	if !b.more() {
		c.errorf(b.endPos(), "schema: want fields with their types, e.g. schema device string temp float seq int")
		return s
	}
	seen := map[string]bool{}
	for b.more() {
		name, npos, ok := b.ident("a field name")
		if !ok {
			return s
		}
		tname, tpos, ok := b.ident("the type of " + name + " (string, float, int, bool, object, list or any)")
		if !ok {
			return s
		}
		t, err := pipeline.ParseFieldType(tname)
		if err != nil {
			c.errorf(tpos, "schema: field %s: %v", name, err)
			continue
		}
		if seen[name] {
			c.errorf(npos, "schema: field %s given twice", name)
			continue
		}
		seen[name] = true
		s = append(s, pipeline.SchemaField{Name: name, Type: t})
	}
	return s
}

type compiler struct {
	opts    Options
	errs    *ErrorList
	g       *pipeline.Graph
	records map[string]pipeline.Pos
	conns   map[string]pipeline.Pos // declared connectors, for checkUse
	schemas map[string]pipeline.Schema
}

func (c *compiler) errorf(p pipeline.Pos, format string, args ...any) {
	c.errs.Add(p, format, args...)
}

var topKeywords = []string{"connector", "record", "pipeline", "deadletter"}

func (c *compiler) decl(s *Stmt) {
	kw := s.Kw.Text
	known := kw == "connector" || kw == "deadletter"
	if known && s.Block != nil {
		c.errorf(s.Block.Open.Pos, "%s takes no block", kw)
	}
	a := &args{c: c, s: s}
	switch kw {
	case "connector":
		c.connector(a)
	case "record":
		c.record(a)
	case "pipeline":
		c.pipeline(a)
	case "deadletter":
		link, pos, ok := a.str("a destination link, e.g. deadletter \"file:///var/log/dead.jsonl\"")
		if !ok {
			return
		}
		ls := a.linkSettings(false, true)
		c.g.DeadLetterTo(link, ls.enc, ls.outOpts(pos)...)
	default:
		c.errorf(s.Kw.Pos, "unknown statement %q (want %s)%s", kw, strings.Join(topKeywords, ", "), didYouMean(kw, topKeywords))
	}
}

func (c *compiler) connector(a *args) {
	name, _, ok := a.ident("a connector name, e.g. connector mqtt \"mqtt://127.0.0.1:1883\"")
	if !ok {
		return
	}
	url, upos, ok := a.str("an endpoint URL, e.g. \"mqtt://127.0.0.1:1883\"")
	if !ok {
		// The declaration's own error is the root cause: a stand-in keeps
		// every link on this connector from being reported as unknown too.
		c.g.Connector(name, failedBuilder{scheme: name}, pipeline.At(a.s.Kw.Pos))
		return
	}
	params, ppos := a.settings(nil)
	if c.opts.Placeholders && strings.Contains(url, "${") {
		scheme, _, _ := strings.Cut(url, "://")
		c.g.Connector(name, failedBuilder{scheme: scheme}, pipeline.At(a.s.Kw.Pos))
		return
	}
	b, err := c.opts.Registry.Build(url, params)
	if err != nil {
		// A problem with one setting is reported where that setting is
		// written, anything else at the endpoint URL.
		for _, e := range pipeline.SplitErrors(err) {
			pos := upos
			if p, ok := ppos[pipeline.SettingOf(e)]; ok {
				pos = p
			}
			c.errorf(pos, "connector %s: %v", name, e)
		}
		// A stand-in keeps links on this connector from being reported
		// as unknown as well.
		scheme, _, _ := strings.Cut(url, "://")
		c.g.Connector(name, failedBuilder{scheme: scheme}, pipeline.At(a.s.Kw.Pos))
		return
	}
	if c.opts.WrapConnector != nil {
		b = c.opts.WrapConnector(name, url, b)
	}
	if _, dup := c.conns[name]; !dup {
		c.conns[name] = a.s.Kw.Pos
	}
	c.g.Connector(name, b, pipeline.At(a.s.Kw.Pos))
}

func (c *compiler) record(a *args) {
	name, npos, ok := a.ident("a record name, e.g. record sensor.temp { ... }")
	if !ok {
		return
	}
	a.end()
	if prev, dup := c.records[name]; dup {
		c.errorf(npos, "record %s declared twice (first at %s)", name, prev)
		return
	}
	c.records[name] = a.s.Kw.Pos
	rs := c.g.Record(name).At(a.s.Kw.Pos)
	if a.s.Block == nil {
		c.errorf(a.endPos(), "record %s needs a block: record %s { from \"...\" decode json }", name, name)
		return
	}
	sawBuffer := false
	for _, st := range a.s.Block.Stmts {
		b := &args{c: c, s: st}
		switch st.Kw.Text {
		case "from":
			link, pos, ok := b.str("an inbound link, e.g. from \"mqtt://sensors/+/temp\" decode json")
			if !ok {
				continue
			}
			ls := b.linkSettings(true, false)
			rs.From(link, ls.dec, ls.inOpts(pos)...)
		case "to":
			link, pos, ok := b.str("an outbound link, e.g. to \"mqtt://alerts\" encode json")
			if !ok {
				continue
			}
			ls := b.linkSettings(false, false)
			rs.To(link, ls.enc, ls.outOpts(pos)...)
		case "schema":
			if rs.Schema != nil {
				c.errorf(st.Kw.Pos, "record %s: schema given twice", name)
			}
			rs.WithSchema(c.schema(b)...)
		case "buffer":
			if sawBuffer {
				c.errorf(st.Kw.Pos, "record %s: buffer given twice", name)
			}
			sawBuffer = true
			if cfg, ok := b.buffer(); ok {
				rs.WithBuffer(cfg)
			}
		case "settable":
			if rs.Settable {
				c.errorf(st.Kw.Pos, "record %s: settable given twice", name)
			}
			b.end()
			rs.WithSettable()
		default:
			c.errorf(st.Kw.Pos, "unknown record statement %q (want from, to, buffer, schema or settable)%s", st.Kw.Text, didYouMean(st.Kw.Text, []string{"from", "to", "buffer", "schema", "settable"}))
		}
	}
}

func (c *compiler) pipeline(a *args) {
	name, _, ok := a.ident("a pipeline name, e.g. pipeline alerts { ... }")
	if !ok {
		return
	}
	a.end()
	ps := c.g.Pipeline(name).At(a.s.Kw.Pos)
	if a.s.Block == nil {
		c.errorf(a.endPos(), "pipeline %s needs a block: pipeline %s { from RECORD ... }", name, name)
		return
	}
	pc := &pipeCtx{c: c, ps: ps, name: name, seen: map[string]pipeline.Pos{}, pendingAt: -1}
	// shape is the schema of the values at this point of the pipeline:
	// the input record's, extended by set, unknown (nil) after a stage that
	// changes the value's shape.
	var shape pipeline.Schema
	for _, st := range a.s.Block.Stmts {
		if st.Kw.Text == "from" && len(st.Args) > 0 {
			shape = c.schemas[st.Args[0].Text]
			break
		}
	}
	for _, st := range a.s.Block.Stmts {
		def, known := pipelineStatements[st.Kw.Text]
		if !known {
			c.errorf(st.Kw.Pos, "unknown pipeline statement %q (want %s)%s", st.Kw.Text, strings.Join(pipelineKeywords, ", "), didYouMean(st.Kw.Text, pipelineKeywords))
		} else {
			if def.reshapes {
				shape = nil // the value's shape changes
			} else if st.Kw.Text == "set" && shape != nil && len(st.Args) > 0 {
				if _, known := shape.Lookup(st.Args[0].Text); !known {
					shape = append(append(pipeline.Schema(nil), shape...), pipeline.SchemaField{Name: st.Args[0].Text, Type: pipeline.Any})
				}
			}
			def.compile(pc, &args{c: c, s: st, schema: shape}, st)
		}
		if st.Block != nil {
			c.errorf(st.Block.Open.Pos, "%s takes no block", st.Kw.Text)
		}
	}
}

// window reads a window statement. A keyed window (`by EXPR`) also
// returns the stage that sets each record's key before it.
func (c *compiler) window(b *args) (key, win pipeline.Stage) {
	kind, kpos, ok := b.ident("a window kind: tumbling SIZE, sliding SIZE every SLIDE or session GAP")
	if !ok {
		return nil, nil
	}
	defer b.end()
	w := c.windowKind(b, kind, kpos)
	if t := b.peek(); t == nil || t.Kind != Ident || t.Text != "by" {
		return nil, w
	}
	bpos := b.peek().Pos
	b.i++
	p, ok := b.expr(expr.Any)
	if !ok || w == nil {
		return nil, nil
	}
	if kind == "session" {
		c.errorf(bpos, "window session cannot be keyed: a session spans every key (use window tumbling or sliding ... by)")
		return nil, nil
	}
	field := "key"
	if isIdent(p.Source()) {
		field = strings.TrimSpace(p.Source())
	}
	return stages.KeyBy(expr.Key(p)), stages.ByKey(w.(pipeline.AsyncStage), field, p.Eval)
}

// isIdent reports whether an expression is one plain identifier.
func isIdent(src string) bool {
	src = strings.TrimSpace(src)
	if src == "" {
		return false
	}
	for i, r := range src {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func (c *compiler) windowKind(b *args, kind string, kpos pipeline.Pos) pipeline.Stage {
	switch kind {
	case "tumbling":
		if d, ok := b.duration("a window size, e.g. window tumbling 10s"); ok {
			return stages.TumblingWindow(d)
		}
	case "sliding":
		size, ok1 := b.duration("a window size, e.g. window sliding 1m every 10s")
		if !b.keyword("every") {
			return nil
		}
		slide, ok2 := b.duration("a slide interval, e.g. window sliding 1m every 10s")
		if ok1 && ok2 {
			if slide > size {
				c.errorf(kpos, "window sliding: slide %s is longer than the window %s", slide, size)
				return nil
			}
			return stages.SlidingWindow(size, slide)
		}
	case "session":
		if d, ok := b.duration("a session gap, e.g. window session 30s"); ok {
			return stages.SessionWindow(d)
		}
	default:
		c.errorf(kpos, "unknown window kind %q (want tumbling, sliding or session)", kind)
	}
	return nil
}

// failedBuilder stands in for a connector whose declaration was wrong.
type failedBuilder struct{ scheme string }

func (f failedBuilder) Scheme() string { return f.scheme }

// Caps claims everything, so that links on a connector whose declaration
// failed report no follow-on direction errors.
func (failedBuilder) Caps() pipeline.Caps {
	return pipeline.Caps{Inbound: true, Outbound: true, Topics: true}
}
func (f failedBuilder) Build(context.Context, pipeline.BuildEnv) (pipeline.Connector, error) {
	return nil, errors.New("connector declaration has errors")
}
func (failedBuilder) ParseLinkOptions(pipeline.Direction, string, pipeline.Params) (any, error) {
	return nil, nil
}

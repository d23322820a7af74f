package dsl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/connectors/registry"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
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
		default:
			c.errorf(st.Kw.Pos, "unknown record statement %q (want from, to, buffer or schema)%s", st.Kw.Text, didYouMean(st.Kw.Text, []string{"from", "to", "buffer", "schema"}))
		}
	}
}

var pipelineKeywords = []string{"from", "filter", "map", "set", "log", "dedupe", "batch", "window", "split", "throttle",
	"parallel", "decode", "encode", "into", "to", "deadletter"}

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
	seen := map[string]pipeline.Pos{}
	once := func(st *Stmt) bool {
		if prev, dup := seen[st.Kw.Text]; dup {
			c.errorf(st.Kw.Pos, "pipeline %s: %s given twice (first at %s)", name, st.Kw.Text, prev)
			return false
		}
		seen[st.Kw.Text] = st.Kw.Pos
		return true
	}
	var pending []expr.Assignment // the set statements of the last set stage
	pendingAt := -1
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
		b := &args{c: c, s: st, schema: shape}
		pos := st.Kw.Pos
		switch st.Kw.Text {
		case "map", "batch", "window", "split", "decode", "encode":
			shape = nil // the value's shape changes
		case "set":
			if shape != nil && len(st.Args) > 0 {
				if _, known := shape.Lookup(st.Args[0].Text); !known {
					shape = append(append(pipeline.Schema(nil), shape...), pipeline.SchemaField{Name: st.Args[0].Text, Type: pipeline.Any})
				}
			}
		}
		switch st.Kw.Text {
		case "from":
			if r, rpos, ok := b.ident("an input record, e.g. from sensor.temp"); ok && once(st) {
				ps.From(r, pipeline.At(rpos))
			}
			b.end()
		case "into":
			if r, rpos, ok := b.ident("an output record, e.g. into alerts.hot"); ok && once(st) {
				ps.Into(r, pipeline.At(rpos))
			}
			b.end()
		case "filter", "map":
			want := expr.Any
			if st.Kw.Text == "filter" {
				want = expr.Bool
			}
			if p, ok := b.expr(want); ok {
				if want == expr.Bool {
					ps.Add(expr.Filter(p), pipeline.At(pos))
				} else {
					ps.Add(expr.Map(p), pipeline.At(pos))
				}
			}
			b.end()
		case "set":
			field, _, ok1 := b.ident("a field name, e.g. set alert `true`")
			p, ok2 := b.expr(expr.Any)
			b.end()
			if ok1 && ok2 {
				as := expr.Assignment{Field: field, Expr: p}
				// Consecutive sets share one stage (one copy of the value).
				if n := len(pending); n > 0 && pendingAt == len(ps.Stages) {
					pending = append(pending, as)
					ps.Stages[len(ps.Stages)-1] = expr.Set(pending...)
				} else {
					pending = []expr.Assignment{as}
					ps.Add(expr.Set(as), pipeline.At(pos))
					pendingAt = len(ps.Stages)
				}
			}
		case "log":
			msg := "record"
			if b.more() {
				if m, _, ok := b.str("a log message"); ok {
					msg = m
				}
			}
			b.end()
			ps.Add(stages.Log(c.opts.Logger, name, msg), pipeline.At(pos))
		case "dedupe":
			p, ok := b.expr(expr.Any)
			n := 1024
			if b.more() {
				n, _ = b.positive("the number of recent keys remembered")
			}
			b.end()
			if ok {
				ps.Add(stages.Dedupe(expr.Key(p), n), pipeline.At(pos))
			}
		case "batch":
			n, ok := b.positive("a batch size, e.g. batch 100 every 1s")
			var every time.Duration
			if b.more() {
				if b.keyword("every") {
					every, _ = b.duration("a flush interval, e.g. every 1s")
				}
			}
			b.end()
			if ok {
				ps.Add(stages.Batch(n, every), pipeline.At(pos))
			}
		case "window":
			key, st := c.window(b)
			if key != nil {
				ps.Add(key, pipeline.At(pos))
			}
			if st != nil {
				ps.Add(st, pipeline.At(pos))
			}
		case "split":
			var list func(env *pipeline.Envelope) (any, error)
			if b.more() {
				if p, ok := b.expr(expr.Any); ok {
					list = p.Eval
				}
			}
			b.end()
			ps.Add(stages.Split(list), pipeline.At(pos))
		case "throttle":
			n, ok1 := b.positive("a count, e.g. throttle 100 per 1s")
			ok2 := b.keyword("per")
			var per time.Duration
			ok3 := false
			if ok2 {
				per, ok3 = b.duration("a period, e.g. throttle 100 per 1s")
			}
			b.end()
			if ok1 && ok2 && ok3 {
				ps.Add(stages.Throttle(n, per), pipeline.At(pos))
			}
		case "parallel":
			if n, ok := b.positive("a worker count, e.g. parallel 4"); ok && once(st) {
				ps.Parallel(n)
			}
			b.end()
		case "decode", "encode":
			cd, ok := b.codec()
			b.end()
			if ok {
				if st.Kw.Text == "decode" {
					ps.Add(stages.Decode(cd), pipeline.At(pos))
				} else {
					ps.Add(stages.Encode(cd), pipeline.At(pos))
				}
			}
		case "to":
			link, lpos, ok := b.str("an outbound link, e.g. to \"mqtt://alerts/{device}\" encode json")
			if !ok {
				continue
			}
			ls := b.linkSettings(false, false)
			ps.To(link, ls.enc, ls.outOpts(lpos)...)
		case "deadletter":
			link, lpos, ok := b.str("a dead-letter link, e.g. deadletter \"file:///tmp/dead.jsonl\"")
			if !ok || !once(st) {
				continue
			}
			ls := b.linkSettings(false, true)
			ps.DeadLetterTo(link, ls.enc, ls.outOpts(lpos)...)
		default:
			c.errorf(pos, "unknown pipeline statement %q (want %s)%s", st.Kw.Text, strings.Join(pipelineKeywords, ", "), didYouMean(st.Kw.Text, pipelineKeywords))
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

// ---- argument reading ----

// args reads a statement's arguments in order, reporting each problem at
// the offending token (or just after the statement when something is
// missing).
type args struct {
	c *compiler
	s *Stmt
	i int
	// schema, when set, is the shape of the values the statement's
	// expressions read: they are type-checked against it at load.
	schema pipeline.Schema
}

func (a *args) more() bool { return a.i < len(a.s.Args) }

func (a *args) peek() *Token {
	if a.i < len(a.s.Args) {
		return &a.s.Args[a.i]
	}
	return nil
}

// endPos is just after the statement's last token.
func (a *args) endPos() pipeline.Pos {
	t := a.s.Kw
	if n := len(a.s.Args); n > 0 {
		t = a.s.Args[n-1]
	}
	p := t.Pos
	if i := strings.LastIndexByte(t.Text, '\n'); i >= 0 {
		p.Line += strings.Count(t.Text, "\n")
		p.Col = utf8.RuneCountInString(t.Text[i+1:]) + 1
	} else {
		p.Col += utf8.RuneCountInString(t.Text)
	}
	return p
}

func (a *args) missing(what string) {
	t := a.peek()
	if t != nil && t.Kind == Illegal {
		a.i++ // reported by the lexer
		return
	}
	if t == nil {
		a.c.errorf(a.endPos(), "%s: missing %s", a.s.Kw.Text, what)
		return
	}
	a.c.errorf(t.Pos, "%s: unexpected %s %s, want %s", a.s.Kw.Text, t.Kind, t.Text, what)
}

// end reports leftover arguments.
func (a *args) end() {
	if t := a.peek(); t != nil && t.Kind != Illegal {
		a.c.errorf(t.Pos, "%s: unexpected %s %s%s", a.s.Kw.Text, t.Kind, t.Text, continuationHint(a.s.Kw, *t))
		a.i = len(a.s.Args)
	}
}

// continuationHint explains an unexpected statement keyword on a later
// line: a line indented deeper than its statement continues that
// statement, so "to ..." indented under "filter ..." is read as more
// arguments of the filter.
func continuationHint(kw, t Token) string {
	if t.Kind != Ident || t.Pos.Line <= kw.Pos.Line {
		return ""
	}
	if !slices.Contains(pipelineKeywords, t.Text) && !slices.Contains(topKeywords, t.Text) && t.Text != "buffer" {
		return ""
	}
	return fmt.Sprintf(" (line %d is indented deeper than %s on line %d, so it continues that statement; indent %s like %s to start a new statement)",
		t.Pos.Line, kw.Text, kw.Pos.Line, t.Text, kw.Text)
}

func (a *args) ident(what string) (string, pipeline.Pos, bool) {
	t := a.peek()
	if t == nil || t.Kind != Ident {
		a.missing(what)
		return "", pipeline.Pos{}, false
	}
	a.i++
	return t.Text, t.Pos, true
}

func (a *args) keyword(kw string) bool {
	t := a.peek()
	if t == nil || t.Kind != Ident || t.Text != kw {
		a.missing("'" + kw + "'")
		return false
	}
	a.i++
	return true
}

// str reads a string (or a bare ${VAR}) and interpolates it.
func (a *args) str(what string) (string, pipeline.Pos, bool) {
	t := a.peek()
	if t == nil || t.Kind != String && t.Kind != Var {
		a.missing(what)
		return "", pipeline.Pos{}, false
	}
	a.i++
	v, ok := a.c.value(t)
	return v, t.Pos, ok
}

// value returns a setting value token as a string: strings and ${VAR} are
// interpolated, expressions lose their backticks, the rest is literal.
func (c *compiler) value(t *Token) (string, bool) {
	raw := t.Text
	switch t.Kind {
	case String:
		if len(raw) < 2 || !strings.HasSuffix(raw, "\"") {
			return "", false // unterminated: reported by the lexer
		}
		s, err := strconv.Unquote(raw)
		if err != nil {
			c.errorf(t.Pos, "malformed string %s: %v", raw, err)
			return "", false
		}
		raw = s
	case Expr:
		return strings.TrimSuffix(strings.TrimPrefix(raw, "`"), "`"), true
	case Var:
	default:
		return raw, true
	}
	v, off, err := expandEnv(raw, c.opts.Getenv)
	if err != nil {
		p := t.Pos
		if t.Kind == String {
			// The offset is in the unquoted text: exact unless escapes
			// precede the variable.
			p.Col += 1 + utf8.RuneCountInString(raw[:min(off, len(raw))])
		}
		c.errorf(p, "%v", err)
		return "", false
	}
	return v, true
}

func (a *args) number(what string) (string, *Token, bool) {
	t := a.peek()
	if t == nil || t.Kind != Number && t.Kind != Var {
		a.missing(what)
		return "", nil, false
	}
	a.i++
	v, ok := a.c.value(t)
	return v, t, ok
}

func (a *args) positive(what string) (int, bool) {
	v, t, ok := a.number(what)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		a.c.errorf(t.Pos, "%s: want a positive whole number, got %q", a.s.Kw.Text, v)
		return 0, false
	}
	return n, true
}

func (a *args) duration(what string) (time.Duration, bool) {
	t := a.peek()
	if t == nil || t.Kind != Duration && t.Kind != Var {
		a.missing(what)
		return 0, false
	}
	a.i++
	v, ok := a.c.value(t)
	if !ok {
		return 0, false
	}
	d, err := kit.ParseDuration(v)
	if err == nil && d <= 0 {
		err = fmt.Errorf("duration must be positive, got %s", v)
	}
	if err != nil {
		a.c.errorf(t.Pos, "%s: %v", a.s.Kw.Text, err)
		return 0, false
	}
	return d, true
}

func (a *args) codec() (pipeline.Codec, bool) {
	name, pos, ok := a.ident("a codec name (" + strings.Join(a.c.opts.Codecs.Names(), ", ") + ")")
	if !ok {
		return nil, false
	}
	cd, err := a.c.opts.Codecs.Lookup(name)
	if err != nil {
		a.c.errorf(pos, "%v", err)
		return nil, false
	}
	return cd, true
}

// expr reads [cel] `expression` and compiles it, mapping error positions
// into the file.
func (a *args) expr(want expr.Want) (*expr.Program, bool) {
	lang := expr.ExprLang
	if t := a.peek(); t != nil && t.Kind == Ident && t.Text == "cel" {
		lang = expr.CEL
		a.i++
	}
	t := a.peek()
	if t == nil || t.Kind != Expr {
		a.missing("an expression in backticks, e.g. `temp > 25`")
		return nil, false
	}
	a.i++
	raw := strings.TrimSuffix(strings.TrimPrefix(t.Text, "`"), "`")
	// at converts a byte offset in raw to a file position (the backtick
	// takes one column).
	at := func(off int) pipeline.Pos {
		pos := t.Pos
		before := raw[:min(off, len(raw))]
		if nl := strings.LastIndexByte(before, '\n'); nl >= 0 {
			pos.Line += strings.Count(before, "\n")
			pos.Col = utf8.RuneCountInString(before[nl+1:]) + 1
		} else {
			pos.Col += 1 + utf8.RuneCountInString(before)
		}
		return pos
	}
	src, offs, eoff, err := expandEnvMapped(raw, a.c.opts.Getenv)
	if err != nil {
		a.c.errorf(at(eoff), "%s: %v", a.s.Kw.Text, err)
		return nil, false
	}
	p, err := expr.Compile(lang, src, want)
	if err == nil && a.schema != nil {
		err = p.Check(a.schema)
	}
	if err != nil {
		var ce *expr.CompileError
		pos := t.Pos
		msg := err.Error()
		if errors.As(err, &ce) {
			msg = ce.Msg
			pos = at(offs[byteOffset(src, ce.Line, ce.Col)])
		}
		a.c.errorf(pos, "%s: %s expression: %s", a.s.Kw.Text, lang, msg)
		return nil, false
	}
	return p, true
}

// byteOffset converts a 1-based line and character column in s to a byte
// offset (clamped to len(s)).
func byteOffset(s string, line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := strings.IndexByte(s[off:], '\n')
		if i < 0 {
			return len(s)
		}
		off += i + 1
	}
	for c := 1; c < col && off < len(s); c++ {
		_, n := utf8.DecodeRuneInString(s[off:])
		off += n
	}
	return off
}

func (a *args) buffer() (buffer.Config, bool) {
	kind, kpos, ok := a.ident("a buffer kind: ring N, queue N, latest or mailbox")
	if !ok {
		return buffer.Config{}, false
	}
	spec := kind
	if a.more() {
		n, _, ok := a.number("a buffer size")
		if !ok {
			return buffer.Config{}, false
		}
		spec += " " + n
	}
	a.end()
	cfg, err := buffer.Parse(spec)
	if err != nil {
		a.c.errorf(kpos, "buffer: %v", err)
		return buffer.Config{}, false
	}
	return cfg, true
}

// linkOpts are the settings of one link statement.
type linkOpts struct {
	pos    pipeline.Pos
	dec    pipeline.Decoder
	enc    pipeline.Encoder
	key    pipeline.KeyFunc
	params pipeline.Params
	ppos   map[string]pipeline.Pos // where each of params is written
}

func (l *linkOpts) inOpts(pos pipeline.Pos) []pipeline.InOption {
	o := []pipeline.InOption{pipeline.At(pos)}
	if len(l.params) > 0 {
		o = append(o, pipeline.WithParams(l.params), pipeline.ParamsAt(l.ppos))
	}
	return o
}

func (l *linkOpts) outOpts(pos pipeline.Pos) []pipeline.OutOption {
	o := []pipeline.OutOption{pipeline.At(pos)}
	if l.key != nil {
		o = append(o, pipeline.Key(l.key))
	}
	if len(l.params) > 0 {
		o = append(o, pipeline.WithParams(l.params), pipeline.ParamsAt(l.ppos))
	}
	return o
}

// linkSettings reads the `name value` pairs after a link: decode/encode
// CODEC and key `expr` are the link's own, everything else goes to the
// connector as link parameters. A missing codec is reported here (a
// placeholder keeps validation from reporting it again); dead-letter links
// default to json.
func (a *args) linkSettings(inbound, deadletter bool) *linkOpts {
	l := &linkOpts{}
	codecKw := "encode"
	if inbound {
		codecKw = "decode"
	}
	var haveCodec bool
	l.params, l.ppos = a.settings(func(name string) bool {
		switch {
		case name == codecKw:
			if haveCodec {
				a.c.errorf(a.s.Args[a.i-1].Pos, "%s given twice", name)
			}
			haveCodec = true
			if t := a.peek(); inbound && t != nil && t.Kind == Ident && t.Text == "none" {
				// Payload only: decode later in the pipeline (e.g. in
				// parallel workers) with a decode stage.
				a.i++
				l.dec = pipeline.PayloadOnly
				return true
			}
			if cd, ok := a.codec(); ok {
				l.dec, l.enc = cd, cd
			} else {
				l.dec, l.enc = codec.JSON{}, codec.JSON{}
			}
			return true
		case name == "key" && !inbound && !deadletter:
			if p, ok := a.expr(expr.Any); ok {
				l.key = expr.Key(p)
			}
			return true
		case name == "decode" || name == "encode":
			a.c.errorf(a.s.Args[a.i-1].Pos, "%s: an %s link takes %s, not %s", a.s.Kw.Text, map[bool]string{true: "inbound", false: "outbound"}[inbound], codecKw, name)
			a.codec()
			return true
		}
		return false
	})
	if !haveCodec {
		if deadletter {
			l.dec, l.enc = codec.JSON{}, codec.JSON{}
		} else {
			a.c.errorf(a.endPos(), "%s: missing %s CODEC (one of %s)", a.s.Kw.Text, codecKw, strings.Join(a.c.opts.Codecs.Names(), ", "))
			l.dec, l.enc = codec.JSON{}, codec.JSON{}
		}
	}
	return l
}

// settings reads `name value` pairs to the end of the statement, and
// where each name is written. special, when set, may consume a pair itself
// (after its name was read) and report true.
func (a *args) settings(special func(name string) bool) (pipeline.Params, map[string]pipeline.Pos) {
	var p pipeline.Params
	var at map[string]pipeline.Pos
	seen := map[string]bool{}
	for a.more() {
		t := a.peek()
		if t.Kind == Illegal {
			a.i++
			continue
		}
		if t.Kind != Ident {
			a.c.errorf(t.Pos, "%s: unexpected %s %s, want a setting name", a.s.Kw.Text, t.Kind, t.Text)
			a.i++
			continue
		}
		a.i++
		if special != nil && special(t.Text) {
			continue
		}
		v := a.peek()
		if v == nil || v.Kind == LBrace || v.Kind == RBrace {
			a.c.errorf(a.endPos(), "%s: setting %s needs a value", a.s.Kw.Text, t.Text)
			break
		}
		a.i++
		if seen[t.Text] {
			a.c.errorf(t.Pos, "%s: setting %s given twice", a.s.Kw.Text, t.Text)
			continue
		}
		seen[t.Text] = true
		val, ok := a.c.value(v)
		if !ok {
			continue
		}
		if p == nil {
			p, at = pipeline.Params{}, map[string]pipeline.Pos{}
		}
		p[t.Text] = val
		at[t.Text] = t.Pos
	}
	return p, at
}

func didYouMean(s string, known []string) string { return pipeline.DidYouMean(s, known) }

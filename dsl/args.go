package dsl

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
	"github.com/aimdb-dev/aimdb-flow/stages/codec"
	"github.com/aimdb-dev/aimdb-flow/stages/expr"
)

// This file: reading a statement's arguments in order, reporting each
// problem at the offending token.

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

// codecChoices lists the codecs a link may name, for error messages.
func (a *args) codecChoices() string {
	return strings.Join(a.c.opts.Codecs.Names(), ", ") + `, protobuf "FILE.proto" Message`
}

func (a *args) codec() (pipeline.Codec, bool) {
	name, pos, ok := a.ident("a codec name (" + a.codecChoices() + ")")
	if !ok {
		return nil, false
	}
	if name == "protobuf" {
		return a.protobufCodec(pos)
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
			a.c.errorf(a.endPos(), "%s: missing %s CODEC (one of %s)", a.s.Kw.Text, codecKw, a.codecChoices())
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

package pipeline

import (
	"fmt"
	"sort"
	"strings"

	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
	"github.com/aimdb-dev/aimdb-flow/pipeline/topic"
)

// Pos is a position in a source file. Graphs built from .flow files carry
// positions so that validation errors point at the exact spot.
type Pos struct {
	File      string
	Line, Col int
}

// IsValid reports whether the position is set.
func (p Pos) IsValid() bool { return p.Line > 0 }

func (p Pos) String() string {
	if !p.IsValid() {
		return ""
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// ConfigError is one configuration mistake found by Validate.
type ConfigError struct {
	Pos Pos
	Msg string
}

func (e *ConfigError) Error() string {
	if e.Pos.IsValid() {
		return e.Pos.String() + ": " + e.Msg
	}
	return e.Msg
}

// ValidationError carries every mistake found in a graph, in source order.
type ValidationError struct{ Errors []*ConfigError }

func (e *ValidationError) Error() string {
	var b strings.Builder
	for i, ce := range e.Errors {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(ce.Error())
	}
	return b.String()
}

// Unwrap exposes the individual errors to errors.Is/As.
func (e *ValidationError) Unwrap() []error {
	out := make([]error, len(e.Errors))
	for i, ce := range e.Errors {
		out[i] = ce
	}
	return out
}

// KeyFunc computes a record's outbound key (Kafka key, dedupe key). The
// returned slice must be freshly allocated or otherwise owned by the
// caller, and not written afterwards: publishers may hold it until the
// record is confirmed.
type KeyFunc func(env *Envelope) ([]byte, error)

// Link options are typed by role: an InOption only applies to inbound
// links, an OutOption only to outbound ones; options that fit both
// implement both.

// InOption configures an inbound link.
type InOption interface{ applyIn(*InLink) }

// OutOption configures an outbound link.
type OutOption interface{ applyOut(*OutLink) }

type optionsOpt struct{ v any }

func (o optionsOpt) applyIn(l *InLink)   { l.Options = o.v }
func (o optionsOpt) applyOut(l *OutLink) { l.Options = o.v }

// Options attaches a connector's typed link options (e.g. mqtt.Sub{QoS: 1}).
func Options(v any) interface {
	InOption
	OutOption
} {
	return optionsOpt{v}
}

type paramsOpt struct{ p Params }

func (o paramsOpt) applyIn(l *InLink)   { l.Params = o.p }
func (o paramsOpt) applyOut(l *OutLink) { l.Params = o.p }

// WithParams attaches untyped link settings, parsed by the connector's
// LinkOptionParser at validation (this is what the DSL uses).
func WithParams(p Params) interface {
	InOption
	OutOption
} {
	return paramsOpt{p}
}

type paramPosOpt struct{ p map[string]Pos }

func (o paramPosOpt) applyIn(l *InLink)   { l.ParamPos = o.p }
func (o paramPosOpt) applyOut(l *OutLink) { l.ParamPos = o.p }

// ParamsAt records where each link setting was written, so that an error
// the connector reports about one setting (a SettingError) points at it.
func ParamsAt(p map[string]Pos) interface {
	InOption
	OutOption
} {
	return paramPosOpt{p}
}

// Position is the option At returns: where something was written in a
// source file, for error messages. It is accepted by links (From, To,
// DeadLetterTo), by a pipeline's input and output (PipelineSpec.From,
// Into), by stages (PipelineSpec.Add) and by connectors (Graph.Connector).
// It is the only way positions enter the Go API: code that builds a graph
// by hand never needs one.
type Position struct{ p Pos }

func (o Position) applyIn(l *InLink)   { l.Pos = o.p }
func (o Position) applyOut(l *OutLink) { l.Pos = o.p }

// At records a source position (see Position).
func At(p Pos) Position { return Position{p} }

// posOf is the position in at, if any.
func posOf(at []Position) Pos {
	if len(at) > 0 {
		return at[len(at)-1].p
	}
	return Pos{}
}

type keyOpt struct{ f KeyFunc }

func (o keyOpt) applyOut(l *OutLink) { l.Key = o.f }

// Key sets the function computing each outbound record's key.
func Key(f KeyFunc) OutOption { return keyOpt{f} }

// InLink is an inbound link of a record: the connector subscribes to its
// address and decodes matching messages into the record.
type InLink struct {
	Raw     string
	Link    Link
	Decoder Decoder
	Options any
	Params  Params
	// ParamPos is where each of Params was written (may be nil).
	ParamPos map[string]Pos
	// parsed: Options came from ParseLinkOptions (an earlier Validate).
	parsed bool
	Pos    Pos
}

// OutLink is an outbound link: a publisher sink that encodes each record and
// publishes it to a destination computed by Dest.
type OutLink struct {
	Raw     string
	Link    Link
	Dest    *Template
	Encoder Encoder
	Key     KeyFunc
	Options any
	Params  Params
	// ParamPos is where each of Params was written (may be nil).
	ParamPos map[string]Pos
	// parsed: Options came from ParseLinkOptions (an earlier Validate).
	parsed bool
	Pos    Pos
}

// RecordSpec declares a record.
type RecordSpec struct {
	Name     string
	Buffer   buffer.Config
	Inbound  []*InLink
	Outbound []*OutLink
	// Schema optionally declares the fields of the record's values.
	Schema Schema
	// Settable declares that values may be set into the record from
	// outside the graph (Runner.Set: the records API, the CLI's records
	// set). A settable record has no other writer: no inbound link and no
	// pipeline writing into it.
	Settable bool
	Pos      Pos
	errs     []*ConfigError
}

// WithSettable declares the record settable (see RecordSpec.Settable);
// the DSL's record statement "settable" is its twin.
func (r *RecordSpec) WithSettable() *RecordSpec { r.Settable = true; return r }

// WithBuffer sets the record's buffer (default buffer.Default).
func (r *RecordSpec) WithBuffer(cfg buffer.Config) *RecordSpec { r.Buffer = cfg; return r }

// At records the declaration's source position.
func (r *RecordSpec) At(p Pos) *RecordSpec { r.Pos = p; return r }

// From adds an inbound link ("mqtt://sensors/+/temp") decoded with dec.
func (r *RecordSpec) From(link string, dec Decoder, opts ...InOption) *RecordSpec {
	l := &InLink{Raw: link, Decoder: dec}
	for _, o := range opts {
		o.applyIn(l)
	}
	parsed, err := ParseLink(link)
	if err != nil {
		r.errs = append(r.errs, &ConfigError{Pos: l.Pos, Msg: err.Error()})
	}
	l.Link = parsed
	r.Inbound = append(r.Inbound, l)
	return r
}

// To adds an outbound publisher sink reading this record.
func (r *RecordSpec) To(link string, enc Encoder, opts ...OutOption) *RecordSpec {
	l, err := newOutLink(link, enc, opts)
	if err != nil {
		r.errs = append(r.errs, err)
	}
	r.Outbound = append(r.Outbound, l)
	return r
}

func newOutLink(link string, enc Encoder, opts []OutOption) (*OutLink, *ConfigError) {
	l := &OutLink{Raw: link, Encoder: enc}
	for _, o := range opts {
		o.applyOut(l)
	}
	parsed, err := ParseLink(link)
	if err != nil {
		return l, &ConfigError{Pos: l.Pos, Msg: err.Error()}
	}
	l.Link = parsed
	t, err := ParseTemplate(parsed.Address)
	if err != nil {
		return l, &ConfigError{Pos: l.Pos, Msg: err.Error()}
	}
	l.Dest = t
	return l, nil
}

// PipelineSpec declares a pipeline: it reads one record, runs its stages,
// and writes into a record and/or publishes to outbound links.
type PipelineSpec struct {
	Name       string
	Input      string
	Stages     []Stage
	IntoRecord string
	Outputs    []*OutLink
	DeadLetter *OutLink
	// Workers > 1 runs the fused stages on that many goroutines; output
	// order is preserved (records are resequenced before the outputs).
	Workers int
	Pos     Pos
	// StagePos optionally gives the source position of each stage.
	StagePos []Pos
	inputPos Pos
	intoPos  Pos
	errs     []*ConfigError
}

// From names the input record.
func (p *PipelineSpec) From(record string, at ...Position) *PipelineSpec {
	p.Input = record
	p.inputPos = posOf(at)
	return p
}

// Via appends stages.
func (p *PipelineSpec) Via(stages ...Stage) *PipelineSpec {
	p.Stages = append(p.Stages, stages...)
	return p
}

// Add appends one stage, with where it was written when given (At).
func (p *PipelineSpec) Add(s Stage, at ...Position) *PipelineSpec {
	for len(p.StagePos) < len(p.Stages) {
		p.StagePos = append(p.StagePos, Pos{})
	}
	p.Stages = append(p.Stages, s)
	p.StagePos = append(p.StagePos, posOf(at))
	return p
}

// Into makes the pipeline the writer of record.
func (p *PipelineSpec) Into(record string, at ...Position) *PipelineSpec {
	p.IntoRecord = record
	p.intoPos = posOf(at)
	return p
}

// To adds an outbound publisher sink at the end of the pipeline.
func (p *PipelineSpec) To(link string, enc Encoder, opts ...OutOption) *PipelineSpec {
	l, err := newOutLink(link, enc, opts)
	if err != nil {
		p.errs = append(p.errs, err)
	}
	p.Outputs = append(p.Outputs, l)
	return p
}

// DeadLetterTo sets this pipeline's dead-letter destination (overriding the
// graph's).
func (p *PipelineSpec) DeadLetterTo(link string, enc Encoder, opts ...OutOption) *PipelineSpec {
	l, err := newOutLink(link, enc, opts)
	if err != nil {
		p.errs = append(p.errs, err)
	}
	p.DeadLetter = l
	return p
}

// Parallel runs the fused stages on n goroutines, preserving order.
func (p *PipelineSpec) Parallel(n int) *PipelineSpec { p.Workers = n; return p }

// At records the declaration's source position.
func (p *PipelineSpec) At(pos Pos) *PipelineSpec { p.Pos = pos; return p }

type connSpec struct {
	name string
	b    Builder
	pos  Pos
}

// Graph is a whole configuration: connectors, records and pipelines. Build
// it with the methods below (or from a .flow file with package dsl), then
// Validate and Run it. The DSL compiles to exactly the graph these methods
// build.
type Graph struct {
	conns      []*connSpec
	records    []*RecordSpec
	pipes      []*PipelineSpec
	deadLetter *OutLink
	errs       []*ConfigError
}

// New returns an empty graph.
func New() *Graph { return &Graph{} }

// Connector adds a connector under name (links "name://..." use it). An
// empty name means the builder's scheme.
func (g *Graph) Connector(name string, b Builder, at ...Position) *Graph {
	if name == "" && b != nil {
		name = b.Scheme()
	}
	c := &connSpec{name: name, b: b, pos: posOf(at)}
	g.conns = append(g.conns, c)
	return g
}

// Record declares a record (or returns the existing declaration).
func (g *Graph) Record(name string) *RecordSpec {
	for _, r := range g.records {
		if r.Name == name {
			return r
		}
	}
	r := &RecordSpec{Name: name, Buffer: buffer.Default}
	g.records = append(g.records, r)
	return r
}

// Pipeline declares a pipeline.
func (g *Graph) Pipeline(name string) *PipelineSpec {
	p := &PipelineSpec{Name: name}
	g.pipes = append(g.pipes, p)
	return p
}

// DeadLetterTo sets the default dead-letter destination for every pipeline
// and inbound link.
func (g *Graph) DeadLetterTo(link string, enc Encoder, opts ...OutOption) *Graph {
	l, err := newOutLink(link, enc, opts)
	if err != nil {
		g.errs = append(g.errs, err)
	}
	g.deadLetter = l
	return g
}

// Records returns the record declarations in declaration order.
func (g *Graph) Records() []*RecordSpec { return g.records }

// Pipelines returns the pipeline declarations in declaration order.
func (g *Graph) Pipelines() []*PipelineSpec { return g.pipes }

// ConnectorNames returns the connector names with their schemes.
func (g *Graph) ConnectorNames() map[string]string {
	m := make(map[string]string, len(g.conns))
	for _, c := range g.conns {
		if c.b != nil {
			m[c.name] = c.b.Scheme()
		}
	}
	return m
}

// DeadLetter returns the graph-wide dead-letter link, or nil.
func (g *Graph) DeadLetter() *OutLink { return g.deadLetter }

// CheckLinks asks every connector that implements LinkChecker whether its
// inbound links can work where the graph runs (a file source's file
// exists) and returns a *ValidationError listing each problem with its
// position, or nil. Call it after Validate; it looks outside the
// configuration, so tools that only read a graph (fmt, graph) skip it.
func (g *Graph) CheckLinks() error {
	var errs []*ConfigError
	conns := map[string]Builder{}
	for _, c := range g.conns {
		conns[c.name] = c.b
	}
	for _, r := range g.records {
		for _, l := range r.Inbound {
			lc, ok := conns[l.Link.Connector].(LinkChecker)
			if !ok {
				continue
			}
			if err := lc.CheckLink(Inbound, l.Link.Address, l.Options); err != nil {
				errs = append(errs, &ConfigError{Pos: l.Pos, Msg: fmt.Sprintf("record %s: %q: %v", r.Name, l.Raw, err)})
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &ValidationError{Errors: errs}
}

// Validate checks the whole graph and returns a *ValidationError listing
// every problem, or nil. It also parses link options through each
// connector's LinkOptionParser.
func (g *Graph) Validate() error {
	var errs []*ConfigError
	add := func(p Pos, format string, args ...any) {
		errs = append(errs, &ConfigError{Pos: p, Msg: fmt.Sprintf(format, args...)})
	}
	errs = append(errs, g.errs...)

	// checkOptions types a link's settings (ParseLinkOptions, for Params)
	// or checks typed Go options (ValidateLinkOptions): one validation path
	// for both front ends.
	checkOptions := func(c *connSpec, dir Direction, addr, raw string, at Pos, paramAt map[string]Pos, params Params, opts *any, parsed *bool, where string) {
		p, parses := c.b.(LinkOptionParser)
		switch {
		case *parsed:
			// typed by an earlier Validate of the same graph
		case *opts != nil:
			if len(params) > 0 {
				add(at, "%s: %q: both typed options and settings given; use one", where, raw)
			}
			if v, ok := c.b.(LinkOptionValidator); ok {
				for _, e := range SplitErrors(v.ValidateLinkOptions(dir, addr, *opts)) {
					add(at, "%s: %q: %v", where, raw, e)
				}
			}
		case parses:
			v, err := p.ParseLinkOptions(dir, addr, params)
			for _, e := range SplitErrors(err) {
				add(paramPos(at, paramAt, e), "%s: %q: %v", where, raw, e)
			}
			*opts, *parsed = v, err == nil
		case len(params) > 0:
			add(at, "%s: connector %q takes no link options", where, c.name)
		}
	}

	conns := map[string]*connSpec{}
	for _, c := range g.conns {
		switch {
		case c.b == nil:
			add(c.pos, "connector %q has no builder", c.name)
		case conns[c.name] != nil:
			add(c.pos, "connector %q declared twice%s", c.name, firstAt(conns[c.name].pos))
		default:
			conns[c.name] = c
		}
	}
	checkOut := func(l *OutLink, where string) {
		if l.Link.Connector == "" {
			return // parse error already reported
		}
		c := conns[l.Link.Connector]
		if c == nil {
			add(l.Pos, "%s: unknown connector %q in %q (declare it with connector %s \"...\")", where, l.Link.Connector, l.Raw, l.Link.Connector)
			return
		}
		caps := CapsOf(c.b)
		if msg := caps.directionError(Outbound, c.name, c.b.Scheme()); msg != "" {
			add(l.Pos, "%s: %q: %s", where, l.Raw, msg)
			return
		}
		if l.Encoder == nil {
			add(l.Pos, "%s: missing codec for %q (add encode json, msgpack or raw)", where, l.Raw)
		}
		if wc := staticWildcard(l); wc != "" {
			if caps.Topics {
				add(l.Pos, "%s: %q: cannot publish to a topic filter (wildcard %s in the destination)", where, l.Raw, wc)
			} else {
				add(l.Pos, "%s: %q: %s addresses are not topic filters (wildcard level %q)", where, l.Raw, c.b.Scheme(), wc)
			}
		}
		checkOptions(c, Outbound, l.Link.Address, l.Raw, l.Pos, l.ParamPos, l.Params, &l.Options, &l.parsed, where)
	}

	records := map[string]*RecordSpec{}
	writers := map[string]string{}
	for _, r := range g.records {
		errs = append(errs, r.errs...)
		if r.Name == "" {
			add(r.Pos, "record without a name")
			continue
		}
		if err := r.Buffer.Validate(); err != nil {
			add(r.Pos, "record %s: %v", r.Name, err)
		}
		records[r.Name] = r
		for _, l := range r.Inbound {
			if l.Link.Connector == "" {
				continue
			}
			c := conns[l.Link.Connector]
			if c == nil {
				add(l.Pos, "record %s: unknown connector %q in %q", r.Name, l.Link.Connector, l.Raw)
				continue
			}
			caps := CapsOf(c.b)
			if msg := caps.directionError(Inbound, c.name, c.b.Scheme()); msg != "" {
				add(l.Pos, "record %s: %q: %s", r.Name, l.Raw, msg)
				continue
			}
			if l.Decoder == nil {
				add(l.Pos, "record %s: missing codec for %q (add decode json, msgpack or raw)", r.Name, l.Raw)
			}
			checkOptions(c, Inbound, l.Link.Address, l.Raw, l.Pos, l.ParamPos, l.Params, &l.Options, &l.parsed, "record "+r.Name)
			if caps.Topics {
				f, _ := topic.Filter(l.Link.Address)
				if err := topic.Validate(f); err != nil {
					add(l.Pos, "record %s: %q: %v", r.Name, l.Raw, err)
				}
			} else if wc := wildcardLevel(l.Link.Address); wc != "" {
				add(l.Pos, "record %s: %q: %s addresses are not topic filters (wildcard level %q; only connectors that route by topic, such as mqtt, mem and serial, take wildcards)", r.Name, l.Raw, c.b.Scheme(), wc)
			}
		}
		if len(r.Inbound) > 0 {
			writers[r.Name] = "its inbound links"
			if r.Settable {
				add(r.Pos, "record %s: settable, but written by its inbound links; a settable record has no other writer", r.Name)
			}
		} else if r.Settable {
			writers[r.Name] = "it is settable: values are set from outside the graph"
		}
		for _, l := range r.Outbound {
			checkOut(l, "record "+r.Name)
		}
	}

	names := map[string]*PipelineSpec{}
	edges := map[string][]string{} // record -> records written by pipelines reading it
	via := map[[2]string]string{}  // (from, to) -> the pipeline on that edge
	for _, p := range g.pipes {
		errs = append(errs, p.errs...)
		where := "pipeline " + p.Name
		if p.Name == "" {
			add(p.Pos, "pipeline without a name")
		} else if first := names[p.Name]; first != nil {
			add(p.Pos, "pipeline %q declared twice%s", p.Name, firstAt(first.Pos))
		} else {
			names[p.Name] = p
		}
		inPos := p.inputPos
		if !inPos.IsValid() {
			inPos = p.Pos
		}
		switch {
		case p.Input == "":
			add(p.Pos, "%s: no input (add from RECORD)", where)
		case records[p.Input] == nil:
			add(inPos, "%s: unknown input record %q%s", where, p.Input, suggest(p.Input, records))
		}
		if p.IntoRecord == "" && len(p.Outputs) == 0 {
			add(p.Pos, "%s: no output (add to \"connector://destination\" or into RECORD)", where)
		}
		if p.IntoRecord != "" {
			ip := p.intoPos
			if !ip.IsValid() {
				ip = p.Pos
			}
			if records[p.IntoRecord] == nil {
				add(ip, "%s: unknown output record %q%s", where, p.IntoRecord, suggest(p.IntoRecord, records))
			} else if w, ok := writers[p.IntoRecord]; ok {
				add(ip, "%s: record %s already has a writer (%s); a record has exactly one writer", where, p.IntoRecord, w)
			} else {
				writers[p.IntoRecord] = where
			}
			if p.Input != "" {
				edges[p.Input] = append(edges[p.Input], p.IntoRecord)
				via[[2]string{p.Input, p.IntoRecord}] = p.Name
			}
		}
		for i, s := range p.Stages {
			if s == nil {
				pos := p.Pos
				if i < len(p.StagePos) && p.StagePos[i].IsValid() {
					pos = p.StagePos[i]
				}
				add(pos, "%s: stage %d is nil", where, i+1)
			}
		}
		for _, l := range p.Outputs {
			checkOut(l, where)
		}
		if p.DeadLetter != nil {
			checkOut(p.DeadLetter, where+" dead-letter")
		}
		if p.Workers < 0 {
			add(p.Pos, "%s: parallel must be positive", where)
		}
	}
	if g.deadLetter != nil {
		checkOut(g.deadLetter, "dead-letter")
	}
	if cyc := findCycle(edges); cyc != nil {
		pos := Pos{}
		if r := records[cyc[0]]; r != nil {
			pos = r.Pos
		}
		// Name the pipeline on each edge: r -> (pipeline p) -> s.
		parts := []string{cyc[0]}
		for i := 1; i < len(cyc); i++ {
			if name, ok := via[[2]string{cyc[i-1], cyc[i]}]; ok {
				parts = append(parts, "(pipeline "+name+")")
			}
			parts = append(parts, cyc[i])
		}
		add(pos, "cycle between records: %s", strings.Join(parts, " -> "))
	}
	if len(errs) == 0 {
		return nil
	}
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i].Pos, errs[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return &ValidationError{Errors: errs}
}

// firstAt names where something was first declared, when that is known.
func firstAt(p Pos) string {
	if !p.IsValid() {
		return ""
	}
	return " (first at " + p.String() + ")"
}

// staticWildcard is the wildcard level in an outbound link's static
// destination, or "" (a templated destination is checked per record).
func staticWildcard(l *OutLink) string {
	if l.Dest == nil || !l.Dest.Static() {
		return ""
	}
	return wildcardLevel(l.Dest.String())
}

func suggest(name string, records map[string]*RecordSpec) string {
	known := make([]string, 0, len(records))
	for n := range records {
		known = append(known, n)
	}
	return DidYouMean(name, known)
}

// paramPos is where to report err about a link: at the setting it names,
// when that setting's position is known, else at the link.
func paramPos(link Pos, at map[string]Pos, err error) Pos {
	if p, ok := at[SettingOf(err)]; ok && p.IsValid() {
		return p
	}
	return link
}

// DidYouMean returns ` (did you mean "x"?)` for the known name closest to
// s (edit distance at most 2, ties broken alphabetically), or "" when none
// is close. Error messages of the graph and the DSL use it.
func DidYouMean(s string, known []string) string {
	cands := append([]string(nil), known...)
	sort.Strings(cands)
	best, bestD := "", 3
	for _, k := range cands {
		if d := editDistance(s, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev = cur
	}
	return prev[len(b)]
}

func findCycle(edges map[string][]string) []string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var found []string
	var visit func(n string) bool
	visit = func(n string) bool {
		color[n] = grey
		stack = append(stack, n)
		for _, m := range edges[n] {
			switch color[m] {
			case grey:
				for i, s := range stack {
					if s == m {
						found = append(append([]string{}, stack[i:]...), m)
					}
				}
				return true
			case white:
				if visit(m) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return false
	}
	keys := make([]string, 0, len(edges))
	for k := range edges {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if color[k] == white && visit(k) {
			return found
		}
	}
	return nil
}

package dsl

import (
	"fmt"
	"sort"
	"strings"

	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// checkUse reports what the graph's own validation cannot know about a
// stand-alone file: a record that pipelines read but nothing writes (run
// would wait on it forever; with Options.Embedded it is a warning, since Go
// code may write it through Runner.Writer) and a connector no link uses (a
// warning: it would connect, and retry, for nothing).
//
// It runs only on a file without other problems: a statement that failed
// (an unterminated string in a from) would otherwise show up again as a
// record with no writer or a connector nobody uses.
func (c *compiler) checkUse() {
	if c.errs.Len() > 0 {
		return
	}
	used := map[string]bool{}
	useLink := func(l pipeline.Link) { used[l.Connector] = true }
	written := map[string]bool{}
	read := map[string][]string{} // record -> what reads it
	for _, r := range c.g.Records() {
		for _, l := range r.Inbound {
			useLink(l.Link)
		}
		if len(r.Inbound) > 0 || r.Settable {
			written[r.Name] = true
		}
		for _, l := range r.Outbound {
			useLink(l.Link)
			read[r.Name] = append(read[r.Name], "its link to "+l.Raw)
		}
	}
	for _, p := range c.g.Pipelines() {
		for _, l := range p.Outputs {
			useLink(l.Link)
		}
		if p.DeadLetter != nil {
			useLink(p.DeadLetter.Link)
		}
		if p.IntoRecord != "" {
			written[p.IntoRecord] = true
		}
		if p.Input != "" {
			read[p.Input] = append(read[p.Input], "pipeline "+p.Name)
		}
	}
	if dl := c.g.DeadLetter(); dl != nil {
		useLink(dl.Link)
	}
	for _, r := range c.g.Records() {
		readers := read[r.Name]
		if written[r.Name] || len(readers) == 0 {
			continue
		}
		msg := fmt.Sprintf("record %s has no writer: %s would wait for it forever (add from \"connector://address\" to the record, or into %s to a pipeline)", r.Name, joinAnd(readers), r.Name)
		if c.opts.Embedded {
			c.warnf(r.Pos, "%s; fine if Go code writes it with Runner.Writer", msg)
			continue
		}
		c.errorf(r.Pos, "%s", msg)
	}
	names := make([]string, 0, len(c.conns))
	for n := range c.conns {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !used[n] {
			c.warnf(c.conns[n], "connector %s is declared but no link uses it (it would connect for nothing)", n)
		}
	}
}

// warnf logs a problem that does not stop the load, with its position.
func (c *compiler) warnf(p pipeline.Pos, format string, args ...any) {
	c.opts.Logger.Warn(fmt.Sprintf("%s: %s", p, fmt.Sprintf(format, args...)))
}

func joinAnd(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	out := xs[0]
	for _, x := range xs[1 : len(xs)-1] {
		out += ", " + x
	}
	return out + " and " + xs[len(xs)-1]
}

// dropFollowOns removes graph-validation problems that follow from a
// compile problem: "no output" of a pipeline that does write an output
// statement, which failed (a `to` with an unset ${OUT}, or a `to` indented
// so that it continued the statement above).
func dropFollowOns(compiled []*Error, files []*File, found []*pipeline.ConfigError) []*pipeline.ConfigError {
	if len(compiled) == 0 {
		return found
	}
	out := found[:0:0]
	for _, ce := range found {
		if strings.HasSuffix(ce.Msg, noOutputSuffix) && writesOutput(files, ce.Pos) {
			continue
		}
		out = append(out, ce)
	}
	return out
}

const noOutputSuffix = `: no output (add to "connector://destination" or into RECORD)`

// writesOutput reports whether the declaration at p has a to or into
// line: a statement, or a line that continued the statement above it.
func writesOutput(files []*File, p pipeline.Pos) bool {
	isOut := func(t Token) bool { return t.Kind == Ident && (t.Text == "to" || t.Text == "into") }
	for _, f := range files {
		for _, d := range f.Decls {
			if d.Kw.Pos != p || d.Block == nil {
				continue
			}
			for _, st := range d.Block.Stmts {
				if isOut(st.Kw) {
					return true
				}
				for _, a := range st.Args {
					if a.NL && isOut(a) {
						return true
					}
				}
			}
		}
	}
	return false
}

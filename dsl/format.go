package dsl

import (
	"bytes"
	"strings"
)

// Format prints f in canonical form: one statement per line, two-space
// indentation inside blocks, single spaces between tokens, continuation
// lines indented four spaces deeper than their statement, a blank line
// around record and pipeline blocks, and at most one blank line anywhere.
// Comments are kept where they were. Format is idempotent: formatting its
// output again changes nothing.
func Format(f *File) []byte {
	var w fmtWriter
	for i, d := range f.Decls {
		blank := d.Kw.Blank
		if i > 0 && (d.Block != nil || f.Decls[i-1].Block != nil) {
			blank = true
		}
		if i == 0 {
			blank = false
		}
		w.stmt(d, 0, blank)
	}
	w.lead(trimBlank(f.EOF.Lead), 0, len(f.Decls) > 0 && len(f.EOF.Lead) > 0 && (f.EOF.Blank || f.Decls[len(f.Decls)-1].Block != nil))
	out := w.buf.Bytes()
	out = bytes.TrimLeft(out, "\n")
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return out
}

type fmtWriter struct {
	buf bytes.Buffer
}

func (w *fmtWriter) indent(n int) { w.buf.WriteString(strings.Repeat(" ", n)) }

// lead prints a token's leading comments (an empty entry is a blank line).
func (w *fmtWriter) lead(lead []string, ind int, blank bool) {
	if blank {
		w.buf.WriteByte('\n')
	}
	for _, c := range lead {
		if c == "" {
			w.buf.WriteByte('\n')
			continue
		}
		w.indent(ind)
		w.buf.WriteString(c)
		w.buf.WriteByte('\n')
	}
}

func (w *fmtWriter) stmt(s *Stmt, ind int, blank bool) {
	w.lead(s.Kw.Lead, ind, blank)
	w.indent(ind)
	w.buf.WriteString(s.Kw.Text)
	prevTrail := s.Kw.Trail
	for _, a := range s.Args {
		if a.NL || prevTrail != "" || len(a.Lead) > 0 {
			w.trail(prevTrail)
			w.buf.WriteByte('\n')
			w.lead(a.Lead, ind+4, false)
			w.indent(ind + 4)
		} else {
			w.buf.WriteByte(' ')
		}
		w.buf.WriteString(a.Text)
		prevTrail = a.Trail
	}
	if s.Block == nil {
		w.trail(prevTrail)
		w.buf.WriteByte('\n')
		return
	}
	if prevTrail != "" {
		// A comment between the header and '{' moves after the brace.
		w.buf.WriteString(" {")
		w.trail(prevTrail)
		if s.Block.Open.Trail != "" {
			w.buf.WriteString("\n")
			w.indent(ind + 2)
			w.buf.WriteString(s.Block.Open.Trail)
		}
	} else {
		w.buf.WriteString(" {")
		w.trail(s.Block.Open.Trail)
	}
	w.buf.WriteByte('\n')
	w.lead(trimBlank(s.Block.Open.Lead), ind+2, false)
	for i, st := range s.Block.Stmts {
		w.stmt(st, ind+2, st.Kw.Blank && i > 0)
	}
	closeLead := trimBlank(s.Block.Close.Lead)
	w.lead(closeLead, ind+2, s.Block.Close.Blank && len(s.Block.Stmts) > 0 && len(closeLead) > 0)
	w.indent(ind)
	w.buf.WriteByte('}')
	w.trail(s.Block.Close.Trail)
	w.buf.WriteByte('\n')
}

func (w *fmtWriter) trail(c string) {
	if c != "" {
		w.buf.WriteString(" ")
		w.buf.WriteString(c)
	}
}

// trimBlank drops blank-line markers at the end of a comment list (blank
// lines before a closing brace or the end of the file are not kept).
func trimBlank(lead []string) []string {
	for len(lead) > 0 && lead[len(lead)-1] == "" {
		lead = lead[:len(lead)-1]
	}
	return lead
}

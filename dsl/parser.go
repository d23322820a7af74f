package dsl

import (
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// File is a parsed .flow file: a list of top-level statements. The syntax
// tree keeps every token with its comments, so Format reproduces the file.
type File struct {
	Name  string
	Src   []byte
	Decls []*Stmt
	// EOF carries the comments at the end of the file.
	EOF Token
}

// Stmt is one statement: a keyword, its arguments (which may continue on
// more deeply indented lines) and, for record and pipeline, a block.
type Stmt struct {
	Kw    Token
	Args  []Token
	Block *Block
}

// Pos returns the statement's position (its keyword's).
func (s *Stmt) Pos() pipeline.Pos { return s.Kw.Pos }

// Block is a brace-delimited list of statements.
type Block struct {
	Open  Token
	Stmts []*Stmt
	// Close carries the comments before the closing brace.
	Close Token
}

// Parse parses one file. It always returns a File (possibly partial) and
// records every syntax problem in errs.
func Parse(name string, src []byte, errs *ErrorList) *File {
	errs.addSource(name, src)
	toks := Lex(name, src, errs)
	p := &parser{toks: toks, errs: errs}
	f := &File{Name: name, Src: src}
	for p.peek().Kind != EOF {
		if s := p.stmt(true); s != nil {
			f.Decls = append(f.Decls, s)
		}
	}
	f.EOF = p.peek()
	return f
}

type parser struct {
	toks []Token
	i    int
	errs *ErrorList
}

func (p *parser) peek() Token { return p.toks[p.i] }

func (p *parser) take() Token {
	t := p.toks[p.i]
	if t.Kind != EOF {
		p.i++
	}
	return t
}

// stmt parses one statement. A statement starts with a name (its keyword)
// and takes the tokens that follow on its line, or on following lines
// indented deeper than the keyword, up to a '{' (which opens the block,
// top level only) or '}'.
func (p *parser) stmt(top bool) *Stmt {
	kw := p.take()
	switch kw.Kind {
	case Ident:
	case RBrace:
		if top {
			p.errs.Add(kw.Pos, "unexpected '}' (no block is open)")
		}
		return nil
	case LBrace:
		p.errs.Add(kw.Pos, "unexpected '{' (a block follows record NAME or pipeline NAME)")
		p.skipBlock()
		return nil
	case Illegal:
		return nil // reported by the lexer
	default:
		p.errs.Add(kw.Pos, "unexpected %s %s: a statement starts with a keyword", kw.Kind, kw.Text)
		p.skipLine(kw)
		return nil
	}
	s := &Stmt{Kw: kw}
	for {
		t := p.peek()
		switch {
		case t.Kind == EOF || t.Kind == RBrace:
			return s
		case t.Kind == LBrace:
			open := p.take()
			if !top {
				p.errs.Add(open.Pos, "unexpected '{': blocks do not nest (only record and pipeline have a block)")
				p.skipBlock()
				return s
			}
			s.Block = p.block(open)
			return s
		case t.NL && t.Pos.Col <= kw.Pos.Col:
			return s // the next statement
		default:
			s.Args = append(s.Args, p.take())
		}
	}
}

func (p *parser) block(open Token) *Block {
	b := &Block{Open: open}
	for {
		t := p.peek()
		switch t.Kind {
		case EOF:
			p.errs.Add(open.Pos, "unclosed '{' (missing '}')")
			b.Close = Token{Kind: RBrace, Text: "}", Pos: t.Pos, Lead: t.Lead}
			p.toks[p.i].Lead = nil
			return b
		case RBrace:
			b.Close = p.take()
			return b
		}
		if s := p.stmt(false); s != nil {
			b.Stmts = append(b.Stmts, s)
		}
	}
}

// skipLine skips the rest of a malformed statement.
func (p *parser) skipLine(start Token) {
	for {
		t := p.peek()
		if t.Kind == EOF || t.Kind == RBrace || t.Kind == LBrace || t.NL && t.Pos.Col <= start.Pos.Col {
			return
		}
		p.take()
	}
}

func (p *parser) skipBlock() {
	depth := 1
	for depth > 0 {
		t := p.take()
		switch t.Kind {
		case EOF:
			return
		case LBrace:
			depth++
		case RBrace:
			depth--
		}
	}
}

package dsl

import (
	"strings"
	"unicode/utf8"

	"github.com/aimdb-dev/aimdb-flow/connectors/kit"
	"github.com/aimdb-dev/aimdb-flow/pipeline"
)

// Kind is a token kind.
type Kind uint8

// Token kinds.
const (
	EOF      Kind = iota
	Ident         // connector, sensor.temp, json, client_id
	String        // "mqtt://sensors/+/temp" (escapes \" \\ \n \t, ${ENV} interpolated)
	Expr          // `temp > 25` (raw, may span lines)
	Number        // 1024, 0.5, -3
	Duration      // 100ms, 5s, 1m30s, 7d
	Size          // 4MiB, 512KiB, 1MB
	Var           // ${ENV} or ${ENV:-default} written bare
	LBrace        // {
	RBrace        // }
	Illegal       // anything else (reported by the lexer)
)

var kindNames = [...]string{EOF: "end of file", Ident: "name", String: "string", Expr: "expression",
	Number: "number", Duration: "duration", Size: "size", Var: "${VAR}", LBrace: "'{'", RBrace: "'}'", Illegal: "illegal character"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "token"
}

// Token is a lexical token with the comments and layout around it, so that
// the formatter can reproduce a file from its tokens.
type Token struct {
	Kind Kind
	// Text is the token exactly as written (quotes and backticks included).
	Text string
	Pos  pipeline.Pos
	// Offset is the byte offset of the token in the file.
	Offset int
	// NL is true when the token is the first on its line.
	NL bool
	// Blank is true when at least one blank line precedes the token (or its
	// leading comments).
	Blank bool
	// Lead holds the full-line comments just before the token ("# ...").
	Lead []string
	// Trail is the comment following the token on its line, or "".
	Trail string
}

// lexer turns source text into tokens. It never fails: problems are
// collected as errors and lexing continues.
type lexer struct {
	file string
	src  string
	off  int
	line int
	col  int // 1-based, in runes
	errs *ErrorList

	// pending layout for the next token
	nl    bool
	blank bool
	lead  []string
	toks  []Token
}

// Lex splits src into tokens. The last token is EOF; its Lead holds the
// comments at the end of the file.
func Lex(file string, src []byte, errs *ErrorList) []Token {
	lx := &lexer{file: file, src: string(src), line: 1, col: 1, nl: true, errs: errs}
	lx.run()
	return lx.toks
}

func (lx *lexer) pos() pipeline.Pos { return pipeline.Pos{File: lx.file, Line: lx.line, Col: lx.col} }

func (lx *lexer) peek() rune {
	if lx.off >= len(lx.src) {
		return -1
	}
	r, _ := utf8.DecodeRuneInString(lx.src[lx.off:])
	return r
}

func (lx *lexer) next() rune {
	if lx.off >= len(lx.src) {
		return -1
	}
	r, n := utf8.DecodeRuneInString(lx.src[lx.off:])
	lx.off += n
	if r == '\n' {
		lx.line++
		lx.col = 1
	} else {
		lx.col++
	}
	return r
}

func (lx *lexer) emit(t Token) {
	t.NL, t.Blank, t.Lead = lx.nl, lx.blank, lx.lead
	lx.nl, lx.blank, lx.lead = false, false, nil
	lx.toks = append(lx.toks, t)
}

func isIdentStart(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_'
}

func isIdentPart(r rune) bool {
	return isIdentStart(r) || r >= '0' && r <= '9' || r == '.' || r == '-'
}

func isDigit(r rune) bool { return r >= '0' && r <= '9' }

func (lx *lexer) run() {
	lineEmpty := true // nothing but whitespace so far on this line
	for {
		r := lx.peek()
		switch {
		case r == -1:
			lx.emit(Token{Kind: EOF, Pos: lx.pos(), Offset: lx.off})
			return
		case r == '\n':
			lx.next()
			if lineEmpty && (len(lx.toks) > 0 || len(lx.lead) > 0) {
				switch {
				case len(lx.lead) == 0:
					lx.blank = true
				case lx.lead[len(lx.lead)-1] != "":
					lx.lead = append(lx.lead, "") // a blank line after comments
				}
			}
			lineEmpty = true
			lx.nl = true
			continue
		case r == ' ' || r == '\t' || r == '\r':
			lx.next()
			continue
		case r == '#':
			start := lx.off
			for lx.peek() != '\n' && lx.peek() != -1 {
				lx.next()
			}
			text := strings.TrimRight(lx.src[start:lx.off], " \t\r")
			if lineEmpty {
				lx.lead = append(lx.lead, text)
			} else if n := len(lx.toks); n > 0 {
				lx.toks[n-1].Trail = text
			}
			lineEmpty = false
			continue
		}
		lineEmpty = false
		pos, start := lx.pos(), lx.off
		tok := Token{Pos: pos, Offset: start}
		switch {
		case r == '{':
			lx.next()
			tok.Kind = LBrace
		case r == '}':
			lx.next()
			tok.Kind = RBrace
		case r == '"':
			tok.Kind = String
			lx.next()
			closed := false
			for {
				c := lx.peek()
				if c == -1 || c == '\n' {
					break
				}
				lx.next()
				if c == '\\' {
					if e := lx.peek(); e != -1 && e != '\n' {
						lx.next()
					}
					continue
				}
				if c == '"' {
					closed = true
					break
				}
			}
			if !closed {
				lx.errs.Add(pos, "unterminated string (a string ends on its line with \")")
			}
		case r == '`':
			tok.Kind = Expr
			saveOff, saveLine, saveCol := lx.off, lx.line, lx.col
			lx.next()
			closed := false
			for c := lx.peek(); c != -1; c = lx.peek() {
				lx.next()
				if c == '`' {
					closed = true
					break
				}
			}
			if !closed {
				lx.errs.Add(pos, "unterminated expression (missing closing `)")
				// Resume after the line the expression started on, so
				// the rest of the file is still checked.
				lx.off, lx.line, lx.col = saveOff, saveLine, saveCol
				for c := lx.peek(); c != -1 && c != '\n'; c = lx.peek() {
					lx.next()
				}
				tok.Kind = Illegal
			}
		case r == '$' && strings.HasPrefix(lx.src[lx.off:], "${"):
			tok.Kind = Var
			for c := lx.peek(); c != -1 && c != '\n'; c = lx.peek() {
				lx.next()
				if c == '}' {
					break
				}
			}
			if !strings.HasSuffix(lx.src[start:lx.off], "}") {
				lx.errs.Add(pos, "unterminated ${...}")
			}
		case isDigit(r) || (r == '-' || r == '+') && lx.off+1 < len(lx.src) && isDigit(rune(lx.src[lx.off+1])):
			lx.next()
			for c := lx.peek(); isDigit(c) || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == 'µ'; c = lx.peek() {
				lx.next()
			}
			tok.Kind = numberKind(lx.src[start:lx.off])
			if tok.Kind == Illegal {
				lx.errs.Add(pos, "malformed number, duration or size %q (durations look like 500ms, 5s, 1m30s, 7d; sizes like 4MiB, 512KiB, 1MB)", lx.src[start:lx.off])
			}
		case isIdentStart(r):
			for c := lx.peek(); isIdentPart(c); c = lx.peek() {
				lx.next()
			}
			tok.Kind = Ident
		default:
			lx.next()
			tok.Kind = Illegal
			lx.errs.Add(pos, "unexpected character %q", r)
		}
		tok.Text = lx.src[start:lx.off]
		lx.emit(tok)
	}
}

// numberKind classifies "12", "0.5", "100ms", "1m30s", "4MiB" with the
// grammar of connectors/kit (the same one every setting is read with).
func numberKind(s string) Kind {
	body := strings.TrimLeft(s, "+-")
	i := 0
	for i < len(body) && (isDigit(rune(body[i])) || body[i] == '.') {
		i++
	}
	if i == len(body) {
		if strings.Count(body, ".") > 1 || strings.HasSuffix(body, ".") {
			return Illegal
		}
		return Number
	}
	if _, err := kit.ParseDuration(s); err == nil {
		return Duration
	}
	if _, err := kit.ParseSize(body); err == nil && body == s {
		return Size
	}
	return Illegal
}

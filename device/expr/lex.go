package expr

import (
	"strconv"
	"unicode/utf8"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tNum
	tStr
	tIdent
	tOp
	tPunct // ( ) [ ] { } , :
)

type token struct {
	kind tokKind
	text string // identifier, operator or punctuation text; raw number text
	str  string // unescaped string literal
	pos  int
}

// Error is a compile error: Offset is the byte offset in the source where
// the problem was found.
type Error struct {
	Offset int
	Msg    string
}

func (e *Error) Error() string { return "offset " + strconv.Itoa(e.Offset) + ": " + e.Msg }

func errAt(pos int, msg string) *Error { return &Error{Offset: pos, Msg: msg} }

func isIdentStart(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// lex splits src into tokens.
func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case isDigit(c) || c == '.' && i+1 < len(src) && isDigit(src[i+1]):
			j := i
			if c == '0' && i+1 < len(src) && (src[i+1] == 'x' || src[i+1] == 'X') {
				j += 2
				for j < len(src) && (isDigit(src[j]) || src[j] >= 'a' && src[j] <= 'f' || src[j] >= 'A' && src[j] <= 'F' || src[j] == '_') {
					j++
				}
			} else {
				for j < len(src) && (isDigit(src[j]) || src[j] == '_') {
					j++
				}
				// A fraction, but not the range operator "..".
				if j < len(src) && src[j] == '.' && !(j+1 < len(src) && src[j+1] == '.') {
					j++
					for j < len(src) && (isDigit(src[j]) || src[j] == '_') {
						j++
					}
				}
				if j < len(src) && (src[j] == 'e' || src[j] == 'E') {
					k := j + 1
					if k < len(src) && (src[k] == '+' || src[k] == '-') {
						k++
					}
					if k < len(src) && isDigit(src[k]) {
						j = k
						for j < len(src) && isDigit(src[j]) {
							j++
						}
					}
				}
			}
			toks = append(toks, token{kind: tNum, text: src[i:j], pos: i})
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(src) && (isIdentStart(src[j]) || isDigit(src[j])) {
				j++
			}
			w := src[i:j]
			k := tIdent
			switch w {
			case "and", "or", "not", "in", "contains", "startsWith", "endsWith", "matches", "let", "if":
				k = tOp
			}
			toks = append(toks, token{kind: k, text: w, pos: i})
			i = j
		case c == '"' || c == '\'':
			s, n, err := unquote(src[i:], c)
			if err != nil {
				return nil, errAt(i, err.Error())
			}
			toks = append(toks, token{kind: tStr, str: s, pos: i})
			i += n
		case c == '`':
			j := i + 1
			for j < len(src) && src[j] != '`' {
				j++
			}
			if j == len(src) {
				return nil, errAt(i, "unterminated raw string")
			}
			toks = append(toks, token{kind: tStr, str: src[i+1 : j], pos: i})
			i = j + 1
		default:
			op := ""
			for _, o := range [...]string{"**", "==", "!=", "<=", ">=", "&&", "||", "??", "?.", "..", "::"} {
				if len(src)-i >= 2 && src[i:i+2] == o {
					op = o
					break
				}
			}
			if op == "" {
				switch c {
				case '+', '-', '*', '/', '%', '^', '<', '>', '!', '?', '|', '#', '.', '=', ';':
					op = src[i : i+1]
				case '(', ')', '[', ']', '{', '}', ',', ':':
					toks = append(toks, token{kind: tPunct, text: src[i : i+1], pos: i})
					i++
					continue
				default:
					r, _ := utf8.DecodeRuneInString(src[i:])
					return nil, errAt(i, "unexpected character "+strconv.QuoteRune(r))
				}
			}
			toks = append(toks, token{kind: tOp, text: op, pos: i})
			i += len(op)
		}
	}
	toks = append(toks, token{kind: tEOF, pos: len(src)})
	return toks, nil
}

type strError string

func (e strError) Error() string { return string(e) }

// unquote reads a quoted string starting at s[0] == q and returns its value
// and the number of source bytes consumed.
func unquote(s string, q byte) (string, int, error) {
	var b []byte
	i := 1
	for i < len(s) {
		c := s[i]
		switch {
		case c == q:
			return string(b), i + 1, nil
		case c == '\\':
			if i+1 >= len(s) {
				return "", 0, strError("unterminated string")
			}
			e := s[i+1]
			i += 2
			switch e {
			case 'n':
				b = append(b, '\n')
			case 't':
				b = append(b, '\t')
			case 'r':
				b = append(b, '\r')
			case 'a':
				b = append(b, '\a')
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'v':
				b = append(b, '\v')
			case '\\', '"', '\'':
				b = append(b, e)
			case 'x', 'u', 'U':
				n := 2
				switch e {
				case 'u':
					n = 4
				case 'U':
					n = 8
				}
				if i+n > len(s) {
					return "", 0, strError("short escape")
				}
				v, ok := parseInt(s[i:i+n], 16)
				if !ok || s[i] == '+' || s[i] == '-' || v > 0x10FFFF {
					return "", 0, strError("invalid escape")
				}
				if e == 'x' {
					b = append(b, byte(v))
				} else {
					b = utf8.AppendRune(b, rune(v))
				}
				i += n
			default:
				return "", 0, strError("unknown escape \\" + string(e))
			}
		default:
			b = append(b, c)
			i++
		}
	}
	return "", 0, strError("unterminated string")
}

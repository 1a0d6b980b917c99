package lang

import (
	"fmt"
	"strconv"
	"strings"
)

// parser reads the block structure of a pipe script. Expressions are not
// parsed here: their extent is found (to the end of the line, or further
// while a bracket is open or a line ends or starts with an operator) and expr
// parses them at compile time.
type parser struct {
	src   string
	pos   int
	diags []*rawDiag
}

// rawDiag is a diagnostic at a byte offset, before positions are computed.
type rawDiag struct {
	off  int
	n    int // runes to underline
	msg  string
	hint string
}

// errBail stops parsing after a structural error.
type errBail struct{}

func (p *parser) errorf(off int, format string, args ...any) {
	p.diags = append(p.diags, &rawDiag{off: off, msg: fmt.Sprintf(format, args...)})
}

func (p *parser) fail(off int, format string, args ...any) {
	p.errorf(off, format, args...)
	panic(errBail{})
}

// parse reads a whole script. On a structural error it returns what it read
// so far and the diagnostics.
func parse(src string) (f *script, diags []*rawDiag) {
	p := &parser{src: src}
	f = &script{}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(errBail); !ok {
				panic(r)
			}
		}
		diags = p.diags
	}()
	for {
		p.skipBlank()
		if p.eof() {
			return f, p.diags
		}
		off := p.pos
		kw := p.ident()
		switch kw {
		case "pipe":
			if f.nameOff != 0 || f.name != "" {
				p.errorf(off, "pipe is named twice")
			}
			p.skipSpace()
			f.nameOff = p.pos
			f.name = p.quoted("the pipe's name")
			p.endOfLine()
		case "source", "endpoint", "class":
			b := &block{kind: kw, off: off}
			p.skipSpace()
			b.labelOff = p.pos
			b.label = p.ident()
			if b.label == "" {
				what := map[string]string{"source": "a source kind (ldif, changelog, syncrepl or dirsync)", "endpoint": "an endpoint name", "class": "a class name"}[kw]
				p.fail(p.pos, "expected %s after %s", what, kw)
			}
			p.body(b)
			f.blocks = append(f.blocks, b)
		case "scim":
			b := &block{kind: kw, off: off}
			p.body(b)
			f.blocks = append(f.blocks, b)
		case "":
			p.fail(off, "unexpected %s, expected pipe, source, scim, endpoint or class", p.describe())
		default:
			d := &rawDiag{off: off, n: len(kw), msg: fmt.Sprintf("unknown block %s, expected pipe, source, scim, endpoint or class", kw)}
			if s := suggest(kw, []string{"pipe", "source", "scim", "endpoint", "class"}); s != "" {
				d.msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
			p.diags = append(p.diags, d)
			panic(errBail{})
		}
	}
}

// body reads `{ … }` with settings, a map block where allowed, and `}`.
func (p *parser) body(b *block) {
	p.skipSpace()
	if !p.consume("{") {
		p.fail(p.pos, "expected { to open the %s block, found %s", b.kind, p.describe())
	}
	for {
		p.skipBlank()
		if p.eof() {
			p.fail(b.off, "%s block is not closed: expected }", b.kind)
		}
		if p.consume("}") {
			return
		}
		if b.kind == "map" {
			b.mappings = append(b.mappings, p.mapping())
			continue
		}
		off := p.pos
		key := p.ident()
		if key == "" {
			p.fail(off, "expected a setting name or }, found %s", p.describe())
		}
		p.skipSpace()
		if key == "map" && p.peek() == '{' {
			m := &block{kind: "map", off: off}
			p.body(m)
			b.blocks = append(b.blocks, m)
			continue
		}
		if !p.consumeAssign() {
			p.fail(p.pos, "expected = after %s, found %s", key, p.describe())
		}
		b.settings = append(b.settings, &setting{key: key, keyOff: off, expr: p.expr()})
	}
}

// mapping reads `@usage… target = expression`.
func (p *parser) mapping() *mapping {
	m := &mapping{}
	for p.peek() == '@' {
		p.pos++
		off := p.pos
		name := p.ident()
		if name == "" {
			p.fail(off, "expected a usage name after @ (create, update, resync or realtime)")
		}
		m.usage = append(m.usage, word{name, off - 1})
		p.skipSpace()
	}
	if p.peek() == '"' {
		m.targetOff = p.pos + 1
		m.target = p.quoted("the target")
	} else {
		start := p.pos
		depth, inStr := 0, byte(0)
	scan:
		for !p.eof() {
			c := p.src[p.pos]
			switch {
			case inStr != 0:
				if c == '\\' && p.pos+1 < len(p.src) {
					p.pos++ // the escaped byte; a \\ at the very end is just itself
				} else if c == inStr {
					inStr = 0
				} else if c == '\n' {
					break scan
				}
			case c == '"' || c == '\'':
				inStr = c
			case c == '[':
				depth++
			case c == ']':
				depth--
			case c == '\n' || c == '#' || c == '}':
				break scan
			case c == '=' && depth <= 0:
				break scan
			}
			p.pos++
		}
		m.targetOff = start
		m.target = strings.TrimRight(p.src[start:p.pos], " \t\r")
		if m.target == "" {
			p.fail(start, "expected a SCIM attribute path, found %s", p.describe())
		}
	}
	p.skipSpace()
	if !p.consumeAssign() {
		p.fail(p.pos, "expected = after the target %s, found %s", m.target, p.describe())
	}
	m.expr = p.expr()
	return m
}

// expr reads an expression's extent: to the end of the line, or on while a
// bracket is open or the line ends (or the next starts) with an operator. A #
// outside brackets starts a comment; // starts one anywhere outside strings.
func (p *parser) expr() exprText {
	p.skipSpace()
	start := p.pos
	buf := []byte(nil) // copy with comments blanked, made on the first comment
	blank := func(from, to int) {
		if buf == nil {
			buf = []byte(p.src[start:])
		}
		for i := from; i < to; i++ {
			if buf[i-start] != '\n' {
				buf[i-start] = ' '
			}
		}
	}
	depth := 0
	var opens []int
	end := -1
	for end < 0 {
		if p.eof() {
			end = p.pos
			break
		}
		c := p.src[p.pos]
		switch {
		case c == '"' || c == '\'' || c == '`':
			p.skipString(c)
			continue
		case c == '(' || c == '[' || c == '{':
			depth++
			opens = append(opens, p.pos)
		case c == ')' || c == ']' || c == '}':
			if depth == 0 {
				end = p.pos // closes the enclosing block
				continue
			}
			o := opens[len(opens)-1]
			if want := map[byte]byte{'(': ')', '[': ']', '{': '}'}[p.src[o]]; c != want {
				p.fail(o, "%c is not closed (found %c at line %d)", p.src[o], c, strings.Count(p.src[:p.pos], "\n")+1)
			}
			depth--
			opens = opens[:len(opens)-1]
		case c == '/' && p.at("//"):
			i := p.pos
			for !p.eof() && p.src[p.pos] != '\n' {
				p.pos++
			}
			blank(i, p.pos)
			continue
		case c == '/' && p.at("/*"):
			i := p.pos
			j := strings.Index(p.src[p.pos+2:], "*/")
			if j < 0 {
				p.fail(i, "comment is not closed: expected */")
			}
			p.pos += 2 + j + 2
			blank(i, p.pos)
			continue
		case c == '#' && depth == 0:
			i := p.pos
			for !p.eof() && p.src[p.pos] != '\n' {
				p.pos++
			}
			blank(i, p.pos)
			continue
		case c == '\n' && depth == 0:
			if p.continues(start, buf) {
				break
			}
			end = p.pos
			continue
		}
		p.pos++
	}
	if depth > 0 {
		o := opens[len(opens)-1]
		p.fail(o, "%c is not closed", p.src[o])
	}
	text := p.src[start:end]
	if buf != nil {
		text = string(buf[:end-start])
	}
	text = strings.TrimRight(text, " \t\r\n")
	if strings.TrimSpace(text) == "" {
		p.fail(start, "expected an expression after =")
	}
	return exprText{text: text, off: start}
}

// continuation operators: an expression goes on to the next line when its
// line ends with one, or the next line starts with one.
var trailingOps = []string{"&&", "||", "??", "+", "-", "*", "/", "%", "?", ":", ",", "==", "!=", "<", ">", "<=", ">=", " and", " or", " in", " not", "!"}
var leadingOps = []string{"&&", "||", "??", "?", ":", "+", ".", "and ", "or ", "in ", "not in "}

// continues reports whether the expression that started at start and has
// reached a newline at p.pos goes on.
func (p *parser) continues(start int, buf []byte) bool {
	line := p.src[start:p.pos]
	if buf != nil {
		line = string(buf[:p.pos-start])
	}
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	line = strings.TrimRight(line, " \t\r")
	for _, op := range trailingOps {
		if strings.HasSuffix(line, op) {
			return true
		}
	}
	rest := p.src[p.pos+1:]
	if i := strings.IndexByte(rest, '\n'); i >= 0 {
		rest = rest[:i]
	}
	rest = strings.TrimLeft(rest, " \t")
	for _, op := range leadingOps {
		if strings.HasPrefix(rest, op) && !strings.HasPrefix(rest, "//") {
			return true
		}
	}
	return false
}

// skipString moves past a string literal that starts at p.pos.
func (p *parser) skipString(q byte) {
	i := p.pos
	p.pos++
	for !p.eof() {
		c := p.src[p.pos]
		if c == '\\' && q != '`' {
			p.pos = min(p.pos+2, len(p.src))
			continue
		}
		if c == '\n' && q != '`' {
			p.fail(i, "string is not closed before the end of the line")
		}
		p.pos++
		if c == q {
			return
		}
	}
	p.fail(i, "string is not closed")
}

// quoted reads a double-quoted string with Go/JSON escapes.
func (p *parser) quoted(what string) string {
	start := p.pos
	if p.peek() != '"' {
		p.fail(p.pos, "expected %s as a quoted string, found %s", what, p.describe())
	}
	p.skipString('"')
	s, err := strconv.Unquote(p.src[start:p.pos])
	if err != nil {
		p.fail(start, "invalid string: %v", err)
	}
	return s
}

// ident reads [A-Za-z_][A-Za-z0-9_-]*; it returns "" if none starts here.
func (p *parser) ident() string {
	start := p.pos
	for !p.eof() {
		c := p.src[p.pos]
		if c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || p.pos > start && ('0' <= c && c <= '9' || c == '-') {
			p.pos++
			continue
		}
		break
	}
	return p.src[start:p.pos]
}

// endOfLine expects nothing but blanks and a comment before the newline.
func (p *parser) endOfLine() {
	p.skipSpace()
	if p.eof() || p.peek() == '\n' || p.peek() == '\r' || p.peek() == '#' || p.at("//") {
		return
	}
	p.fail(p.pos, "unexpected %s, expected the end of the line", p.describe())
}

// skipSpace skips blanks on the current line.
func (p *parser) skipSpace() {
	for !p.eof() && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t' || p.src[p.pos] == '\r') {
		p.pos++
	}
}

// skipBlank skips blanks, newlines, ; separators and comments.
func (p *parser) skipBlank() {
	for !p.eof() {
		c := p.src[p.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ';':
			p.pos++
		case c == '#' || p.at("//"):
			for !p.eof() && p.src[p.pos] != '\n' {
				p.pos++
			}
		case p.at("/*"):
			j := strings.Index(p.src[p.pos+2:], "*/")
			if j < 0 {
				p.fail(p.pos, "comment is not closed: expected */")
			}
			p.pos += 2 + j + 2
		default:
			return
		}
	}
}

func (p *parser) consumeAssign() bool {
	if p.peek() == '=' && !p.at("==") {
		p.pos++
		return true
	}
	return false
}

func (p *parser) consume(s string) bool {
	if p.at(s) {
		p.pos += len(s)
		return true
	}
	return false
}

func (p *parser) at(s string) bool { return strings.HasPrefix(p.src[p.pos:], s) }
func (p *parser) eof() bool        { return p.pos >= len(p.src) }
func (p *parser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.src[p.pos]
}

// describe names what is at p.pos, for "found …" in messages.
func (p *parser) describe() string {
	if p.eof() {
		return "the end of the file"
	}
	switch c := p.src[p.pos]; c {
	case '\n', '\r':
		return "the end of the line"
	default:
		r := []rune(p.src[p.pos:min(len(p.src), p.pos+8)])
		return strconv.Quote(string(r[0]))
	}
}

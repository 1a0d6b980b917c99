package lang

import (
	"strconv"
	"strings"
)

// ClassLayout is where one class of a script keeps its settings and its
// mappings, as byte offsets into the script's text: what a tool that
// rewrites one line of a script (the REPL's :save) needs to replace that
// line and keep every other byte, comments included.
type ClassLayout struct {
	Name     string
	End      int        // offset of the class's closing }
	Settings []LineSpan // `key = expression`
	Map      *MapLayout // nil when the class has no map block
}

// MapLayout is a class's map block.
type MapLayout struct {
	Open, Close int // offsets of the block's { and }
	Lines       []LineSpan
}

// LineSpan is one `key = expression` setting or one `[@usage…] target =
// expression` mapping. [Start, End) runs from its first byte (the @ of a
// usage, the quote of a quoted target) to the end of its expression,
// without a trailing comment, which stays where it is when the span is
// replaced.
type LineSpan struct {
	Key        string   // the setting's name, or the target as written (unquoted)
	Usage      []string // the mapping's @annotations, without the @
	Start, End int
}

// ScriptLayout parses a script's block structure (it does not compile it)
// and returns where its classes are. On a syntax error it returns the
// diagnostics, as Load would.
func ScriptLayout(name, text string) ([]*ClassLayout, error) {
	f, raw := parse(text)
	if len(raw) > 0 {
		c := &compiler{src: NewSource(name, text)}
		for _, d := range raw {
			c.add(d)
		}
		c.diags.Source = c.src
		c.diags.sort()
		return nil, &c.diags
	}
	var out []*ClassLayout
	for _, b := range f.blocks {
		if b.kind != "class" {
			continue
		}
		cl := &ClassLayout{Name: b.label}
		last := openBrace(text, b.labelOff+len(b.label)) + 1
		for _, s := range b.settings {
			end := s.expr.off + len(s.expr.text)
			cl.Settings = append(cl.Settings, LineSpan{Key: s.key, Start: s.keyOff, End: end})
			last = max(last, end)
		}
		for _, mb := range b.blocks {
			if mb.kind != "map" {
				continue
			}
			ml := &MapLayout{Open: openBrace(text, mb.off+len("map"))}
			after := ml.Open + 1
			for _, m := range mb.mappings {
				start := m.targetOff
				if start > 0 && text[start-1] == '"' {
					start--
				}
				var usage []string
				for _, w := range m.usage {
					usage = append(usage, w.name)
				}
				if len(m.usage) > 0 {
					start = m.usage[0].off
				}
				end := m.expr.off + len(m.expr.text)
				ml.Lines = append(ml.Lines, LineSpan{Key: m.target, Usage: usage, Start: start, End: end})
				after = max(after, end)
			}
			ml.Close = closeBrace(text, after)
			last = max(last, ml.Close+1)
			if cl.Map == nil { // a second map block is a load error
				cl.Map = ml
			}
		}
		cl.End = closeBrace(text, last)
		out = append(out, cl)
	}
	return out, nil
}

// openBrace returns the offset of the { that opens a block, at or after
// off (past blanks on the same line, as the parser reads it).
func openBrace(text string, off int) int {
	p := &parser{src: text, pos: off}
	p.skipSpace()
	return p.pos
}

// closeBrace returns the offset of the } that closes a block whose last
// element ends at off: past blanks, separators and comments.
func closeBrace(text string, off int) int {
	p := &parser{src: text, pos: off}
	p.skipBlank()
	return p.pos
}

// ParseMappingLine reads text as one line of a map block, `[@usage…]
// target = expression`, or as a class setting `key = expression` (a
// setting is a mapping line without usage whose target is a plain name).
// It returns nil when text does not have that shape, so that it is an
// expression (`cn == "x"`, `let x = 1; x`): the shape is one or more
// @annotations, or a target (a SCIM attribute path, possibly quoted) and
// then = (not ==). A line of that shape whose expression runs past the
// end of the line (a stray ) or }) is an error.
func ParseMappingLine(name, text string) (*LineSpan, error) {
	if !mappingShaped(text) {
		return nil, nil
	}
	p := &parser{src: text}
	var m *mapping
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(errBail); !ok {
					panic(r)
				}
			}
		}()
		p.skipSpace()
		m = p.mapping()
	}()
	if m == nil {
		return nil, lineError(name, text, p.diags)
	}
	p.skipBlank()
	if !p.eof() {
		return nil, lineError(name, text, []*rawDiag{{off: p.pos, msg: "unexpected " + p.describe() + " after the expression"}})
	}
	start := m.targetOff
	if start > 0 && text[start-1] == '"' {
		start--
	}
	var usage []string
	for _, w := range m.usage {
		usage = append(usage, w.name)
	}
	if len(m.usage) > 0 {
		start = m.usage[0].off
	}
	return &LineSpan{Key: m.target, Usage: usage, Start: start, End: m.expr.off + len(m.expr.text)}, nil
}

// mappingShaped reports whether text starts like a mapping line rather
// than an expression: an @annotation, or a target and then = (not ==). A
// target is quoted, or letters, digits, _ - . : $ with [filters], starting
// with a letter or _, and no blank outside the brackets.
func mappingShaped(text string) bool {
	t := strings.TrimLeft(text, " \t")
	if strings.HasPrefix(t, "@") {
		return true
	}
	i := 0
	if strings.HasPrefix(t, `"`) {
		q, err := strconv.QuotedPrefix(t)
		if err != nil {
			return false
		}
		i = len(q)
	} else {
		if t == "" || !(t[0] == '_' || 'a' <= t[0] && t[0] <= 'z' || 'A' <= t[0] && t[0] <= 'Z') {
			return false
		}
		depth, quote := 0, byte(0)
	scan:
		for ; i < len(t); i++ {
			c := t[i]
			switch {
			case c == '\n':
				return false
			case quote != 0:
				if c == '\\' {
					i++
				} else if c == quote {
					quote = 0
				}
			case depth > 0 && (c == '"' || c == '\''):
				quote = c
			case c == '[':
				depth++
			case c == ']':
				depth--
				if depth < 0 {
					return false
				}
			case depth > 0:
			case c == '_' || c == '-' || c == '.' || c == ':' || c == '$' ||
				'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9':
			default:
				break scan
			}
		}
		if depth != 0 {
			return false
		}
	}
	rest := strings.TrimLeft(t[i:], " \t")
	return strings.HasPrefix(rest, "=") && !strings.HasPrefix(rest, "==")
}

// lineError turns the parser's diagnostics on a typed line into
// *Diagnostics.
func lineError(name, text string, raw []*rawDiag) error {
	c := &compiler{src: NewSource(name, text)}
	for _, d := range raw {
		c.add(d)
	}
	if len(c.diags.List) == 0 {
		c.add(&rawDiag{msg: "not a mapping line"})
	}
	c.diags.Source = c.src
	c.diags.sort()
	return &c.diags
}

package scim

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/jsonw"
)

// Path is a parsed SCIM attribute path (RFC 7644 §3.10, §3.5.2 "path" ABNF)
// used as a mapping target, such as userName, name.givenName,
// emails[type eq "work"].value or
// urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value.
type Path struct {
	URN    string // schema URN when the path names one (extension attrs), else ""
	Attr   string // top-level attribute name as written, e.g. "emails"
	Filter []Eq   // valuePath filter, e.g. [type eq "work"]; only eq comparisons joined by "and"
	Sub    string // sub-attribute, e.g. "value", "givenName"; "" if none
}

// Eq is one "attr eq value" comparison of a Path's element filter; Attr is a
// sub-attribute name of the filtered attribute.
type Eq struct {
	Attr  string
	Value any // string, bool, float64 (JSON number), or nil
}

// PathError is a syntax error in a Path.
type PathError struct {
	Offset int    // byte offset in the parsed text
	Msg    string // lowercase, no trailing period
}

// Error implements error.
func (e *PathError) Error() string {
	return fmt.Sprintf("offset %d: %s", e.Offset, e.Msg)
}

func pathErr(off int, format string, args ...any) *PathError {
	return &PathError{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// ParsePath parses a SCIM attribute path used as a mapping target:
//
//	path   = [URN ":"] ATTRNAME ["[" eqExpr *("and" eqExpr) "]"] ["." subAttr]
//	eqExpr = subAttr "eq" compValue
//
// A path that starts with "urn:" (case-insensitive) is split after the
// longest of knownURNs that prefixes it (case-insensitive) and is followed by
// ':'; URN then holds the known spelling. An unknown URN splits at the last
// ':' before the attribute (before any '[' or '.' that follows it) and is kept
// as written. The whole path may be written as one double-quoted string
// without escapes, as in a pipe script. Errors are *PathError with the byte
// offset in s.
func ParsePath(s string, knownURNs []string) (Path, error) {
	off := 0
	if strings.HasPrefix(s, `"`) {
		if len(s) < 2 || !strings.HasSuffix(s, `"`) {
			return Path{}, pathErr(0, "unterminated string")
		}
		inner := s[1 : len(s)-1]
		if i := strings.IndexAny(inner, `"\`); i >= 0 {
			return Path{}, pathErr(1+i, "a quoted path cannot contain quotes or escapes")
		}
		s, off = inner, 1
	}
	p, err := parsePath(s, knownURNs)
	if err != nil {
		err.Offset += off
		return Path{}, err
	}
	return p, nil
}

func parsePath(s string, knownURNs []string) (Path, *PathError) {
	var p Path
	if s == "" {
		return p, pathErr(0, "empty path")
	}
	i := 0 // start of the attribute name
	if len(s) >= 4 && strings.EqualFold(s[:4], "urn:") {
		best := ""
		for _, u := range knownURNs {
			if strings.EqualFold(s, u) {
				return p, pathErr(0, "path names the schema %q, not an attribute of it", u)
			}
			if len(u) > len(best) && len(s) > len(u) && s[len(u)] == ':' && strings.EqualFold(s[:len(u)], u) {
				best = u
			}
		}
		if best != "" {
			p.URN, i = best, len(best)+1
		} else {
			end := strings.IndexByte(s, '[')
			if end < 0 {
				end = len(s)
			}
			c := strings.LastIndexByte(s[:end], ':')
			// The attribute follows the last ':'; a '.' after it starts the
			// sub-attribute, while dots before it belong to the URN.
			p.URN, i = s[:c], c+1
		}
		if strings.EqualFold(p.URN, "urn") || strings.HasSuffix(p.URN, ":") {
			return p, pathErr(0, "invalid schema URN %q", p.URN)
		}
		if i >= len(s) {
			return p, pathErr(i, "expected attribute name after schema URN")
		}
	}
	name, n, err := scanPathName(s, i)
	if err != nil {
		return p, err
	}
	p.Attr = name
	i += n
	if i < len(s) && s[i] == '[' {
		eqs, end, err := parseEqFilter(s, i)
		if err != nil {
			return p, err
		}
		p.Filter, i = eqs, end
	}
	if i < len(s) && s[i] == '.' {
		sub, n, err := scanPathName(s, i+1)
		if err != nil {
			return p, err
		}
		p.Sub = sub
		i += 1 + n
		if i < len(s) && s[i] == '.' {
			return p, pathErr(i, "sub-attributes nest only one level")
		}
		if i < len(s) && s[i] == '[' {
			return p, pathErr(i, "a filter must follow the attribute, not the sub-attribute")
		}
	}
	if i < len(s) {
		if s[i] == '[' {
			return p, pathErr(i, "only one filter is allowed")
		}
		r, _ := utf8.DecodeRuneInString(s[i:])
		return p, pathErr(i, "unexpected %q", r)
	}
	return p, nil
}

// scanPathName reads an ATTRNAME (or "$ref") at s[i:] and returns it with its
// length.
func scanPathName(s string, i int) (string, int, *PathError) {
	if strings.HasPrefix(s[i:], "$ref") {
		if j := i + 4; j == len(s) || !isNameChar(s[j]) || s[j] == '.' || s[j] == ':' {
			return "$ref", 4, nil
		}
	}
	if i >= len(s) {
		return "", 0, pathErr(i, "expected attribute name")
	}
	if !isAlpha(s[i]) {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return "", 0, pathErr(i, "expected attribute name, found %q", r)
	}
	j := i + 1
	for j < len(s) && (isAlpha(s[j]) || isDigit(s[j]) || s[j] == '-' || s[j] == '_') {
		j++
	}
	if j < len(s) && s[j] == ':' {
		return "", 0, pathErr(j, `unexpected ":" (schema URNs start with "urn:")`)
	}
	return s[i:j], j - i, nil
}

// parseEqFilter parses "[" eqExpr *("and" eqExpr) "]" at s[open] == '['. It
// returns the comparisons and the offset after ']'.
func parseEqFilter(s string, open int) ([]Eq, int, *PathError) {
	lx := lexer{src: s, pos: open + 1}
	next := func() (token, *PathError) {
		t, err := lx.next()
		if err != nil {
			fe := err.(*FilterError)
			return t, &PathError{Offset: fe.Offset, Msg: fe.Msg}
		}
		return t, nil
	}
	onlyEq := "only eq comparisons joined by and can select an element"
	var eqs []Eq
	for {
		t, err := next()
		if err != nil {
			return nil, 0, err
		}
		switch {
		case t.kind == tokEOF:
			return nil, 0, pathErr(open, `missing "]"`)
		case t.kind == tokRBrack && len(eqs) == 0:
			return nil, 0, pathErr(t.pos, "empty filter")
		case t.kind == tokLParen || t.kind == tokName && strings.EqualFold(t.text, "not"):
			return nil, 0, pathErr(t.pos, "%s", onlyEq)
		case t.kind != tokName:
			return nil, 0, pathErr(t.pos, "expected sub-attribute name in filter, found %q", t.text)
		}
		ap, ferr := parseAttrPath(t.text, t.pos)
		if ferr != nil {
			fe := ferr.(*FilterError)
			return nil, 0, pathErr(fe.Offset, "%s", fe.Msg)
		}
		if ap.URN != "" || ap.Sub != "" {
			return nil, 0, pathErr(t.pos, "a filter compares sub-attributes of the element; write %q", ap.lastName())
		}
		op, err := next()
		if err != nil {
			return nil, 0, err
		}
		if op.kind != tokName {
			return nil, 0, pathErr(op.pos, `expected "eq" in filter`)
		}
		switch strings.ToLower(op.text) {
		case "eq":
		case "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr":
			return nil, 0, pathErr(op.pos, "%s", onlyEq)
		default:
			return nil, 0, pathErr(op.pos, `expected "eq" in filter`)
		}
		vt, err := next()
		if err != nil {
			return nil, 0, err
		}
		var v any
		switch vt.kind {
		case tokString:
			v = vt.val
		case tokNumber:
			v = vt.num
		case tokName:
			switch strings.ToLower(vt.text) {
			case "true":
				v = true
			case "false":
				v = false
			case "null":
				v = nil
			default:
				return nil, 0, pathErr(vt.pos, "expected a value (string in double quotes, number, true, false or null)")
			}
		default:
			return nil, 0, pathErr(vt.pos, "expected a value (string in double quotes, number, true, false or null)")
		}
		for _, e := range eqs {
			if strings.EqualFold(e.Attr, ap.Attr) {
				return nil, 0, pathErr(t.pos, "%q is compared twice in the filter", ap.Attr)
			}
		}
		eqs = append(eqs, Eq{Attr: ap.Attr, Value: v})
		t, err = next()
		if err != nil {
			return nil, 0, err
		}
		switch {
		case t.kind == tokRBrack:
			return eqs, lx.pos, nil
		case t.kind == tokName && strings.EqualFold(t.text, "and"):
			continue
		case t.kind == tokName && strings.EqualFold(t.text, "or"):
			return nil, 0, pathErr(t.pos, "%s", onlyEq)
		case t.kind == tokEOF:
			return nil, 0, pathErr(open, `missing "]"`)
		default:
			return nil, 0, pathErr(t.pos, `expected "and" or "]" in filter, found %q`, t.text)
		}
	}
}

func (a AttrPath) lastName() string {
	if a.Sub != "" {
		return a.Sub
	}
	return a.Attr
}

// String returns the canonical text of the path; it parses back to an equal
// Path with ParsePath when p.URN is among the known URNs or is a well-formed
// URN. Filter values are quoted with Quote; comparisons are joined by " and ".
func (p Path) String() string {
	var buf [128]byte // a path of usual length is rendered here, then copied once
	return string(p.appendTo(buf[:0]))
}

// appendTo appends the text String returns.
func (p Path) appendTo(b []byte) []byte {
	if p.URN != "" {
		b = append(b, p.URN...)
		b = append(b, ':')
	}
	b = append(b, p.Attr...)
	if len(p.Filter) > 0 {
		b = append(b, '[')
		for i, e := range p.Filter {
			if i > 0 {
				b = append(b, " and "...)
			}
			b = append(b, e.Attr...)
			b = append(b, " eq "...)
			if v, ok := e.Value.(string); ok {
				b = jsonw.AppendString(b, v) // formatValue's Quote, without its string
			} else {
				b = append(b, formatValue(e.Value)...)
			}
		}
		b = append(b, ']')
	}
	if p.Sub != "" {
		b = append(b, '.')
		b = append(b, p.Sub...)
	}
	return b
}

// appendKey appends strings.ToLower(p.String()), without making either
// string: how Diff tells managed paths apart.
func (p Path) appendKey(b []byte) []byte {
	var buf [128]byte
	text := p.appendTo(buf[:0])
	for i := 0; i < len(text); {
		if c := text[i]; c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b = append(b, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(text[i:]) // an invalid byte is RuneError, which ToLower writes as U+FFFD too
		b = utf8.AppendRune(b, unicode.ToLower(r))
		i += n
	}
	return b
}

// pathSet is a set of paths compared as strings.ToLower of their text is,
// kept as the keys (appendKey) one after the other in one buffer; past
// foldLinear paths, a map finds them.
type pathSet struct {
	keys []byte
	ends []int
	m    map[string]bool
}

// add adds p and reports whether it was not in the set already.
func (s *pathSet) add(p Path) bool {
	start := len(s.keys)
	s.keys = p.appendKey(s.keys)
	k := s.keys[start:]
	if s.m != nil {
		if s.m[string(k)] {
			s.keys = s.keys[:start]
			return false
		}
		s.m[string(k)] = true
		return true
	}
	from := 0
	for _, end := range s.ends {
		if string(s.keys[from:end]) == string(k) {
			s.keys = s.keys[:start]
			return false
		}
		from = end
	}
	s.ends = append(s.ends, len(s.keys))
	if len(s.ends) > foldLinear {
		s.m = make(map[string]bool, 2*len(s.ends))
		from = 0
		for _, end := range s.ends {
			s.m[string(s.keys[from:end])] = true
			from = end
		}
	}
	return true
}

// samePathFold reports whether strings.ToLower(a.String()) equals
// strings.ToLower(b.String()).
func samePathFold(a, b Path) bool {
	var x, y [128]byte
	return string(a.appendKey(x[:0])) == string(b.appendKey(y[:0]))
}

// JSONPath returns the gjson/sjson path of the value p names in a resource
// document: the URN (extension object key), attribute and sub-attribute keys
// escaped with EscapeKey and joined by '.', e.g.
// `urn:ietf:params:scim:schemas:extension:enterprise:2\.0:User.employeeNumber`.
// A URN in the core namespace urn:ietf:params:scim:schemas:core: is left
// out, because core attributes sit at the top level of a resource (for a
// custom core schema, clear URN first).
// A path with a Filter names an element chosen by value, which no gjson path
// can address; JSONPath returns "" for it (use the JSONPath of the Path
// without Filter and Sub to reach the array).
func (p Path) JSONPath() string {
	if len(p.Filter) > 0 {
		return ""
	}
	var parts []string
	if p.URN != "" && !isCoreURN(p.URN) {
		parts = append(parts, EscapeKey(p.URN))
	}
	parts = append(parts, EscapeKey(p.Attr))
	if p.Sub != "" {
		parts = append(parts, EscapeKey(p.Sub))
	}
	return strings.Join(parts, ".")
}

// EscapeKey escapes one object key for use as a component of a gjson or
// sjson path: every byte that is not a letter, digit, '_', '-' or ':' (such
// as '.', '*', '?', '|', '#', '@', '$', '\\') gets a backslash, and so does a
// leading ':' (which sjson would take as "force object key"). A key made only
// of digits still addresses an array index in sjson when the target does not
// exist; SCIM attribute names always start with a letter.
func EscapeKey(k string) string {
	e := gjson.Escape(k)
	if strings.HasPrefix(e, ":") {
		e = `\` + e
	}
	return e
}

// Suggest returns the candidate closest to name by edit distance (optimal
// string alignment: insertions, deletions, substitutions and transpositions
// of adjacent characters), comparing case-insensitively, or "" when none is
// within len(name)/3+1 edits (counted in runes). A candidate equal to name
// ignoring case wins. Ties go to the earlier candidate. It is meant for "did
// you mean" hints anywhere in scimsync.
func Suggest(name string, candidates []string) string {
	if name == "" {
		return ""
	}
	a := []rune(strings.ToLower(name))
	limit := len(a)/3 + 1
	best, bestD := "", limit+1
	for _, c := range candidates {
		if c == "" {
			continue
		}
		d := editDistance(a, []rune(strings.ToLower(c)))
		if d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b.
func editDistance(a, b []rune) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// isCoreURN reports whether urn is in the IETF core schema namespace
// (urn:ietf:params:scim:schemas:core:...), whose attributes are top-level.
func isCoreURN(urn string) bool {
	const core = "urn:ietf:params:scim:schemas:core:"
	return len(urn) > len(core) && strings.EqualFold(urn[:len(core)], core)
}

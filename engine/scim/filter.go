package scim

import (
	"fmt"
	"github.com/scimsync/scimsync/engine/jsonw"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// Filter is a parsed SCIM filter expression (RFC 7644 §3.4.2.2). The zero
// Filter has no expression and matches every resource.
type Filter struct {
	// Expr is the root of the expression tree; nil for the zero Filter.
	Expr Expr
}

// Expr is a node of a filter expression tree: *Compare, *Present, *Logical,
// *Not or *ValuePath.
type Expr interface {
	// Pos is the byte offset of the node in the filter text.
	Pos() int
	// String returns the node as canonical filter text.
	String() string
}

// AttrPath is an attribute path inside a filter (RFC 7644 §3.10, "attrPath"
// ABNF): an optional schema URN, an attribute name and an optional
// sub-attribute name.
type AttrPath struct {
	URN  string // schema URN as written, or ""
	Attr string // attribute name as written
	Sub  string // sub-attribute name as written, or ""
}

// String returns the attribute path as filter text, e.g. "name.givenName".
func (a AttrPath) String() string {
	var b strings.Builder
	if a.URN != "" {
		b.WriteString(a.URN)
		b.WriteByte(':')
	}
	b.WriteString(a.Attr)
	if a.Sub != "" {
		b.WriteByte('.')
		b.WriteString(a.Sub)
	}
	return b.String()
}

// Compare is a comparison "attrPath compareOp compValue".
type Compare struct {
	Offset int
	Path   AttrPath
	Op     string // lowercase: eq ne co sw ew gt ge lt le
	Value  any    // string, bool, float64 or nil
}

// Present is the presence test "attrPath pr".
type Present struct {
	Offset int
	Path   AttrPath
}

// Logical joins two expressions with "and" or "or".
type Logical struct {
	Offset      int
	Op          string // lowercase: and, or
	Left, Right Expr
}

// Not is the negation "not" "(" valFilter ")".
type Not struct {
	Offset int
	X      Expr
}

// ValuePath is "attrPath [ valFilter ]": it matches when one element of a
// multi-valued complex attribute matches Filter, whose attribute paths are
// relative to that element.
type ValuePath struct {
	Offset int
	Path   AttrPath
	Filter Expr
}

// Pos implements Expr.
func (c *Compare) Pos() int { return c.Offset }

// Pos implements Expr.
func (p *Present) Pos() int { return p.Offset }

// Pos implements Expr.
func (l *Logical) Pos() int { return l.Offset }

// Pos implements Expr.
func (n *Not) Pos() int { return n.Offset }

// Pos implements Expr.
func (v *ValuePath) Pos() int { return v.Offset }

// String implements Expr.
func (c *Compare) String() string {
	return c.Path.String() + " " + c.Op + " " + formatValue(c.Value)
}

// String implements Expr.
func (p *Present) String() string { return p.Path.String() + " pr" }

// String implements Expr. Operands that are "or" expressions under an "and"
// are parenthesized so the text parses back to the same tree.
func (l *Logical) String() string {
	left, right := l.Left.String(), l.Right.String()
	if l.Op == "and" {
		if x, ok := l.Left.(*Logical); ok && x.Op == "or" {
			left = "(" + left + ")"
		}
		if x, ok := l.Right.(*Logical); ok && x.Op == "or" {
			right = "(" + right + ")"
		}
	} else if x, ok := l.Right.(*Logical); ok && x.Op == "or" {
		right = "(" + right + ")"
	}
	if x, ok := l.Right.(*Logical); ok && x.Op == l.Op && l.Op == "and" {
		right = "(" + right + ")"
	}
	return left + " " + l.Op + " " + right
}

// String implements Expr.
func (n *Not) String() string { return "not (" + n.X.String() + ")" }

// String implements Expr.
func (v *ValuePath) String() string {
	return v.Path.String() + "[" + v.Filter.String() + "]"
}

// String returns the filter as canonical text that parses back to an equal
// tree; "" for the zero Filter.
func (f Filter) String() string {
	if f.Expr == nil {
		return ""
	}
	return f.Expr.String()
}

// formatValue renders a comparison value as filter text.
func formatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case string:
		return Quote(v)
	default:
		return Quote(fmt.Sprint(v))
	}
}

// Quote returns s as a SCIM filter string literal (RFC 7644 §3.4.2.2: a JSON
// string, RFC 8259 §7), so that quotes, backslashes and control characters in
// s cannot end the literal early or inject filter syntax. Quotation mark,
// backslash, every control character (U+0000–U+001F, U+007F) and the line
// separators U+2028/U+2029 are escaped; other characters, including non-ASCII
// letters, are kept as UTF-8. Each byte of s that is not valid UTF-8 becomes
// U+FFFD, because a JSON string cannot carry it.
func Quote(s string) string { return jsonw.String(s) }

// FilterError is a syntax error in a filter, with the byte offset of the
// problem in the filter text.
type FilterError struct {
	Offset int    // byte offset in the filter text
	Msg    string // lowercase, no trailing period
}

// Error implements error.
func (e *FilterError) Error() string {
	return fmt.Sprintf("filter: offset %d: %s", e.Offset, e.Msg)
}

// token kinds of the filter lexer.
const (
	tokEOF    = iota
	tokName   // attribute path or keyword
	tokString // JSON string literal; val holds the decoded text
	tokNumber // JSON number; num holds the value
	tokLParen
	tokRParen
	tokLBrack
	tokRBrack
)

type token struct {
	kind int
	pos  int
	text string // source text of the token
	val  string // decoded string for tokString
	num  float64
}

// lexer splits filter text into tokens. It stops at the first error.
type lexer struct {
	src string
	pos int
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isNameChar reports whether c may continue an attribute path token: the
// RFC 7643 §2.1 nameChar plus ':' and '.' for URNs and sub-attributes and '$'
// for "$ref".
func isNameChar(c byte) bool {
	return isAlpha(c) || isDigit(c) || c == '-' || c == '_' || c == ':' || c == '.' || c == '$'
}

func (l *lexer) skipSpace() {
	for l.pos < len(l.src) {
		switch l.src[l.pos] {
		case ' ', '\t', '\n', '\r':
			l.pos++
		default:
			return
		}
	}
}

func (l *lexer) next() (token, error) {
	l.skipSpace()
	start := l.pos
	if l.pos >= len(l.src) {
		return token{kind: tokEOF, pos: start}, nil
	}
	c := l.src[l.pos]
	switch {
	case c == '(':
		l.pos++
		return token{kind: tokLParen, pos: start, text: "("}, nil
	case c == ')':
		l.pos++
		return token{kind: tokRParen, pos: start, text: ")"}, nil
	case c == '[':
		l.pos++
		return token{kind: tokLBrack, pos: start, text: "["}, nil
	case c == ']':
		l.pos++
		return token{kind: tokRBrack, pos: start, text: "]"}, nil
	case c == '"':
		s, end, err := decodeString(l.src, start)
		if err != nil {
			return token{}, err
		}
		l.pos = end
		return token{kind: tokString, pos: start, text: l.src[start:end], val: s}, nil
	case c == '-' || isDigit(c):
		end := scanNumber(l.src, start)
		if end < 0 {
			return token{}, &FilterError{Offset: start, Msg: "invalid number"}
		}
		if end < len(l.src) && isNameChar(l.src[end]) && l.src[end] != ':' {
			return token{}, &FilterError{Offset: start, Msg: "invalid number"}
		}
		f, err := strconv.ParseFloat(l.src[start:end], 64)
		if err != nil || math.IsInf(f, 0) {
			return token{}, &FilterError{Offset: start, Msg: "number out of range"}
		}
		l.pos = end
		return token{kind: tokNumber, pos: start, text: l.src[start:end], num: f}, nil
	case isAlpha(c) || c == '$':
		for l.pos < len(l.src) && isNameChar(l.src[l.pos]) {
			l.pos++
		}
		return token{kind: tokName, pos: start, text: l.src[start:l.pos]}, nil
	case c == '\'':
		return token{}, &FilterError{Offset: start, Msg: `strings must be in double quotes`}
	default:
		r, _ := utf8.DecodeRuneInString(l.src[l.pos:])
		return token{}, &FilterError{Offset: start, Msg: fmt.Sprintf("unexpected character %q", r)}
	}
}

// scanNumber returns the end of the JSON number (RFC 8259 §6) at s[i:], or -1.
func scanNumber(s string, i int) int {
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && isDigit(s[i]):
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return -1
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return -1
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return -1
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	return i
}

// decodeString decodes the JSON string literal starting at s[start] == '"'.
// It returns the decoded text and the offset just past the closing quote.
// Each byte that is not valid UTF-8 becomes U+FFFD, as Quote does.
func decodeString(s string, start int) (string, int, error) {
	var b strings.Builder
	i := start + 1
	for {
		if i >= len(s) {
			return "", 0, &FilterError{Offset: start, Msg: "unterminated string"}
		}
		c := s[i]
		switch {
		case c == '"':
			return b.String(), i + 1, nil
		case c < 0x20:
			return "", 0, &FilterError{Offset: i, Msg: "control character in string must be escaped"}
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(s[i:])
			b.WriteRune(r) // U+FFFD for a byte that is not valid UTF-8
			i += size
			continue
		case c != '\\':
			b.WriteByte(c)
			i++
			continue
		}
		// escape sequence
		if i+1 >= len(s) {
			return "", 0, &FilterError{Offset: start, Msg: "unterminated string"}
		}
		switch e := s[i+1]; e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := hex4(s, i+2)
			if !ok {
				return "", 0, &FilterError{Offset: i, Msg: `invalid \u escape in string`}
			}
			i += 6
			if r >= 0xd800 && r < 0xdc00 {
				// high surrogate: a low surrogate must follow
				if i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if r2, ok := hex4(s, i+2); ok && r2 >= 0xdc00 && r2 < 0xe000 {
						b.WriteRune((r-0xd800)<<10 | (r2 - 0xdc00) + 0x10000)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			} else if r >= 0xdc00 && r < 0xe000 {
				r = utf8.RuneError
			}
			b.WriteRune(r)
			continue
		default:
			return "", 0, &FilterError{Offset: i, Msg: fmt.Sprintf(`invalid escape "\%c" in string`, e)}
		}
		i += 2
	}
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	v, err := strconv.ParseUint(s[i:i+4], 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(v), true
}

// filterParser is a recursive-descent parser for RFC 7644 §3.4.2.2 filters:
//
//	filter    = term *("or" term)
//	term      = factor *("and" factor)
//	factor    = "not" "(" filter ")" / "(" filter ")" / attrExp / valuePath
//	attrExp   = attrPath "pr" / attrPath compareOp compValue
//	valuePath = attrPath "[" filter "]"   ; no nested valuePath inside
//
// "and" binds tighter than "or"; both associate to the left. Operators and
// the literals true, false and null are case-insensitive.
type filterParser struct {
	lx      lexer
	tok     token
	inValue bool // inside a valuePath's brackets
}

func (p *filterParser) advance() error {
	t, err := p.lx.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

func (p *filterParser) errorf(pos int, format string, args ...any) error {
	return &FilterError{Offset: pos, Msg: fmt.Sprintf(format, args...)}
}

// ParseFilter parses a SCIM filter (RFC 7644 §3.4.2.2): attribute paths with
// optional schema URN and sub-attribute, the comparison operators eq ne co sw
// ew gt ge lt le, pr, and, or, not, parentheses, value paths such as
// emails[type eq "work"], and string, number, true, false and null literals.
// Errors are *FilterError with the byte offset of the problem.
func ParseFilter(s string) (Filter, error) {
	p := &filterParser{lx: lexer{src: s}}
	if err := p.advance(); err != nil {
		return Filter{}, err
	}
	if p.tok.kind == tokEOF {
		return Filter{}, p.errorf(0, "empty filter")
	}
	e, err := p.parseOr()
	if err != nil {
		return Filter{}, err
	}
	if p.tok.kind != tokEOF {
		return Filter{}, p.unexpected(`expected "and", "or" or end of filter`)
	}
	return Filter{Expr: e}, nil
}

// MustParseFilter is like ParseFilter but panics on error; for constant
// filters in programs and tests.
func MustParseFilter(s string) Filter {
	f, err := ParseFilter(s)
	if err != nil {
		panic(err)
	}
	return f
}

func (p *filterParser) unexpected(msg string) error {
	if p.tok.kind == tokEOF {
		return p.errorf(p.tok.pos, "%s, found end of filter", msg)
	}
	return p.errorf(p.tok.pos, "%s, found %q", msg, p.tok.text)
}

func (p *filterParser) isKeyword(kw string) bool {
	return p.tok.kind == tokName && strings.EqualFold(p.tok.text, kw)
}

func (p *filterParser) parseOr() (Expr, error) {
	left, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.isKeyword("or") {
		pos := p.tok.pos
		if err := p.advance(); err != nil {
			return nil, err
		}
		right, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		left = &Logical{Offset: pos, Op: "or", Left: left, Right: right}
	}
	return left, nil
}

func (p *filterParser) parseAnd() (Expr, error) {
	left, err := p.parseFactor()
	if err != nil {
		return nil, err
	}
	for p.isKeyword("and") {
		pos := p.tok.pos
		if err := p.advance(); err != nil {
			return nil, err
		}
		right, err := p.parseFactor()
		if err != nil {
			return nil, err
		}
		left = &Logical{Offset: pos, Op: "and", Left: left, Right: right}
	}
	return left, nil
}

func (p *filterParser) parseParen() (Expr, error) {
	open := p.tok.pos
	if err := p.advance(); err != nil {
		return nil, err
	}
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tokRParen {
		if p.tok.kind == tokEOF {
			return nil, p.errorf(open, `missing ")"`)
		}
		return nil, p.unexpected(`expected ")"`)
	}
	return e, p.advance()
}

func (p *filterParser) parseFactor() (Expr, error) {
	switch p.tok.kind {
	case tokLParen:
		return p.parseParen()
	case tokName:
	case tokEOF:
		return nil, p.unexpected("expected attribute path")
	default:
		return nil, p.unexpected("expected attribute path")
	}
	if p.isKeyword("not") {
		pos := p.tok.pos
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.tok.kind != tokLParen {
			return nil, p.unexpected(`expected "(" after "not"`)
		}
		x, err := p.parseParen()
		if err != nil {
			return nil, err
		}
		return &Not{Offset: pos, X: x}, nil
	}
	pathTok := p.tok
	ap, err := parseAttrPath(pathTok.text, pathTok.pos)
	if err != nil {
		return nil, err
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind == tokLBrack {
		if p.inValue {
			return nil, p.errorf(p.tok.pos, "value paths cannot be nested")
		}
		if ap.Sub != "" {
			return nil, p.errorf(pathTok.pos, "a value path filter applies to an attribute, not to sub-attribute %q", ap.Sub)
		}
		open := p.tok.pos
		p.inValue = true
		if err := p.advance(); err != nil {
			return nil, err
		}
		inner, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		p.inValue = false
		if p.tok.kind != tokRBrack {
			if p.tok.kind == tokEOF {
				return nil, p.errorf(open, `missing "]"`)
			}
			return nil, p.unexpected(`expected "]"`)
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		return &ValuePath{Offset: pathTok.pos, Path: ap, Filter: inner}, nil
	}
	if p.tok.kind != tokName {
		return nil, p.unexpected("expected operator")
	}
	op := strings.ToLower(p.tok.text)
	opPos := p.tok.pos
	switch op {
	case "pr":
		if err := p.advance(); err != nil {
			return nil, err
		}
		return &Present{Offset: pathTok.pos, Path: ap}, nil
	case "eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le":
	default:
		return nil, p.errorf(opPos, "unknown operator %q", p.tok.text)
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	v, err := p.parseValue()
	if err != nil {
		return nil, err
	}
	switch op {
	case "co", "sw", "ew":
		if _, ok := v.(string); !ok {
			return nil, p.errorf(opPos, "operator %q needs a string value", op)
		}
	case "gt", "ge", "lt", "le":
		switch v.(type) {
		case string, float64:
		default:
			return nil, p.errorf(opPos, "operator %q needs a string or number value", op)
		}
	}
	return &Compare{Offset: pathTok.pos, Path: ap, Op: op, Value: v}, nil
}

// parseValue parses compValue (RFC 7644 §3.4.2.2) and advances past it.
func (p *filterParser) parseValue() (any, error) {
	var v any
	switch p.tok.kind {
	case tokString:
		v = p.tok.val
	case tokNumber:
		v = p.tok.num
	case tokName:
		switch strings.ToLower(p.tok.text) {
		case "true":
			v = true
		case "false":
			v = false
		case "null":
			v = nil
		default:
			return nil, p.unexpected("expected a value (string in double quotes, number, true, false or null)")
		}
	default:
		return nil, p.unexpected("expected a value (string in double quotes, number, true, false or null)")
	}
	return v, p.advance()
}

// parseAttrPath splits attrPath text (RFC 7644 §3.10) at pos into URN,
// attribute and sub-attribute. A URN is recognized by its "urn:" prefix; the
// attribute follows the URN's last ':'.
func parseAttrPath(text string, pos int) (AttrPath, error) {
	var ap AttrPath
	rest, base := text, pos
	if len(text) > 4 && strings.EqualFold(text[:4], "urn:") {
		i := strings.LastIndexByte(text, ':')
		ap.URN = text[:i]
		rest, base = text[i+1:], pos+i+1
	} else if i := strings.IndexByte(text, ':'); i >= 0 {
		return ap, &FilterError{Offset: pos + i, Msg: `unexpected ":" in attribute path (schema URNs start with "urn:")`}
	}
	name, sub, hasSub := strings.Cut(rest, ".")
	if err := checkName(name, base, false); err != nil {
		return ap, err
	}
	ap.Attr = name
	if hasSub {
		if err := checkName(sub, base+len(name)+1, true); err != nil {
			return ap, err
		}
		ap.Sub = sub
	}
	return ap, nil
}

// checkName checks an ATTRNAME (RFC 7643 §2.1): ALPHA *(ALPHA / DIGIT / "-" /
// "_"), or "$ref". A '.' is reported as too deep nesting when sub is set.
func checkName(name string, pos int, sub bool) error {
	if name == "" {
		return &FilterError{Offset: pos, Msg: "expected attribute name"}
	}
	if name == "$ref" {
		return nil
	}
	if !isAlpha(name[0]) {
		return &FilterError{Offset: pos, Msg: fmt.Sprintf("attribute name %q must start with a letter", name)}
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if c == '.' && sub {
			return &FilterError{Offset: pos + i, Msg: "sub-attributes nest only one level"}
		}
		if !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' {
			return &FilterError{Offset: pos + i, Msg: fmt.Sprintf("invalid character %q in attribute name", c)}
		}
	}
	return nil
}

// MatchOptions tune Filter.MatchWith.
type MatchOptions struct {
	// CaseExact reports whether string values at an attribute path compare
	// case-sensitively (the attribute's caseExact characteristic, RFC 7643
	// §2.2). The path is the canonical attribute path: "userName",
	// "emails.value", or with a URN for extension attributes,
	// "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber".
	// Nil means caseExact=false everywhere. SchemaCaseExact builds one from
	// schemas.
	CaseExact func(path string) bool
}

// Match reports whether the JSON resource matches the filter, comparing
// strings case-insensitively (caseExact=false). See MatchWith.
func (f Filter) Match(resourceJSON []byte) bool {
	return f.MatchWith(resourceJSON, MatchOptions{})
}

// MatchWith reports whether the JSON resource matches the filter. Attribute
// names and schema URNs match case-insensitively (RFC 7643 §2.1). A path with
// a URN looks in the resource's extension object of that name; a URN listed
// in the resource's "schemas" that has no such object (the core schema) looks
// at the top level. A multi-valued attribute matches when any value does; a
// complex attribute without sub-attribute compares its "value" sub-attribute.
// "eq null" matches an absent or null attribute, "ne" is the negation of "eq",
// gt/ge/lt/le compare numbers numerically, strings that are both RFC 3339
// date-times chronologically, and other strings lexically. Comparisons of
// mismatched types are false. The zero Filter matches every resource.
func (f Filter) MatchWith(resourceJSON []byte, opts MatchOptions) bool {
	if f.Expr == nil {
		return true
	}
	m := matcher{opts: opts, root: gjson.ParseBytes(resourceJSON)}
	return m.eval(f.Expr, m.root, "")
}

type matcher struct {
	opts MatchOptions
	root gjson.Result
}

// getFold returns the member of object obj whose key equals name ignoring
// case.
func getFold(obj gjson.Result, name string) gjson.Result {
	var out gjson.Result
	if !obj.IsObject() {
		return out
	}
	obj.ForEach(func(k, v gjson.Result) bool {
		if strings.EqualFold(k.String(), name) {
			out = v
			return false
		}
		return true
	})
	return out
}

// base returns the object holding the attributes of URN urn in the resource.
func (m *matcher) base(urn string) (gjson.Result, bool) {
	if urn == "" {
		return m.root, true
	}
	if ext := getFold(m.root, urn); ext.IsObject() {
		return ext, true
	}
	found := false
	getFold(m.root, "schemas").ForEach(func(_, v gjson.Result) bool {
		if strings.EqualFold(v.String(), urn) {
			found = true
			return false
		}
		return true
	})
	return m.root, found
}

// values returns the values at ap in ctx, flattening multi-valued
// attributes, and the canonical path for caseExact look-ups. prefix is the
// canonical path of ctx's attribute inside a value path, else "".
func (m *matcher) values(ctx gjson.Result, ap AttrPath, prefix string) ([]gjson.Result, string) {
	obj := ctx
	canon := prefix
	if prefix == "" {
		var ok bool
		if obj, ok = m.base(ap.URN); !ok {
			return nil, ""
		}
		if ap.URN != "" {
			canon = ap.URN + ":"
		}
	} else {
		canon += "."
	}
	canon += ap.Attr
	v := getFold(obj, ap.Attr)
	var top []gjson.Result
	if v.IsArray() {
		top = v.Array()
	} else if v.Exists() {
		top = []gjson.Result{v}
	}
	sub := ap.Sub
	if sub == "" && prefix == "" {
		// complex attribute without sub-attribute: compare "value"
		for _, t := range top {
			if t.IsObject() {
				sub = "value"
				break
			}
		}
	}
	if sub == "" {
		return top, canon
	}
	canon += "." + sub
	var out []gjson.Result
	for _, t := range top {
		s := getFold(t, sub)
		if s.IsArray() {
			out = append(out, s.Array()...)
		} else if s.Exists() {
			out = append(out, s)
		}
	}
	return out, canon
}

func (m *matcher) eval(e Expr, ctx gjson.Result, prefix string) bool {
	switch e := e.(type) {
	case *Logical:
		if e.Op == "and" {
			return m.eval(e.Left, ctx, prefix) && m.eval(e.Right, ctx, prefix)
		}
		return m.eval(e.Left, ctx, prefix) || m.eval(e.Right, ctx, prefix)
	case *Not:
		return !m.eval(e.X, ctx, prefix)
	case *Present:
		vals, _ := m.values(ctx, e.Path, prefix)
		for _, v := range vals {
			if present(v) {
				return true
			}
		}
		return false
	case *Compare:
		vals, canon := m.values(ctx, e.Path, prefix)
		exact := m.opts.CaseExact != nil && m.opts.CaseExact(canon)
		if e.Op == "ne" {
			return !anyCompare(vals, "eq", e.Value, exact)
		}
		return anyCompare(vals, e.Op, e.Value, exact)
	case *ValuePath:
		obj := ctx
		canon := prefix
		if prefix == "" {
			var ok bool
			if obj, ok = m.base(e.Path.URN); !ok {
				return false
			}
			if e.Path.URN != "" {
				canon = e.Path.URN + ":"
			}
		} else {
			canon += "."
		}
		canon += e.Path.Attr
		v := getFold(obj, e.Path.Attr)
		var elems []gjson.Result
		if v.IsArray() {
			elems = v.Array()
		} else if v.Exists() {
			elems = []gjson.Result{v}
		}
		for _, el := range elems {
			if el.IsObject() && m.eval(e.Filter, el, canon) {
				return true
			}
			if !el.IsObject() && m.evalSimpleElement(e.Filter, el, canon) {
				return true
			}
		}
		return false
	}
	return false
}

// evalSimpleElement evaluates a value path filter against an element of a
// multi-valued simple attribute, whose only sub-attribute is "value".
func (m *matcher) evalSimpleElement(e Expr, el gjson.Result, canon string) bool {
	wrapped := gjson.Parse(`{"value":` + el.Raw + `}`)
	return m.eval(e, wrapped, canon)
}

func present(v gjson.Result) bool {
	switch v.Type {
	case gjson.Null:
		return false
	case gjson.String:
		return v.Str != ""
	case gjson.JSON:
		if v.IsArray() {
			return len(v.Array()) > 0
		}
		return true
	}
	return v.Exists()
}

func anyCompare(vals []gjson.Result, op string, want any, exact bool) bool {
	if want == nil && op == "eq" {
		for _, v := range vals {
			if v.Type != gjson.Null {
				return false
			}
		}
		return true
	}
	for _, v := range vals {
		if compare(v, op, want, exact) {
			return true
		}
	}
	return false
}

func compare(v gjson.Result, op string, want any, exact bool) bool {
	switch w := want.(type) {
	case bool:
		if v.Type != gjson.True && v.Type != gjson.False {
			return false
		}
		return op == "eq" && v.Bool() == w
	case float64:
		if v.Type != gjson.Number {
			return false
		}
		return cmpOrdered(v.Num, w, op)
	case string:
		if v.Type != gjson.String {
			return false
		}
		got := v.Str
		if op == "gt" || op == "ge" || op == "lt" || op == "le" {
			if t1, err := time.Parse(time.RFC3339Nano, got); err == nil {
				if t2, err := time.Parse(time.RFC3339Nano, w); err == nil {
					return cmpOrdered(t1.Compare(t2), 0, op)
				}
			}
		}
		if !exact {
			got, w = strings.ToLower(got), strings.ToLower(w)
		}
		switch op {
		case "eq":
			return got == w
		case "co":
			return strings.Contains(got, w)
		case "sw":
			return strings.HasPrefix(got, w)
		case "ew":
			return strings.HasSuffix(got, w)
		default:
			return cmpOrdered(strings.Compare(got, w), 0, op)
		}
	}
	return false
}

func cmpOrdered[T int | float64](a, b T, op string) bool {
	switch op {
	case "eq":
		return a == b
	case "gt":
		return a > b
	case "ge":
		return a >= b
	case "lt":
		return a < b
	case "le":
		return a <= b
	}
	return false
}

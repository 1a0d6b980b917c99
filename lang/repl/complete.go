package repl

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/scimsync/scimsync/builtins"
)

// incomplete reports whether an expression is still open at its end: in a
// string, inside brackets, or after an operator that needs a right side
// (&& || ?? + == and …), as the pipe language continues an expression on
// the next line.
func incomplete(text string) bool {
	st := scan(text)
	if st.quote != 0 || st.depth > 0 {
		return true
	}
	t := strings.TrimRight(st.code, " \t\r\n")
	for _, op := range continuing {
		if strings.HasSuffix(t, op) {
			return true
		}
	}
	for _, word := range []string{"and", "or", "not", "in", "matches", "contains", "startsWith", "endsWith"} {
		if strings.HasSuffix(t, word) {
			before := strings.TrimSuffix(t, word)
			if before != "" && (before[len(before)-1] == ' ' || before[len(before)-1] == ')') {
				return true
			}
		}
	}
	return false
}

// continuing are the operators after which an expression cannot end.
var continuing = []string{"&&", "||", "??", "?", ":", "+", "-", "*", "/", "%", "==", "!=", "<", ">", "<=", ">=", ",", "!", "|", "."}

// scanState is where a scan of an expression ended.
type scanState struct {
	quote rune   // the open string's quote, or 0
	depth int    // open brackets
	code  string // the text with comments removed (strings kept)
}

// scan walks an expression as expr's lexer would, far enough to know
// whether a string, a bracket or a comment is open at the end.
func scan(text string) scanState {
	var st scanState
	var code strings.Builder
	escaped := false
	for i := 0; i < len(text); {
		c, n := utf8.DecodeRuneInString(text[i:])
		if st.quote != 0 {
			switch {
			case escaped:
				escaped = false
			case c == '\\' && st.quote != '`':
				escaped = true
			case c == st.quote:
				st.quote = 0
			}
			code.WriteRune(c)
			i += n
			continue
		}
		switch {
		case c == '"' || c == '\'' || c == '`':
			st.quote = c
		case c == '(' || c == '[' || c == '{':
			st.depth++
		case c == ')' || c == ']' || c == '}':
			if st.depth > 0 {
				st.depth--
			}
		case strings.HasPrefix(text[i:], "//"):
			j := strings.IndexByte(text[i:], '\n')
			if j < 0 {
				i = len(text)
			} else {
				i += j
			}
			continue
		case strings.HasPrefix(text[i:], "/*"):
			j := strings.Index(text[i+2:], "*/")
			if j < 0 {
				st.depth++ // an open comment continues too
				i = len(text)
			} else {
				i += j + 4
			}
			continue
		}
		code.WriteRune(c)
		i += n
	}
	st.code = code.String()
	return st
}

// variables are the names every expression sees besides the attributes.
var variables = []string{"attrs", "changeType", "changed", "dn", "oldDN"}

// Complete returns the completions of the word that ends at pos (a count
// of runes into line, as line editors report the cursor): command names
// after a leading ':', file names after :load, :entries, :patch and :save,
// the sample entries' DNs after :entry, command and function names after
// :help, and otherwise the function names, the
// variables, the endpoint names and the current entry's attribute names.
// Each completion replaces the whole word. Nothing is offered inside a
// string literal.
func (r *REPL) Complete(line string, pos int) []string {
	_, words, _ := r.CompleteWord(line, pos)
	return words
}

// CompleteWord is Complete in the shape of github.com/peterh/liner's
// WordCompleter: the line before the word, the completions of the word, and
// the line after the cursor.
func (r *REPL) CompleteWord(line string, pos int) (head string, completions []string, tail string) {
	rs := []rune(line)
	pos = min(max(pos, 0), len(rs))
	before, tail := string(rs[:pos]), string(rs[pos:])
	full := before
	if r.pending != "" {
		full = r.pending + "\n" + before
	}

	// A command name.
	if !strings.Contains(strings.TrimLeft(full, " \t"), " ") && strings.HasPrefix(strings.TrimLeft(full, " \t"), ":") {
		lead := len(before) - len(strings.TrimLeft(before, " \t"))
		word := before[lead:]
		var out []string
		for _, c := range commands {
			if !c.quiet && strings.HasPrefix(":"+c.name, word) {
				out = append(out, ":"+c.name)
			}
		}
		return before[:lead], out, tail
	}
	trimmed := strings.TrimLeft(full, " \t")
	if strings.HasPrefix(trimmed, ":") {
		name, rest, _ := strings.Cut(trimmed[1:], " ")
		c := findCommand(name)
		switch {
		case c == nil:
			return before, nil, tail
		case c.file:
			start := len(before) - len(rest)
			if start < 0 || strings.ContainsAny(rest, " \t") {
				return before, nil, tail
			}
			return before[:start], completeFile(rest), tail
		case c.name == "entry":
			// The DNs of the sample entries (a DN may hold blanks: the
			// whole rest of the line is the word), case-insensitively.
			start := len(before) - len(rest)
			if start < 0 {
				return before, nil, tail
			}
			var out []string
			lp := strings.ToLower(rest)
			for _, ch := range r.changes {
				if strings.HasPrefix(strings.ToLower(ch.DN), lp) && !slices.Contains(out, ch.DN) {
					out = append(out, ch.DN)
				}
			}
			slices.Sort(out)
			return before[:start], out, tail
		case c.name == "help":
			start := len(before) - len(rest)
			if start < 0 {
				return before, nil, tail
			}
			var out []string
			for _, n := range r.helpNames() {
				if strings.HasPrefix(n, rest) {
					out = append(out, n)
				}
			}
			return before[:start], out, tail
		case !c.expr:
			return before, nil, tail
		}
	}

	// An expression: the identifier before the cursor.
	if scan(full).quote != 0 {
		return before, nil, tail
	}
	start := len(before)
	for start > 0 {
		c, n := utf8.DecodeLastRuneInString(before[:start])
		if !isIdent(c) {
			break
		}
		start -= n
	}
	word := before[start:]
	if word == "" || word[0] >= '0' && word[0] <= '9' {
		return before, nil, tail
	}
	if start > 0 && before[start-1] == '.' {
		return before, nil, tail // a field or method: not a name of ours
	}
	return before[:start], r.names(word), tail
}

func isIdent(c rune) bool {
	return c == '_' || c == '$' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// names returns the names an expression can use that start with prefix:
// functions and variables (case-sensitively), and the current entry's
// attributes (case-insensitively, as LDAP compares them; the entry's
// spelling is offered).
func (r *REPL) names(prefix string) []string {
	var out []string
	add := func(n string) {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	for _, list := range [][]string{builtins.Names(), exprBuiltins(), {"ref"}, variables, r.endpointNames()} {
		for _, n := range list {
			if strings.HasPrefix(n, prefix) {
				add(n)
			}
		}
	}
	if ch, _ := r.Current(); ch != nil {
		lp := strings.ToLower(prefix)
		for _, a := range ch.Entry.Attrs() {
			if strings.HasPrefix(strings.ToLower(a.Name), lp) && identifier(a.Name) {
				add(a.Name)
			}
		}
	}
	slices.Sort(out)
	return out
}

func identifier(s string) bool {
	for _, c := range s {
		if !isIdent(c) {
			return false
		}
	}
	return s != ""
}

func (r *REPL) endpointNames() []string {
	if r.p == nil {
		return nil
	}
	var out []string
	for _, e := range r.p.Endpoints {
		out = append(out, e.Name)
	}
	return out
}

// helpNames are what :help explains: commands (with their ':'), functions.
func (r *REPL) helpNames() []string {
	var out []string
	for _, c := range commands {
		if !c.quiet {
			out = append(out, ":"+c.name)
		}
	}
	out = append(out, builtins.Names()...)
	out = append(out, exprBuiltins()...)
	out = append(out, "ref")
	slices.Sort(out)
	return slices.Compact(out)
}

// completeFile completes a file name; folders end with a slash.
func completeFile(prefix string) []string {
	matches, _ := filepath.Glob(globEscape(prefix) + "*")
	var out []string
	for _, m := range matches {
		if strings.HasPrefix(filepath.Base(m), ".") && !strings.HasPrefix(filepath.Base(prefix), ".") {
			continue
		}
		if fi, err := os.Stat(m); err == nil && fi.IsDir() {
			m += string(filepath.Separator)
		}
		if strings.HasPrefix(prefix, "./") && !strings.HasPrefix(m, "./") {
			m = "./" + m
		}
		out = append(out, m)
	}
	return out
}

func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

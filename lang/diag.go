package lang

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Diagnostic is one problem found in a pipe script, at a position.
//
// It renders two ways: Error gives the one-line form `file:line:col: message`
// for logs and editors' quickfix lists; Render adds the source line and a
// caret, for `scimsync check` and start-up.
type Diagnostic struct {
	Pos  Pos
	Len  int    // runes to underline; 0 or 1 draws a single caret
	Msg  string // lowercase, no trailing period
	Hint string // optional second line, e.g. how to fix it
	// Warning marks a problem that does not stop the load: the script is
	// valid, but some changes will fail (see Pipe.Warnings). Both
	// renderings say "warning: " before the message.
	Warning bool
}

// label is the message as rendered, "warning: " first for a warning.
func (d *Diagnostic) label() string {
	if d.Warning {
		return "warning: " + d.Msg
	}
	return d.Msg
}

// Error returns the one-line form.
func (d *Diagnostic) Error() string {
	s := fmt.Sprintf("%s:%d:%d: %s", d.Pos.File, d.Pos.Line, d.Pos.Col, d.label())
	if d.Hint != "" {
		s += " (" + d.Hint + ")"
	}
	return s
}

// Render writes the one-line form, then the source line with a caret under
// the position, in the gutter style of Rust and Alloy.
func (d *Diagnostic) Render(w io.Writer, src *Source) {
	fmt.Fprintf(w, "%s:%d:%d: %s\n", d.Pos.File, d.Pos.Line, d.Pos.Col, d.label())
	if src == nil || d.Pos.Line < 1 {
		if d.Hint != "" {
			fmt.Fprintf(w, "  = hint: %s\n", d.Hint)
		}
		return
	}
	num := strconv.Itoa(d.Pos.Line)
	pad := strings.Repeat(" ", len(num))
	line := strings.ReplaceAll(src.Line(d.Pos.Line), "\t", " ")
	fmt.Fprintf(w, "%s |\n", pad)
	fmt.Fprintf(w, "%s | %s\n", num, strings.TrimRight(line, " "))
	n := d.Len
	if n < 1 {
		n = 1
	}
	if rest := utf8.RuneCountInString(line) - (d.Pos.Col - 1); n > rest && rest > 0 {
		n = rest
	}
	fmt.Fprintf(w, "%s | %s%s\n", pad, strings.Repeat(" ", d.Pos.Col-1), strings.Repeat("^", n))
	if d.Hint != "" {
		fmt.Fprintf(w, "%s = hint: %s\n", pad, d.Hint)
	}
}

// MaxDiagnostics caps how many diagnostics a load reports: past it, later
// errors are mostly consequences of earlier ones.
const MaxDiagnostics = 10

// Diagnostics is every problem a load found, sorted by position. It is an
// error; its Error method gives the one-line forms, one per line.
type Diagnostics struct {
	Source *Source
	List   []*Diagnostic
}

// Error returns the one-line forms, one per line.
func (ds *Diagnostics) Error() string {
	var b strings.Builder
	for i, d := range ds.List {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(d.Error())
	}
	return b.String()
}

// Render writes every diagnostic with its source line and caret, and a count
// when there is more than one.
func (ds *Diagnostics) Render(w io.Writer) {
	warnings := 0
	for i, d := range ds.List {
		if i > 0 {
			fmt.Fprintln(w)
		}
		d.Render(w, ds.Source)
		if d.Warning {
			warnings++
		}
	}
	if n := len(ds.List); n > 1 {
		errs := n - warnings
		switch {
		case warnings == 0:
			fmt.Fprintf(w, "\n%d errors\n", n)
		case errs == 0:
			fmt.Fprintf(w, "\n%d warnings\n", n)
		default:
			fmt.Fprintf(w, "\n%d %s, %d %s\n", errs, plural(errs, "error"), warnings, plural(warnings, "warning"))
		}
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func (ds *Diagnostics) sort() {
	sort.SliceStable(ds.List, func(i, j int) bool {
		a, b := ds.List[i].Pos, ds.List[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Offset < b.Offset
	})
	// One message per position is enough.
	out := ds.List[:0]
	for i, d := range ds.List {
		if i > 0 && d.Pos == ds.List[i-1].Pos && d.Msg == ds.List[i-1].Msg {
			continue
		}
		out = append(out, d)
	}
	ds.List = out
	if len(ds.List) > MaxDiagnostics {
		ds.List = ds.List[:MaxDiagnostics]
	}
}

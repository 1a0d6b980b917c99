package repl

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/logsafe"
	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/lang"
)

// shown returns a value as the REPL prints it, in expr's literal syntax
// and as JSON, or secret.Withheld for both when it is a password: the
// target is one, or the value holds a value of one of the entry's password
// attributes (a mapping that copies userPassword elsewhere).
func shown(ch *lang.Change, key string, v any) (string, any) {
	text := formatValue(v)
	if key == "password" || strings.HasSuffix(key, ":password") {
		return secret.Withheld, secret.Withheld
	}
	for _, a := range ch.Entry.Attrs() {
		if !lang.IsSecretAttribute(a.Name) {
			continue
		}
		for _, s := range a.Values {
			if s != "" && strings.Contains(text, s) {
				return secret.Withheld, secret.Withheld
			}
		}
	}
	return text, jsonValue(v)
}

// row is one sample entry in :map --all.
type row struct {
	N        int            `json:"entry"`
	DN       string         `json:"dn"`
	Change   string         `json:"change"`
	Class    string         `json:"class,omitempty"`
	Endpoint string         `json:"endpoint,omitempty"`
	Values   map[string]any `json:"values,omitempty"` // target -> value, as JSON
	Note     string         `json:"note,omitempty"`   // out of scope, a delete
	Error    string         `json:"error,omitempty"`

	cells []string
}

// cutFlag removes a --flag word from args and reports whether it was there.
func cutFlag(args, flag string) (string, bool) {
	words := splitTargets(args)
	found := false
	var rest []string
	for _, w := range words {
		if w == flag {
			found = true
			continue
		}
		rest = append(rest, w)
	}
	return strings.Join(rest, " "), found
}

// splitTargets splits target paths at blanks outside brackets and quotes,
// so that emails[type eq "work"].value is one.
func splitTargets(s string) []string {
	var out []string
	var cur strings.Builder
	depth, quote := 0, rune(0)
	for _, c := range s {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '[':
			depth++
		case c == ']':
			depth--
		case (c == ' ' || c == '\t') && depth <= 0:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
			continue
		}
		cur.WriteRune(c)
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	for i, t := range out {
		if u, err := strconv.Unquote(t); err == nil && strings.HasPrefix(t, `"`) {
			out[i] = u // a quoted target, as in a script
		}
	}
	return out
}

func (r *REPL) cmdTable(arg string) error {
	if err := r.needPipe(); err != nil {
		return err
	}
	arg, asJSON := cutFlag(arg, "--json")
	targets := splitTargets(arg)
	for _, t := range targets {
		if strings.HasPrefix(t, "-") {
			return r.failf("unknown flag %s: :map --all [--json] [TARGET...]", t)
		}
	}
	if len(targets) == 0 {
		for _, ov := range r.overrides {
			if !ov.setting && !containsFold(targets, ov.target) {
				targets = append(targets, ov.target)
			}
		}
	}
	if len(r.changes) == 0 {
		r.position()
		return nil
	}
	rows := make([]*row, 0, len(r.changes))
	failed := 0
	for i, ch := range r.changes {
		rw := r.tableRow(i, ch, targets)
		if rw.Error != "" {
			failed++
		}
		rows = append(rows, rw)
	}
	if asJSON {
		enc := json.NewEncoder(r.out)
		enc.SetEscapeHTML(false)
		for _, rw := range rows {
			if err := enc.Encode(rw); err != nil {
				return r.failf("%v", err)
			}
		}
		return nil
	}
	var buf strings.Builder
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	// Every row has every cell, each ended by a tab, so that the columns
	// line up over the whole table; a note or an error follows the cells.
	head := []string{"#", "entry", "class", "endpoint"}
	head = append(head, targets...)
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, rw := range rows {
		cells := []string{fmt.Sprint(rw.N), rw.Change + " " + rw.DN, dash(rw.Class), dash(rw.Endpoint)}
		tail := ""
		switch {
		case rw.Error != "":
			tail = "error: " + rw.Error
		case rw.Note != "":
			tail = rw.Note
		}
		if rw.cells == nil {
			rw.cells = make([]string, len(targets))
		}
		cells = append(cells, rw.cells...)
		fmt.Fprintln(tw, strings.TrimRight(strings.Join(cells, "\t")+"\t"+tail, " "))
	}
	tw.Flush()
	for _, l := range lines(buf.String()) {
		fmt.Fprintln(r.out, strings.TrimRight(l, " "))
	}
	summary := plural(len(rows), "entry", "entries")
	if failed > 0 {
		summary += fmt.Sprintf(", %d failed", failed)
	}
	if len(targets) == 0 {
		summary += "; name targets to see their values (:map --all displayName)"
	}
	fmt.Fprintln(r.out, summary)
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// tableRow evaluates one change for :map --all. Whatever fails is the
// row's error: it never stops the other rows.
func (r *REPL) tableRow(i int, ch *lang.Change, targets []string) *row {
	rw := &row{N: i + 1, DN: ch.DN, Change: ch.Type.String()}
	res, err := r.ev.Eval(ch, r.opts.Mode)
	if err != nil {
		rw.Error = r.oneLine(err)
		// Say which class took it, when a mapping (not `when`) failed.
		if reports, xerr := r.ev.Explain(ch); xerr == nil && len(reports) > 0 && reports[len(reports)-1].Match {
			rw.Class = reports[len(reports)-1].Class.Name
		}
		return rw
	}
	if res.OutOfScope {
		rw.Note = "out of scope"
		return rw
	}
	rw.Class, rw.Endpoint = res.Class.Name, res.Endpoint.Name
	if ch.Type == lang.Delete {
		rw.Note = "delete"
		if res.Class.OnDelete == "deactivate" {
			rw.Note = "delete: deactivate"
		}
		return rw
	}
	var doc []byte
	if len(res.Class.Mappings) > 0 { // a class with no map block has nothing to build
		if doc, err = res.Resource(op(ch), r.refs); err != nil {
			rw.Error = r.oneLine(err)
			return rw
		}
	}
	if len(targets) > 0 {
		rw.Values = map[string]any{}
	}
	for _, t := range targets {
		text, v := r.targetValue(res, doc, t)
		rw.Values[t] = v
		rw.cells = append(rw.cells, text)
	}
	return rw
}

// targetValue is what the result gives for a target, as text in expr's
// literal syntax and as a JSON value: the mapping's value when the class
// maps that target, else what the built resource holds there (a whole
// attribute mapped in parts), else "-" (JSON null).
func (r *REPL) targetValue(res *lang.Result, doc []byte, target string) (string, any) {
	key := canon(r.p, res.Class.Name, target)
	for _, m := range res.Class.Mappings {
		if canon(r.p, res.Class.Name, m.Target.String()) == key {
			return shown(res.Change, key, res.Value(m))
		}
	}
	for _, m := range res.Class.Mappings {
		if strings.EqualFold(m.Target.Attr, target) && m.Target.URN == "" {
			p := m.Target
			p.Filter, p.Sub = nil, ""
			if v := gjson.GetBytes(doc, p.JSONPath()); v.Exists() {
				return shown(res.Change, key, v.Value())
			}
			return "nil", nil
		}
	}
	return "-", nil
}

// jsonValue returns v as it goes into JSON: as itself when it marshals,
// else (references, times) in expr's literal syntax.
func jsonValue(v any) any {
	switch v.(type) {
	case nil, string, bool, float64, int, int64, []string, []any, map[string]any:
		return v
	}
	if _, err := json.Marshal(v); err == nil {
		if _, ok := v.(fmt.Stringer); !ok {
			return v
		}
	}
	return formatValue(v)
}

// oneLine renders an evaluation error on one line, its position in what
// the user sees (a typed line, or the script as read).
func (r *REPL) oneLine(err error) string {
	var ee *lang.EvalError
	if errors.As(err, &ee) && r.p != nil && ee.Pos.File == r.p.Script().Name {
		d, _ := r.relocate(&lang.Diagnostic{Pos: ee.Pos, Msg: ee.What + ": " + logsafe.Text(ee.Msg)})
		return d.Error()
	}
	return strings.ReplaceAll(err.Error(), "\n", " ")
}

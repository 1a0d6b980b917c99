package repl

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/lang"
)

// A mapping line typed at the prompt (`displayName = upper(first(cn))`)
// becomes an override: the class's line for that target is replaced by the
// typed one (or the typed one is added to the class's map block), and the
// whole script is compiled again from that text. So a typed line is checked
// exactly as the same line in the file would be, with the same diagnostics,
// and :save has only to write that text back.

// override is one typed line that stands in for a line of the script.
type override struct {
	class   string
	key     string // the setting's name, or the target's canonical path (lower case)
	target  string // as typed
	setting bool   // a class setting (when, endpoint, …), not a mapping
	text    string // the line as typed, from its first byte to the end of its expression
}

// classSettings are the settings a class block takes: a typed `when = …`
// is one of these rather than a mapping.
var classSettings = []string{"base", "operations", "onDelete", "onLeave", "when", "endpoint"}

// edit is where an override went in the script the pipe was compiled from.
type edit struct {
	oStart, oEnd int // the replaced bytes of the script as read (oStart == oEnd: an insertion)
	nStart, nEnd int // what replaced them, in the compiled script
	pre          int // offset of the override's text within what replaced them
	ov           *override
}

// fileStamp is what the automatic reload compares: a script file's size
// and modification time when it was read.
type fileStamp struct {
	size int64
	mod  time.Time
}

// scriptFile returns the stamp of the pipe script on disk, or false when
// the pipe is not a file on disk (the embedded demo) or cannot be read.
func (r *REPL) scriptFile() (fileStamp, bool) {
	if r.pipePath == "" || r.loadOpts.ReadFile != nil {
		return fileStamp{}, false
	}
	fi, err := os.Stat(r.pipePath)
	if err != nil {
		return fileStamp{}, false
	}
	return fileStamp{fi.Size(), fi.ModTime()}, true
}

// reloadIfChanged reloads the pipe when its script file changed on disk
// since it was read (an editor saved it), and says so: the session always
// shows what the file says, with the overrides on top.
func (r *REPL) reloadIfChanged() {
	st, ok := r.scriptFile()
	if !ok || !r.stamped || st == r.stamp {
		return
	}
	fmt.Fprintf(r.out, "%s changed on disk: reloading it\n", r.pipePath)
	_ = r.cmdLoad("")
}

// canon returns the canonical form of a class's target, as the compiler
// compares targets: parsed against the class's schemas, lower case, with
// the core schema's URN dropped.
func canon(p *lang.Pipe, class, target string) string {
	if p == nil {
		return strings.ToLower(target)
	}
	cl := p.Class(class)
	if cl == nil {
		return strings.ToLower(target)
	}
	eps := cl.Endpoints(p)
	var urns []string
	for _, e := range eps {
		urns = append(urns, e.Schemas...)
	}
	path, err := scim.ParsePath(target, urns)
	if err != nil {
		return strings.ToLower(target)
	}
	for _, e := range eps {
		if len(e.Schemas) > 0 && strings.EqualFold(path.URN, e.Schemas[0]) {
			path.URN = ""
		}
	}
	return strings.ToLower(path.String())
}

// splice returns the script text with the overrides in place of the lines
// they stand for, where each went, and the overrides whose class the
// script no longer has. A line with no counterpart in the script is added
// as the last line of the class's map block, or of the class for a
// setting; a class without a map block gets one.
func splice(p *lang.Pipe, base string, layout []*lang.ClassLayout, ovs []*override) (string, []edit, []*override) {
	type raw struct {
		start, end int
		text       string
		pre        int
		ov         *override // nil: a line of a new map block's own
	}
	var raws []raw
	var dropped []*override
	// Added lines, per class: at the end of the class, at the end of its
	// map block, and in a new map block.
	type adds struct{ settings, mapLines, newMap []*override }
	added := map[*lang.ClassLayout]*adds{}
	var order []*lang.ClassLayout
	for _, ov := range ovs {
		var cl *lang.ClassLayout
		for _, c := range layout {
			if c.Name == ov.class {
				cl = c
			}
		}
		if cl == nil {
			dropped = append(dropped, ov)
			continue
		}
		if added[cl] == nil {
			added[cl] = &adds{}
			order = append(order, cl)
		}
		a := added[cl]
		replaced := false
		if ov.setting {
			for _, s := range cl.Settings {
				if s.Key == ov.key {
					raws = append(raws, raw{s.Start, s.End, ov.text, 0, ov})
					replaced = true
				}
			}
			if !replaced {
				a.settings = append(a.settings, ov)
			}
			continue
		}
		if cl.Map == nil {
			a.newMap = append(a.newMap, ov)
			continue
		}
		for _, l := range cl.Map.Lines {
			if canon(p, ov.class, l.Key) == ov.key {
				raws = append(raws, raw{l.Start, l.End, ov.text, 0, ov})
				replaced = true
			}
		}
		if !replaced {
			a.mapLines = append(a.mapLines, ov)
		}
	}
	// insert adds lines (an override each, or a line of its own) before
	// the } at close, as the block's last elements, indented as the
	// element that starts at prev (or one step more than the brace).
	type line struct {
		ind, text string
		ov        *override
	}
	insert := func(close, prev int, ls []line) {
		if len(ls) == 0 {
			return
		}
		braceIndent := indentAt(base, close)
		lstart := strings.LastIndexByte(base[:close], '\n') + 1
		ind := braceIndent + "  "
		if prev >= lstart {
			prev = -1 // on the brace's line: `class x { endpoint = Users }`
		}
		if prev >= 0 {
			ind = indentAt(base, prev)
		}
		// When the } is alone on its line, the lines go before that line;
		// else the blanks before the } become a line break, the lines, and
		// the brace's indentation.
		at, from, lead, trail := lstart, lstart, "", ""
		if strings.TrimSpace(base[lstart:close]) != "" {
			from = lstart + len(strings.TrimRight(base[lstart:close], " \t"))
			at, lead, trail = close, "\n", braceIndent
		}
		for i, l := range ls {
			text := ind + l.ind + l.text + "\n"
			pre := len(ind) + len(l.ind)
			start := at
			if i == 0 {
				text, pre, start = lead+text, pre+len(lead), from
			}
			if i == len(ls)-1 {
				text += trail
			}
			end := at
			if i > 0 {
				start = at
			}
			raws = append(raws, raw{start, end, text, pre, l.ov})
		}
	}
	for _, cl := range order {
		a := added[cl]
		var ls []line
		settings := a.settings
		if n := len(cl.Settings); n > 0 && len(settings) > 0 {
			// A new setting goes after the class's last one, when that
			// one ends its line before the class's }.
			last := cl.Settings[n-1]
			if nl := strings.IndexByte(base[last.End:], '\n'); nl >= 0 && last.End+nl < cl.End {
				at := last.End + nl + 1
				ind := indentAt(base, last.Start)
				for _, ov := range settings {
					raws = append(raws, raw{at, at, ind + ov.text + "\n", len(ind), ov})
				}
				settings = nil
			}
		}
		for _, ov := range settings {
			ls = append(ls, line{text: ov.text, ov: ov})
		}
		if len(a.newMap) > 0 {
			ls = append(ls, line{text: "map {"})
			for _, ov := range a.newMap {
				ls = append(ls, line{ind: "  ", text: ov.text, ov: ov})
			}
			ls = append(ls, line{text: "}"})
		}
		insert(cl.End, lastStart(cl.Settings), ls)
		if cl.Map != nil {
			ls = nil
			for _, ov := range a.mapLines {
				ls = append(ls, line{text: ov.text, ov: ov})
			}
			insert(cl.Map.Close, lastStart(cl.Map.Lines), ls)
		}
	}
	slices.SortStableFunc(raws, func(a, b raw) int { return a.start - b.start })
	var out strings.Builder
	var edits []edit
	at := 0
	for _, e := range raws {
		if e.start < at { // two overrides of one line: cannot happen, keys are unique
			continue
		}
		out.WriteString(base[at:e.start])
		n := out.Len()
		out.WriteString(e.text)
		edits = append(edits, edit{oStart: e.start, oEnd: e.end, nStart: n, nEnd: out.Len(), pre: e.pre, ov: e.ov})
		at = e.end
	}
	out.WriteString(base[at:])
	return out.String(), edits, dropped
}

// lastStart returns where the last of spans starts, or -1.
func lastStart(spans []lang.LineSpan) int {
	if len(spans) == 0 {
		return -1
	}
	return spans[len(spans)-1].Start
}

// indentAt returns the blanks that start the line holding offset off.
func indentAt(text string, off int) string {
	ls := strings.LastIndexByte(text[:off], '\n') + 1
	i := ls
	for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
		i++
	}
	return text[ls:i]
}

// where maps an offset of the compiled script to what to show: the typed
// line of an override (the offset within it), or the script as read.
func (r *REPL) where(off int) (*lang.Source, int) {
	delta := 0
	for _, e := range r.edits {
		if e.ov != nil && off >= e.nStart+e.pre && off <= e.nStart+e.pre+len(e.ov.text) {
			return lang.NewSource(inputName, e.ov.text), off - e.nStart - e.pre
		}
		if off >= e.nEnd {
			delta += (e.nEnd - e.nStart) - (e.oEnd - e.oStart)
		}
	}
	return r.baseSrc, max(0, off-delta)
}

// relocate returns the diagnostic as it reads against what the user sees.
func (r *REPL) relocate(d *lang.Diagnostic) (*lang.Diagnostic, *lang.Source) {
	if r.baseSrc == nil || d.Pos.File != r.baseSrc.Name || len(r.edits) == 0 {
		return d, nil
	}
	src, off := r.where(d.Pos.Offset)
	nd := *d
	nd.Pos = src.Pos(off)
	return &nd, src
}

// renderDiags renders a load's diagnostics against the typed lines and the
// script as read, as Diagnostics.Render does.
func (r *REPL) renderDiags(w io.Writer, ds *lang.Diagnostics) {
	if len(r.edits) == 0 {
		ds.Render(w)
		return
	}
	warnings := 0
	for i, d := range ds.List {
		if i > 0 {
			fmt.Fprintln(w)
		}
		nd, src := r.relocate(d)
		if src == nil {
			src = ds.Source
		}
		nd.Render(w, src)
		if d.Warning {
			warnings++
		}
	}
	if n := len(ds.List); n > 1 {
		fmt.Fprintf(w, "\n%s\n", plural(n, "problem", "problems"))
	}
}

// compileWith compiles the script as read with the overrides in place. On
// success it makes that the session's pipe; on failure it renders the
// problems and leaves the session as it was.
func (r *REPL) compileWith(ovs []*override) error {
	text, edits, dropped := splice(r.p, r.base, r.layout, ovs)
	p, err := lang.Load(r.pipePath, text, r.loadOpts)
	if err != nil {
		saved := r.edits
		r.edits = edits
		var ds *lang.Diagnostics
		if errors.As(err, &ds) {
			r.renderDiags(r.out, ds)
		} else {
			r.errorf("%v", err)
		}
		r.edits = saved
		return err
	}
	for _, ov := range dropped {
		fmt.Fprintf(r.out, "dropped the override of %s.%s: the script has no class %s now\n", ov.class, ov.target, ov.class)
	}
	keep := ovs[:0:0]
	for _, ov := range ovs {
		if !slices.Contains(dropped, ov) {
			keep = append(keep, ov)
		}
	}
	r.setPipe(p, text, edits, keep)
	return nil
}

// setPipe makes p, compiled from text, the session's pipe.
func (r *REPL) setPipe(p *lang.Pipe, text string, edits []edit, ovs []*override) {
	r.p, r.loaded, r.compiled, r.edits, r.overrides = p, r.pipePath, text, edits, ovs
	r.ev = p.NewEvaluator()
	r.refs = nil
	if r.dir != nil {
		r.refs = r.dir.Resolver(p, r.opts.Mode)
	}
}

// targetClass returns the class a typed mapping line goes to: the one
// chosen with :class NAME, else the current entry's.
func (r *REPL) targetClass() (string, error) {
	if r.chosen != "" {
		return r.chosen, nil
	}
	if len(r.p.Classes) == 1 {
		return r.p.Classes[0].Name, nil
	}
	ch, _ := r.Current()
	if ch == nil {
		return "", r.failf("no current entry to take the class from: choose one with :class NAME")
	}
	res, err := r.ev.Eval(ch, r.opts.Mode)
	if err != nil {
		return "", r.evalFailed(err)
	}
	if res.OutOfScope {
		return "", r.failf("the current entry is out of scope (:class says why): choose the class with :class NAME")
	}
	return res.Class.Name, nil
}

// assign handles a mapping line typed at the prompt.
func (r *REPL) assign(line string, ls *lang.LineSpan) error {
	if err := r.needPipe(); err != nil {
		return err
	}
	if r.base == "" && r.compiled == "" {
		return r.failf("the pipe's text is not at hand: :load it again")
	}
	class, err := r.targetClass()
	if err != nil {
		return err
	}
	ov := &override{class: class, target: ls.Key, text: line[ls.Start:ls.End]}
	if slices.Contains(classSettings, ls.Key) && len(ls.Usage) == 0 {
		ov.setting, ov.key = true, ls.Key
	} else {
		ov.key = canon(r.p, class, ls.Key)
	}
	ovs := slices.Clone(r.overrides)
	replaced := false
	for i, o := range ovs {
		if o.class == ov.class && o.key == ov.key && o.setting == ov.setting {
			ovs[i], replaced = ov, true
		}
	}
	if !replaced {
		ovs = append(ovs, ov)
	}
	before := r.showState(ov)
	if err := r.compileWith(ovs); err != nil {
		return err
	}
	after := r.showState(ov)
	name := class + "." + ov.target
	switch {
	case after.err != nil:
		fmt.Fprintf(r.out, "%s: set, but it fails on the current entry:\n", name)
		return r.evalFailed(after.err)
	case after.note != "":
		fmt.Fprintf(r.out, "%s: set (%s)\n", name, after.note)
	case ov.setting && before.text == after.text:
		fmt.Fprintf(r.out, "%s: set; %s, as before\n", name, after.text)
	case before.err != nil || before.note != "":
		fmt.Fprintf(r.out, "%s: %s\n", name, after.text)
	default:
		fmt.Fprintf(r.out, "%s: %s (was %s)\n", name, after.text, before.text)
	}
	return nil
}

// state is what an override's target (or setting) gives for the current
// entry.
type state struct {
	text string // the value, or for a setting the class and endpoint
	note string // why there is no value: no entry, another class
	err  error
}

func (r *REPL) showState(ov *override) state {
	ch, _ := r.Current()
	if ch == nil {
		return state{note: "no current entry to show it on"}
	}
	res, err := r.ev.Eval(ch, r.opts.Mode)
	if err != nil {
		return state{err: err}
	}
	if ov.setting {
		if res.OutOfScope {
			return state{text: "the current entry is out of scope"}
		}
		return state{text: fmt.Sprintf("the current entry goes to class %s, endpoint %s", res.Class.Name, res.Endpoint.Name)}
	}
	if res.OutOfScope {
		return state{note: "the current entry is out of scope; :map --all shows every entry"}
	}
	if res.Class.Name != ov.class {
		return state{note: fmt.Sprintf("the current entry is in class %s; :map --all shows every entry", res.Class.Name)}
	}
	if ch.Type == lang.Delete {
		return state{note: "the current change is a delete"}
	}
	for _, m := range res.Class.Mappings {
		if canon(r.p, ov.class, m.Target.String()) == ov.key {
			text, _ := shown(ch, ov.key, res.Value(m))
			return state{text: text}
		}
	}
	return state{text: "not mapped"}
}

func (r *REPL) cmdUnset(arg string) error {
	if err := r.needPipe(); err != nil {
		return err
	}
	if arg == "" {
		return r.failf("name the target: :unset TARGET (:overrides lists them)")
	}
	var match []int
	for i, o := range r.overrides {
		if (r.chosen == "" || o.class == r.chosen) &&
			(o.setting && o.key == arg || !o.setting && o.key == canon(r.p, o.class, arg)) {
			match = append(match, i)
		}
	}
	switch {
	case len(match) == 0:
		return r.failf("no override of %s: :overrides lists them", arg)
	case len(match) > 1:
		return r.failf("%s is overridden in several classes: choose one with :class NAME", arg)
	}
	ov := r.overrides[match[0]]
	ovs := slices.Delete(slices.Clone(r.overrides), match[0], match[0]+1)
	if err := r.compileWith(ovs); err != nil {
		return err
	}
	fmt.Fprintf(r.out, "%s.%s: back to what the script says\n", ov.class, ov.target)
	return nil
}

func (r *REPL) cmdOverrides(string) error {
	if len(r.overrides) == 0 {
		fmt.Fprintln(r.out, "no overrides: type a mapping line (target = expression) to try one")
		return nil
	}
	src := r.baseSrc
	for _, e := range r.edits {
		if e.ov == nil {
			continue
		}
		where := "added"
		if e.oStart != e.oEnd {
			where = fmt.Sprintf("replaces line %d", src.Pos(e.oStart).Line)
		}
		fmt.Fprintf(r.out, "class %s: %s  (%s)\n", e.ov.class, e.ov.text, where)
	}
	fmt.Fprintln(r.out, ":unset TARGET drops one, :save writes them into the script")
	return nil
}

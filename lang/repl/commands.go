package repl

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	exprbuiltin "github.com/expr-lang/expr/builtin"
	"github.com/tidwall/gjson"
	"github.com/tidwall/pretty"

	"github.com/scimsync/scimsync/builtins"
	"github.com/scimsync/scimsync/engine/logsafe"
	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/lang"
)

// command is one :command.
type command struct {
	name  string
	args  string // synopsis of the arguments
	sum   string // one line, for :help's list
	doc   string
	file  bool // the argument is a file name (for completion)
	expr  bool // the argument is an expression (may continue on the next line)
	quiet bool // left out of :help's list (aliases)
	run   func(r *REPL, arg string) error
}

var commands []*command

func init() {
	// Assigned in init: the commands' functions refer to the table (:help).
	commands = []*command{
		{name: "load", sum: "reload the pipe script, or load another", args: "[PIPE]", file: true, run: (*REPL).cmdLoad,
			doc: "Reloads the pipe script (after editing it), or loads another, showing every problem with a caret. On errors the pipe loaded before stays in use."},
		{name: "entries", sum: "read sample entries from an LDIF file", args: "FILE.ldif", file: true, run: (*REPL).cmdEntries,
			doc: "Reads sample entries from an LDIF file: content records are adds (or modifies of an entry seen before), change records are applied in order, so each change carries the entry as it stands after it."},
		{name: "next", sum: "go to the next entry", run: (*REPL).cmdNext, doc: "Moves to the next entry."},
		{name: "prev", sum: "go to the previous entry", run: (*REPL).cmdPrev, doc: "Moves to the previous entry."},
		{name: "entry", sum: "go to the Nth entry, or to the entry with that DN", args: "N|DN", run: (*REPL).cmdEntry,
			doc: "Moves to the Nth entry (counting from 1), or to the first change of the entry with that DN."},
		{name: "show", sum: "show the current entry, as LDIF", run: (*REPL).cmdShow, doc: "Shows the current change: its type and the entry, as LDIF."},
		{name: "class", sum: "which class takes the change; with NAME, where mapping lines go", args: "[NAME|-]", run: (*REPL).cmdClass,
			doc: "Shows which sync class takes the current change, and for each class tried before it, which condition failed (operations, base or when). With a NAME, mapping lines typed at the prompt go to that class; with -, to the current entry's class again (the default)."},
		{name: "map", sum: "the SCIM resource the mappings build; --all: a table of every entry", args: "[--all]", run: (*REPL).cmdMap,
			doc: "Shows the SCIM resource the class's mappings build of the current change, as JSON: for create when the change is an add, for update otherwise. References to other entries show as \"(id of DN)\".\n\nWith --all, evaluates every sample entry and prints one row per entry: its class, its endpoint and the values of the TARGETs (by default the targets of the overrides), or the error that entry gives; an error on one entry never stops the others. --json prints one JSON object per entry and line instead, for tools. :table TARGET... is the same as :map --all TARGET..."},
		{name: "table", sum: "the values of TARGETs on every entry (:map --all)", args: "TARGET...", run: (*REPL).cmdTable,
			doc: "The same as :map --all: every sample entry's class, endpoint and the values of the TARGETs (by default the targets of the overrides), one row per entry."},
		{name: "lookup", sum: "the filter that finds the existing SCIM resource", run: (*REPL).cmdLookup, doc: "Shows the SCIM filter that finds the existing resource of the current change."},
		{name: "patch", sum: "the PATCH that turns the current resource into the mapped one", args: "[FILE.json]", file: true, run: (*REPL).cmdPatch,
			doc: "Shows the RFC 7644 PATCH request that would turn the resource in FILE.json (as the SCIM service returns it) into the one the mappings build, touching only the attributes the class manages. Without a file, reads the resource from the service and shows exactly the requests a sync would send (a create when there is none); nothing is sent."},
		{name: "get", sum: "the current entry's resource, read from the SCIM service", run: (*REPL).cmdGet,
			doc: "Finds the current entry's resource at the SCIM service, as a sync would (by the endpoint's lookup filter), and shows it; read-only."},
		{name: "apply", sum: "send those requests to the service, after asking", run: (*REPL).cmdApply,
			doc: "Shows the requests a sync would send for the current entry, asks, and sends them only on yes. It refuses when standard input is not a terminal, so that no script writes by accident."},
		{name: "overrides", sum: "the mapping lines typed here, standing in for the script's", run: (*REPL).cmdOverrides,
			doc: "Lists the mapping lines (and class settings) typed at the prompt: each stands in for the script's line for the same target in its class, or is added to the class's map block, until :unset or :save. A typed line `target = expression` (with @create, @update, @resync, @realtime if wanted) is compiled exactly as the same line in the script, and goes to the current entry's class, or to the class chosen with :class NAME. when = …, endpoint = … and the other class settings can be typed the same way."},
		{name: "unset", sum: "drop a typed mapping line: back to the script's", args: "TARGET", run: (*REPL).cmdUnset,
			doc: "Drops the override of TARGET (a target path, or a class setting such as when): the script's line for it, if any, applies again."},
		{name: "save", sum: "write the typed mapping lines into the pipe script (or a copy)", args: "[FILE]", file: true, run: (*REPL).cmdSave,
			doc: "Shows the difference, then writes the pipe script with the typed lines in place of the lines they stand for (added at the end of the class's map block when the script has none for that target); every other byte stays as it was, comments included. With a FILE, writes a copy there and leaves the script as it is. The text written must load (as `scimsync check` would), or nothing is written. The embedded demo can only be saved to a FILE."},
		{name: "fetch", sum: "read an entry from the source directory (--ldap)", args: "DN", run: (*REPL).cmdFetch,
			doc: "Reads the entry at DN from the pipe's source directory (read-only) and makes it the current entry. Needs an LDAP connection (scimsync repl --ldap)."},
		{name: "search", sum: "read the entries a filter finds (--ldap)", args: "FILTER", run: (*REPL).cmdSearch,
			doc: "Reads the entries an LDAP filter finds under the source's base DNs (read-only) and moves to the first. Needs an LDAP connection (scimsync repl --ldap)."},
		{name: "funcs", sum: "list the functions, with their signatures", run: (*REPL).cmdFuncs, doc: "Lists the functions expressions can call, with their signatures."},
		{name: "help", sum: "this list, or one command or function explained", args: "[NAME]", run: (*REPL).cmdHelp,
			doc: "Lists the commands; with a NAME, explains that command or function, with examples."},
		{name: "type", sum: "the static type of an expression", args: "EXPR", expr: true, run: (*REPL).cmdType,
			doc: "Shows an expression's static type, as the compiler sees it, without evaluating it."},
		{name: "quit", sum: "leave (or Ctrl-D)", doc: "Leaves the REPL (so does Ctrl-D)."},
		{name: "q", quiet: true},
		{name: "exit", quiet: true},
	}
}

func findCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			if c.quiet {
				return findCommand("quit")
			}
			return c
		}
	}
	return nil
}

func suggestCommand(name string) string {
	var names []string
	for _, c := range commands {
		if !c.quiet {
			names = append(names, c.name)
		}
	}
	if s := scim.Suggest(name, names); s != "" {
		return " (did you mean :" + s + "?)"
	}
	return ""
}

func (r *REPL) cmdLoad(arg string) error {
	if arg != "" && arg != r.pipePath {
		r.pipePath = arg
		r.loadOpts = lang.LoadOptions{LookupEnv: r.opts.Load.LookupEnv} // a file named here is on disk
		if n := len(r.overrides); n > 0 {
			// Typed lines belong to the script they were typed for.
			fmt.Fprintf(r.out, "dropped %s typed for the script loaded before\n", plural(n, "override", "overrides"))
			r.overrides, r.edits, r.chosen = nil, nil, ""
		}
	}
	if r.pipePath == "" {
		return r.failf("name a pipe script: :load PIPE")
	}
	if err := r.loadPipe(true); err != nil {
		return err
	}
	if r.entriesName == "" || r.fromPipe {
		// The pipe's own LDIF file may have changed too, or be another;
		// say so when it is another.
		if err := r.pipeEntries(r.entriesName != r.p.Source.File); err != nil {
			return err
		}
	}
	return nil
}

func (r *REPL) cmdEntries(arg string) error {
	if arg == "" {
		return r.failf("name an LDIF file: :entries FILE.ldif")
	}
	return r.readEntries(arg, true)
}

func (r *REPL) cmdNext(string) error {
	if len(r.changes) == 0 {
		r.position()
		return nil
	}
	if r.cur == len(r.changes)-1 {
		return r.failf("at the last entry (%d)", len(r.changes))
	}
	r.cur++
	r.position()
	return nil
}

func (r *REPL) cmdPrev(string) error {
	if len(r.changes) == 0 {
		r.position()
		return nil
	}
	if r.cur == 0 {
		return r.failf("at the first entry")
	}
	r.cur--
	r.position()
	return nil
}

func (r *REPL) cmdEntry(arg string) error {
	if arg == "" {
		r.position()
		return nil
	}
	if n, err := strconv.Atoi(arg); err == nil {
		if n < 1 || n > len(r.changes) {
			return r.failf("no entry %d: there are %d", n, len(r.changes))
		}
		r.cur = n - 1
		r.position()
		return nil
	}
	key := source.NormalizeDN(arg)
	for i, ch := range r.changes {
		if source.NormalizeDN(ch.DN) == key {
			r.cur = i
			r.position()
			return nil
		}
	}
	return r.failf("no entry has the DN %s", arg)
}

func (r *REPL) cmdShow(string) error {
	ch, _ := r.Current()
	if ch == nil {
		r.position()
		return nil
	}
	r.position()
	writeLDIF(r.out, ch)
	return nil
}

func (r *REPL) cmdClass(arg string) error {
	if err := r.needPipe(); err != nil {
		return err
	}
	switch {
	case arg == "-":
		r.chosen = ""
		fmt.Fprintln(r.out, "mapping lines go to the current entry's class")
		return nil
	case arg != "":
		if r.p.Class(arg) == nil {
			var names []string
			for _, c := range r.p.Classes {
				names = append(names, c.Name)
			}
			hint := ""
			if s := scim.Suggest(arg, names); s != "" {
				hint = " (did you mean " + s + "?)"
			}
			return r.failf("no class %s%s; the classes are %s", arg, hint, strings.Join(names, ", "))
		}
		r.chosen = arg
		fmt.Fprintf(r.out, "mapping lines go to class %s (:class - for the current entry's)\n", arg)
		return nil
	}
	ch := r.change()
	reports, err := r.ev.Explain(ch)
	if err != nil {
		return r.evalFailed(err)
	}
	width := 0
	for _, rep := range reports {
		width = max(width, len(rep.Class.Name))
	}
	for _, rep := range reports {
		if !rep.Match {
			fmt.Fprintf(r.out, "%-*s  no: %s\n", width, rep.Class.Name, rep.Reason)
			continue
		}
		res, err := r.ev.Eval(ch, r.opts.Mode)
		if err != nil {
			fmt.Fprintf(r.out, "%-*s  yes\n", width, rep.Class.Name)
			return r.evalFailed(err)
		}
		fmt.Fprintf(r.out, "%-*s  yes: endpoint %s (%s)\n", width, rep.Class.Name, res.Endpoint.Name, res.Endpoint.Path)
		return nil
	}
	fmt.Fprintf(r.out, "out of scope: no class takes this %s\n", ch.Type)
	return nil
}

// result evaluates the current change; it reports out of scope and errors.
func (r *REPL) result() (*lang.Result, error) {
	if err := r.needPipe(); err != nil {
		return nil, err
	}
	res, err := r.ev.Eval(r.change(), r.opts.Mode)
	if err != nil {
		return nil, r.evalFailed(err)
	}
	if res.OutOfScope {
		return nil, r.failf("out of scope: no class takes this change (:class says why)")
	}
	return res, nil
}

// op is what the resource is built for: create for an add, update otherwise.
func op(ch *lang.Change) lang.Op {
	if ch.Type == lang.Add {
		return lang.Create
	}
	return lang.Update
}

func (r *REPL) cmdMap(arg string) error {
	if arg != "" {
		rest, all := cutFlag(arg, "--all")
		if !all {
			return r.failf("unknown argument %s: :map, or :map --all [--json] [TARGET...]", arg)
		}
		return r.cmdTable(rest)
	}
	res, err := r.result()
	if err != nil {
		return err
	}
	if res.Change.Type == lang.Delete {
		what := "delete"
		if res.Class.OnDelete == "deactivate" {
			what = "deactivate (active = false)"
		}
		fmt.Fprintf(r.out, "class %s, endpoint %s (%s): %s the resource the lookup finds\n", res.Class.Name, res.Endpoint.Name, res.Endpoint.Path, what)
		return nil
	}
	o := op(res.Change)
	if len(res.Class.Mappings) == 0 {
		fmt.Fprintf(r.out, "class %s, endpoint %s (%s): the class maps nothing (it has no map block)\n", res.Class.Name, res.Endpoint.Name, res.Endpoint.Path)
		return nil
	}
	doc, err := res.Resource(o, r.refs)
	if err != nil {
		return r.evalFailed(err)
	}
	fmt.Fprintf(r.out, "class %s, endpoint %s (%s), %s:\n", res.Class.Name, res.Endpoint.Name, res.Endpoint.Path, opName(o))
	r.out.Write(pretty.Pretty(withheld(doc, res)))
	return nil
}

func opName(o lang.Op) string {
	if o == lang.Create {
		return "create"
	}
	return "update"
}

func (r *REPL) cmdLookup(string) error {
	res, err := r.result()
	if err != nil {
		return err
	}
	switch {
	case res.Filter == "" && res.Endpoint.HasLookup():
		fmt.Fprintf(r.out, "no filter: this %s carries only its DN, not what the lookup of %s is built from; a sync finds the resource by the id it recorded\n", res.Change.Type, res.Endpoint.Name)
		return nil
	case res.Filter == "":
		fmt.Fprintf(r.out, "endpoint %s has no lookup\n", res.Endpoint.Name)
		return nil
	}
	fmt.Fprintln(r.out, res.Filter)
	return nil
}

func (r *REPL) cmdPatch(arg string) error {
	if arg == "" {
		return r.cmdLivePatch()
	}
	current, err := r.readFile(lang.LoadOptions{}, arg)
	if err != nil {
		return r.failf("%v", err)
	}
	res, err := r.result()
	if err != nil {
		return err
	}
	id := gjson.GetBytes(current, "id").String()
	if id == "" {
		id = "{id}"
	}
	if res.Change.Type == lang.Delete {
		if res.Class.OnDelete == "deactivate" {
			fmt.Fprintf(r.out, "a delete, and class %s deactivates:\nPATCH %s/%s\n", res.Class.Name, res.Endpoint.Path, id)
			body := scim.PatchBodies([]scim.PatchOp{{Op: "replace", Path: "active", Value: json.RawMessage("false")}}, 0)[0]
			r.out.Write(pretty.Pretty(body))
			return nil
		}
		fmt.Fprintf(r.out, "a delete: DELETE %s/%s\n", res.Endpoint.Path, id)
		return nil
	}
	desired, err := res.Resource(lang.Update, r.refs)
	if err != nil {
		return r.evalFailed(err)
	}
	opts := scim.DiffOptions{Core: res.Endpoint.CoreSchema(), Extensions: res.Endpoint.ExtensionSchemas()}
	ops, err := scim.Diff(current, desired, res.Managed(lang.Update), opts)
	if err != nil {
		return r.failf("%s: %v", arg, err)
	}
	if len(ops) == 0 {
		fmt.Fprintln(r.out, "no change needed: the current resource already holds what the class manages")
		return nil
	}
	for _, body := range scim.PatchBodies(ops, 0) {
		fmt.Fprintf(r.out, "PATCH %s/%s\n", res.Endpoint.Path, id)
		r.out.Write(pretty.Pretty(withheld(body, res)))
	}
	return nil
}

// withheld shows a resource or PATCH body with the change's password
// values, and the values of password mappings, as "(withheld)": only a
// request carries them.
func withheld(doc []byte, res *lang.Result) []byte {
	return scim.Withhold(doc, secret.NewScrubber(secret.Withheld, res.Secrets()...))
}

// errNoLDAP is what :fetch and :search say without a connection.
const errNoLDAP = "no LDAP connection: start the REPL with --ldap to read entries from the pipe's source directory"

func (r *REPL) cmdFetch(arg string) error {
	if r.opts.Fetcher == nil {
		return r.failf(errNoLDAP)
	}
	if arg == "" {
		return r.failf("name the entry: :fetch DN")
	}
	e, err := r.opts.Fetcher.Fetch(arg)
	if err != nil {
		return r.failf("%v", err)
	}
	return r.addEntries(arg, []*lang.Entry{e})
}

func (r *REPL) cmdSearch(arg string) error {
	if r.opts.Fetcher == nil {
		return r.failf(errNoLDAP)
	}
	if arg == "" {
		return r.failf("give a filter: :search (uid=jdoe)")
	}
	es, err := r.opts.Fetcher.Search(arg)
	if err != nil {
		return r.failf("%v", err)
	}
	if len(es) == 0 {
		return r.failf("no entry matches %s", arg)
	}
	return r.addEntries(arg, es)
}

// addEntries appends entries read from the directory as adds and moves to
// the first of them.
func (r *REPL) addEntries(what string, es []*lang.Entry) error {
	if r.dir == nil {
		r.dir = source.NewDirectory()
		r.entriesName = "the directory"
	}
	first := len(r.changes)
	for _, e := range es {
		rec := entryRecord(e)
		ch, err := r.dir.Apply(rec)
		if err != nil {
			return r.failf("%s: %v", e.DN, err)
		}
		ch.Type = lang.Add // as a resync would see it
		r.changes = append(r.changes, ch)
	}
	if r.p != nil {
		r.refs = r.dir.Resolver(r.p, r.opts.Mode)
	}
	r.cur = first
	fmt.Fprintf(r.out, "%s read for %s\n", plural(len(es), "entry", "entries"), what)
	r.position()
	return nil
}

func (r *REPL) cmdFuncs(string) error {
	fam := ""
	for _, f := range builtins.All() {
		if f.Family != fam {
			fam = f.Family
			fmt.Fprintf(r.out, "%s:\n", fam)
		}
		for _, sig := range f.Sig {
			fmt.Fprintf(r.out, "  %s\n", builtins.Signature(f.Name, sig))
		}
	}
	fmt.Fprintf(r.out, "expr's builtins:\n  %s\n", strings.Join(exprBuiltins(), ", "))
	fmt.Fprintln(r.out, "and ref(dns, Endpoint...) for references. :help NAME explains one.")
	return nil
}

// exprBuiltins are the names of expr's own builtins that pipe expressions
// may call: the ones builtins does not override or disable.
func exprBuiltins() []string {
	var names []string
	for _, n := range exprbuiltin.Names {
		if builtins.Lookup(n) == nil && n != "now" && n != "timezone" && !strings.HasPrefix(n, "$") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func (r *REPL) cmdHelp(arg string) error {
	name := strings.TrimSpace(arg)
	if name == "" {
		fmt.Fprintln(r.out, "Type an expression to evaluate it against the current entry, a mapping line (target = expression) to try it, or a command:")
		for _, c := range commands {
			if c.quiet {
				continue
			}
			syn := ":" + c.name
			if c.args != "" {
				syn += " " + c.args
			}
			fmt.Fprintf(r.out, "  %-19s %s\n", syn, c.sum)
		}
		fmt.Fprintln(r.out, ":help NAME explains a command or a function; Tab completes; Ctrl-D leaves.")
		return nil
	}
	if c, ok := strings.CutPrefix(name, ":"); ok {
		return r.helpCommand(c)
	}
	f := builtins.Lookup(name)
	if f == nil {
		also := ""
		if findCommand(name) != nil {
			also = " (:help :" + name + " for the command)"
		}
		switch {
		case name == "ref":
			fmt.Fprintln(r.out, "ref(dns, Endpoint...) refs\n\nref turns DN-valued attributes (group member, manager) into references to the SCIM resources those entries became at one of the named endpoints; each DN is resolved when the change is applied, and a DN out of every class's scope is left out. Here, references show as \"(id of DN)\".\n\nExample: members = ref(member, Users, Groups)")
			return nil
		case slices.Contains(exprBuiltins(), name):
			fmt.Fprintf(r.out, "%s is one of expr's builtins: see https://expr-lang.org/docs/language-definition%s\n", name, also)
			return nil
		case findCommand(name) != nil:
			return r.helpCommand(name)
		}
		var names []string
		names = append(names, builtins.Names()...)
		names = append(names, exprBuiltins()...)
		hint := ""
		if s := scim.Suggest(name, names); s != "" {
			hint = " (did you mean " + s + "?)"
		}
		return r.failf("no function or command %s%s", name, hint)
	}
	for _, sig := range f.Sig {
		fmt.Fprintln(r.out, builtins.Signature(f.Name, sig))
	}
	fmt.Fprintf(r.out, "\n%s\n", f.Doc)
	if len(f.Examples) > 0 {
		fmt.Fprintln(r.out, "\nExamples:")
	}
	for _, ex := range f.Examples {
		result := formatValue(ex.Want)
		if ex.Err != "" {
			result = "error: " + ex.Err
		}
		input := exampleInput(ex)
		if input != "" {
			input = "    with " + input
		}
		fmt.Fprintf(r.out, "  %s\n    = %s%s\n", ex.Expr, result, strings.TrimRight("\n"+input, "\n"))
	}
	return nil
}

func (r *REPL) helpCommand(name string) error {
	cmd := findCommand(name)
	if cmd == nil {
		return r.failf("unknown command :%s%s", name, suggestCommand(name))
	}
	syn := ":" + cmd.name
	if cmd.args != "" {
		syn += " " + cmd.args
	}
	fmt.Fprintf(r.out, "%s\n\n%s\n", syn, cmd.doc)
	return nil
}

func exampleInput(ex builtins.Example) string {
	var parts []string
	if ex.DN != "" {
		parts = append(parts, "dn: "+formatValue(ex.DN))
	}
	names := make([]string, 0, len(ex.Attrs))
	for n := range ex.Attrs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		parts = append(parts, n+": "+formatValue(ex.Attrs[n]))
	}
	return strings.Join(parts, ", ")
}

func (r *REPL) cmdType(arg string) error {
	if arg == "" {
		return r.failf("give an expression: :type EXPR")
	}
	x, err := r.compile(arg)
	if err != nil {
		return err
	}
	fmt.Fprintln(r.out, staticTypeName(x.Type()))
	return nil
}

// compile compiles an expression typed at the prompt, rendering problems
// against the typed text.
func (r *REPL) compile(text string) (*lang.Expr, error) {
	if err := r.needPipe(); err != nil {
		return nil, err
	}
	x, err := r.p.CompileExpr(inputName, text)
	if err != nil {
		var ds *lang.Diagnostics
		if errors.As(err, &ds) {
			ds.Render(r.out)
		} else {
			r.errorf("%v", err)
		}
		return nil, err
	}
	return x, nil
}

// inputName names what was typed, in positions.
const inputName = "<input>"

// eval evaluates an expression line and prints `value : type`.
func (r *REPL) eval(text string) error {
	x, err := r.compile(text)
	if err != nil {
		return err
	}
	v, err := r.ev.EvalExpr(x, r.change())
	if err != nil {
		var ee *lang.EvalError
		if errors.As(err, &ee) {
			src := lang.NewSource(inputName, text)
			d := &lang.Diagnostic{Pos: src.Pos(ee.Pos.Offset), Msg: logsafe.Text(ee.Msg)}
			d.Render(r.out, src)
			return errors.New(d.Error())
		}
		return r.failf("%v", err)
	}
	fmt.Fprintf(r.out, "%s : %s\n", formatValue(v), typeName(v))
	return nil
}

// evalFailed renders an error from evaluating the pipe's own expressions
// (when, lookup, a mapping) against the script, with a caret.
func (r *REPL) evalFailed(err error) error {
	var ee *lang.EvalError
	if errors.As(err, &ee) && r.p != nil && ee.Pos.File == r.p.Script().Name {
		d, src := r.relocate(&lang.Diagnostic{Pos: ee.Pos, Msg: ee.What + ": " + logsafe.Text(ee.Msg)})
		if src == nil {
			src = r.p.Script()
		}
		d.Render(r.out, src)
		return err
	}
	r.errorf("%v", err)
	return err
}

package repl

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/lang"
)

// ErrIncomplete is what OneShot returns for a line that leaves an
// expression open (a bracket or a quote, or a trailing operator): the
// caller reads another line and passes it to OneShot, which joins the two.
var ErrIncomplete = errors.New("incomplete expression: continue on the next line")

// Fetcher reads sample entries from a live directory, read-only, for
// :fetch and :search. The REPL only ever reads through it.
type Fetcher interface {
	// Fetch reads the entry at dn.
	Fetch(dn string) (*lang.Entry, error)
	// Search reads the entries an RFC 4515 filter finds under the source's
	// base DNs.
	Search(filter string) ([]*lang.Entry, error)
}

// Options configure a REPL.
type Options struct {
	// Pipe is the pipe script to load, read through Load.ReadFile when it
	// is set (the embedded demo), else from disk. "" starts with no pipe:
	// :load PIPE loads one.
	Pipe string
	// Entries is an LDIF file of sample entries, on disk. "" reads the
	// pipe's own LDIF source file (through Load.ReadFile), if it has one.
	Entries string
	// Load are the options the pipe is loaded with (env lookups, file
	// reads). A pipe named later with :load PIPE is read from disk, with
	// the same LookupEnv.
	Load lang.LoadOptions
	// Mode chooses which @realtime/@resync mappings apply (default
	// lang.Realtime).
	Mode lang.Mode
	// Fetcher, when set, lets :fetch and :search read sample entries from
	// the pipe's source directory.
	Fetcher Fetcher
	// Service, when set, lets :get, :patch (without a file) and :apply
	// reach the pipe's SCIM service.
	Service Service
	// Confirm asks the user a yes/no question before :apply writes; nil
	// (standard input is not a terminal) makes :apply refuse.
	Confirm func(question string) bool
}

// REPL is one interactive session: a compiled pipe, sample changes, a
// cursor over them, and the expression text still being continued. It is
// not safe for concurrent use.
type REPL struct {
	out  io.Writer
	opts Options

	pipePath string // what :load reloads
	loadOpts lang.LoadOptions
	loaded   string // where p came from
	p        *lang.Pipe
	ev       *lang.Evaluator
	refs     lang.Resolver

	entriesName string // where the changes came from; "" = none read yet
	fromPipe    bool   // the entries are the pipe's own LDIF source
	changes     []*lang.Change
	dir         *source.Directory // the final state, for references
	cur         int

	pending string // an incomplete expression so far

	// The pipe's text: as read (what :save rewrites) and as compiled (with
	// the overrides in place), where the overrides went, and the classes'
	// layout in the text as read.
	base      string
	baseSrc   *lang.Source
	compiled  string
	layout    []*lang.ClassLayout
	overrides []*override
	edits     []edit
	chosen    string // the class mapping lines go to (:class NAME); "" = the current entry's
	stamp     fileStamp
	stamped   bool // stamp is the script file's as read
}

// New returns a REPL that writes to out, with the pipe and the entries of
// opts loaded. Problems loading them (diagnostics, unreadable files) are
// written to out; the session starts anyway, so that the script can be
// fixed and reloaded with :load.
func New(out io.Writer, opts Options) *REPL {
	r := &REPL{out: out, opts: opts, pipePath: opts.Pipe, loadOpts: opts.Load}
	if r.pipePath != "" {
		_ = r.loadPipe(false)
	}
	if opts.Entries != "" {
		_ = r.readEntries(opts.Entries, false)
	} else {
		_ = r.pipeEntries(false)
	}
	return r
}

// Pipe returns the compiled pipe, or nil when none is loaded.
func (r *REPL) Pipe() *lang.Pipe { return r.p }

// Len returns the number of sample changes.
func (r *REPL) Len() int { return len(r.changes) }

// Current returns the current change and its 0-based index; nil when there
// are no sample changes.
func (r *REPL) Current() (*lang.Change, int) {
	if len(r.changes) == 0 {
		return nil, 0
	}
	return r.changes[r.cur], r.cur
}

// Pending reports whether an incomplete expression is waiting for its next
// line (a line editor shows a continuation prompt then).
func (r *REPL) Pending() bool { return r.pending != "" }

// Reset drops an incomplete expression (a line editor calls it on Ctrl-C).
func (r *REPL) Reset() { r.pending = "" }

// Summary describes the session in one line: the pipe and the entries.
func (r *REPL) Summary() string {
	var b strings.Builder
	if r.p != nil {
		fmt.Fprintf(&b, "pipe %q (%s)", r.p.Name, r.loaded)
	} else if r.pipePath != "" {
		fmt.Fprintf(&b, "no pipe loaded (%s has errors)", r.pipePath)
	} else {
		b.WriteString("no pipe loaded")
	}
	switch {
	case r.entriesName != "":
		fmt.Fprintf(&b, ", %s from %s", plural(len(r.changes), "entry", "entries"), r.entriesName)
	default:
		b.WriteString(", no entries")
	}
	return b.String()
}

// OneShot runs one line: a :command, or an expression evaluated against
// the current change. Everything it produces, error messages included, is
// written to the REPL's writer. It returns quit true for :quit; a non-nil
// error when the line failed (already written, so a script runner can set
// its exit status); and ErrIncomplete when the line leaves an expression
// open, to be continued by the next call.
func (r *REPL) OneShot(line string) (quit bool, err error) {
	continued := r.pending != ""
	if continued {
		line = join(r.pending, line)
		r.pending = ""
	}
	trimmed := strings.TrimSpace(line)
	if !continued && trimmed != ":load" && !strings.HasPrefix(trimmed, ":load ") {
		r.reloadIfChanged() // :load reloads anyway
	}
	if trimmed == "" || strings.HasPrefix(trimmed, "#") && !strings.Contains(line, "\n") {
		return false, nil // blank lines and comments, for scripts
	}
	if strings.HasPrefix(trimmed, ":") {
		name, arg := trimmed[1:], ""
		if i := strings.IndexAny(name, " \t\n"); i >= 0 {
			name, arg = name[:i], strings.TrimSpace(name[i:])
		}
		c := findCommand(name)
		if c == nil {
			err := fmt.Errorf("unknown command :%s%s; :help lists the commands", name, suggestCommand(name))
			r.errorf("%v", err)
			return false, err
		}
		if c.expr && incomplete(arg) {
			r.pending = line
			return false, ErrIncomplete
		}
		if c.name == "quit" {
			return true, nil
		}
		return false, c.run(r, arg)
	}
	if incomplete(line) {
		r.pending = line
		return false, ErrIncomplete
	}
	ls, err := lang.ParseMappingLine(inputName, line)
	if err != nil {
		var ds *lang.Diagnostics
		if errors.As(err, &ds) {
			ds.Render(r.out)
		} else {
			r.errorf("%v", err)
		}
		return false, err
	}
	if ls != nil {
		return false, r.assign(line, ls)
	}
	return false, r.eval(line)
}

// join continues an incomplete expression with the next line. Inside a
// "…" or '…' string, which cannot span lines in expr, the line break
// becomes the escape \n; elsewhere (and in `…` strings) it stays a line
// break.
func join(pending, line string) string {
	if q := scan(pending).quote; q == '"' || q == '\'' {
		return pending + `\n` + line
	}
	return pending + "\n" + line
}

// errorf writes an error message.
func (r *REPL) errorf(format string, args ...any) {
	fmt.Fprintf(r.out, "error: "+format+"\n", args...)
}

// failf writes an error message and returns it as an error.
func (r *REPL) failf(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	r.errorf("%v", err)
	return err
}

// loadPipe (re)reads the pipe script at r.pipePath and compiles it with
// the session's overrides in place. On failure the previous pipe, if any,
// stays in use.
func (r *REPL) loadPipe(verbose bool) error {
	failed := func() error {
		if r.p != nil {
			fmt.Fprintf(r.out, "still using the pipe loaded before\n")
		}
		return fmt.Errorf("%s: the pipe did not load", r.pipePath)
	}
	st, stamped := r.scriptFile()
	r.stamp, r.stamped = st, stamped // a broken file is reported once, not before every line
	data, err := r.readFile(r.loadOpts, r.pipePath)
	if err != nil {
		r.errorf("%v", err)
		return failed()
	}
	text := string(data)
	layout, err := lang.ScriptLayout(r.pipePath, text)
	if err != nil {
		var ds *lang.Diagnostics
		if errors.As(err, &ds) {
			ds.Render(r.out)
		} else {
			r.errorf("%v", err)
		}
		return failed()
	}
	base, baseSrc, oldLayout := r.base, r.baseSrc, r.layout
	r.base, r.baseSrc, r.layout = text, lang.NewSource(r.pipePath, text), layout
	if err := r.compileWith(r.overrides); err != nil {
		r.base, r.baseSrc, r.layout = base, baseSrc, oldLayout
		return failed()
	}
	if verbose {
		fmt.Fprintf(r.out, "loaded pipe %q from %s: %s, %s\n", r.p.Name, r.pipePath,
			plural(len(r.p.Endpoints), "endpoint", "endpoints"), plural(len(r.p.Classes), "class", "classes"))
		if n := len(r.overrides); n > 0 {
			fmt.Fprintf(r.out, "with %s typed here (:overrides lists them)\n", plural(n, "override", "overrides"))
		}
	}
	return nil
}

// pipeEntries reads the pipe's own LDIF source file, when it has one.
func (r *REPL) pipeEntries(verbose bool) error {
	if r.p == nil || r.p.Source.Kind != "ldif" || r.p.Source.File == "" {
		return nil
	}
	data, err := r.readFile(r.loadOpts, r.p.Source.File)
	if err != nil {
		return r.failf("%v", err)
	}
	same, cur := r.fromPipe && r.entriesName == r.p.Source.File, r.cur
	if err := r.setEntries(r.p.Source.File, data, verbose); err != nil {
		return err
	}
	if same && cur < len(r.changes) {
		r.cur = cur // a reload keeps the place
	}
	r.fromPipe = true
	return nil
}

// readEntries reads an LDIF file named by the user, from disk.
func (r *REPL) readEntries(name string, verbose bool) error {
	data, err := r.readFile(lang.LoadOptions{}, name)
	if err != nil {
		return r.failf("%v", err)
	}
	if err := r.setEntries(name, data, verbose); err != nil {
		return err
	}
	r.fromPipe = false
	return nil
}

func (r *REPL) setEntries(name string, data []byte, verbose bool) error {
	changes, dir, err := source.ReadLDIF(strings.NewReader(string(data)))
	if err != nil {
		return r.failf("%s: %v", name, err)
	}
	r.changes, r.dir, r.cur, r.entriesName = changes, dir, 0, name
	r.refs = nil
	if r.p != nil {
		r.refs = dir.Resolver(r.p, r.opts.Mode)
	}
	if verbose {
		fmt.Fprintf(r.out, "%s from %s\n", plural(len(changes), "entry", "entries"), name)
		if len(changes) > 0 {
			r.position()
		}
	}
	return nil
}

// readFile reads a file through load options (the embedded demo), or from
// disk.
func (r *REPL) readFile(opts lang.LoadOptions, name string) ([]byte, error) {
	if opts.ReadFile != nil {
		return opts.ReadFile(name)
	}
	data, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: no such file", name)
	}
	return data, err
}

// position prints where the cursor is: index, change type and DN.
func (r *REPL) position() {
	ch, i := r.Current()
	if ch == nil {
		fmt.Fprintln(r.out, "no entries: read some with :entries FILE.ldif")
		return
	}
	fmt.Fprintf(r.out, "[%d/%d] %s %s\n", i+1, len(r.changes), ch.Type, ch.DN)
}

// change returns the change expressions see: the current one, or an empty
// add when there are no entries (so that expressions on literals work).
func (r *REPL) change() *lang.Change {
	if ch, _ := r.Current(); ch != nil {
		return ch
	}
	return &lang.Change{Type: lang.Add, Entry: lang.NewEntry("", nil)}
}

// needPipe reports an error when no pipe is loaded.
func (r *REPL) needPipe() error {
	if r.p == nil {
		if r.pipePath != "" {
			return r.failf("no pipe loaded: fix %s and :load it", r.pipePath)
		}
		return r.failf("no pipe loaded: :load PIPE")
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

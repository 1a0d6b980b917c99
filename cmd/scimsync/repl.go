package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/peterh/liner"

	"github.com/scimsync/scimsync/engine/logsafe"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/lang"
	"github.com/scimsync/scimsync/lang/repl"
	"github.com/scimsync/scimsync/scripts"
)

// runRepl is the terminal side of `scimsync repl`; the REPL itself is
// lang/repl.
//
// Line editing is github.com/peterh/liner. The candidates were:
//
//   - peterh/liner: small (one dependency besides x/sys: go-runewidth),
//     pure Go, released in 2026; emacs-style editing, history with
//     ReadHistory/WriteHistory, Ctrl-R search, and a WordCompleter
//     (line, pos) -> (head, completions, tail) that is exactly
//     repl.REPL.CompleteWord, with a bash-like TabPrints style (the common
//     prefix, then the list on a second Tab). Ctrl-D on an empty line is
//     io.EOF, Ctrl-C an ErrPromptAborted.
//   - chzyer/readline: the most used, but with no release since v1.5.1
//     (2022) and many open issues; its maintained fork ergochat/readline
//     is pre-1.0 (v0.1.x), and its completer returns suffixes to insert,
//     which fits whole-word completions less well.
//   - reeflective/readline: vim and emacs modes, syntax highlighting,
//     completion menus; far more than a prompt needs, with a larger
//     dependency tree.
//
// Liner does what the issue asks with the least code and dependencies.
func runRepl(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	flags := newFlags("repl", "[PIPE]", stderr)
	entries := flags.StringP("entries", "e", "", "LDIF file of sample entries (default: the pipe's ldif source file)")
	useLDAP := flags.Bool("ldap", false, "read sample entries from the pipe's source directory with :fetch and :search")
	modeName := flags.String("mode", "realtime", "which @realtime/@resync mappings apply: realtime or resync")
	if code, done := parseFlags(flags, args, stdout); done {
		return code
	}
	if flags.NArg() > 1 {
		fmt.Fprintln(stderr, "scimsync repl: name one pipe script")
		return exitUsage
	}
	opts := repl.Options{Pipe: flags.Arg(0), Entries: *entries}
	switch *modeName {
	case "realtime":
		opts.Mode = lang.Realtime
	case "resync":
		opts.Mode = lang.Resync
	default:
		fmt.Fprintf(stderr, "scimsync repl: --mode is realtime or resync, not %q\n", *modeName)
		return exitUsage
	}
	if opts.Pipe == "" {
		fmt.Fprintln(stderr, "scimsync repl: no pipe script named: running the embedded demo pipe (scripts/demo.pipe)")
		opts.Pipe = scripts.DemoPipe
		opts.Load.ReadFile = func(name string) ([]byte, error) { return fs.ReadFile(scripts.Demo, name) }
	}
	// The pipe's SCIM service, for :get, :patch and :apply: reached on
	// first use, read-only unless :apply is confirmed on a terminal. The
	// embedded demo never reaches one.
	svc := &scimService{}
	if flags.Arg(0) != "" {
		opts.Service = svc
	}
	interactiveIO := false
	if in, ok := stdin.(*os.File); ok && isTerminal(in) && isTerminal(stdout) && liner.TerminalSupported() {
		interactiveIO = true
	}
	var ln *liner.State
	if interactiveIO {
		opts.Confirm = func(question string) bool {
			if ln == nil {
				return false
			}
			answer, err := ln.Prompt(question)
			return err == nil && (strings.EqualFold(strings.TrimSpace(answer), "y") || strings.EqualFold(strings.TrimSpace(answer), "yes"))
		}
	}
	var dir *ldapFetcher
	if *useLDAP {
		dir = &ldapFetcher{}
		defer dir.close()
		opts.Fetcher = dir
	}
	r := repl.New(stdout, opts)
	svc.pipe = r.Pipe
	if dir != nil {
		dir.pipe = r.Pipe
		if p := r.Pipe(); p != nil {
			if p.Source.Kind == "ldif" {
				fmt.Fprintf(stderr, "scimsync repl: --ldap: the pipe reads an LDIF file, not a directory: :fetch and :search will fail\n")
			} else if _, err := dir.reader(); err != nil {
				fmt.Fprintf(stderr, "scimsync repl: --ldap: %v (:fetch and :search will try again)\n", err)
			}
		}
	} else if p := r.Pipe(); p != nil && p.Source.Kind != "ldif" && *entries == "" {
		fmt.Fprintf(stderr, "scimsync repl: the pipe reads a %s source: name sample entries with --entries FILE.ldif, or read them from the directory with --ldap\n", p.Source.Kind)
	}

	if interactiveIO {
		ln = liner.NewLiner()
		defer ln.Close()
		return interactive(ln, r, stdout, stderr)
	}
	return scripted(r, stdin, stderr)
}

// scripted runs lines from a pipe or a file, with no prompt, so that a
// session can be scripted and its output compared. The exit status is 1 if
// the pipe did not load or any line failed.
func scripted(r *repl.REPL, stdin io.Reader, stderr io.Writer) int {
	code := exitOK
	if r.Pipe() == nil {
		code = exitFail
	}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		quit, err := r.OneShot(sc.Text())
		if quit {
			return code
		}
		if err != nil && !errors.Is(err, repl.ErrIncomplete) {
			code = exitFail
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(stderr, "scimsync repl: reading input: %v\n", err)
		return exitFail
	}
	if r.Pending() {
		fmt.Fprintln(stderr, "scimsync repl: the input ends inside an expression (a bracket or a quote is still open)")
		return exitFail
	}
	return code
}

// interactive runs the REPL on a terminal: line editing, history kept in a
// file, Tab completion.
func interactive(ln *liner.State, r *repl.REPL, stdout, stderr io.Writer) int {
	ln.SetCtrlCAborts(true)
	ln.SetTabCompletionStyle(liner.TabPrints)
	ln.SetWordCompleter(r.CompleteWord)

	hist := historyFile()
	if hist != "" {
		if f, err := os.Open(hist); err == nil {
			_, _ = ln.ReadHistory(f)
			f.Close()
		}
	}
	fmt.Fprintf(stdout, "scimsync repl: %s\n:help lists the commands, Tab completes, Ctrl-D leaves.\n", r.Summary())
	var input []string // the lines of an input still open
	for {
		prompt := "> "
		if r.Pending() {
			prompt = "... "
		}
		line, err := ln.Prompt(prompt)
		switch {
		case errors.Is(err, liner.ErrPromptAborted): // Ctrl-C: drop the line
			r.Reset()
			input = nil
			continue
		case errors.Is(err, io.EOF): // Ctrl-D
			fmt.Fprintln(stdout)
			return exitOK
		case err != nil:
			fmt.Fprintf(stderr, "scimsync repl: %v\n", err)
			return exitFail
		}
		quit, _ := r.OneShot(line)
		// An input over several lines is one history entry, kept when it
		// is complete: Up recalls all of it.
		input = append(input, line)
		if !r.Pending() {
			if entry := repl.HistoryLine(input); strings.TrimSpace(entry) != "" {
				ln.AppendHistory(entry)
				saveHistory(ln, hist, stderr)
			}
			input = nil
		}
		if quit {
			return exitOK
		}
	}
}

// historyFile is where the REPL keeps its history, per the XDG base
// directory spec: $XDG_STATE_HOME/scimsync/repl_history, by default
// ~/.local/state/scimsync/repl_history. "" when there is no home.
func historyFile() string {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil || home == "" {
			return ""
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "scimsync", "repl_history")
}

// saveHistory writes the history after each line, so that it survives a
// killed terminal; it is at most liner.HistoryLimit lines.
func saveHistory(ln *liner.State, path string, stderr io.Writer) {
	if path == "" {
		return
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		fmt.Fprintf(stderr, "scimsync repl: history: %v\n", err)
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		fmt.Fprintf(stderr, "scimsync repl: history: %v\n", err)
		return
	}
	_, err = ln.WriteHistory(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(stderr, "scimsync repl: history: %v\n", err)
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w any) bool {
	f, ok := logsafe.File(w)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// ldapFetcher reads sample entries for :fetch and :search from the source
// directory of the REPL's current pipe, read-only, through a
// source.Reader (which dials as the change sources do). It connects on
// first use, and again when the connection drops or :load brings a pipe
// with another source.
type ldapFetcher struct {
	pipe func() *lang.Pipe
	r    *source.Reader
}

var _ repl.Fetcher = (*ldapFetcher)(nil)

func (f *ldapFetcher) source() (lang.SourceConfig, error) {
	var p *lang.Pipe
	if f.pipe != nil {
		p = f.pipe()
	}
	switch {
	case p == nil:
		return lang.SourceConfig{}, errors.New("no pipe loaded: its source block says which directory to read")
	case len(p.Source.URLs) == 0:
		return lang.SourceConfig{}, fmt.Errorf("the pipe's %s source names no LDAP server", p.Source.Kind)
	}
	return p.Source, nil
}

// reader returns a Reader of the current pipe's source, connecting when
// needed.
func (f *ldapFetcher) reader() (*source.Reader, error) {
	cfg, err := f.source()
	if err != nil {
		return nil, err
	}
	if f.r != nil && sameSource(f.r.Config(), cfg) {
		return f.r, nil
	}
	f.close()
	r, err := source.OpenReader(context.Background(), cfg, source.Options{})
	if err != nil {
		return nil, err
	}
	f.r = r
	return r, nil
}

func sameSource(a, b lang.SourceConfig) bool {
	return a.Kind == b.Kind && slices.Equal(a.URLs, b.URLs) && a.BindDN == b.BindDN && a.Password.Reveal() == b.Password.Reveal() &&
		a.StartTLS == b.StartTLS && a.CAFile == b.CAFile && a.Insecure == b.Insecure && a.Timeout == b.Timeout &&
		slices.Equal(a.Base, b.Base) && a.Identity == b.Identity
}

func (f *ldapFetcher) close() {
	if f.r != nil {
		f.r.Close()
		f.r = nil
	}
}

// Fetch reads the entry at dn.
func (f *ldapFetcher) Fetch(dn string) (*lang.Entry, error) {
	r, err := f.reader()
	if err != nil {
		return nil, err
	}
	e, err := r.Entry(context.Background(), dn)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, fmt.Errorf("no entry at %s", dn)
	}
	return e, nil
}

// Search reads every entry filter finds under the source's base DNs (the
// server's naming context when it names none), page by page (RFC 2696), so
// that no server size limit cuts the list short unsaid; :search says how
// many it read.
func (f *ldapFetcher) Search(filter string) ([]*lang.Entry, error) {
	r, err := f.reader()
	if err != nil {
		return nil, err
	}
	return r.Search(context.Background(), "", filter, 0)
}

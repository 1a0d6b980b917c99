package main

// The terminal side of `scimsync repl`; the REPL itself is lang/repl.
//
// Line editing is github.com/peterh/liner. The candidates were:
//   - peterh/liner: small (one dependency besides x/sys: go-runewidth),
//     pure Go, released in 2026; emacs-style editing, history with
//     ReadHistory/WriteHistory, Ctrl-R search, and a WordCompleter
//     (line, pos) -> (head, completions, tail) that is exactly
//     repl.REPL.CompleteWord, with a bash-like TabPrints style (the common
//     prefix, then the list on a second Tab). Ctrl-D on an empty line is
//     io.EOF, Ctrl-C an ErrPromptAborted.
//   - chzyer/readline: the most used, but without a release since 2022 and
//     with known terminal-state bugs; its maintained fork
//     ergochat/readline is sound but pre-1.0, and its completer returns
//     suffixes to insert, which fits our word completions less well.
//   - reeflective/readline: vim and emacs modes, syntax highlighting,
//     completion menus; far more than a prompt needs, with a larger
//     dependency tree.
// Liner does what the issue asks with the least code and dependencies.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/peterh/liner"

	"github.com/scimsync/scimsync/lang"
	"github.com/scimsync/scimsync/lang/repl"
	"github.com/scimsync/scimsync/scripts"
)

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
	if *useLDAP {
		// Reading sample entries from the live directory needs the LDAP
		// connection code of engine/source; until it is wired here, say so
		// instead of pretending.
		fmt.Fprintln(stderr, "scimsync repl: --ldap is not available yet: :fetch and :search need it; use --entries FILE.ldif")
		return exitUsage
	}

	if in, ok := stdin.(*os.File); ok && isTerminal(in) && isTerminal(stdout) && liner.TerminalSupported() {
		return interactive(opts, stdout, stderr)
	}
	return scripted(opts, stdin, stdout, stderr)
}

// scripted runs lines from a pipe or a file, with no prompt, so that a
// session can be scripted and its output compared. The exit status is 1 if
// the pipe did not load or any line failed.
func scripted(opts repl.Options, stdin io.Reader, stdout, stderr io.Writer) int {
	r := repl.New(stdout, opts)
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
func interactive(opts repl.Options, stdout, stderr io.Writer) int {
	r := repl.New(stdout, opts)
	ln := liner.NewLiner()
	defer ln.Close()
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
	for {
		prompt := "> "
		if r.Pending() {
			prompt = "... "
		}
		line, err := ln.Prompt(prompt)
		switch {
		case errors.Is(err, liner.ErrPromptAborted): // Ctrl-C: drop the line
			r.Reset()
			continue
		case errors.Is(err, io.EOF): // Ctrl-D
			fmt.Fprintln(stdout)
			return exitOK
		case err != nil:
			fmt.Fprintf(stderr, "scimsync repl: %v\n", err)
			return exitFail
		}
		if strings.TrimSpace(line) != "" {
			ln.AppendHistory(line)
			saveHistory(ln, hist, stderr)
		}
		if quit, _ := r.OneShot(line); quit {
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
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

package repl

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/scimsync/scimsync/lang"
)

// cmdSave writes the script as compiled (the overrides in place of the
// lines they stand for, every other byte as read) to the script file, or to
// a copy, after showing the difference. What it writes must load: the text
// is loaded under the name it is written to (so that relative paths resolve
// from there) before anything is written.
func (r *REPL) cmdSave(arg string) error {
	if err := r.needPipe(); err != nil {
		return err
	}
	if len(r.overrides) == 0 {
		return r.failf("nothing to save: no mapping line was typed (:overrides)")
	}
	dest := arg
	if dest == "" {
		if r.loadOpts.ReadFile != nil {
			return r.failf("%s is the embedded demo, which cannot be changed: :save FILE writes a copy", r.pipePath)
		}
		dest = r.pipePath
	}
	if fi, err := os.Stat(filepath.Dir(dest)); err != nil || !fi.IsDir() {
		return r.failf("not written: %s is not a folder", filepath.Dir(dest))
	}
	inPlace := sameFile(dest, r.pipePath) && r.loadOpts.ReadFile == nil
	text := r.compiled
	if !inPlace {
		// The copy must load where it is: file() and the source's file
		// resolve against its folder.
		if _, err := lang.Load(dest, text, lang.LoadOptions{LookupEnv: r.loadOpts.LookupEnv}); err != nil {
			var ds *lang.Diagnostics
			if errors.As(err, &ds) {
				ds.Render(r.out)
			}
			return r.failf("not written: the copy would not load at %s", dest)
		}
	}
	writeDiff(r.out, r.pipePath, dest, r.base, text)
	if err := writeFileAtomic(dest, []byte(text)); err != nil {
		return r.failf("%v", err)
	}
	n := len(r.overrides)
	if !inPlace {
		fmt.Fprintf(r.out, "wrote %s (%s); the session's script is unchanged\n", dest, plural(n, "override", "overrides"))
		return nil
	}
	r.overrides = nil
	if err := r.loadPipe(false); err != nil {
		return err
	}
	fmt.Fprintf(r.out, "wrote %s (%s), and it loads; the script's lines now say what the overrides said\n", dest, plural(n, "override", "overrides"))
	return nil
}

// sameFile reports whether two names are one file (or the same path when
// the second does not exist yet).
func sameFile(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	if err1 == nil && err2 == nil {
		return os.SameFile(fa, fb)
	}
	return filepath.Clean(a) == filepath.Clean(b)
}

// writeFileAtomic replaces name's contents through a temporary file and a
// rename, keeping its permissions, so that a crash never leaves half a
// script.
func writeFileAtomic(name string, data []byte) error {
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(name); err == nil {
		mode = fi.Mode().Perm()
	}
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, mode)
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the temporary file's name says nothing to the user
		}
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// writeDiff writes a unified diff of two texts, with two lines of context.
func writeDiff(w io.Writer, aName, bName, a, b string) {
	al, bl := lines(a), lines(b)
	// The common head and tail are most of a script: the LCS runs on the
	// middle only.
	pre := 0
	for pre < len(al) && pre < len(bl) && al[pre] == bl[pre] {
		pre++
	}
	suf := 0
	for suf < len(al)-pre && suf < len(bl)-pre && al[len(al)-1-suf] == bl[len(bl)-1-suf] {
		suf++
	}
	type op struct {
		kind byte // ' ', '-', '+'
		text string
		ai   int // line index in a (for ' ' and '-'), or where it goes
		bi   int
	}
	am, bm := al[pre:len(al)-suf], bl[pre:len(bl)-suf]
	lcs := make([][]int, len(am)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(bm)+1)
	}
	for i := len(am) - 1; i >= 0; i-- {
		for j := len(bm) - 1; j >= 0; j-- {
			if am[i] == bm[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []op
	for i := 0; i < pre; i++ {
		ops = append(ops, op{' ', al[i], i, i})
	}
	i, j := 0, 0
	for i < len(am) || j < len(bm) {
		switch {
		case i < len(am) && j < len(bm) && am[i] == bm[j]:
			ops = append(ops, op{' ', am[i], pre + i, pre + j})
			i, j = i+1, j+1
		case i < len(am) && (j == len(bm) || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, op{'-', am[i], pre + i, pre + j})
			i++
		default:
			ops = append(ops, op{'+', bm[j], pre + i, pre + j})
			j++
		}
	}
	for k := 0; k < suf; k++ {
		ops = append(ops, op{' ', al[len(al)-suf+k], len(al) - suf + k, len(bl) - suf + k})
	}
	fmt.Fprintf(w, "--- %s\n+++ %s\n", aName, bName)
	const ctx = 2
	for k := 0; k < len(ops); {
		if ops[k].kind == ' ' {
			k++
			continue
		}
		start := max(0, k-ctx)
		end := k
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*ctx {
				end = min(len(ops), end+ctx)
				break
			}
			end = run
		}
		na, nb := 0, 0
		for _, o := range ops[start:end] {
			if o.kind != '+' {
				na++
			}
			if o.kind != '-' {
				nb++
			}
		}
		fmt.Fprintf(w, "@@ -%d,%d +%d,%d @@\n", ops[start].ai+1, na, ops[start].bi+1, nb)
		for _, o := range ops[start:end] {
			fmt.Fprintf(w, "%c%s\n", o.kind, o.text)
		}
		k = end
	}
}

// lines splits text into lines, without their newlines.
func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

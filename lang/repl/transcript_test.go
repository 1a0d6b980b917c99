package repl_test

import (
	"bytes"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/internal/txtar"
	"github.com/scimsync/scimsync/lang"
	"github.com/scimsync/scimsync/lang/repl"
	"github.com/scimsync/scimsync/scripts"
)

var update = flag.Bool("update", false, "rewrite the transcripts in testdata/repl")

// TestTranscripts replays each testdata/repl/NAME.txtar through OneShot.
// Its `transcript` section is a session as a terminal shows it: lines
// starting with "> " (or "... " for a continued expression) are typed, the
// others are what the REPL printed. The test types the lines and compares
// the whole session; -update rewrites what was printed.
//
// The comment before the sections sets the session up: `use demo` loads the
// embedded demo pipe (with its own entries), `pipe: NAME` and `entries:
// NAME` name files of the archive. Every other section is a file, written to
// a temporary folder that the session runs in, so that :patch current.json
// or :load broken.pipe find them.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("../../testdata/repl/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, path := range files {
		path, _ := filepath.Abs(path)
		name := strings.TrimSuffix(filepath.Base(path), ".txtar")
		t.Run(name, func(t *testing.T) {
			a := readArchive(t, path)
			want, ok := a.Get("transcript")
			if !ok {
				t.Fatal("no transcript section")
			}
			dir := t.TempDir()
			for _, f := range a.Files {
				if f.Name == "transcript" {
					continue
				}
				if err := os.WriteFile(filepath.Join(dir, f.Name), []byte(f.Data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			t.Chdir(dir)
			got := replay(t, sessionOptions(a.Comment), inputs(want))
			if *update {
				a.Set("transcript", got)
				if err := os.WriteFile(path, []byte(a.Format()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Errorf("transcript differs (go test ./lang/repl -update rewrites it)\n--- got\n%s\n--- want\n%s", got, want)
			}
		})
	}
}

// sessionOptions reads the setup lines of a transcript's comment.
func sessionOptions(comment string) repl.Options {
	opts := repl.Options{Load: lang.LoadOptions{LookupEnv: noEnv}}
	for _, line := range strings.Split(comment, "\n") {
		switch k, v, _ := strings.Cut(strings.TrimSpace(line), ":"); {
		case strings.TrimSpace(line) == "use demo":
			opts.Pipe = scripts.DemoPipe
			opts.Load.ReadFile = readDemo
		case k == "pipe":
			opts.Pipe = strings.TrimSpace(v)
		case k == "entries":
			opts.Entries = strings.TrimSpace(v)
		}
	}
	return opts
}

// noEnv is an empty environment: the scripts' env() calls take defaults.
func noEnv(string) (string, bool) { return "", false }

func readDemo(name string) ([]byte, error) { return fs.ReadFile(scripts.Demo, name) }

// inputs returns the typed lines of a transcript.
func inputs(transcript string) []string {
	var in []string
	for _, line := range strings.Split(transcript, "\n") {
		if s, ok := strings.CutPrefix(line, "> "); ok {
			in = append(in, s)
		} else if s, ok := strings.CutPrefix(line, "... "); ok {
			in = append(in, s)
		} else if line == ">" || line == "..." {
			in = append(in, "")
		}
	}
	return in
}

// replay types lines into a new REPL and returns the session as a terminal
// would show it.
func replay(t *testing.T, opts repl.Options, lines []string) string {
	t.Helper()
	var out bytes.Buffer
	r := repl.New(&out, opts)
	prompt := "> "
	for _, line := range lines {
		out.WriteString(strings.TrimRight(prompt+line, " ") + "\n")
		quit, err := r.OneShot(line)
		if quit {
			break
		}
		prompt = "> "
		if errors.Is(err, repl.ErrIncomplete) {
			prompt = "... "
		}
	}
	return out.String()
}

func readArchive(t *testing.T, path string) *txtar.Archive {
	t.Helper()
	a, err := txtar.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

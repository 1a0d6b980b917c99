package lang_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/lang"
)

// TestDiagnostics loads each testdata/diag/NAME.pipe — one fault each — and
// compares the rendered diagnostics with NAME.err, the exact output
// `scimsync check` prints: the load errors or, for a script that loads, its
// warnings. go test ./lang -update rewrites the .err files.
func TestDiagnostics(t *testing.T) {
	pipes, err := filepath.Glob("../testdata/diag/*.pipe")
	if err != nil || len(pipes) == 0 {
		t.Fatalf("no diagnostic cases: %v", err)
	}
	for _, path := range pipes {
		name := strings.TrimSuffix(filepath.Base(path), ".pipe")
		t.Run(name, func(t *testing.T) {
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			p, err := lang.Load("testdata/diag/"+name+".pipe", string(text), lang.LoadOptions{
				LookupEnv: fakeEnv,
				ReadFile: func(p string) ([]byte, error) {
					if strings.HasSuffix(p, "token.txt") {
						return []byte("file-secret\n"), nil
					}
					return nil, os.ErrNotExist
				},
			})
			var ds *lang.Diagnostics
			if err == nil {
				// A script that loads is here for its warnings.
				if ds = p.Warnings(); ds == nil {
					t.Fatal("the script loads without errors or warnings")
				}
			} else if !errors.As(err, &ds) {
				t.Fatalf("want diagnostics, got %v", err)
			}
			var buf bytes.Buffer
			ds.Render(&buf)
			got := buf.String()
			for _, secret := range []string{"s3cr3t", "file-secret"} {
				if strings.Contains(got, secret) || strings.Contains(ds.Error(), secret) {
					t.Errorf("a secret value reached the diagnostics:\n%s", got)
				}
			}
			errFile := strings.TrimSuffix(path, ".pipe") + ".err"
			if *update {
				if err := os.WriteFile(errFile, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(errFile)
			if err != nil {
				t.Fatalf("missing expectation (run with -update): %v", err)
			}
			if got != string(want) {
				t.Errorf("diagnostics differ\n--- got\n%s\n--- want\n%s", got, want)
			}
			// The one-line form names file:line:col.
			if !strings.HasPrefix(ds.List[0].Error(), "testdata/diag/"+name+".pipe:") {
				t.Errorf("one-line form %q does not start with file:line:col", ds.List[0].Error())
			}
		})
	}
}

package lang_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/scimsync/scimsync/lang"
)

// FuzzLoad feeds arbitrary scripts to the compiler: it must never panic,
// and every diagnostic must point inside the script and render.
func FuzzLoad(f *testing.F) {
	for _, glob := range []string{"../testdata/diag/*.pipe", "../scripts/*.pipe"} {
		files, _ := filepath.Glob(glob)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err == nil {
				f.Add(string(data))
			}
		}
	}
	f.Add("pipe \"x\"\nsource ldif { file = \"a\" }\nscim { url = \"http://h\" }\nendpoint U { path = \"/U\"\nschemas = [\"urn:x\"] }\nclass c { endpoint = U\nmap { a = (1 + }\n}")
	f.Fuzz(func(t *testing.T, script string) {
		_, err := lang.Load("fuzz.pipe", script, lang.LoadOptions{
			LookupEnv: func(string) (string, bool) { return "v", true },
			ReadFile:  func(string) ([]byte, error) { return nil, os.ErrNotExist },
		})
		if err == nil {
			return
		}
		var ds *lang.Diagnostics
		if !errors.As(err, &ds) {
			t.Fatalf("error is not *Diagnostics: %T %v", err, err)
		}
		if len(ds.List) == 0 {
			t.Fatal("empty diagnostics")
		}
		lines := bytes.Count([]byte(script), []byte("\n")) + 1
		for _, d := range ds.List {
			if d.Pos.Line < 1 || d.Pos.Line > lines || d.Pos.Col < 1 || d.Pos.Offset > len(script) {
				t.Fatalf("position out of range: %+v in a %d-line script", d.Pos, lines)
			}
			if d.Msg == "" {
				t.Fatal("empty message")
			}
		}
		var buf bytes.Buffer
		ds.Render(&buf)
		if utf8.ValidString(script) && !utf8.Valid(buf.Bytes()) {
			t.Fatal("rendering made invalid UTF-8 out of valid input")
		}
	})
}

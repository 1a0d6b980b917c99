package lang_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/pretty"

	"github.com/scimsync/scimsync/engine/ldif"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/internal/txtar"
	"github.com/scimsync/scimsync/lang"
)

// TestGolden runs each testdata/golden/NAME.txtar: a script (the
// `script.pipe` section, or `use PATH` naming a shipped one), LDIF records
// (`entries.ldif`), and `want`: for each record, the class, endpoint,
// lookup filter and the SCIM resource (canonical JSON: sorted keys), or why
// it is out of scope, or the error. go test ./lang -update rewrites `want`.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("../testdata/golden/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".txtar")
		t.Run(name, func(t *testing.T) {
			if strings.HasPrefix(name, "fixme-") {
				t.Skip("known bug, kept visible: " + name)
			}
			a := readArchive(t, path)
			got := runGolden(t, a)
			if *update {
				a.Set("want", got)
				if err := os.WriteFile(path, []byte(a.Format()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, ok := a.Get("want")
			if !ok {
				t.Fatal("no want section (run with -update)")
			}
			if got != want {
				t.Errorf("output differs\n--- got\n%s\n--- want\n%s", got, want)
			}
		})
	}
}

func runGolden(t *testing.T, a *txtar.Archive) string {
	t.Helper()
	scriptName, script := "script.pipe", section(a, "script.pipe")
	for _, line := range strings.Split(a.Comment, "\n") {
		if p, ok := strings.CutPrefix(line, "use "); ok {
			data, err := os.ReadFile(filepath.Join("..", strings.TrimSpace(p)))
			if err != nil {
				t.Fatal(err)
			}
			scriptName, script = strings.TrimSpace(p), string(data)
		}
	}
	p, err := lang.Load(scriptName, script, lang.LoadOptions{LookupEnv: fakeEnv})
	if err != nil {
		return "load error:\n" + err.Error() + "\n"
	}
	mode := lang.Realtime
	if strings.Contains(a.Comment, "mode: resync") {
		mode = lang.Resync
	}
	var recs []*ldif.Record
	r := ldif.NewReader(strings.NewReader(section(a, "entries.ldif")))
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("entries.ldif: %v", err)
		}
		recs = append(recs, rec)
	}
	all := source.NewDirectory()
	for _, rec := range recs {
		_, _ = all.Apply(rec)
	}
	refs := all.Resolver(p, mode)
	ev := p.NewEvaluator()
	dir := source.NewDirectory()
	var b strings.Builder
	for _, rec := range recs {
		ch, err := dir.Apply(rec)
		if err != nil {
			fmt.Fprintf(&b, "# line %d\nerror: %v\n\n", rec.Line, err)
			continue
		}
		fmt.Fprintf(&b, "# %s (%s)\n", ch.DN, ch.Type)
		res, err := ev.Eval(ch, mode)
		if err != nil {
			fmt.Fprintf(&b, "error: %v\n\n", err)
			continue
		}
		if res.OutOfScope {
			reports, _ := p.NewEvaluator().Explain(ch)
			var why []string
			for _, r := range reports {
				why = append(why, r.Class.Name+": "+r.Reason)
			}
			fmt.Fprintf(&b, "out of scope: %s\n\n", strings.Join(why, "; "))
			continue
		}
		fmt.Fprintf(&b, "class %s, endpoint %s\n", res.Class.Name, res.Endpoint.Name)
		if res.Filter != "" {
			fmt.Fprintf(&b, "lookup %s\n", res.Filter)
		}
		if ch.Type == lang.Delete {
			b.WriteString("delete\n\n")
			continue
		}
		ops := []lang.Op{lang.Update}
		if ch.Type == lang.Add {
			ops = []lang.Op{lang.Create, lang.Update}
		}
		for _, op := range ops {
			doc, err := res.Resource(op, refs)
			opName := map[lang.Op]string{lang.Create: "create", lang.Update: "update"}[op]
			if err != nil {
				fmt.Fprintf(&b, "%s error: %v\n", opName, err)
				continue
			}
			var managed []string
			for _, m := range res.Managed(op) {
				managed = append(managed, m.String())
			}
			fmt.Fprintf(&b, "%s (manages %s):\n%s", opName, strings.Join(managed, ", "),
				pretty.PrettyOptions(doc, &pretty.Options{Indent: "  ", SortKeys: true, Width: 100}))
		}
		b.WriteString("\n")
	}
	return b.String()
}

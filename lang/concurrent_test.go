package lang_test

import (
	"errors"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/scimsync/scimsync/engine/ldif"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/lang"
)

// TestConcurrentEvaluators maps the demo directory from several goroutines
// sharing one compiled pipe (and the entries), each with its own
// Evaluator, and checks every result equals the sequential one. Run with
// -race: the compiled pipe and the entries must not be written by use.
func TestConcurrentEvaluators(t *testing.T) {
	text, err := os.ReadFile("../scripts/demo.pipe")
	if err != nil {
		t.Fatal(err)
	}
	p, err := lang.Load("../scripts/demo.pipe", string(text), lang.LoadOptions{LookupEnv: fakeEnv})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p.Source.File)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := source.NewDirectory()
	var changes []*lang.Change
	r := ldif.NewReader(f)
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ch, err := dir.Apply(rec)
		if err != nil {
			t.Fatal(err)
		}
		changes = append(changes, ch)
	}
	mapAll := func(ev *lang.Evaluator, refs lang.Resolver) []string {
		var out []string
		for _, ch := range changes {
			res, err := ev.Eval(ch, lang.Realtime)
			if err != nil {
				out = append(out, "error: "+err.Error())
				continue
			}
			if res.OutOfScope {
				out = append(out, "out of scope")
				continue
			}
			doc, err := res.Resource(lang.Create, refs)
			if err != nil {
				out = append(out, "error: "+err.Error())
				continue
			}
			out = append(out, res.Filter+" "+string(doc))
		}
		return out
	}
	want := mapAll(p.NewEvaluator(), dir.Resolver(p, lang.Realtime))
	const workers = 4
	var wg sync.WaitGroup
	got := make([][]string, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; round < 5; round++ {
				got[w] = mapAll(p.NewEvaluator(), dir.Resolver(p, lang.Realtime))
			}
		}()
	}
	wg.Wait()
	for w := range got {
		if len(got[w]) != len(want) {
			t.Fatalf("worker %d mapped %d changes, want %d", w, len(got[w]), len(want))
		}
		for i := range want {
			if got[w][i] != want[i] {
				t.Errorf("worker %d, change %d:\n got %s\nwant %s", w, i, got[w][i], want[i])
			}
		}
	}
}

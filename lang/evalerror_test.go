package lang_test

import (
	"strings"
	"testing"

	"github.com/scimsync/scimsync/engine/logsafe"
	"github.com/scimsync/scimsync/lang"
)

// TestEvalErrorSafeText: an evaluation error quotes the entry's DN and,
// often, a value (strconv's `parsing "…"`); its text keeps at most
// logsafe.MaxValue bytes of each, with control characters escaped, while
// the fields keep the data whole. Before, a 100 KB uid with an ESC made a
// 200 KB error that drove the terminal.
func TestEvalErrorSafeText(t *testing.T) {
	uid := "\x1b[2J" + strings.Repeat("u", 100<<10)
	p, err := loadMap(t, `    title = string(int(first(uid)))`)
	if err != nil {
		t.Fatal(err)
	}
	dn := "uid=" + uid + ",dc=x"
	_, err = p.NewEvaluator().Eval(&lang.Change{Type: lang.Add, DN: dn, Entry: lang.NewEntry(dn, []lang.Attr{
		{Name: "uid", Values: []string{uid}}})}, lang.Realtime)
	ee, ok := err.(*lang.EvalError)
	if !ok {
		t.Fatalf("Eval: %v", err)
	}
	msg := ee.Error()
	if len(msg) > 3*logsafe.MaxValue || strings.ContainsRune(msg, 0x1b) || !strings.Contains(msg, `\u001b[2J`) ||
		!strings.HasPrefix(msg, "t.pipe:13:") || !strings.Contains(msg, "bytes)") {
		t.Errorf("error of %d bytes: %.300q", len(msg), msg)
	}
	if ee.DN != dn {
		t.Error("the DN field was changed")
	}
}

package lang_test

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/builtins"
	"github.com/scimsync/scimsync/lang"
)

// TestBuiltinExamples runs every documented example of every builtin
// through the path a pipe uses: compiled against a pipe's environment
// (attributes case-insensitive, declared in the source block when they are
// outside the vocabulary) and evaluated against a change.
func TestBuiltinExamples(t *testing.T) {
	for _, f := range builtins.All() {
		for i, ex := range f.Examples {
			t.Run(fmt.Sprintf("%s/%d", f.Name, i), func(t *testing.T) {
				var names []string
				var attrs []lang.Attr
				for k, v := range ex.Attrs {
					names = append(names, fmt.Sprintf("%q", k))
					attrs = append(attrs, lang.Attr{Name: k, Values: v})
				}
				sort.Strings(names)
				script := fmt.Sprintf(`pipe "examples"
source ldif {
  file = "x.ldif"
  attributes = [%s]
}
scim { url = "https://scim.example.com/v2" }
endpoint Users {
  path = "/Users"
  schemas = ["urn:ietf:params:scim:schemas:core:2.0:User"]
}
class all { endpoint = Users }
`, strings.Join(names, ", "))
				p, err := lang.Load("examples.pipe", script, lang.LoadOptions{})
				if err != nil {
					t.Fatal(err)
				}
				x, err := p.CompileExpr("example", ex.Expr)
				if err != nil {
					if ex.Err != "" && strings.Contains(err.Error(), ex.Err) {
						return
					}
					t.Fatalf("%s: compile: %v", ex.Expr, err)
				}
				ch := &lang.Change{Type: lang.Add, DN: ex.DN, Entry: lang.NewEntry(ex.DN, attrs)}
				got, err := p.NewEvaluator().EvalExpr(x, ch)
				if ex.Err != "" {
					if err == nil || !strings.Contains(err.Error(), ex.Err) {
						t.Fatalf("%s: want error containing %q, got %v, %v", ex.Expr, ex.Err, got, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("%s: %v", ex.Expr, err)
				}
				if !sameValue(got, ex.Want) {
					t.Errorf("%s = %#v, want %#v", ex.Expr, got, ex.Want)
				}
			})
		}
	}
}

// sameValue compares lists by their items whatever the slice type, as the
// builtins' own example test does.
func sameValue(a, b any) bool {
	la, oka := asList(a)
	lb, okb := asList(b)
	if oka && okb {
		if len(la) != len(lb) {
			return false
		}
		for i := range la {
			if !sameValue(la[i], lb[i]) {
				return false
			}
		}
		return true
	}
	ma, oka := a.(map[string]any)
	mb, okb := b.(map[string]any)
	if oka && okb {
		if len(ma) != len(mb) {
			return false
		}
		for k := range ma {
			if !sameValue(ma[k], mb[k]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

func asList(v any) ([]any, bool) {
	rv := reflect.ValueOf(v)
	if v == nil || rv.Kind() != reflect.Slice || rv.Type().Elem().Kind() == reflect.Uint8 {
		return nil, false
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out, true
}

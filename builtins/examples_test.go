package builtins

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

var update = flag.Bool("update", false, "rewrite FUNCTIONS.md")

// exampleEnv is the environment of an example: dn, and each attribute both
// as given and in lower case, as []string.
func exampleEnv(ex Example) map[string]any {
	env := map[string]any{"dn": ex.DN}
	for name, vals := range ex.Attrs {
		env[name] = vals
		env[strings.ToLower(name)] = vals
	}
	return env
}

// eval compiles src the way a pipe does, checks its literal arguments, and
// runs it.
func eval(src string, env map[string]any) (any, error) {
	prog, err := compile(src, env)
	if err != nil {
		return nil, err
	}
	return expr.Run(prog, env)
}

func compile(src string, env map[string]any) (*vm.Program, error) {
	prog, err := expr.Compile(src, append([]expr.Option{expr.Env(env)}, Options()...)...)
	if err != nil {
		return nil, err
	}
	if err := CheckConstArgs(prog.Node()); err != nil {
		return nil, err
	}
	return prog, nil
}

// normalize makes results comparable with the Want of an Example: every
// list becomes []any and every map map[string]any, recursively, so that
// []string{"a"} equals []any{"a"}. Bytes are left alone.
func normalize(v any) any {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Invalid:
		return nil
	case reflect.Slice, reflect.Array:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return v
		}
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = normalize(rv.Index(i).Interface())
		}
		return out
	case reflect.Map:
		out := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			out[fmt.Sprint(it.Key().Interface())] = normalize(it.Value().Interface())
		}
		return out
	}
	return v
}

func TestExamples(t *testing.T) {
	for _, f := range All() {
		for _, ex := range f.Examples {
			t.Run(f.Name+"/"+ex.Expr, func(t *testing.T) {
				if !strings.Contains(ex.Expr, f.Name+"(") {
					t.Errorf("example of %s does not call it", f.Name)
				}
				got, err := eval(ex.Expr, exampleEnv(ex))
				if ex.Err != "" {
					if err == nil {
						t.Fatalf("got %s, want error containing %q", formatValue(got), ex.Err)
					}
					if !strings.Contains(err.Error(), ex.Err) {
						t.Fatalf("got error\n%v\nwant it to contain %q", err, ex.Err)
					}
					return
				}
				if err != nil {
					t.Fatalf("unexpected error:\n%v", err)
				}
				if !reflect.DeepEqual(normalize(got), normalize(ex.Want)) {
					t.Fatalf("got %s (%T), want %s", formatValue(got), got, formatValue(ex.Want))
				}
			})
		}
	}
}

var camelCase = regexp.MustCompile(`^[a-z][a-zA-Z0-9]*$`)

var knownFamilies = map[string]bool{
	"strings": true, "ldap": true, "dn": true, "time": true, "ad": true, "scim": true, "json": true,
}

func TestFuncSpecs(t *testing.T) {
	all := All()
	if len(all) == 0 {
		t.Fatal("no functions")
	}
	for i, f := range all {
		if i > 0 {
			prev := all[i-1]
			if prev.Family > f.Family || prev.Family == f.Family && prev.Name >= f.Name {
				t.Errorf("All() not sorted by family, then name: %s/%s before %s/%s", prev.Family, prev.Name, f.Family, f.Name)
			}
		}
		if !camelCase.MatchString(f.Name) {
			t.Errorf("%s: name is not camelCase", f.Name)
		}
		if !knownFamilies[f.Family] {
			t.Errorf("%s: unknown family %q", f.Name, f.Family)
		}
		if !strings.HasPrefix(f.Doc, f.Name+" ") {
			t.Errorf("%s: Doc must start with the name: %q", f.Name, f.Doc)
		}
		if strings.Contains(f.Doc, "\n") || !strings.HasSuffix(f.Doc, ".") {
			t.Errorf("%s: Doc must be one paragraph ending with a period", f.Name)
		}
		if !strings.Contains(f.Doc, "nil") {
			t.Errorf("%s: Doc must say what nil gives", f.Name)
		}
		if n := len(f.Examples); n < 2 || n > 4 {
			t.Errorf("%s: has %d examples, want 2 to 4", f.Name, n)
		}
		if len(f.Sig) == 0 {
			t.Errorf("%s: no Sig", f.Name)
		}
		for _, sig := range f.Sig {
			if rt := reflect.TypeOf(sig); rt.Kind() != reflect.Pointer || rt.Elem().Kind() != reflect.Func || rt.Elem().NumOut() != 1 {
				t.Errorf("%s: Sig %T is not a pointer to a function with one result", f.Name, sig)
			}
		}
		if f.Fn == nil {
			t.Errorf("%s: no Fn", f.Name)
		}
		if Lookup(f.Name) != f {
			t.Errorf("Lookup(%q) does not return it", f.Name)
		}
	}
	if Lookup("nope") != nil {
		t.Error("Lookup of an unknown name is not nil")
	}
	if got := Names(); len(got) != len(all) {
		t.Errorf("Names() has %d entries, All() %d", len(got), len(all))
	}
}

// nilResult is what f returns when its main input is nil: predicates give
// false, list producers an empty list, and everything else nil.
func nilResult(f *Func) any {
	if f.Name == "toBool" { // a conversion, not a predicate
		return nil
	}
	out := reflect.TypeOf(f.Sig[0]).Elem().Out(0)
	switch out.Kind() {
	case reflect.Bool:
		return false
	case reflect.Slice:
		return []any{}
	}
	return nil
}

// otherArgs returns zero values for the arguments after the main input.
func otherArgs(f *Func) []any {
	ft := reflect.TypeOf(f.Sig[0]).Elem()
	n := ft.NumIn() - 1
	if ft.IsVariadic() {
		n = 0
	}
	args := make([]any, n)
	for i := range args {
		args[i] = ""
	}
	return args
}

// TestNilSemantics calls every Fn with a nil main input, checks the result
// against the documented rule, and checks that an example shows it.
func TestNilSemantics(t *testing.T) {
	for _, f := range All() {
		t.Run(f.Name, func(t *testing.T) {
			want := nilResult(f)
			got, err := f.Fn(append([]any{nil}, otherArgs(f)...)...)
			if err != nil {
				t.Fatalf("%s(nil, ...): %v", f.Name, err)
			}
			if !reflect.DeepEqual(normalize(got), want) {
				t.Fatalf("%s(nil, ...) = %#v, want %s", f.Name, got, formatValue(want))
			}
			if rv := reflect.ValueOf(got); rv.Kind() == reflect.Slice && rv.IsNil() {
				t.Errorf("%s(nil, ...) is a nil slice, want an empty list", f.Name)
			}
			shown := false
			for _, ex := range f.Examples {
				if ex.Err == "" && hasAbsentAttr(ex) && reflect.DeepEqual(normalize(ex.Want), want) {
					shown = true
				}
			}
			if !shown {
				t.Errorf("no example shows the nil case: want %s from an absent attribute", formatValue(want))
			}
		})
	}
}

func hasAbsentAttr(ex Example) bool {
	for _, vals := range ex.Attrs {
		if len(vals) == 0 {
			return true
		}
	}
	return false
}

// TestWrongType checks that a main input of the wrong type is a clear error,
// not a panic.
func TestWrongType(t *testing.T) {
	for _, f := range All() {
		t.Run(f.Name, func(t *testing.T) {
			_, err := f.Fn(append([]any{42}, otherArgs(f)...)...)
			if err == nil || !strings.HasPrefix(err.Error(), f.Name+": ") || !strings.Contains(err.Error(), "got int") {
				t.Fatalf("%s(42, ...): got error %v, want %q and %q", f.Name, err, f.Name+": ", "got int")
			}
			if _, err := f.Fn(); err == nil && !reflect.TypeOf(f.Sig[0]).Elem().IsVariadic() {
				t.Errorf("%s(): no error", f.Name)
			}
		})
	}
}

func TestFunctionsMarkdown(t *testing.T) {
	got := Markdown()
	if *update {
		if err := os.WriteFile("FUNCTIONS.md", got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile("FUNCTIONS.md")
	if err != nil {
		t.Fatalf("%v (run go test ./builtins -update)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("FUNCTIONS.md is stale (run go test ./builtins -update); first difference at line %d:\nfile:      %s\ngenerated: %s", i+1, w, g)
			}
		}
	}
}

func BenchmarkFirstLower(b *testing.B) {
	for _, mail := range []string{"Ann.Lee@Example.COM", "ann.lee@example.com"} {
		b.Run(mail, func(b *testing.B) {
			env := map[string]any{"dn": "uid=ann,dc=example", "mail": []string{mail}}
			prog, err := compile(`lower(first(mail))`, env)
			if err != nil {
				b.Fatal(err)
			}
			var m vm.VM
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Run(prog, env); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

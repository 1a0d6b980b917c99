package builtins

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// forbiddenImports would let a function do I/O or depend on the machine;
// their subpackages (os/exec, net/http, ...) are forbidden too.
var forbiddenImports = []string{
	"os", "net", "io/fs", "io/ioutil", "path/filepath", "syscall", "plugin", "unsafe",
	"math/rand", "crypto/rand", "embed", "runtime/debug",
}

// allowedModules are the only imports from outside the standard library.
// engine/jsonw is this project's JSON string writer, itself standard
// library only (its own test would show otherwise).
var allowedModules = []string{"github.com/expr-lang/expr", "github.com/go-ldap/ldap/v3", "github.com/scimsync/scimsync/engine/jsonw"}

// clockFuncs read the clock or wait for it.
var clockFuncs = map[string]bool{
	"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true, "AfterFunc": true,
	"Tick": true, "NewTicker": true, "NewTimer": true,
}

// impurities parses one Go file and lists what breaks the package's rules:
// imports that do I/O, imports beyond the standard library, expr and go-ldap,
// reading the clock, and init functions.
func impurities(name string, src any) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var found []string
	report := func(pos token.Pos, format string, args ...any) {
		found = append(found, fset.Position(pos).String()+": "+fmt.Sprintf(format, args...))
	}
	timeName := ""
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		for _, bad := range forbiddenImports {
			if path == bad || strings.HasPrefix(path, bad+"/") {
				report(imp.Pos(), "imports %s", path)
			}
		}
		if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
			ok := false
			for _, mod := range allowedModules {
				ok = ok || path == mod || strings.HasPrefix(path, mod+"/")
			}
			if !ok {
				report(imp.Pos(), "imports %s, outside the standard library, expr and go-ldap", path)
			}
		}
		if path == "time" {
			timeName = "time"
			if imp.Name != nil {
				timeName = imp.Name.Name
			}
		}
	}
	ast.Inspect(f, func(node ast.Node) bool {
		switch node := node.(type) {
		case *ast.SelectorExpr:
			if x, ok := node.X.(*ast.Ident); ok && timeName != "" && x.Name == timeName && clockFuncs[node.Sel.Name] {
				report(node.Pos(), "uses time.%s", node.Sel.Name)
			}
		case *ast.FuncDecl:
			if node.Recv == nil && node.Name.Name == "init" {
				report(node.Pos(), "func init; list functions in registry.go instead")
			}
		}
		return true
	})
	return found, nil
}

// TestPurity checks the package's non-test files with impurities.
func TestPurity(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		n++
		found, err := impurities(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, msg := range found {
			t.Error(msg)
		}
	}
	if n < 8 {
		t.Errorf("checked only %d files; is the test running in the package directory?", n)
	}
}

// TestPurityDetects makes sure TestPurity would catch a violation.
func TestPurityDetects(t *testing.T) {
	src := `package builtins

import (
	"net/http"
	"os"
	t "time"

	"github.com/expr-lang/expr/vm"
	"github.com/example/other"
)

func init() {}

var _ = t.Now()
`
	found, err := impurities("bad.go", src)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"bad.go:4:2: imports net/http",
		"bad.go:5:2: imports os",
		"bad.go:9:2: imports github.com/example/other, outside the standard library, expr and go-ldap",
		"bad.go:12:1: func init; list functions in registry.go instead",
		"bad.go:14:9: uses time.Now",
	}
	if strings.Join(found, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(found, "\n"), strings.Join(want, "\n"))
	}
}

package builtins

import (
	"cmp"
	"fmt"
	"slices"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
)

// Func describes one function available to pipe expressions.
type Func struct {
	Name   string // camelCase
	Family string // "strings", "ldap", "dn", "time", "ad", "scim", "json"
	// Sig holds the expr types of the function, e.g. new(func(string) string).
	// Several types are overloads, tried in order by expr's checker; they are
	// passed to expr.Function.
	Sig []any
	// Fn is the implementation. It receives nil and values of any type at run
	// time (see the package documentation) and must not retain args: expr
	// reuses the slice.
	Fn func(args ...any) (any, error)
	// Doc is one paragraph; its first sentence starts with Name.
	Doc      string
	Examples []Example
	// ConstArgs optionally validates string-literal arguments when a script
	// is loaded (see CheckConstArgs), e.g. regular expression patterns. The
	// key is the argument position, counting from 0.
	ConstArgs map[int]func(string) error
}

// Example is one documented and tested use of a Func.
type Example struct {
	Expr  string              // e.g. `lower(first(mail))`
	Attrs map[string][]string // attributes visible to the example (as []string variables), may be nil
	DN    string              // value of the `dn` variable
	// Want is the expected result. Lists compare by their elements whatever
	// their Go slice type ([]string{"a"} equals []any{"a"}), maps by their
	// entries (map[string]string equals map[string]any); other values
	// compare with reflect.DeepEqual.
	Want any
	// Err, if set, means loading or evaluating must fail with an error
	// containing Err; Want is then ignored.
	Err string
}

// families lists every family's functions. Adding a family means adding its
// variable here.
var families = [][]*Func{
	adFuncs,
	dnFuncs,
	jsonFuncs,
	ldapFuncs,
	scimFuncs,
	stringFuncs,
	timeFuncs,
}

type registry struct {
	all     []*Func
	byName  map[string]*Func
	names   []string
	options []expr.Option
}

// disabledBuiltins are the expr builtins pipe expressions may not use.
// now() would make a mapping depend on the clock instead of on the change;
// timezone() reads the machine's time-zone database (file I/O).
var disabledBuiltins = []string{"now", "timezone"}

var reg = sync.OnceValue(func() *registry {
	r := &registry{byName: map[string]*Func{}}
	for _, fam := range families {
		r.all = append(r.all, fam...)
	}
	slices.SortFunc(r.all, func(a, b *Func) int {
		return cmp.Or(cmp.Compare(a.Family, b.Family), cmp.Compare(a.Name, b.Name))
	})
	for _, f := range r.all {
		if _, dup := r.byName[f.Name]; dup {
			panic("builtins: duplicate function " + f.Name)
		}
		r.byName[f.Name] = f
		r.names = append(r.names, f.Name)
		r.options = append(r.options, expr.Function(f.Name, f.Fn, f.Sig...))
	}
	slices.Sort(r.names)
	for _, name := range disabledBuiltins {
		r.options = append(r.options, expr.DisableBuiltin(name))
	}
	return r
})

// All returns every function, sorted by family, then by name. The Funcs are
// shared and must not be modified.
func All() []*Func { return slices.Clone(reg().all) }

// Lookup returns the function called name, or nil.
func Lookup(name string) *Func { return reg().byName[name] }

// Names returns the names of all functions, sorted.
func Names() []string { return slices.Clone(reg().names) }

// Options returns the expr options that make the functions available:
// expr.Function for each Func with its Sig types, and expr.DisableBuiltin for
// the expr builtins pipe expressions may not use (now). Our functions take
// precedence over expr builtins of the same name; expr's other builtins stay
// available.
func Options() []expr.Option { return slices.Clone(reg().options) }

// CheckConstArgs validates the string-literal arguments of calls in a
// compiled expression's tree (such as prog.Node()) with the ConstArgs of the
// called Func, so that an invalid regular expression or DN literal is
// reported when a script is loaded rather than on the first change. The
// error is a *file.Error located at the offending literal; bind it to the
// source for a snippet.
func CheckConstArgs(node ast.Node) error {
	c := constArgsChecker{}
	ast.Walk(&node, &c)
	if c.err != nil {
		return c.err
	}
	return nil
}

type constArgsChecker struct{ err *file.Error }

func (c *constArgsChecker) Visit(node *ast.Node) {
	call, ok := (*node).(*ast.CallNode)
	if !ok || c.err != nil {
		return
	}
	ident, ok := call.Callee.(*ast.IdentifierNode)
	if !ok {
		return
	}
	f := Lookup(ident.Value)
	if f == nil || f.ConstArgs == nil {
		return
	}
	for i, arg := range call.Arguments {
		check := f.ConstArgs[i]
		s, ok := arg.(*ast.StringNode)
		if check == nil || !ok {
			continue
		}
		if err := check(s.Value); err != nil {
			c.err = &file.Error{Location: arg.Location(), Message: fmt.Sprintf("%s: %v", f.Name, err)}
			return
		}
	}
}

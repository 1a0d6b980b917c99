package repl_test

import (
	"io/fs"
	"os"

	"github.com/scimsync/scimsync/lang"
	"github.com/scimsync/scimsync/lang/repl"
	"github.com/scimsync/scimsync/scripts"
)

// A session on the embedded demo pipe and its entries: go to an entry,
// evaluate expressions against it (one continued on a second line), ask for
// a type and for the lookup filter.
func ExampleREPL_OneShot() {
	r := repl.New(os.Stdout, repl.Options{
		Pipe: scripts.DemoPipe,
		Load: lang.LoadOptions{ReadFile: func(name string) ([]byte, error) { return fs.ReadFile(scripts.Demo, name) }},
	})
	for _, line := range []string{
		":entry uid=praman,ou=People,dc=example,dc=com",
		"lower(first(mail))",
		"map(mail,",
		"  split(#, \"@\")[1])",
		":type first(sn)",
		":lookup",
		"lowr(first(mail))",
	} {
		if quit, _ := r.OneShot(line); quit {
			break
		}
	}
	// Output:
	// [4/30] add uid=praman,ou=People,dc=example,dc=com
	// "priya.raman@example.com" : string
	// ["example.com"] : list<string>
	// string
	// userName eq "praman"
	// <input>:1:1: unknown function lowr (did you mean lower?)
	//   |
	// 1 | lowr(first(mail))
	//   | ^^^^
}

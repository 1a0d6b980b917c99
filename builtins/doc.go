// Package builtins is the function registry for pipe expressions.
//
// Every function a pipe script can call (lower, first, parseDN, uacDisabled,
// ...) is declared once, as a [Func] in the file of its family (strings.go,
// ldap.go, dn.go, time.go, ad.go, scim.go, json.go). The declaration carries
// the expr signatures the checker uses, the implementation, the documentation
// and examples. TestExamples runs every example through expr, and FUNCTIONS.md
// is generated from the same data, so code, tests and documentation cannot
// drift apart. registry.go concatenates the families explicitly; there is no
// init() registration.
//
// Register the functions with expr through [Options]:
//
//	prog, err := expr.Compile(src, append(builtins.Options(), expr.Env(env))...)
//	if err == nil {
//		err = builtins.CheckConstArgs(prog.Node()) // e.g. invalid regexp literals
//	}
//
// # Values
//
// In the expression environment every LDAP attribute is a []string (LDAP
// attributes are multi-valued; binary values such as objectGUID are the raw
// bytes in a Go string) and dn is a string. The functions that combine lists
// (first, values, hasValue, join) accept []string as well as []any, the type
// of expr's array literals and of map() results. The functions for
// single-valued attributes (toBool, the time and ad families, parseJSON) take
// a string or a list, whose first value they use, so that
// uacDisabled(userAccountControl) needs no first().
//
// # Nil semantics
//
// LDAP attributes may be absent or empty, so nil flows through expressions:
//
//   - first(values) returns nil for an absent or empty list. LDAP has no
//     attribute with zero values, so an empty list is treated like an absent
//     one throughout: join(ou, "/") is nil for both.
//   - Every function whose main (first) input is nil returns nil, so
//     lower(first(mail)) is nil when mail is absent. Functions producing a
//     string or a structured value follow this rule, and so does toBool.
//   - Predicates return false instead: hasValue(nil, "x"), isUnder(nil, base),
//     dnEqual(nil, x), regexMatch(nil, p) and uacDisabled(nil) are false.
//   - Functions producing a list return an empty list: split(nil, ","),
//     values(nil), parseDN(nil) and uacFlags(nil) are [].
//   - A nil secondary argument (a separator, a pattern, a replacement) is an
//     error, except for the value compared by a predicate, which gives false.
//
// Use expr's ?? operator to supply defaults: lower(first(mail)) ?? "".
//
// The declared signatures describe non-nil arguments (lower(string) string).
// expr's checker accepts values of unknown type (any) where a string is
// expected, and a function declared to return string may return nil at run
// time, so nil reaches the implementations even though the signature says
// string. A literal nil, however, is rejected at compile time for a string or
// list parameter ("cannot use nil as argument"). The implementations never
// assume a type: a wrong one is an error such as "lower: want string, got int".
//
// When a Func has several signatures, expr's checker uses the first one whose
// parameters accept the arguments, and an argument of unknown type (any)
// matches every one: first(parseJSON(s)) is typed string, by first's
// ([]string) string signature, whatever the JSON holds.
//
// # Purity
//
// The functions are pure: no I/O, no clock, no randomness; expressions must
// be functions of the change alone. For the same reason [Options] disables
// expr's now() builtin. A test enforces that this package imports neither os,
// net nor io/fs and never calls time.Now.
//
// # Overriding expr builtins
//
// Some names (lower, upper, trim, split, replace, join, first, values) are also
// expr builtins. A function registered with expr.Function takes precedence over
// the builtin of the same name (expr's parser turns the call into an ordinary
// call when the name is overridden), so ours are used; TestOverrides checks
// this. expr's other builtins (len, map, filter, hasPrefix, ...) stay
// available.
package builtins

//go:generate go test -run ^TestFunctionsMarkdown$ -update .

// Package repl is the core of `scimsync repl`: an interactive session in
// which an identity engineer steps through sample LDAP entries, evaluates
// expressions against the current one, and sees which sync class takes it
// and why the earlier ones do not, the SCIM resource its mappings build,
// the lookup filter, and the PATCH that would turn a given current resource
// into it — then edits the pipe script and reloads, without a SCIM server.
//
// A REPL holds the state (the compiled pipe, the sample changes, the
// cursor) and takes one line at a time through OneShot, writing what the
// line produces to an io.Writer. It has no terminal code: the command in
// cmd/scimsync wraps it in a line editor, or in a plain loop over standard
// input so that sessions can be scripted, and tests replay transcripts
// through it (as OPA's repl.OneShot and cel-go's Evaluator.Process are
// driven).
//
// # Lines
//
// A line that starts with ':' is a command; anything else is an expression
// evaluated against the current change and printed as `value : type`, in
// the manner of cel-go's REPL:
//
//	> lower(first(mail))
//	"pat@example.com" : string
//
// Blank lines, and lines starting with # (comments, for scripted
// sessions), do nothing. An expression left incomplete — a bracket or a quote still open, or a
// trailing && || ?? or + — makes OneShot return ErrIncomplete; the next
// line continues it. Errors are rendered like `scimsync check`'s, with the
// typed line and a caret, the position counted within what was typed.
//
// The commands (`:help` lists them, `:help NAME` explains one command or
// function):
//
//	:load [PIPE]        reload the pipe script (or load another), showing diagnostics
//	:entries FILE.ldif  read sample entries (LDIF content or change records)
//	:next, :prev        step through the entries
//	:entry N|DN         go to the Nth entry, or to the entry with that DN
//	:show               the current entry, as LDIF
//	:class              the class that takes the change, and why each earlier one does not
//	:map                the SCIM resource the mappings build, as JSON
//	:lookup             the lookup filter that finds the existing resource
//	:patch FILE.json    the PATCH that turns that current resource into the mapped one
//	:fetch DN           read an entry from the directory (with an LDAP connection)
//	:search FILTER      read the entries a filter finds (with an LDAP connection)
//	:funcs              the functions expressions can call
//	:help [NAME]        the commands, or one command or function with examples
//	:type EXPR          an expression's static type, without evaluating it
//	:quit               leave
//
// Completion (Complete, CompleteWord) offers the commands, the function
// names, the variables and the current entry's attribute names, and file
// names after the commands that take one.
package repl

// Package repl is the core of `scimsync repl`: an interactive session in
// which an identity engineer steps through sample LDAP entries, evaluates
// expressions against the current one, and sees which sync class takes it
// and why the earlier ones do not, the SCIM resource its mappings build,
// the lookup filter, and the PATCH that would turn a given current resource
// into it — and tries mapping lines at the prompt, sees them on every
// sample entry and against the live SCIM service, and saves them into the
// pipe script.
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
// # Mapping lines
//
// A line of the shape `[@usage…] target = expression` (a SCIM attribute
// path, or a class setting such as when or endpoint, then = but not ==) is a
// mapping line. It is compiled exactly as the same line in the script: the
// script's text is compiled again with the typed line in place of the
// class's line for that target (or added at the end of its map block), so
// the target is checked against the class's endpoint schemas, the types
// are checked, and problems are shown with a caret under what was typed.
// It goes to the current entry's class, or to the one chosen with :class
// NAME, and stays until :unset or :save; the answer is the target's new
// value for the current entry and what it was:
//
//	> displayName = upper(first(cn))
//	people.displayName: "PRIYA RAMAN" (was "Priya Raman")
//
// :save writes the compiled text, the typed lines in place and every
// other byte as read, after showing the difference. The script file is
// reloaded by itself (and says so) when it changes on disk.
//
// The commands (`:help` lists them, `:help NAME` explains one command or
// function):
//
//	:load [PIPE]        reload the pipe script (or load another), showing diagnostics
//	:entries FILE.ldif  read sample entries (LDIF content or change records)
//	:next, :prev        step through the entries
//	:entry N|DN         go to the Nth entry, or to the entry with that DN
//	:show               the current entry, as LDIF
//	:class [NAME|-]     the class that takes the change, and why each earlier one does not;
//	                    with NAME, the class mapping lines go to
//	:map                the SCIM resource the mappings build, as JSON
//	:map --all [--json] [TARGET...], :table TARGET...
//	                    every sample entry: class, endpoint, the targets' values or its error
//	:overrides          the mapping lines typed here; :unset TARGET drops one
//	:save [FILE]        write them into the script (or a copy), after showing the difference
//	:lookup             the lookup filter that finds the existing resource
//	:patch [FILE.json]  the PATCH that turns that current resource into the mapped one;
//	                    without a file, the requests a sync would send to the live service
//	:get                the current entry's resource, read from the SCIM service
//	:apply              send those requests, after a yes on a terminal
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

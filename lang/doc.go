// Package lang compiles pipe scripts: the one file that declares a whole
// scimsync pipe from an LDAP directory to a SCIM 2.0 service.
//
// Load parses a script, evaluates its settings once (env() and file() are
// the only I/O a script does, and only then), and compiles every
// expression once against a typed environment, collecting every problem as
// a Diagnostic with its file:line:col. The resulting Pipe is immutable and
// safe for concurrent use; each worker evaluates changes through its own
// Evaluator, which keeps its own expr VM, so nothing is parsed or compiled
// per change.
//
// # The language
//
// A script is a sequence of blocks. Comments start with # outside brackets
// and strings, or with // anywhere outside strings (inside brackets # is
// expr's closure argument, as in map(mail, lower(#))).
//
//	pipe "NAME"                   the pipe's name (required)
//	source KIND { settings }      ldif, changelog, syncrepl or dirsync (one)
//	scim { settings }             the SCIM service (one)
//	endpoint NAME { settings }    a SCIM endpoint such as /Users (one or more)
//	class NAME { settings         a sync class (one or more, tried in order)
//	  map { mappings }
//	}
//
// A setting is `name = expression`. A mapping is `[@usage…] target =
// expression`. An expression runs to the end of its line, and on while a
// bracket is open or the line ends (or the next begins) with an operator
// such as && || ?? + or ?:.
//
// # Settings
//
// Settings are expressions evaluated once, at load. Besides the literals
// and the pure builtins they may call:
//
//	env("NAME")            the environment variable; unset is a load error
//	env("NAME", "default") the variable, or the default when unset
//	file("path")           the file's content, trailing newline trimmed; relative
//	                       paths are relative to the script (for secrets)
//
// Secret settings (password, token, clientSecret) never appear in any
// output, and no error message quotes a setting's value.
//
// source: file (ldif); url (one or a list, tried in order), bindDN,
// password, base, caFile, startTLS, insecure, timeout, pollInterval,
// pageSize, identity (the attribute holding a stable identity: entryUUID,
// nsUniqueId, objectGUID), attributes (names of LDAP attributes beyond the
// known vocabulary, for expressions to use).
//
// scim: url (required); auth ("none", "basic", "bearer", "oauth2"; inferred
// from the other settings when omitted); username, password; token;
// tokenURL, clientId, clientSecret, scopes; caFile, certFile, keyFile,
// insecure; timeout, maxAttempts, maxConns; query ("get": GET ?filter=, or
// "post": POST /.search); update ("patch", the default, or "put");
// maxPatchOps (operations per PATCH request, default 1000: a larger change,
// such as thousands of members added at once, goes in several requests).
//
// endpoint: path (required, e.g. "/Users"), schemas (required: the core
// schema URN first, then extensions), type (the resource type name used in
// references; default from the core schema: User, Group), adopt (on a 409
// conflict on create, look the resource up and update it), lookup (a
// per-change expression giving the SCIM filter that finds an existing
// resource; build it with scimQuote so that no value can break the filter).
//
// class: base (DNs the entry must be at or under; default everywhere),
// when (a per-change boolean expression; checked as boolean at load),
// endpoint (an endpoint name, or a per-change expression choosing one, e.g.
// hasValue(objectClass, "groupOfNames") ? Groups : Users), operations
// (which of "create", "modify", "delete" the class synchronizes; default
// all), onDelete ("delete", the default, removes the resource;
// "deactivate" sets active to false instead, keeping it for audit),
// onLeave (what happens to the resource of an entry that stops matching the
// class after a modify or rename — moved out of its base, or its `when` now
// false: "delete", "deactivate" or "keep"; default: as onDelete). An entry
// that starts matching a class is created.
//
// # Classes
//
// For each change, classes are tried in script order; the first whose
// operations include the change's (add is create, modify and modrdn are
// modify, delete is delete), whose base holds the entry's DN and whose
// `when` is true takes it. A delete that carries no attributes is
// classified by base and operations alone. No class: the change is out of
// scope, and counted.
//
// # Expressions
//
// Per-change expressions use github.com/expr-lang/expr syntax. They see:
//
//	every LDAP attribute   by name, as a list of strings ([]string); names match
//	                       case-insensitively (RFC 4512), so givenName, givenname
//	                       and GIVENNAME are one attribute. Binary values (objectGUID)
//	                       are the raw bytes in the string. A name that is not an
//	                       identifier: attrs["ds-pwp-account-disabled"].
//	dn                     the entry's DN (the new DN after a rename)
//	oldDN                  the DN before a rename; "" otherwise
//	changeType             "add", "modify", "delete" or "modrdn"
//	changed                the names of the attributes a modify changed
//	endpoint names         as values, for `endpoint` and ref()
//
// An attribute name outside the known LDAP vocabulary (RFC 4519, 2798,
// 4524, 2307, operational attributes, and those of OpenLDAP, 389-ds,
// PingDirectory and Active Directory) is a load error with "did you mean",
// unless the source block declares it in `attributes`. Unknown functions,
// calls with the wrong argument types and `when` conditions that are not
// boolean are load errors too. The functions are listed, with examples, in
// builtins/FUNCTIONS.md; expr's own (len, map, filter, hasPrefix, …) are
// there as well, but not now(): a mapping is a function of the change.
//
// A map literal inside a closure needs parentheses, because expr reads
// braces there as the closure's body: map(mail, ({"value": #, "type": "work"})).
//
// # Mappings
//
// A target is a SCIM attribute path (RFC 7644 §3.10), checked against the
// endpoint's schemas at load (the core User, Group and Enterprise User
// schemas of RFC 7643 are built in; attributes of other schemas are not
// checked):
//
//	userName                          a simple attribute
//	name.givenName                    a sub-attribute
//	emails[type eq "work"].value      an element of a multi-valued attribute, found
//	                                  (or created, with type "work") by eq filters joined by and
//	"urn:…:enterprise:2.0:User:employeeNumber"
//	urn:…:enterprise:2.0:User:manager.value
//	                                  extension attributes by URN (quoted or not)
//	emails                            a whole multi-valued attribute, from a list of maps
//	                                  or of strings (each becomes {"value": …})
//
// A target may be mapped once, and a multi-valued attribute either whole or
// in parts. The value is checked against the schema's type: a list for a
// single-valued target is an error at load when its type is known, at run
// time otherwise; LDAP's "TRUE"/"FALSE" become booleans, numeric strings
// numbers where the schema says so. An element of a filtered path whose
// value gives nothing is left out whole.
//
// nil, "", an empty list or map mean "no value": the attribute is left out
// of the resource on create, and removed on update — the targets a class
// maps are the attributes it manages, and nothing else is ever touched.
//
// ref(dns, Endpoint…) makes references of DN-valued attributes: each DN is
// resolved, when the change is applied, to the SCIM id of the resource that
// entry became at one of the endpoints (group members, manager.value). A
// DN out of every class's scope is left out.
//
// # Usage
//
// Annotations before a target choose when it is sent, as PingDataSync's
// attribute-usage does: @create or @update (the operation) and @resync or
// @realtime (the mode). Without an operation both apply; without a mode
// both apply. `@create externalId = first(entryUUID)` is sent when the
// resource is created, in either mode.
//
// # Errors
//
// Load errors are *Diagnostics. A failing expression on one change (a
// runtime type error, a missing value in a filter) is an *EvalError with
// the position in the script and the entry's DN; it fails that change
// only.
package lang

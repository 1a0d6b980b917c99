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
// known vocabulary, for expressions to use), passwordKey (changelog only:
// the secret that would decrypt PingDirectory's encrypted changelog
// passwords; see "Password sync").
//
// scim: url (required); auth ("none", "basic", "bearer", "oauth2"; inferred
// from the other settings when omitted); username, password; token;
// tokenURL, clientId, clientSecret, scopes; caFile, certFile, keyFile,
// insecure; timeout, maxAttempts, maxConns; query ("get": GET ?filter=, or
// "post": POST /.search); update ("patch", the default, or "put");
// maxPatchOps (operations per PATCH request, default 1000: a larger change,
// such as thousands of members added at once, goes in several requests);
// patchFilters ("filter", the default: a PATCH reaches one element of a
// multi-valued attribute with a value filter, remove emails[type eq
// "other"], and falls back to "replace" for the rest of the run when the
// service refuses such a path; "replace": the whole attribute is replaced
// with the desired elements, keeping the elements the pipe does not
// manage, for a service known to refuse value filters);
// rate (at most this many requests per second to the service, over every
// worker; `run --rate` and `resync --rate` override it. With or without it,
// a 429 slows every worker down together and the pace recovers gradually);
// passwords ("send", the default, or "skip": every password mapping is left
// out, for a service that refuses password writes or keeps its own);
// list (true, the default: resync reads each endpoint it writes to by
// listing it in pages first and answers lookups from that; false: it looks
// every entry up, as `resync --no-list` does, for a service whose listing
// is slow or wrong; the flag wins when given);
// bulk ("auto", the default: resync sends its creates, and its updates
// that are one PATCH, in RFC 7644 §3.7 Bulk requests when the service's
// /ServiceProviderConfig, read once at the start, advertises bulk; "on":
// even when it does not say so, for a
// service that advertises wrongly; "off": one request per resource, for a
// service whose Bulk is broken), bulkMaxOperations and bulkMaxPayload
// (the operations and the bytes, as sent, of one Bulk request; default
// what the service advertises, the operations capped at 100 so that one
// request stays well within the client's timeout, else 100 and 1 MiB;
// the settings override both): each create in a Bulk
// request succeeds or fails on its own, as a single POST would; a group
// whose member is queued in the same request refers to it by bulkId (one
// such reference per operation: a group with two waits for the next pass,
// since SCIMMY-based services resolve only one); a
// Bulk request left unanswered (a timeout, a 5xx) has its creates looked up
// before any is sent again; a service that answers POST /Bulk with 404,
// 405 or 501 gets one request per resource for the rest of the resync; an
// update the service refuses or leaves in doubt inside a Bulk request is
// read again and sent alone (never sent blind), and one whose request got
// no answer at all fails, for the next resync to read again.
// Updates of several PATCH requests (more operations than maxPatchOps),
// update = "put", the replace form of patchFilters, deletes and a group
// with more members than maxPatchOps are sent one request each, and run,
// failed retry and verify --repair never use Bulk. `resync --log-level
// info` logs what the service advertised and what was decided;
// maxDeletes, maxDeletesPercent and deleteWindow (the mass-delete guard:
// the deletes and deactivations `verify --repair` and `resync` may imply
// and `run` may send within deleteWindow, default 10m, as a count, default
// 500, and as a whole percentage of the resources the pipe manages,
// default 20 from 10 deletes on, none for run unless set; over them the
// command stops; --max-deletes, --max-deletes-percent and --delete-window
// override them, --allow-deletes lets one command through).
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
// Once a class has made an entry's resource, that class owns it (the
// engine's id map records which): a delete of the entry is decided by the
// owning class alone — nothing is sent when its operations leave out
// "delete" (the delete is dropped, counted and logged), else its onDelete
// applies — and a modify or rename that the owning class does not
// synchronize is dropped rather than passed to a later class. Every path
// that takes a resource away (a delete from any source, a syncrepl present
// phase, leaving scope) goes through that one decision.
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
//	newPassword            the clear-text password the change set, when the source
//	                       records it; nil otherwise, and always in resync. Secret:
//	                       see "Password sync"
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
// in parts.
//
// # Types
//
// A value must have its target's SCIM type (RFC 7643 §2.3): a string for
// string, reference, dateTime and binary attributes, a bool for boolean, an
// integer for integer, a number for decimal, a map for complex (a string
// too, for a multi-valued complex attribute mapped whole: it becomes
// {"value": …}), and a list only for a multi-valued attribute mapped whole.
// Nothing is converted implicitly, since a guessed conversion writes wrong
// data (`displayName = len(mail)` would send "2"): when the expression's
// static type cannot be the target's, the mapping is a load error at the
// expression, and the script converts explicitly:
//
//	active      = toBool(first(nsAccountLock))    LDAP "TRUE"/"FALSE" to a bool
//	active      = first(pwdAccountLockedTime) == nil   a comparison
//	displayName = string(len(mail))               a number to a string
//	"urn:…:enterprise:2.0:User:costCenter" = string(4130)
//
// and int(…), float(…) for integer and decimal attributes. Where the static
// type is unknown until run time (parseJSON(…).field, a conditional mixing
// types), each value is checked when the change is mapped, by the same rule:
// a value of another type fails the change with an *EvalError, never
// converted. The one leeway: an integer attribute takes a whole number that
// JSON gave as a float.
//
// # Elements of filtered paths
//
// An element of a filtered path (emails[type eq "work"]) is written only
// when one of its mapped sub-attributes has a value, and never when its
// value sub-attribute is mapped and gives nothing: the filter's own
// attributes alone ({"type": "work"}) are no element. When the element's
// mapped values are all gone, an update manages it whole: PATCH removes
// emails[type eq "work"], and PUT (`update = "put"`) sends the resource
// without it, as it sends every attribute the class does not manage
// unchanged.
//
// # Passwords
//
// SCIM's password is the clear-text password (RFC 7643 §4.1.1). Directories
// store passwords hashed: userPassword as {SCHEME}data ({SSHA}, {SSHA512},
// {PBKDF2-SHA512}, {CRYPT}, {ARGON2}, …, RFC 2307), authPassword as
// scheme$salt$hash (RFC 3112). A service given such a value would take the
// hash itself as the password. So a value in either form is never sent as
// password: mapping one fails the change, with a message that shows no part
// of the value. A value not in that form is sent. At load, a password
// mapping that can only give a hash attribute's values as stored
// (userPassword, first(userPassword), userPassword[0], trim(…), last(…),
// with ?? "" or a conditional with nil) is reported by a warning — the
// script loads, see Pipe.Warnings. newPassword, the clear text a change
// carries (see "Password sync"), is what a password mapping should read.
//
// # Password sync
//
// A directory never gives a password back, so the clear text exists only at
// the moment of a change, and only where the source records it. newPassword
// holds it for that change (nil when the change carries none):
//
//	@realtime password = newPassword
//
// Where it comes from, per source:
//
//   - 389 Directory Server (changelog): the Retro Changelog records the
//     clear text as unhashed#user#password in the changes attribute when
//     cn=config has nsslapd-unhashed-pw-switch: on. Seen (389-ds 2.x) for an
//     LDAP modify of userPassword with a clear value and for the password
//     modify extended operation (ldappasswd, which 389 accepts only over
//     LDAPI or TLS); not for an add (its changes hold only the hash), and
//     not for a modify that supplies an already hashed value. A user created
//     with a password is therefore created without one; its first password
//     change is sent.
//   - OpenLDAP (syncrepl) and LDIF: a userPassword value not in {SCHEME}
//     form is clear text (some sites store it so); a hashed value never is.
//     syncrepl reports whole entries, so newPassword is set when the clear
//     value differs from the one last seen for the entry in this process, or
//     the entry is new; after a restart, an entry's first change does not
//     re-send its unchanged password.
//   - PingDirectory (changelog): its Changelog Password Encryption plugin
//     adds ds-changelog-encrypted-password, which the source's passwordKey
//     would decrypt. The format is not publicly documented, so the value is
//     not decrypted: each such change is synced without its password and
//     logged with an "unsupported format" error (no passwordKey: a "no
//     passwordKey" error). Ping's format and test vectors would close the
//     gap.
//   - Active Directory (dirsync): DirSync never returns passwords; a pipe
//     that maps password gets a warning at load.
//
// The rules: the password is sent on create (in the POST body) and by the
// update of the modify that carried it, as one PATCH {"op":"replace",
// "path":"password"} after the others (update = "put": in the PUT body);
// never in resync; never compared or diffed (SCIM's password is writeOnly
// and never returned). An expression that reads newPassword is secret like
// one that reads userPassword: its errors are withheld, and no log, error,
// REPL, dry-run, map or verify output shows the value ("(withheld)"). The
// state never holds it: a parked password change keeps only the change's
// position, and its retry reads the password again from the changelog
// record; when that record is gone (trimmed) the change stays parked with
// that reason, and the entry's other changes are applied. A service that
// refuses password writes (400 mutability, 403) fails the change with a
// message saying so; passwords = "skip" in the scim block stops sending
// them.
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
// # What a class reads
//
// At load, each class learns which LDAP attributes evaluating a modify may
// read (Class.Reads, Class.ReadAttributes): those named by its `when`, its
// endpoint expression, the lookups of the endpoints it can send to, its
// mappings used in the mode (for create or update: a modify of an entry
// with no resource yet creates it), and the `when` of every class before it
// that synchronizes modifies (classes are tried in order: such an attribute
// may hand the entry to that class). ref(dns, …) reads the attributes of its
// DN argument only; the referenced entries are resolved from the id map. A
// modify that changed none of them cannot change the class's resource, and
// the engine may leave it without a request.
//
// Variables: dn does not count, since a modify never changes it (a rename or
// an add is never skipped on that account). changed, changeType and oldDN
// do count as reading everything: their values differ between the modify
// and the change that last wrote the resource. So does $env. Reads also
// answers "yes" when the source did not say what changed, or named an
// attribute by OID; attribute options (mail;lang-fr) are ignored.
//
// # Budgets
//
// Each change's evaluation (class conditions, endpoint, lookup filter and
// mappings together) has a budget, so that a careless expression over a
// large attribute (nested loops over a group's members, a string doubled in
// a reduce) fails that change only, instead of running for minutes or
// taking gigabytes (DefaultBudget; Evaluator.SetBudget changes it):
//
//	time      2s        wall time, watched in every closure call (map, filter, reduce…)
//	memory    64 MiB    strings built by + and by functions (their length), lists
//	                    (16 bytes an element) and maps (48 an entry) functions return;
//	                    first and last, which only pass a value through, do not count
//	elements  1 000 000 expr's own memory budget, per expression: elements of
//	                    ranges (1..n), list and map literals, sorts
//
// Going over it is an *EvalError at the expression that was running, whose
// cause is a *BudgetError (time or memory). The figures are far above what
// mappings need (20 000 members through lower() take a few milliseconds and
// about 2 MB) and are not script settings: an expression that needs more is
// one to rewrite.
//
// # Errors
//
// Load errors are *Diagnostics. A failing expression on one change (a
// runtime type error, a missing value in a filter) is an *EvalError with
// the position in the script and the entry's DN; it fails that change
// only. A warning (Pipe.Warnings) is a problem that does not stop the
// load but will fail some changes; it renders like an error, with
// "warning: " before the message.
package lang

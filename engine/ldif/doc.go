// Package ldif reads LDAP Data Interchange Format (RFC 2849): content and change records.
//
// A [Reader] streams records one at a time from an [io.Reader]; it never
// loads the whole input into memory. It understands the "version:" line,
// comments (including folded comment lines), line folding with LF or CRLF
// line endings, base64 ("::") values and DNs, attribute options
// ("cn;lang-en"), controls, and the change types add, delete, modify and
// modrdn (moddn is accepted as a synonym and reported as "modrdn").
//
// Keywords ("dn", "changetype", "add", "replace", ...) are matched without
// regard to case, as RFC 2849's ABNF prescribes. Values are returned as raw
// bytes in a Go string, base64 decoded where needed; except for DNs given in
// base64 (which must be UTF-8), no character-set checks are made.
//
// URL values ("attr:< file:///...") are rejected with an [*Error]: the
// package performs no I/O of its own.
//
// Deliberate leniencies, beyond the letter of RFC 2849:
//
//   - a physical line made only of spaces and tabs counts as a blank line
//     (a record separator) rather than as an empty continuation;
//   - a content record may have no attributes (as printed by
//     "ldapsearch ... 1.1");
//   - content and change records may be mixed in one input;
//   - base64 values without "=" padding are accepted;
//   - a UTF-8 byte order mark at the very start of the input is skipped;
//   - the last block of a modify record may omit its closing "-" line.
//
// A "changetype:" line is only a change type when it directly follows the dn
// (and any control lines). Elsewhere in a content record it is an ordinary
// attribute, as in the changelog entries of 389-ds or OpenLDAP.
package ldif

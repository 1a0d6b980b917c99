package ldif

import "strconv"

// MaxLineLength is the largest logical line (after unfolding, without its
// line ending) a [Reader] accepts, in bytes. Longer lines make Next return an
// [*Error], which bounds the memory a hostile input can make the reader use.
const MaxLineLength = 16 << 20

// Attr is one attribute of a content record or of a "changetype: add"
// record, with all of its values.
type Attr struct {
	// Name is the attribute description as first written in the record,
	// options included (for example "cn;lang-en").
	Name string
	// Values holds the values in file order, each as raw bytes in a
	// string (base64 values are decoded).
	Values []string
}

// Mod is one modification of a "changetype: modify" record.
type Mod struct {
	// Op is "add", "delete", "replace" or "increment".
	Op string
	// Attr is the attribute description named on the operation line.
	Attr string
	// Values holds the values listed in the block, in file order; it is
	// nil when the block lists none (delete or replace all values).
	Values []string
}

// Control is an LDAP control attached to a change record ("control:" line).
type Control struct {
	// OID is the control type, a numeric object identifier.
	OID string
	// Criticality is true when the line says "true".
	Criticality bool
	// Value is the control value (base64 decoded), "" when absent.
	Value string
}

// Record is one LDIF record: a content record (an entry) or a change
// record.
type Record struct {
	// Line is the 1-based line number of the record's dn: line.
	Line int
	// DN is the distinguished name (base64 decoded for "dn::").
	DN string
	// ChangeType is "" for a content record, else "add", "delete",
	// "modify" or "modrdn" ("moddn" in the input is reported as "modrdn").
	ChangeType string
	// Attrs holds the attributes of a content record or of a
	// "changetype: add" record, in file order. Lines whose attribute
	// descriptions match without regard to case are merged into one Attr,
	// which keeps the first spelling.
	Attrs []Attr
	// Mods holds the modifications of a "changetype: modify" record.
	Mods []Mod
	// NewRDN is the new RDN of a "changetype: modrdn" record.
	NewRDN string
	// DeleteOldRDN is true when a modrdn record says "deleteoldrdn: 1".
	DeleteOldRDN bool
	// NewSuperior is the new parent DN of a modrdn record, "" if absent.
	NewSuperior string
	// Controls holds the controls of a change record, in file order.
	Controls []Control
}

// IsChange reports whether r is a change record (it has a changetype).
func (r *Record) IsChange() bool { return r.ChangeType != "" }

// Error is a syntax error in LDIF input, or a line over [MaxLineLength].
type Error struct {
	// Line is the 1-based physical line the error was found on.
	Line int
	// Column is the 1-based byte column within that line, 0 if unknown.
	Column int
	// Msg describes the problem.
	Msg string
}

// Error formats e as "line 12: msg", or "line 12:5: msg" when the column is
// known.
func (e *Error) Error() string {
	s := "line " + strconv.Itoa(e.Line)
	if e.Column > 0 {
		s += ":" + strconv.Itoa(e.Column)
	}
	return s + ": " + e.Msg
}

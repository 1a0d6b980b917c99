package lang

import (
	"strings"

	"github.com/scimsync/scimsync/engine/secret"
)

// ChangeType is the kind of LDAP change a Change reports.
type ChangeType uint8

// The change types, as LDIF and the changelogs name them.
const (
	Add ChangeType = iota + 1
	Modify
	Delete
	ModRDN
)

var changeTypeNames = [...]string{Add: "add", Modify: "modify", Delete: "delete", ModRDN: "modrdn"}

// String returns the LDIF name: add, modify, delete or modrdn.
func (t ChangeType) String() string {
	if int(t) < len(changeTypeNames) && t > 0 {
		return changeTypeNames[t]
	}
	return "unknown"
}

// ParseChangeType reads an LDIF changetype; moddn is modrdn.
func ParseChangeType(s string) (ChangeType, bool) {
	switch strings.ToLower(s) {
	case "add":
		return Add, true
	case "modify":
		return Modify, true
	case "delete":
		return Delete, true
	case "modrdn", "moddn":
		return ModRDN, true
	}
	return 0, false
}

// Change is one LDAP change as expressions see it: the change type, the
// entry's DN (the new DN after a rename), the previous DN on a rename, the
// names of the changed attributes, and the current entry (nil, or holding
// only what the delete record carried, for a delete).
type Change struct {
	Type    ChangeType
	DN      string
	OldDN   string   // the DN before a modrdn; "" otherwise
	Changed []string // attribute names a modify changed, as the source reported them
	Entry   *Entry
	// NewPassword is the clear-text password the change set, when the
	// source records one (389-ds's unhashed#user#password, a userPassword
	// value not in {SCHEME} form): expressions read it as newPassword. It
	// is never stored, logged or shown (password_change.go).
	NewPassword secret.Secret
}

// Entry is an LDAP entry: a DN and attributes whose names match
// case-insensitively (RFC 4512 §2.5): givenName, givenname and GIVENNAME are
// one attribute, whatever case the server sent.
type Entry struct {
	DN    string
	attrs []Attr
	index map[string]int // lower-case name -> position in attrs
	boxed []any          // attrs[i].Values as an interface
}

// value returns an attribute's values as the interface expressions see.
// Each attribute is boxed once, when it is set, not once per evaluation;
// reading never writes, so an entry can be shared between goroutines.
func (e *Entry) value(lc string) any {
	if e == nil {
		return noValues
	}
	if i, ok := e.index[lc]; ok {
		return e.boxed[i]
	}
	return noValues
}

// Attr is one attribute of an entry. Values are strings holding the raw
// bytes, so binary values (objectGUID, jpegPhoto) are kept as they are.
type Attr struct {
	Name   string
	Values []string
}

// noValues is an absent attribute as expressions see it, boxed once.
var noValues any = []string(nil)

// NewEntry builds an entry. Attributes whose names differ only in case are
// merged, keeping the first spelling.
func NewEntry(dn string, attrs []Attr) *Entry {
	e := &Entry{DN: dn, index: make(map[string]int, len(attrs))}
	for _, a := range attrs {
		e.Add(a.Name, a.Values...)
	}
	return e
}

// Get returns the values of an attribute, or nil.
func (e *Entry) Get(name string) []string {
	if e == nil {
		return nil
	}
	if i, ok := e.index[name]; ok {
		return e.attrs[i].Values
	}
	if i, ok := e.index[lowerASCII(name)]; ok {
		return e.attrs[i].Values
	}
	return nil
}

// First returns the first value of an attribute, or "".
func (e *Entry) First(name string) string {
	if v := e.Get(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Attrs returns the attributes in the order they were added.
func (e *Entry) Attrs() []Attr {
	if e == nil {
		return nil
	}
	return e.attrs
}

// Add appends values to an attribute, creating it if needed.
func (e *Entry) Add(name string, values ...string) {
	k := lowerASCII(name)
	if i, ok := e.index[k]; ok {
		e.attrs[i].Values = append(e.attrs[i].Values, values...)
		e.boxed[i] = e.attrs[i].Values
		return
	}
	e.index[k] = len(e.attrs)
	vs := append([]string(nil), values...)
	e.attrs = append(e.attrs, Attr{Name: name, Values: vs})
	e.boxed = append(e.boxed, vs)
}

// Replace sets an attribute's values; no values removes it.
func (e *Entry) Replace(name string, values ...string) {
	e.Delete(name)
	if len(values) > 0 {
		e.Add(name, values...)
	}
}

// Delete removes an attribute, or with values only those values
// (case-insensitively, as most LDAP matching rules compare).
func (e *Entry) Delete(name string, values ...string) {
	k := lowerASCII(name)
	i, ok := e.index[k]
	if !ok {
		return
	}
	if len(values) > 0 {
		kept := e.attrs[i].Values[:0:0]
	outer:
		for _, v := range e.attrs[i].Values {
			for _, d := range values {
				if strings.EqualFold(v, d) {
					continue outer
				}
			}
			kept = append(kept, v)
		}
		if len(kept) > 0 {
			e.attrs[i].Values = kept
			e.boxed[i] = kept
			return
		}
	}
	e.attrs = append(e.attrs[:i], e.attrs[i+1:]...)
	e.boxed = append(e.boxed[:i], e.boxed[i+1:]...)
	delete(e.index, k)
	for j := i; j < len(e.attrs); j++ {
		e.index[lowerASCII(e.attrs[j].Name)] = j
	}
}

// Clone returns a deep copy.
func (e *Entry) Clone() *Entry {
	c := &Entry{DN: e.DN, index: make(map[string]int, len(e.attrs))}
	for _, a := range e.attrs {
		c.Add(a.Name, a.Values...)
	}
	return c
}

// lowerASCII lower-cases an attribute description. Descriptions are ASCII
// (RFC 4512 §1.4), so this avoids strings.ToLower's Unicode work; it returns
// s itself when it has no upper-case letter.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

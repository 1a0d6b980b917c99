package lang

import (
	"sort"
	"strings"
)

// readSet is what of a change some expressions read: LDAP attributes by
// lower-case name, and whether they read something that a modify's changed
// attributes cannot describe.
type readSet struct {
	attrs map[string]bool
	// any: the value may differ from one change to the next whatever
	// attributes changed ($env, changed, changeType, oldDN).
	any bool
}

// readsOf is what one compiled expression reads.
//
// dn is not counted: a modify never changes the DN, and every change that
// does (modrdn, add) is evaluated whatever it changed, so dn reads the same
// on a modify as on the change that last wrote the resource. changed,
// changeType and oldDN do differ between that change and a modify ("add"
// then "modify", a rename's old DN then ""), and $env reaches every
// attribute: an expression reading any of them may give a new value on any
// modify.
func readsOf(v *identVisitor) readSet {
	rs := readSet{attrs: make(map[string]bool, len(v.used))}
	for a := range v.used {
		rs.attrs[a] = true
	}
	rs.any = v.whole || v.vars["changed"] || v.vars["changeType"] || v.vars["oldDN"]
	if v.vars["newPassword"] {
		// A change carries a new password only when it changed the
		// password attribute the source reports it under.
		for _, a := range passwordChangeAttrs {
			rs.attrs[a] = true
		}
	}
	return rs
}

func (rs *readSet) add(e *expression) {
	if e == nil {
		return
	}
	if rs.attrs == nil {
		rs.attrs = map[string]bool{}
	}
	for a := range e.reads.attrs {
		rs.attrs[a] = true
	}
	rs.any = rs.any || e.reads.any
}

// classReads gathers, per mode, what evaluating a modify for cl may read:
//
//   - the `when` of cl and of every class before it that synchronizes
//     modifies: classes are tried in order, so a changed attribute that an
//     earlier class's `when` reads can hand the entry to that class, and one
//     that cl's `when` reads can make it leave cl;
//   - the endpoint expression, and the lookup of every endpoint cl can send
//     to;
//   - the mappings evaluated in the mode, for create or update (a modify
//     of an entry that has no resource yet creates it). ref(dns, …) reads
//     only the attributes of its first argument: the referenced entries are
//     resolved from the id map, not from this change.
//
// The class's base needs nothing: it tests the DN.
func classReads(p *Pipe, cl *Class) [2]readSet {
	var common readSet
	for _, prev := range p.Classes {
		if prev.ops&opModify != 0 {
			common.add(prev.when)
		}
	}
	common.add(cl.when)
	common.add(cl.choose)
	for _, e := range cl.Endpoints(p) {
		common.add(e.lookup)
	}
	var out [2]readSet
	for mode := Realtime; mode <= Resync; mode++ {
		rs := readSet{attrs: map[string]bool{}, any: common.any}
		for a := range common.attrs {
			rs.attrs[a] = true
		}
		for _, m := range cl.Mappings {
			if m.Usage&(bit(Create, mode)|bit(Update, mode)) != 0 {
				rs.add(m.prog)
			}
		}
		out[mode] = rs
	}
	return out
}

// Reads reports whether any expression the class evaluates for a modify in
// mode — its `when` and those of the classes before it, its endpoint
// expression, its endpoints' lookups, its mappings used in mode — may read
// one of the named LDAP attributes (case-insensitive; options such as
// ";lang-fr" are ignored). When it is false, the modify cannot change the
// resource the class builds, nor which class takes the entry, and the
// engine may skip it without a request.
//
// It returns true when it cannot tell: attrs is empty (the source did not
// say what changed), names an attribute by OID, or an expression reads
// $env, changed, changeType or oldDN. dn does not count (a modify does not
// change it). Reads answers for modifies only: an add, delete or modrdn is
// never skipped on its account.
func (c *Class) Reads(mode Mode, attrs []string) bool {
	if mode > Resync {
		return true
	}
	rs := &c.reads[mode]
	if rs.any || len(attrs) == 0 {
		return true
	}
	for _, a := range attrs {
		if i := strings.IndexByte(a, ';'); i >= 0 {
			a = a[:i]
		}
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if ch := a[0]; '0' <= ch && ch <= '9' {
			return true // an OID: which attribute it is, the schema knows
		}
		if rs.attrs[lowerASCII(a)] {
			return true
		}
	}
	return false
}

// ReadAttributes returns the lower-case names of the LDAP attributes that
// Reads(mode, …) looks for, sorted, and whether the class reads something
// that makes Reads always true: for `check`, the REPL and tests.
func (c *Class) ReadAttributes(mode Mode) (attrs []string, always bool) {
	if mode > Resync {
		return nil, true
	}
	rs := &c.reads[mode]
	for a := range rs.attrs {
		attrs = append(attrs, a)
	}
	sort.Strings(attrs)
	return attrs, rs.any
}

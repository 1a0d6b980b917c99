package source

import (
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/engine/ldif"
	"github.com/scimsync/scimsync/lang"
)

// Directory is an in-memory directory built from LDIF records. It gives each
// change the entry as it stands after the change, as a live source would
// fetch it, and lets references (group members, managers) be looked up.
type Directory struct {
	entries map[string]*lang.Entry // normalized DN -> entry
	order   []string               // normalized DNs in the order first seen
}

// NewDirectory returns an empty directory.
func NewDirectory() *Directory {
	return &Directory{entries: map[string]*lang.Entry{}}
}

// NormalizeDN returns a DN's comparison key: parsed and re-written by
// go-ldap (RFC 4514), lower-cased. An unparsable DN is lower-cased as is.
func NormalizeDN(dn string) string {
	if d, err := ldap.ParseDN(dn); err == nil {
		return strings.ToLower(d.String())
	}
	return strings.ToLower(strings.TrimSpace(dn))
}

// Get returns the entry at dn, or nil.
func (d *Directory) Get(dn string) *lang.Entry {
	return d.entries[NormalizeDN(dn)]
}

// Entries returns the entries in the order they were first added.
func (d *Directory) Entries() []*lang.Entry {
	out := make([]*lang.Entry, 0, len(d.entries))
	seen := make(map[string]bool, len(d.entries))
	for _, k := range d.order {
		if e, ok := d.entries[k]; ok && !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	return out
}

// Len returns the number of entries.
func (d *Directory) Len() int { return len(d.entries) }

// Apply applies one LDIF record and returns the change it is. A content
// record is an add of a new entry, or a modify (replacing every attribute)
// of one the directory has.
func (d *Directory) Apply(rec *ldif.Record) (*lang.Change, error) {
	key := NormalizeDN(rec.DN)
	switch rec.ChangeType {
	case "", "add":
		e := lang.NewEntry(rec.DN, toAttrs(rec.Attrs))
		ch := &lang.Change{Type: lang.Add, DN: rec.DN, Entry: e}
		if old, ok := d.entries[key]; ok && rec.ChangeType == "" {
			ch.Type = lang.Modify
			ch.Changed = changedNames(old, e)
		} else if !ok {
			d.order = append(d.order, key)
		}
		d.entries[key] = e
		ch.NewPassword = contentPassword(ch)
		return ch, nil
	case "delete":
		e := d.entries[key]
		delete(d.entries, key)
		if e == nil {
			e = lang.NewEntry(rec.DN, nil)
		}
		return &lang.Change{Type: lang.Delete, DN: rec.DN, Entry: e}, nil
	case "modify":
		e := d.entries[key]
		if e == nil {
			e = lang.NewEntry(rec.DN, nil)
			d.entries[key] = e
			d.order = append(d.order, key)
		} else {
			e = e.Clone()
			d.entries[key] = e
		}
		ch := &lang.Change{Type: lang.Modify, DN: e.DN, Entry: e}
		for _, m := range rec.Mods {
			switch m.Op {
			case "add":
				e.Add(m.Attr, m.Values...)
			case "delete":
				e.Delete(m.Attr, m.Values...)
			case "replace":
				e.Replace(m.Attr, m.Values...)
			case "increment":
				return nil, fmt.Errorf("line %d: increment is not supported in an LDIF source", rec.Line)
			}
			ch.Changed = appendName(ch.Changed, m.Attr)
		}
		ch.NewPassword = modPassword(rec.Mods)
		return ch, nil
	case "modrdn":
		return d.rename(rec, key)
	}
	return nil, fmt.Errorf("line %d: unknown changetype %s", rec.Line, rec.ChangeType)
}

// rename applies a modrdn: the new RDN's values are added, the old ones
// removed when deleteoldrdn is set, and the entry moves.
func (d *Directory) rename(rec *ldif.Record, key string) (*lang.Change, error) {
	old, err := ldap.ParseDN(rec.DN)
	if err != nil || len(old.RDNs) == 0 {
		return nil, fmt.Errorf("line %d: invalid DN %q", rec.Line, rec.DN)
	}
	newRDN, err := ldap.ParseDN(rec.NewRDN)
	if err != nil || len(newRDN.RDNs) != 1 {
		return nil, fmt.Errorf("line %d: invalid newrdn %q", rec.Line, rec.NewRDN)
	}
	parent := ""
	if len(old.RDNs) > 1 {
		parent = (&ldap.DN{RDNs: old.RDNs[1:]}).String()
	}
	if rec.NewSuperior != "" {
		parent = rec.NewSuperior
	}
	newDN := rec.NewRDN
	if parent != "" {
		newDN += "," + parent
	}
	e := d.entries[key]
	if e == nil {
		e = lang.NewEntry(newDN, nil)
	} else {
		e = e.Clone()
	}
	e.DN = newDN
	var changed []string
	if rec.DeleteOldRDN {
		for _, a := range old.RDNs[0].Attributes {
			e.Delete(a.Type, a.Value)
			changed = appendName(changed, a.Type)
		}
	}
	for _, a := range newRDN.RDNs[0].Attributes {
		e.Delete(a.Type, a.Value)
		e.Add(a.Type, a.Value)
		changed = appendName(changed, a.Type)
	}
	delete(d.entries, key)
	nk := NormalizeDN(newDN)
	d.entries[nk] = e
	d.order = append(d.order, nk)
	return &lang.Change{Type: lang.ModRDN, DN: newDN, OldDN: rec.DN, Changed: changed, Entry: e}, nil
}

func toAttrs(in []ldif.Attr) []lang.Attr {
	out := make([]lang.Attr, len(in))
	for i, a := range in {
		out[i] = lang.Attr{Name: a.Name, Values: a.Values}
	}
	return out
}

func appendName(names []string, n string) []string {
	for _, x := range names {
		if strings.EqualFold(x, n) {
			return names
		}
	}
	return append(names, n)
}

// changedNames lists the attributes that differ between two versions.
func changedNames(old, cur *lang.Entry) []string {
	var out []string
	for _, a := range cur.Attrs() {
		if !sameValues(old.Get(a.Name), a.Values) {
			out = appendName(out, a.Name)
		}
	}
	for _, a := range old.Attrs() {
		if cur.Get(a.Name) == nil {
			out = appendName(out, a.Name)
		}
	}
	return out
}

func sameValues(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Resolver returns a lang.Resolver for offline previews (map, dry runs
// without a SCIM server, the REPL): a reference to an entry of the
// directory that the pipe maps to one of the wanted endpoints becomes the
// placeholder id "(id of DN)"; other references are left out, as a sync
// leaves out members that are out of scope.
func (d *Directory) Resolver(p *lang.Pipe, mode lang.Mode) lang.Resolver {
	ev := p.NewEvaluator()
	return lang.ResolverFunc(func(dn string, endpoints []*lang.Endpoint) (lang.Ref, bool, error) {
		e := d.Get(dn)
		if e == nil {
			return lang.Ref{}, false, nil
		}
		res, err := ev.Eval(&lang.Change{Type: lang.Add, DN: e.DN, Entry: e}, mode)
		if err != nil || res.OutOfScope {
			return lang.Ref{}, false, nil
		}
		for _, ep := range endpoints {
			if ep == res.Endpoint {
				return lang.Ref{ID: "(id of " + e.DN + ")", Type: ep.Type}, true, nil
			}
		}
		return lang.Ref{}, false, nil
	})
}

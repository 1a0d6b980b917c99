package source

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/lang"
)

// fetchAttrs are the attributes read for the current entry: all user
// attributes, all operational ones, and the identity attributes by name
// (some servers leave them out of "+").
var fetchAttrs = []string{"*", "+", "entryUUID", "nsUniqueId"}

// identityAttrs are tried in order when the script names no identity.
var identityAttrs = []string{"nsUniqueId", "entryUUID", "objectGUID"}

// toEntry converts a go-ldap entry; values keep their raw bytes.
func toEntry(e *ldap.Entry) *lang.Entry {
	attrs := make([]lang.Attr, 0, len(e.Attributes))
	for _, a := range e.Attributes {
		vs := make([]string, len(a.ByteValues))
		for i, b := range a.ByteValues {
			vs[i] = string(b)
		}
		attrs = append(attrs, lang.Attr{Name: a.Name, Values: vs})
	}
	return lang.NewEntry(e.DN, attrs)
}

// canonicalIdentity writes an identity value as a lower-case UUID: an
// entryUUID as it is, a 389-ds nsUniqueId (8-8-8-8 hex) regrouped 8-4-4-4-12
// (the form 389's Content Sync uses as syncUUID), an AD objectGUID (16 raw
// bytes) in Microsoft's textual form. Anything else is returned trimmed.
func canonicalIdentity(attr, v string) string {
	if strings.EqualFold(attr, "objectGUID") && len(v) == 16 {
		b := []byte(v)
		return fmt.Sprintf("%s-%s-%s-%s-%s",
			hex.EncodeToString([]byte{b[3], b[2], b[1], b[0]}), hex.EncodeToString([]byte{b[5], b[4]}),
			hex.EncodeToString([]byte{b[7], b[6]}), hex.EncodeToString(b[8:10]), hex.EncodeToString(b[10:]))
	}
	v = strings.ToLower(strings.TrimSpace(v))
	if len(v) == 35 && v[8] == '-' && v[17] == '-' && v[26] == '-' {
		h := v[0:8] + v[9:17] + v[18:26] + v[27:35]
		if _, err := hex.DecodeString(h); err == nil {
			return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
		}
	}
	return v
}

// nativeIdentity turns a canonical identity back into the value the
// directory stores, for a search filter.
func nativeIdentity(attr, id string) string {
	if strings.EqualFold(attr, "nsUniqueId") && len(id) == 36 {
		h := strings.ReplaceAll(id, "-", "")
		if len(h) == 32 {
			return h[0:8] + "-" + h[8:16] + "-" + h[16:24] + "-" + h[24:32]
		}
	}
	if strings.EqualFold(attr, "objectGUID") && len(id) == 36 {
		h := strings.ReplaceAll(id, "-", "")
		b, err := hex.DecodeString(h)
		if err == nil && len(b) == 16 {
			raw := []byte{b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]}
			raw = append(raw, b[8:]...)
			var sb strings.Builder
			for _, c := range raw {
				fmt.Fprintf(&sb, "\\%02x", c)
			}
			return sb.String()
		}
	}
	return ldap.EscapeFilter(id)
}

// entryIdentity returns the canonical identity of an entry and the
// attribute it came from: attr when the script names one, else the first of
// identityAttrs the entry has.
func entryIdentity(e *lang.Entry, attr string) (string, string) {
	if e == nil {
		return "", ""
	}
	if attr != "" {
		if v := e.First(attr); v != "" {
			return canonicalIdentity(attr, v), attr
		}
		return "", ""
	}
	for _, a := range identityAttrs {
		if v := e.First(a); v != "" {
			return canonicalIdentity(a, v), a
		}
	}
	return "", ""
}

// Scope tells whether a DN is under a source's base DNs (every DN when
// the source names none): for the engine, an entry whose DN is now outside
// them has left the pipe's scope, whatever its class says.
type Scope struct{ s scope }

// NewScope parses a source's base DNs.
func NewScope(bases []string) (Scope, error) {
	s, err := newScope(bases)
	return Scope{s}, err
}

// Contains reports whether dn is one of the bases or below one.
func (s Scope) Contains(dn string) bool { return s.s.contains(dn) }

// scope is the set of base DNs a source reports changes under; empty means
// everything.
type scope []*ldap.DN

func newScope(bases []string) (scope, error) {
	var s scope
	for _, b := range bases {
		d, err := ldap.ParseDN(b)
		if err != nil {
			return nil, fmt.Errorf("source base %q: %v", b, err)
		}
		s = append(s, d)
	}
	return s, nil
}

// contains reports whether dn is one of the bases or below one.
func (s scope) contains(dn string) bool {
	if len(s) == 0 {
		return true
	}
	d, err := ldap.ParseDN(dn)
	if err != nil {
		return false
	}
	for _, b := range s {
		if b.EqualFold(d) || b.AncestorOfFold(d) {
			return true
		}
	}
	return false
}

// searchBases returns the DNs to search for an entry by identity.
func (s scope) searchBases(fallback string) []string {
	if len(s) == 0 {
		return []string{fallback}
	}
	out := make([]string, len(s))
	for i, b := range s {
		out[i] = b.String()
	}
	return out
}

// fetcher reads current entries: by DN, and by identity when the entry has
// moved since the change was recorded.
type fetcher struct {
	scope   scope
	idAttr  string // attribute to search by identity: nsUniqueId, entryUUID or objectGUID
	context string // a naming context to search when the scope is empty
}

// byDN reads the entry at dn; nil, nil when there is none.
func (f *fetcher) byDN(c *ldap.Conn, dn string) (*lang.Entry, error) {
	res, err := c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", fetchAttrs, nil))
	if err != nil {
		if isNoSuchObject(err) {
			return nil, nil
		}
		return nil, err
	}
	if len(res.Entries) == 0 {
		return nil, nil
	}
	return toEntry(res.Entries[0]), nil
}

// byIdentity finds the entry with a canonical identity under the scope;
// nil, nil when there is none or identity searches are not possible.
func (f *fetcher) byIdentity(c *ldap.Conn, id string) (*lang.Entry, error) {
	if id == "" || f.idAttr == "" {
		return nil, nil
	}
	filter := "(" + f.idAttr + "=" + nativeIdentity(f.idAttr, id) + ")"
	for _, base := range f.scope.searchBases(f.context) {
		if base == "" {
			continue
		}
		res, err := c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, 0, false,
			filter, fetchAttrs, nil))
		if err != nil {
			if isNoSuchObject(err) {
				continue
			}
			return nil, err
		}
		if len(res.Entries) > 0 {
			return toEntry(res.Entries[0]), nil
		}
	}
	return nil, nil
}

// current returns the entry now: at dn, or, when nothing with that
// identity is there, wherever the identity is now. nil when it is gone.
func (f *fetcher) current(ctx context.Context, c *ldap.Conn, dn, id string) (*lang.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e, err := f.byDN(c, dn)
	if err != nil {
		return nil, err
	}
	if e != nil {
		if cur, _ := entryIdentity(e, f.idAttr); id == "" || cur == "" || cur == id {
			return e, nil
		}
	}
	return f.byIdentity(c, id)
}

// operational lists (lower-case) attributes that servers add to changes
// and that are never what a user changed; they are left out of Changed.
var operational = map[string]bool{
	"creatorsname": true, "modifiersname": true, "createtimestamp": true, "modifytimestamp": true,
	"entryid": true, "parentid": true, "entryuuid": true, "dsentrydn": true, "entrydn": true,
	"nsuniqueid": true, "entrycsn": true, "numsubordinates": true, "hassubordinates": true,
	"structuralobjectclass": true, "subschemasubentry": true, "internalmodifiersname": true,
	"internalcreatorsname": true, "internalmodifytimestamp": true, "nscpentrydn": true,
	"unhashed#user#password": true, "unhashed-user-password": true, "entryusn": true, "nstombstonecsn": true,
	"whenchanged": true, "usnchanged": true, "instancetype": true, "objectguid": true,
}

func isOperational(name string) bool { return operational[strings.ToLower(name)] }

// rdnChanged lists the attribute types of the old RDN (when deleteOldRDN)
// and of the new RDN: what a rename changes.
func rdnChanged(oldDN, newRDN string, deleteOld bool) []string {
	var out []string
	if deleteOld {
		if d, err := ldap.ParseDN(oldDN); err == nil && len(d.RDNs) > 0 {
			for _, a := range d.RDNs[0].Attributes {
				out = appendName(out, a.Type)
			}
		}
	}
	if d, err := ldap.ParseDN(newRDN); err == nil && len(d.RDNs) > 0 {
		for _, a := range d.RDNs[0].Attributes {
			out = appendName(out, a.Type)
		}
	}
	return out
}

// renamedDN is the DN after a modrdn: newRDN under newSuperior, or under
// the old parent.
func renamedDN(oldDN, newRDN, newSuperior string) string {
	parent := newSuperior
	if parent == "" {
		if d, err := ldap.ParseDN(oldDN); err == nil && len(d.RDNs) > 1 {
			parent = (&ldap.DN{RDNs: d.RDNs[1:]}).String()
		} else if i := strings.IndexByte(oldDN, ','); i >= 0 {
			parent = oldDN[i+1:]
		}
	}
	if parent == "" {
		return newRDN
	}
	return newRDN + "," + parent
}

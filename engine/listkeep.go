package engine

import (
	"strings"

	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/lang"
)

// keepSet is what a listing keeps of each resource it lists: the
// top-level attributes (lower-cased names) that anything reading a listed
// resource reads. Everything else — meta, schemas, the attributes the
// pipe does not manage — is dropped as the page is read, so that a
// listing of 100 000 users fits a small machine (issue 15).
//
// Who reads a listed resource, and what:
//   - scim.Diff and the replace form of a PATCH (Destination.update,
//     verify): the managed paths, each top-level attribute whole (the
//     elements of emails that the pipe does not manage are compared too),
//     an extension's by its schema URN (its whole object); duplicate keys
//     are kept, so that Diff refuses them as it would;
//   - Listing.match: id, externalId and the core schema's single-valued
//     string attributes and single-valued complex ones (their string
//     sub-attributes), which are what a lookup filter is compared by
//     locally (Listing.support) — whatever the lookup expression names;
//   - a delete or deactivation (Destination.delete, verify's orphans):
//     active;
//   - verify's report: userName, displayName and externalId (displayName),
//     members for the members missing and extra (managed, so kept).
//
// A pipe that updates by PUT builds the body from the whole current
// resource (scim.PutBody keeps what it does not manage): its listings
// are kept whole, as are listings without a pipe to say what is read.
type keepSet struct {
	// attrs holds each kept name lower-cased and as written (the script's
	// or the schema's spelling, which services answer with), so that
	// compact finds the usual spelling without lower-casing it.
	attrs map[string]bool
	buf   []byte // compact's scratch: List reads one page at a time
}

// keepFor returns what a listing of ep keeps for pipe p, or nil: whole.
func keepFor(p *lang.Pipe, ep *lang.Endpoint) *keepSet {
	if p == nil || ep == nil || p.Update == "put" {
		return nil
	}
	k := &keepSet{attrs: map[string]bool{}}
	for _, a := range []string{"id", "externalId", "userName", "displayName", "active"} {
		k.add(a)
	}
	if core := ep.CoreSchema(); core != nil {
		for _, a := range core.Attributes {
			if !a.MultiValued && (a.Type == scim.TypeString || a.Type == scim.TypeComplex) {
				k.add(a.Name)
			}
		}
	}
	for _, c := range p.Classes {
		sends := false
		for _, e := range c.Endpoints(p) {
			sends = sends || e == ep
		}
		if !sends {
			continue
		}
		// Every mapping of the class, whatever its usage: Result.Managed
		// is a subset of these for any change.
		for _, m := range c.Mappings {
			k.add(m.Target.Attr)
			if m.Target.URN != "" {
				// An extension attribute is read within the object its
				// schema URN names (a core URN: at the top level).
				k.add(m.Target.URN)
			}
		}
	}
	return k
}

func (k *keepSet) add(name string) {
	k.attrs[name] = true
	k.attrs[strings.ToLower(name)] = true
}

// has reports whether the attribute (any case) is kept.
func (k *keepSet) has(name string) bool {
	return k == nil || k.attrs[name] || k.attrs[strings.ToLower(name)]
}

// compact returns a resource's JSON with only the kept attributes, as
// they were listed (each key and value byte for byte, in order); a nil
// keepSet, or a resource that is not a valid JSON object, is copied
// whole, so that whoever reads it fails as they would on the service's
// answer. The result is a copy: it holds nothing of the page.
func (k *keepSet) compact(raw string) []byte {
	if k == nil || !gjson.Valid(raw) {
		return []byte(raw)
	}
	r := gjson.Parse(raw)
	if !r.IsObject() {
		return []byte(raw)
	}
	b := append(k.buf[:0], '{')
	r.ForEach(func(key, val gjson.Result) bool {
		if k.has(key.Str) {
			if len(b) > 1 {
				b = append(b, ',')
			}
			b = append(b, key.Raw...)
			b = append(b, ':')
			b = append(b, val.Raw...)
		}
		return true
	})
	b = append(b, '}')
	k.buf = b
	return append([]byte(nil), b...)
}

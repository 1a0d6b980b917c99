package scim

import (
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// HasFilteredPath reports whether one of ops has a path with a value filter
// (emails[type eq "work"], emails[type eq "work"].value): the form some
// service providers refuse (see ReplaceFiltered).
func HasFilteredPath(ops []PatchOp) bool {
	for _, op := range ops {
		if strings.ContainsRune(op.Path, '[') {
			return true
		}
	}
	return false
}

// ReplaceFiltered rewrites the operations Diff returned for current into a
// form that names no element by a value filter, for service providers that
// refuse such paths (some answer remove emails[type eq "other"] with 400
// invalidPath or noTarget, though RFC 7644 §3.5.2 allows it).
//
// Every multi-valued attribute that an operation reaches through a filter
// gets one replace of the whole attribute instead of all its operations, at
// the place of the first of them. Its value is current's list with those
// operations applied, as the service provider would apply them: elements
// the pipe does not manage, and sub-attributes only current's elements have
// (a provider's display), stay; read-only and write-only sub-attributes and
// nulls are left out of the value. When no element is left, the attribute
// is removed (remove emails), since some services refuse replace with an
// empty list. The operations of other attributes are kept as they are.
//
// The rewrite is a read-modify-write: an element another writer adds to
// the attribute between the read of current and the PATCH is lost, which
// the filter form would have kept. That is the price of a service that
// refuses filters; filtered paths remain the default.
func ReplaceFiltered(current []byte, ops []PatchOp, opts DiffOptions) ([]PatchOp, error) {
	if !HasFilteredPath(ops) {
		return ops, nil
	}
	cur, err := parseResource("current", current)
	if err != nil {
		return nil, err
	}
	urns := make([]string, 0, 1+len(opts.Extensions))
	if opts.Core != nil {
		urns = append(urns, opts.Core.ID)
	}
	for _, e := range opts.Extensions {
		if e != nil {
			urns = append(urns, e.ID)
		}
	}
	d := &differ{opts: opts}
	paths := make([]Path, len(ops))
	rewrite := map[string]bool{} // attributes some operation reaches through a filter
	for i, op := range ops {
		p, err := ParsePath(op.Path, urns) // "" is an error too
		if err != nil {
			return nil, fmt.Errorf("scim replace form: operation %d (%s %s): %w", i, op.Op, op.Path, err)
		}
		if isCoreURN(p.URN) {
			p.URN = ""
		}
		paths[i] = p
		if len(p.Filter) > 0 {
			rewrite[attrKey(p)] = true
		}
	}
	var out []PatchOp
	done := map[string]bool{}
	for i, op := range ops {
		p := paths[i]
		key := attrKey(p)
		if !rewrite[key] {
			out = append(out, op)
			continue
		}
		if done[key] {
			continue
		}
		done[key] = true
		a := d.def(p.URN, p.Attr)
		cv := getFold(schemaObject(cur, p.URN), p.Attr)
		var els []string
		eachElement(cv, func(_ int, el gjson.Result) bool {
			els = append(els, el.Raw)
			return true
		})
		had := len(els) > 0
		for j := i; j < len(ops); j++ {
			if attrKey(paths[j]) != key {
				continue
			}
			if els, err = applyToList(els, ops[j], paths[j], a); err != nil {
				return nil, fmt.Errorf("scim replace form: %s %s: %w", ops[j].Op, ops[j].Path, err)
			}
		}
		attrPath := Path{URN: p.URN, Attr: p.Attr}.String()
		m := multiDiff{a: a, kind: kindComplex}
		var b []byte
		b = append(b, '[')
		n := 0
		for _, el := range els {
			v := gjson.Parse(el)
			if unassigned(v) {
				continue
			}
			if n > 0 {
				b = append(b, ',')
			}
			n++
			b = append(b, m.element(v)...)
		}
		b = append(b, ']')
		switch {
		case n > 0:
			out = append(out, PatchOp{Op: "replace", Path: attrPath, Value: b})
		case had:
			out = append(out, PatchOp{Op: "remove", Path: attrPath})
		}
	}
	return out, nil
}

// attrKey identifies the attribute p names, ignoring case.
func attrKey(p Path) string { return strings.ToLower(p.URN) + "\x00" + strings.ToLower(p.Attr) }

// applyToList applies one operation on a multi-valued attribute (its path
// p) to the attribute's elements els (raw JSON), as RFC 7644 §3.5.2 says a
// service provider applies it: a filter selects every element it matches
// (compared as a's sub-attributes say), a sub-attribute without filter
// means that sub-attribute of every element.
func applyToList(els []string, op PatchOp, p Path, a *Attribute) ([]string, error) {
	kind := strings.ToLower(op.Op)
	val := gjson.ParseBytes(op.Value)
	if kind != "remove" && !val.Exists() {
		return nil, fmt.Errorf("%s without a value", kind)
	}
	if len(p.Filter) == 0 && p.Sub == "" {
		var vals []string
		if val.IsArray() {
			val.ForEach(func(_, v gjson.Result) bool {
				vals = append(vals, v.Raw)
				return true
			})
		} else if !unassigned(val) {
			vals = []string{val.Raw}
		}
		switch kind {
		case "remove":
			return nil, nil
		case "replace":
			return vals, nil
		case "add":
			return append(els, vals...), nil
		}
		return nil, fmt.Errorf("unknown operation %q", op.Op)
	}
	out := els[:0:0]
	for _, raw := range els {
		el := gjson.Parse(raw)
		if len(p.Filter) > 0 && !matchEqs(el, p.Filter, a) {
			out = append(out, raw)
			continue
		}
		switch {
		case p.Sub == "" && kind == "remove":
			continue // the element goes
		case p.Sub == "" && kind == "replace":
			raw = val.Raw
		case p.Sub == "" && kind == "add":
			if !el.IsObject() || !val.IsObject() {
				raw = val.Raw
				break
			}
			var err error
			val.ForEach(func(k, v gjson.Result) bool {
				raw, err = setSub(raw, k.Str, v)
				return err == nil
			})
			if err != nil {
				return nil, err
			}
		case !el.IsObject():
			return nil, fmt.Errorf("element %s has no sub-attribute %s", raw, p.Sub)
		case kind == "remove":
			if k, ok := keyFold(el, p.Sub); ok {
				b, err := sjson.Delete(raw, EscapeKey(k))
				if err != nil {
					return nil, err
				}
				raw = b
			}
		case kind == "replace" || kind == "add":
			var err error
			if raw, err = setSub(raw, p.Sub, val); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("unknown operation %q", op.Op)
		}
		out = append(out, raw)
	}
	return out, nil
}

// setSub sets sub-attribute name of element el to v, under the spelling el
// already uses for it.
func setSub(el, name string, v gjson.Result) (string, error) {
	k, ok := keyFold(gjson.Parse(el), name)
	if !ok {
		k = name
	}
	return sjson.SetRaw(el, EscapeKey(k), string(compactJSON(v.Raw)))
}

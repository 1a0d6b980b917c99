package lang

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/scimsync/scimsync/engine/scim"
)

// Resource builds the SCIM JSON of the result for op: the endpoint's
// schemas, then every mapping whose usage includes op in the result's mode,
// in script order. A mapping that gives nil, "", or an empty list or map is
// left out: on create the attribute is not sent; on update the diff removes
// it from the resource (it is in Class.Managed). Values are checked against
// the target's schema type: a value of another type fails the change (the
// script converts explicitly: toBool, int, string…); a list of strings for a
// multi-valued complex attribute becomes elements {"value": …}. An element
// of a filtered path is written only when one of its mapped sub-attributes
// has a value, and never without its value sub-attribute when that is
// mapped: the filter's own attributes alone ({"type":"work"}) are no
// element. References from ref(…) are resolved through res; a nil res
// leaves each reference as its DN.
func (r *Result) Resource(op Op, res Resolver) ([]byte, error) {
	if r.OutOfScope || r.Class == nil {
		return nil, fmt.Errorf("no resource: the change is out of scope")
	}
	if err := r.prepare(op, res); err != nil {
		return nil, err
	}
	cl, e := r.Class, r.Endpoint
	w := &r.w
	w.buf = append(w.buf[:0], `{"schemas":[`...)
	w.buf = appendJSONString(w.buf, e.Schemas[0])
	// Extensions are listed only when the resource has attributes of theirs.
	for _, urn := range e.Schemas[1:] {
		for i, m := range cl.Mappings {
			if w.present[i] && strings.EqualFold(m.Target.URN, urn) {
				w.buf = append(w.buf, ',')
				w.buf = appendJSONString(w.buf, urn)
				break
			}
		}
	}
	w.buf = append(w.buf, ']')
	if cl.shape != nil { // nil: a class without a map block sends only its schemas
		w.members(cl.shape.children, false)
	}
	w.buf = append(w.buf, '}')
	return append([]byte(nil), w.buf...), nil
}

// prepare converts the values Resource(op) writes into r.w, and decides
// which elements of filtered paths are written (w.elem). Result.Managed
// uses the same decision, so that an element left out of the resource is
// removed whole from the service's, not emptied down to its filter's
// attributes.
func (r *Result) prepare(op Op, res Resolver) error {
	cl, e := r.Class, r.Endpoint
	w := &r.w
	w.ready = false
	n := len(cl.Mappings)
	w.vals = slices.Grow(w.vals[:0], n)[:n]
	clear(w.vals)
	w.present = slices.Grow(w.present[:0], n)[:n]
	clear(w.present)
	w.elem = slices.Grow(w.elem[:0], cl.groups)[:cl.groups]
	clear(w.elem)
	skip := slices.Grow(w.skip[:0], cl.groups)[:cl.groups]
	clear(skip)
	w.skip = skip
	for i, m := range cl.Mappings {
		if !m.Usage.Has(op, r.Mode) || i >= len(r.values) || !m.appliesTo(e) {
			continue
		}
		v := r.values[i]
		if m.isRef {
			refs, _ := v.(*Refs)
			var err error
			if v, err = r.resolve(m, refs, res); err != nil {
				return err
			}
		}
		if empty(v) {
			if m.isKey {
				skip[m.group] = true // an element without its value is left out
			}
			continue
		}
		v, err := convert(m, v)
		if err != nil {
			return &EvalError{Pos: m.prog.pos, DN: r.Change.DN, What: m.prog.what, Msg: err.Error()}
		}
		if s, ok := v.(string); ok && m.password && isHashedPassword(s) {
			return &EvalError{Pos: m.prog.pos, DN: r.Change.DN, What: m.prog.what, Msg: hashedPasswordMsg}
		}
		if empty(v) {
			if m.isKey {
				skip[m.group] = true
			}
			continue
		}
		w.vals[i], w.present[i] = v, true
		if m.group >= 0 && (m.Target.Sub != "" || hasOwnMembers(v, m.Target.Filter)) {
			w.elem[m.group] = true
		}
	}
	for g, s := range skip {
		if s {
			w.elem[g] = false
		}
	}
	w.ready, w.op = true, op
	return nil
}

// hasOwnMembers reports whether a whole element's map has a value beyond
// the filter's own attributes, which alone make no element.
func hasOwnMembers(v any, filter []scim.Eq) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	for k, x := range m {
		if !empty(x) && !inFilter(filter, k) {
			return true
		}
	}
	return false
}

// inFilter reports whether name is one of a filter's attributes.
func inFilter(filter []scim.Eq, name string) bool {
	for _, eq := range filter {
		if strings.EqualFold(eq.Attr, name) {
			return true
		}
	}
	return false
}

// resolve turns ref(…) into id values: for a multi-valued complex target
// (members) a refList of {"type", "value"} elements, for a single complex
// target (manager) one such element, for a simple one (manager.value) the
// id. References the resolver leaves out are skipped.
func (r *Result) resolve(m *Mapping, refs *Refs, res Resolver) (any, error) {
	if refs == nil || len(refs.DNs) == 0 {
		return nil, nil
	}
	withType := m.attr != nil && m.attr.Sub("type") != nil
	out := make(refList, 0, len(refs.DNs))
	for _, dn := range refs.DNs {
		ref := Ref{ID: dn}
		if res != nil {
			got, ok, err := res.Resolve(dn, refs.Endpoints)
			if err != nil {
				return nil, &EvalError{Pos: m.prog.pos, DN: r.Change.DN, What: m.prog.what, Msg: fmt.Sprintf("reference %s: %v", dn, err), Err: err}
			}
			if !ok {
				continue
			}
			ref = got
		}
		if !withType {
			ref.Type = ""
		}
		out = append(out, ref)
	}
	if len(out) == 0 {
		return nil, nil
	}
	complexTarget := m.attr == nil || m.attr.Type == "complex"
	if m.attr == nil || m.attr.MultiValued && m.Target.Sub == "" {
		if complexTarget {
			return out, nil
		}
		ids := make([]any, len(out))
		for i, ref := range out {
			ids[i] = ref.ID
		}
		return ids, nil
	}
	if len(out) > 1 {
		return nil, &EvalError{Pos: m.prog.pos, DN: r.Change.DN, What: m.prog.what, Msg: fmt.Sprintf("%s is single-valued, but ref(…) gave %d references", m.Target, len(out))}
	}
	if !complexTarget {
		return out[0].ID, nil // e.g. manager.value
	}
	el := map[string]any{"value": out[0].ID}
	if out[0].Type != "" {
		el["type"] = out[0].Type
	}
	return el, nil
}

// refList is the resolved references of a multi-valued attribute, each
// written as {"type": …, "value": …}.
type refList []Ref

// empty reports whether a mapped value means "no value".
func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case refList:
		return len(x) == 0
	case string:
		return x == ""
	case []string:
		return len(x) == 0
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// convert checks a value against the target's schema definition and
// converts what LDAP naturally gives (strings) to the schema's type.
func convert(m *Mapping, v any) (any, error) {
	a := m.attr
	if a == nil {
		return normalize(v), nil
	}
	whole := m.Target.Sub == "" && len(m.Target.Filter) == 0
	if _, ok := v.(refList); ok {
		return v, nil
	}
	if a.MultiValued && whole {
		var items []any
		switch x := v.(type) {
		case []string:
			for _, s := range x {
				items = append(items, s)
			}
		case []any:
			items = x
		default:
			items = []any{x}
		}
		out := make([]any, 0, len(items))
		for _, it := range items {
			if empty(it) {
				continue
			}
			if a.Type == "complex" {
				switch el := it.(type) {
				case map[string]any:
					out = append(out, el)
				case string:
					if a.Sub("value") == nil {
						return nil, fmt.Errorf("%s elements are complex without a value sub-attribute: give maps", m.Target)
					}
					out = append(out, map[string]any{"value": el})
				default:
					return nil, fmt.Errorf("%s: want maps or strings as elements, got %s", m.Target, typeName(it))
				}
				continue
			}
			c, err := scalar(a, it)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", m.Target, err)
			}
			out = append(out, c)
		}
		return out, nil
	}
	switch x := v.(type) {
	case []string:
		if len(x) > 1 {
			return nil, fmt.Errorf("%s is single-valued, but got %d values; pick one, e.g. with first(…)", m.Target, len(x))
		}
		v = x[0]
	case []any:
		if len(x) > 1 {
			return nil, fmt.Errorf("%s is single-valued, but got %d values; pick one, e.g. with first(…)", m.Target, len(x))
		}
		v = x[0]
	}
	if a.Type == "complex" {
		if _, ok := v.(map[string]any); !ok {
			return nil, fmt.Errorf("%s is complex: want a map, got %s", m.Target, typeName(v))
		}
		return v, nil
	}
	c, err := scalar(a, v)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", m.Target, err)
	}
	return c, nil
}

// scalar checks one simple value of an expression whose static type was
// unknown at load against the attribute's type, by the rule staticMismatch
// applies at load: a value of another type fails the change rather than
// being converted (no int 2 sent as "2", no string "TRUE" taken for true).
// The one leeway is for numbers: an integer attribute takes a float64 with
// no fraction, since JSON numbers (parseJSON) are float64.
func scalar(a *scim.Attribute, v any) (any, error) {
	switch a.Type {
	case "boolean":
		if _, ok := v.(bool); ok {
			return v, nil
		}
		if _, ok := v.(string); ok {
			return nil, fmt.Errorf(`want a boolean, got a string; convert it: toBool(…) for an LDAP Boolean ("TRUE"/"FALSE"), or a comparison`)
		}
		return nil, fmt.Errorf("want a boolean, got a %s", typeName(v))
	case "integer":
		switch x := v.(type) {
		case int:
			return x, nil
		case int64:
			return x, nil
		case float64:
			if x == math.Trunc(x) && !math.IsInf(x, 0) {
				return int64(x), nil
			}
			return nil, fmt.Errorf("want an integer, got a number with a fraction")
		case string:
			return nil, fmt.Errorf("want an integer, got a string; convert it with int(…)")
		}
		return nil, fmt.Errorf("want an integer, got a %s", typeName(v))
	case "decimal":
		switch x := v.(type) {
		case int, int64, float64:
			return x, nil
		case string:
			return nil, fmt.Errorf("want a decimal number, got a string; convert it with float(…)")
		}
		return nil, fmt.Errorf("want a decimal number, got a %s", typeName(v))
	default: // string, reference, dateTime, binary
		switch v.(type) {
		case string:
			return v, nil // the same interface value: no new allocation
		case int, int64, float64:
			return nil, fmt.Errorf("want a %s, got a %s; convert it with string(…)", a.Type, typeName(v))
		}
		return nil, fmt.Errorf("want a %s, got a %s", a.Type, typeName(v))
	}
}

// normalize passes a value whose schema is unknown through, turning
// []string into a JSON-friendly list.
func normalize(v any) any {
	return v
}

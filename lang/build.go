package lang

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/scimsync/scimsync/engine/scim"
)

// Resource builds the SCIM JSON of the result for op: the endpoint's
// schemas, then every mapping whose usage includes op in the result's mode,
// in script order. A mapping that gives nil, "", or an empty list or map is
// left out: on create the attribute is not sent; on update the diff removes
// it from the resource (it is in Class.Managed). Values are checked and
// converted against the target's schema type: LDAP's "TRUE"/"FALSE" become
// booleans, numeric strings numbers; a list of strings for a multi-valued
// complex attribute becomes elements {"value": …}. References from ref(…)
// are resolved through res; a nil res leaves each reference as its DN.
func (r *Result) Resource(op Op, res Resolver) ([]byte, error) {
	if r.OutOfScope || r.Class == nil {
		return nil, fmt.Errorf("no resource: the change is out of scope")
	}
	cl, e := r.Class, r.Endpoint
	w := &r.w
	n := len(cl.Mappings)
	w.vals = slices.Grow(w.vals[:0], n)[:n]
	clear(w.vals)
	w.present = slices.Grow(w.present[:0], n)[:n]
	clear(w.present)
	w.skip = w.skip[:0]
	for i, m := range cl.Mappings {
		if !m.Usage.Has(op, r.Mode) || i >= len(r.values) || !m.appliesTo(e) {
			continue
		}
		v := r.values[i]
		if m.isRef {
			refs, _ := v.(*Refs)
			var err error
			if v, err = r.resolve(m, refs, res); err != nil {
				return nil, err
			}
		}
		if empty(v) {
			if m.isKey {
				for len(w.skip) <= m.group {
					w.skip = append(w.skip, false)
				}
				w.skip[m.group] = true // an element without its value is left out
			}
			continue
		}
		v, err := convert(m, v)
		if err != nil {
			return nil, &EvalError{Pos: m.prog.pos, DN: r.Change.DN, What: m.prog.what, Msg: err.Error()}
		}
		if !empty(v) {
			w.vals[i], w.present[i] = v, true
		}
	}
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
	w.members(cl.shape.children, false)
	w.buf = append(w.buf, '}')
	return append([]byte(nil), w.buf...), nil
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

// scalar converts one simple value to the attribute's type.
func scalar(a *scim.Attribute, v any) (any, error) {
	switch a.Type {
	case "boolean":
		switch x := v.(type) {
		case bool:
			return v, nil
		case string:
			switch strings.ToLower(x) {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
			return nil, fmt.Errorf("want a boolean; the string is not TRUE or FALSE")
		}
		return nil, fmt.Errorf("want a boolean, got %s", typeName(v))
	case "integer":
		switch x := v.(type) {
		case int:
			return x, nil
		case int64:
			return x, nil
		case float64:
			if x == math.Trunc(x) {
				return int64(x), nil
			}
		case string:
			if n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
				return n, nil
			}
			return nil, fmt.Errorf("want an integer; the string is not one")
		}
		return nil, fmt.Errorf("want an integer, got %s", typeName(v))
	case "decimal":
		switch x := v.(type) {
		case int, int64, float64:
			return x, nil
		case string:
			if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
				return f, nil
			}
			return nil, fmt.Errorf("want a number; the string is not one")
		}
		return nil, fmt.Errorf("want a number, got %s", typeName(v))
	default: // string, reference, dateTime, binary
		switch x := v.(type) {
		case string:
			return v, nil // the same interface value: no new allocation
		case int:
			return strconv.Itoa(x), nil
		case int64:
			return strconv.FormatInt(x, 10), nil
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64), nil
		}
		return nil, fmt.Errorf("want a string, got %s", typeName(v))
	}
}

// normalize passes a value whose schema is unknown through, turning
// []string into a JSON-friendly list.
func normalize(v any) any {
	return v
}

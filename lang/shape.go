package lang

import (
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/scimsync/scimsync/engine/jsonw"
	"github.com/scimsync/scimsync/engine/scim"
)

// A class's resources are written in one pass over a shape compiled at
// load: the nesting of its targets (name.givenName under name, extension
// attributes under their URN, elements of filtered paths in their
// attribute's array). Setting each target with sjson would re-parse and copy
// the growing document once per mapping; the shape writes each byte once.

// shapeNode is one JSON member of a resource.
type shapeNode struct {
	name     string
	key      []byte       // `"name":`
	leaf     int          // index of the mapping that gives the value, or -1
	children []*shapeNode // members of an object
	elems    []*elemShape // elements of a multi-valued attribute written by filtered paths
}

// elemShape is one element of a multi-valued attribute: the eq filter's
// values, and the mapped sub-attributes.
type elemShape struct {
	group int
	fixed []byte       // `"type":"work"`, the filter's fields
	whole int          // a mapping giving the whole element as a map, or -1
	subs  []*shapeNode // mapped sub-attributes
}

func newShapeNode(name string) *shapeNode {
	k := appendJSONString(nil, name)
	return &shapeNode{name: name, key: append(k, ':'), leaf: -1}
}

// child finds or adds a member, matching names case-insensitively as SCIM does.
func (n *shapeNode) child(name string) *shapeNode {
	for _, c := range n.children {
		if strings.EqualFold(c.name, name) {
			return c
		}
	}
	c := newShapeNode(name)
	n.children = append(n.children, c)
	return c
}

// buildShape lays out a class's mappings.
func buildShape(cl *Class, core string) *shapeNode {
	root := &shapeNode{leaf: -1}
	for i, m := range cl.Mappings {
		t := m.Target
		parent := root
		if t.URN != "" && !strings.EqualFold(t.URN, core) {
			parent = root.child(t.URN)
		}
		n := parent.child(t.Attr)
		switch {
		case len(t.Filter) > 0:
			var el *elemShape
			for _, e := range n.elems {
				if e.group == m.group {
					el = e
				}
			}
			if el == nil {
				el = &elemShape{group: m.group, whole: -1}
				for j, eq := range t.Filter {
					if j > 0 {
						el.fixed = append(el.fixed, ',')
					}
					el.fixed = appendJSONString(el.fixed, eq.Attr)
					el.fixed = append(el.fixed, ':')
					el.fixed = appendJSON(el.fixed, eq.Value)
				}
				n.elems = append(n.elems, el)
			}
			if t.Sub == "" {
				el.whole = i
			} else {
				s := newShapeNode(t.Sub)
				s.leaf = i
				el.subs = append(el.subs, s)
			}
		case t.Sub != "":
			n.child(t.Sub).leaf = i
		default:
			n.leaf = i
		}
	}
	return root
}

// writer writes a resource from converted mapping values.
type writer struct {
	buf     []byte
	vals    []any  // converted value per mapping
	present []bool // whether vals[i] is set
	skip    []bool // per element group: its value sub-attribute gives nothing
	elem    []bool // per element group: the element is written
	ready   bool   // vals, present and elem hold what prepare made for op
	op      Op
}

// members writes an object's members and reports whether it wrote any.
func (w *writer) members(nodes []*shapeNode, first bool) bool {
	wrote := false
	for _, n := range nodes {
		mark := len(w.buf)
		if !first {
			w.buf = append(w.buf, ',')
		}
		w.buf = append(w.buf, n.key...)
		if w.value(n) {
			first, wrote = false, true
		} else {
			w.buf = w.buf[:mark]
		}
	}
	return wrote
}

// value writes a member's value and reports whether there was one.
func (w *writer) value(n *shapeNode) bool {
	switch {
	case n.leaf >= 0:
		if !w.present[n.leaf] {
			return false
		}
		w.buf = appendJSON(w.buf, w.vals[n.leaf])
		return true
	case len(n.elems) > 0:
		mark := len(w.buf)
		w.buf = append(w.buf, '[')
		count := 0
		for _, el := range n.elems {
			if !w.elem[el.group] {
				continue
			}
			em := len(w.buf)
			if count > 0 {
				w.buf = append(w.buf, ',')
			}
			w.buf = append(w.buf, '{')
			w.buf = append(w.buf, el.fixed...)
			wrote := w.members(el.subs, len(el.fixed) == 0)
			if el.whole >= 0 && w.present[el.whole] {
				if m, ok := w.vals[el.whole].(map[string]any); ok {
					wrote = w.mapMembers(m, len(el.fixed) == 0 && !wrote, el) || wrote
				}
			}
			if !wrote {
				w.buf = w.buf[:em]
				continue
			}
			w.buf = append(w.buf, '}')
			count++
		}
		if count == 0 {
			w.buf = w.buf[:mark]
			return false
		}
		w.buf = append(w.buf, ']')
		return true
	default:
		mark := len(w.buf)
		w.buf = append(w.buf, '{')
		if !w.members(n.children, true) {
			w.buf = w.buf[:mark]
			return false
		}
		w.buf = append(w.buf, '}')
		return true
	}
}

// mapMembers writes a whole element's map, leaving out the filter's fields
// (already written) and empty values.
func (w *writer) mapMembers(m map[string]any, first bool, el *elemShape) bool {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	wrote := false
	for _, k := range keys {
		if empty(m[k]) || strings.Contains(string(el.fixed), strconv.Quote(k)+":") {
			continue
		}
		if !first {
			w.buf = append(w.buf, ',')
		}
		first, wrote = false, true
		w.buf = appendJSONString(w.buf, k)
		w.buf = append(w.buf, ':')
		w.buf = appendJSON(w.buf, m[k])
	}
	return wrote
}

// appendJSON appends v as JSON. Maps are written with sorted keys, so the
// output is deterministic.
func appendJSON(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return appendJSONString(b, x)
	case bool:
		return strconv.AppendBool(b, x)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return append(b, "null"...)
		}
		return strconv.AppendFloat(b, x, 'g', -1, 64)
	case []string:
		b = append(b, '[')
		for i, s := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, s)
		}
		return append(b, ']')
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, e)
		}
		return append(b, ']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSON(b, x[k])
		}
		return append(b, '}')
	case refList:
		b = append(b, '[')
		for i, r := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			if r.Type != "" {
				b = append(b, `"type":`...)
				b = appendJSONString(b, r.Type)
				b = append(b, ',')
			}
			b = append(b, `"value":`...)
			b = appendJSONString(b, r.ID)
			b = append(b, '}')
		}
		return append(b, ']')
	case *scim.Attribute:
		return append(b, "null"...)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, data...)
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte { return jsonw.AppendString(b, s) }

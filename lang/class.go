package lang

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/engine/scim"
)

var usageWords = []string{"create", "update", "resync", "realtime"}

func (c *compiler) class(b *block) {
	cl := &Class{Name: b.label, Pos: c.src.Pos(b.labelOff), ops: opCreate | opModify | opDelete}
	vals, exprs := c.settingsOf(b)
	cl.Base, _ = vals["base"].([]string)
	for _, s := range cl.Base {
		dn, err := ldap.ParseDN(s)
		if err != nil {
			c.settingError(b, "base", "base: invalid DN: %v", err)
			continue
		}
		cl.base = append(cl.base, dn)
	}
	if ops, ok := vals["operations"].([]string); ok {
		cl.Operations, cl.ops = ops, 0
		for _, o := range ops {
			cl.ops |= map[string]uint8{"create": opCreate, "modify": opModify, "delete": opDelete}[o]
		}
	} else {
		cl.Operations = []string{"create", "modify", "delete"}
	}
	cl.OnDelete = "delete"
	if v, ok := vals["onDelete"].(string); ok {
		cl.OnDelete = v
	}
	cl.OnLeave = cl.OnDelete
	if v, ok := vals["onLeave"].(string); ok {
		cl.OnLeave = v
	}
	if s := exprs["when"]; s != nil {
		cl.when = c.expression(s.expr, "when of class "+cl.Name, wantBool)
	}
	if s := exprs["endpoint"]; s != nil {
		name := strings.TrimSpace(s.expr.text)
		if e := c.p.Endpoint(name); e != nil {
			cl.endpoint = e
		} else {
			cl.choose = c.expression(s.expr, "endpoint of class "+cl.Name, wantEndpoint)
		}
	}
	var maps []*block
	for _, nb := range b.blocks {
		if nb.kind == "map" {
			maps = append(maps, nb)
		}
	}
	for _, m := range maps[min(1, len(maps)):] {
		c.errorf(m.off, 3, "class %s has a second map block (the first is at line %d)", cl.Name, c.src.Pos(maps[0].off).Line)
	}
	if len(maps) > 0 {
		c.mappings(cl, maps[0])
	}
	cl.reads = classReads(c.p, cl)
	c.p.Classes = append(c.p.Classes, cl)
}

// mappings compiles a class's map block.
func (c *compiler) mappings(cl *Class, b *block) {
	eps := cl.Endpoints(c.p)
	var urns []string
	for _, e := range eps {
		urns = append(urns, e.Schemas...)
	}
	exact := map[string]int{}   // canonical path -> line
	whole := map[string]int{}   // top-level attribute mapped as a whole -> line
	partial := map[string]int{} // top-level attribute mapped in parts -> line
	groups := map[string]int{}
	for _, m := range b.mappings {
		mp := &Mapping{Pos: c.src.Pos(m.targetOff), Usage: c.usage(m), group: -1}
		path, err := scim.ParsePath(m.target, urns)
		if err != nil {
			var pe *scim.PathError
			if errors.As(err, &pe) {
				c.errorf(m.targetOff+pe.Offset, 1, "invalid target %s: %s", m.target, pe.Msg)
			} else {
				c.errorf(m.targetOff, len([]rune(m.target)), "invalid target %s: %v", m.target, err)
			}
			continue
		}
		mp.Target = path
		line := mp.Pos.Line
		urn := path.URN
		if len(eps) > 0 && len(eps[0].Schemas) > 0 && strings.EqualFold(urn, eps[0].Schemas[0]) {
			urn = "" // the core schema's URN spelled out names the same attribute
		}
		key := strings.ToLower(urn + ":" + path.Attr)
		canon := strings.ToLower(path.String())
		if prev, dup := exact[canon]; dup {
			c.errorf(m.targetOff, len([]rune(m.target)), "%s is mapped twice (first at line %d)", m.target, prev)
			continue
		}
		exact[canon] = line
		isWhole := path.Sub == "" && len(path.Filter) == 0
		if isWhole {
			if prev, ok := partial[key]; ok {
				c.errorf(m.targetOff, len([]rune(m.target)), "%s is mapped as a whole here and in parts at line %d: map one or the other", path.Attr, prev)
				continue
			}
			whole[key] = line
		} else {
			if prev, ok := whole[key]; ok {
				c.errorf(m.targetOff, len([]rune(m.target)), "%s is mapped in parts here and as a whole at line %d: map one or the other", path.Attr, prev)
				continue
			}
			partial[key] = line
		}
		mp.attr, mp.top, mp.eps = c.resolveTarget(m, path, eps)
		if mp.attr == nil && len(c.diags.List) > 0 && c.lastDiagAt(m.targetOff, len(m.target)) {
			continue
		}
		if len(path.Filter) > 0 {
			gk := key + "[" + strings.ToLower(scim.Path{Attr: path.Attr, Filter: path.Filter}.String()) + "]"
			g, ok := groups[gk]
			if !ok {
				g = len(groups)
				groups[gk] = g
			}
			mp.group = g
			mp.isKey = strings.EqualFold(path.Sub, "value")
		} else {
			mp.path = path.JSONPath()
		}
		mp.prog = c.expression(m.expr, path.String(), wantAny)
		if mp.prog == nil {
			continue
		}
		typ := mp.prog.prog.Node().Type()
		mp.isRef = typ == refsType
		if msg := staticMismatch(mp, typ); msg != "" {
			c.errorf(m.expr.off, len([]rune(m.expr.text)), "%s: %s", m.target, msg)
			continue
		}
		if mp.password = isPasswordTarget(path); mp.password {
			if attr, ok := hashOnly(mp.prog.prog.Node()); ok {
				d := c.warnf(m.expr.off, len([]rune(m.expr.text)), "%s: the expression gives %s values as the directory stores them, "+
					"hashed ({SSHA}…, {PBKDF2-SHA512}…); a hashed value is never sent as password, so each change that carries one fails",
					m.target, c.spelling(attr))
				d.Hint = "map a clear-text source of the password, or leave password out"
			}
		}
		cl.Mappings = append(cl.Mappings, mp)
	}
	core := ""
	if len(eps) == 1 && len(eps[0].Schemas) > 0 {
		core = eps[0].Schemas[0]
	}
	cl.groups = len(groups)
	cl.shape = buildShape(cl, core)
	for op := Create; op <= Update; op++ {
		for mode := Realtime; mode <= Resync; mode++ {
			var ps []scim.Path
			for _, mp := range cl.Mappings {
				if mp.Usage.Has(op, mode) {
					ps = append(ps, mp.Target)
				}
			}
			cl.managed[uint(op)*2+uint(mode)] = ps
		}
	}
}

// spelling returns an attribute's documented spelling (userPassword) for its
// lower-case name.
func (c *compiler) spelling(lc string) string {
	for _, a := range c.spelled {
		if strings.EqualFold(a, lc) {
			return a
		}
	}
	return lc
}

// lastDiagAt reports whether the newest diagnostic is inside a target.
func (c *compiler) lastDiagAt(off, n int) bool {
	d := c.diags.List[len(c.diags.List)-1]
	return d.Pos.Offset >= off && d.Pos.Offset <= off+n
}

// usage reads a mapping's @annotations.
func (c *compiler) usage(m *mapping) Usage {
	var ops, modes Usage
	for _, w := range m.usage {
		switch w.name {
		case "create":
			ops |= CreateRealtime | CreateResync
		case "update":
			ops |= UpdateRealtime | UpdateResync
		case "resync":
			modes |= CreateResync | UpdateResync
		case "realtime":
			modes |= CreateRealtime | UpdateRealtime
		default:
			d := c.errorf(w.off, len(w.name)+1, "unknown usage @%s, expected @create, @update, @resync or @realtime", w.name)
			if s := suggest(w.name, usageWords); s != "" {
				d.Msg += fmt.Sprintf(" (did you mean @%s?)", s)
			}
		}
	}
	if ops == 0 {
		ops = AllUsage
	}
	if modes == 0 {
		modes = AllUsage
	}
	return ops & modes
}

// resolveTarget checks a target against the schemas of the endpoints the
// class can send to. It returns the target's definition and its top-level
// attribute, or nils when the schema is unknown or the path is wrong (then a
// diagnostic was added).
func (c *compiler) resolveTarget(m *mapping, path scim.Path, eps []*Endpoint) (attr, top *scim.Attribute, valid []*Endpoint) {
	var firstErr error
	found := false
	for _, e := range eps {
		a, err := scim.Resolve(path, e.core, e.exts)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		valid = append(valid, e)
		if !found {
			found = true
			attr = a
			if a != nil {
				top, _ = scim.Resolve(scim.Path{URN: path.URN, Attr: path.Attr}, e.core, e.exts)
			}
		}
	}
	if found {
		if len(valid) == len(eps) {
			valid = nil // every endpoint
		}
		return attr, top, valid
	}
	if firstErr == nil {
		return nil, nil, nil
	}
	off, n := m.targetOff, len([]rune(m.target))
	msg := firstErr.Error()
	var re *scim.ResolveError
	if errors.As(firstErr, &re) {
		msg = re.Msg
		if re.Name != "" {
			if i := strings.Index(m.target, re.Name); i >= 0 {
				off, n = m.targetOff+i, len([]rune(re.Name))
			}
			if s := suggest(re.Name, re.Candidates); s != "" && !strings.Contains(msg, "did you mean") {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
		}
	}
	c.errorf(off, n, "%s", msg)
	return nil, nil, nil
}

// staticMismatch compares an expression's static type with the target's
// schema type (RFC 7643 §2.3) and returns a message when no value of that
// type can be one of the target's: a string is not a boolean nor a number,
// a number is not a string. Such a mapping is a load error rather than a
// conversion guessed at run time, so that `displayName = len(mail)` cannot
// send "2"; the script converts explicitly (string(x), int(x), float(x),
// toBool(x), a comparison). An expression of unknown static type (any) is
// checked at run time, value by value, by the same rule (see scalar).
func staticMismatch(mp *Mapping, typ reflect.Type) string {
	a := mp.attr
	if a == nil || typ == nil || typ.Kind() == reflect.Interface {
		return ""
	}
	if typ == refsType {
		if a.Type != "complex" && a.Type != "string" && a.Type != "reference" {
			return fmt.Sprintf("ref(…) gives references, but %s is a %s", mp.Target, a.Type)
		}
		return ""
	}
	if typ == endpointType {
		return "an endpoint is not a value"
	}
	whole := mp.Target.Sub == "" && len(mp.Target.Filter) == 0
	list := typ.Kind() == reflect.Slice && typ.Elem().Kind() != reflect.Uint8
	if list && !(a.MultiValued && whole) {
		return fmt.Sprintf("%s is single-valued, but the expression gives %s; pick one value, e.g. with first(…)", mp.Target, exprTypeName(typ))
	}
	if list {
		// A multi-valued attribute from a list: each element must fit.
		el := typ.Elem()
		if el.Kind() == reflect.Interface {
			return ""
		}
		if a.Type == "complex" {
			if el.Kind() != reflect.Map && el.Kind() != reflect.String {
				return fmt.Sprintf("%s elements are complex: want maps or strings, but the expression gives a list of %s", mp.Target, exprTypeName(el))
			}
			return ""
		}
		if msg := scalarMismatch(a, el); msg != "" {
			return fmt.Sprintf("%s elements are %s, but the expression gives a list of %s", mp.Target, msg, exprTypeName(el))
		}
		return ""
	}
	if a.Type == "complex" {
		if typ.Kind() != reflect.Map && !(a.MultiValued && whole && typ.Kind() == reflect.String) {
			return fmt.Sprintf("%s is complex: map a sub-attribute such as %s.%s, or give a map", mp.Target, mp.Target, firstSub(a))
		}
		return ""
	}
	if msg := scalarMismatch(a, typ); msg != "" {
		return fmt.Sprintf("%s is %s, but the expression gives %s%s", mp.Target, msg, exprTypeName(typ), conversionHint(a, typ))
	}
	return ""
}

// scalarMismatch names the schema type of a simple attribute ("a boolean")
// when a value of static type typ cannot be one of its values, or returns "".
func scalarMismatch(a *scim.Attribute, typ reflect.Type) string {
	k := typ.Kind()
	isInt := k >= reflect.Int && k <= reflect.Uint64
	isFloat := k == reflect.Float32 || k == reflect.Float64
	switch a.Type {
	case "boolean":
		if k != reflect.Bool {
			return "a boolean"
		}
	case "integer":
		if !isInt {
			return "an integer"
		}
	case "decimal":
		if !isInt && !isFloat {
			return "a decimal number"
		}
	case "string", "reference", "dateTime", "binary":
		if k != reflect.String {
			return "a " + a.Type
		}
	}
	return ""
}

// conversionHint suggests the explicit conversion for a mismatch.
func conversionHint(a *scim.Attribute, typ reflect.Type) string {
	k := typ.Kind()
	switch {
	case a.Type == "boolean" && k == reflect.String:
		return `; convert it: toBool(…) for an LDAP Boolean ("TRUE"/"FALSE"), or a comparison such as x == "yes"`
	case a.Type == "integer" && (k == reflect.String || k == reflect.Float32 || k == reflect.Float64):
		return "; convert it with int(…)"
	case a.Type == "decimal" && k == reflect.String:
		return "; convert it with float(…)"
	case a.Type != "boolean" && a.Type != "integer" && a.Type != "decimal" && k >= reflect.Int && k <= reflect.Float64 && k != reflect.Bool:
		return "; convert it with string(…)"
	}
	return ""
}

func firstSub(a *scim.Attribute) string {
	if len(a.SubAttributes) > 0 {
		return a.SubAttributes[0].Name
	}
	return "value"
}

package scim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// DefaultMaxOpsPerRequest is how many operations one PATCH request carries
// at most when DiffOptions.MaxOpsPerRequest (or PatchBodies' max) is 0.
const DefaultMaxOpsPerRequest = 1000

// PatchOp is one operation of an RFC 7644 §3.5.2 PATCH request.
type PatchOp struct {
	Op    string          `json:"op"`              // "add", "replace" or "remove"
	Path  string          `json:"path,omitempty"`  // an RFC 7644 §3.5.2 path, such as emails[type eq "work"].value
	Value json.RawMessage `json:"value,omitempty"` // compact JSON; nil for remove
}

// DiffOptions tune Diff.
type DiffOptions struct {
	// Core and Extensions are the resource's schemas. They give each
	// attribute's caseExact, type, multiValued and mutability. An attribute
	// they do not define (or a nil Core) compares case-sensitively, and its
	// shape is taken from the JSON.
	Core       *Schema
	Extensions []*Schema
	// MaxOpsPerRequest bounds the operations of one request, counting each
	// element of an add as one (default DefaultMaxOpsPerRequest). Diff splits
	// the element list of a larger add into several add operations; give the
	// same bound to PatchBodies.
	MaxOpsPerRequest int
}

// Diff compares the current resource (as the service provider returned it)
// with the desired one (as the mapping built it), only over the managed
// paths, and returns the RFC 7644 §3.5.2 operations that turn current into
// desired. No operations means nothing to do ("no change needed").
// Attributes of current that no managed path names are never touched, even
// when desired lacks them.
//
// Operations follow the managed paths in order; the operations of one path
// follow the order of elements in current, removals before additions. Paths
// are written as Path.String writes them, without a core schema URN;
// extension attributes keep theirs (RFC 7644 §3.10:
// urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber).
// Per managed path:
//
//   - Simple single-valued attribute or sub-attribute (userName,
//     name.givenName, urn:…:User:employeeNumber): equal → nothing; absent
//     from desired → remove path; otherwise replace path with desired's
//     value. A value absent from current is set with replace too, which RFC
//     7644 §3.5.2.3 defines as an add; add is used only for elements of
//     multi-valued attributes.
//   - Complex single-valued attribute mapped whole (name, manager): compared
//     sub-attribute by sub-attribute as above (replace name.givenName,
//     remove name.middleName); absent from desired → remove name.
//   - Filtered path (emails[type eq "work"].value): the managed paths with
//     the same attribute and filter form one element, whose operations come
//     at the first of them. Its element in current is the first whose filter
//     sub-attributes are equal (per caseExact). When current has none and
//     desired has any of its managed sub-attributes → one add on the
//     attribute (path emails) whose value is the element: the filter's
//     sub-attributes plus those managed sub-attributes (never a valuePath
//     add: service providers differ there). When desired has none of them
//     and current's element has some → remove emails[type eq "work"].
//     Otherwise each sub-attribute is replaced or removed at
//     emails[type eq "work"].value. Paths into current's element spell the
//     filter with current's values (emails[type eq "Work"] when current says
//     "Work"), because service providers often compare filter values
//     case-sensitively. If several elements of current match, a service
//     provider applies such an operation to all of them.
//   - Multi-valued attribute mapped whole (members, emails): a set
//     difference by element identity. Members are identified by value,
//     case-sensitively (resource ids); other complex elements by type and
//     value (per caseExact), or by all their sub-attributes when they have no
//     value; simple elements by themselves. Each extra element of current is
//     removed with a filter naming its identity, with current's values
//     (members[value eq "id"], emails[type eq "work" and value eq "a@x"]);
//     then all missing elements go in one add on the attribute, split into
//     adds of at most MaxOpsPerRequest elements. Elements of the same
//     identity are equal when every sub-attribute desired's element has is
//     equal in current's (sub-attributes only current has, such as a
//     provider's display or $ref, are ignored; members compare by value
//     only); an unequal one is removed and added again. Duplicates in either
//     list count once. A whole members list is never replaced or removed;
//     another attribute that desired lacks entirely is removed with one
//     remove of the attribute.
//   - A sub-attribute of a multi-valued attribute without filter
//     (emails.value): as above, with elements identified by that
//     sub-attribute alone.
//
// Values compare by type: numbers numerically, booleans exactly, strings
// per the attribute's caseExact, and strings of dateTime attributes (or of
// attributes the schemas do not define) by instant when both parse as
// RFC 3339. JSON null, [] and {} count as absent (RFC 7643 §2.5); "" is a
// value.
//
// Read-only attributes and sub-attributes (id, meta, groups,
// manager.displayName) and "schemas" are never in the operations, even when
// managed. Neither are writeOnly attributes (password): a service provider
// never returns them, so they cannot be compared; they are sent on create
// only.
//
// A resource that repeats a key (ignoring case) where a managed path reads
// is rejected with a *DuplicateKeyError rather than read one way or the
// other.
func Diff(current, desired []byte, managed []Path, opts DiffOptions) ([]PatchOp, error) {
	cur, err := parseResource("current", current)
	if err != nil {
		return nil, err
	}
	return NewDesired(desired, managed).diff(cur, opts)
}

// Desired is a desired resource read once (parsed, and checked for keys
// repeated where the managed paths read), to be diffed against more than
// one current resource: run diffs it against a resource's shadow to build
// the PATCH, then against the service's answer to decide whether that
// answer becomes the next shadow. Diff(current, desired, managed, opts) is
// NewDesired(desired, managed).Diff(current, opts). A Desired is not safe
// for concurrent use.
type Desired struct {
	managed  []Path
	doc      *foldDoc
	parseErr error // desired is not a JSON object
	keyErr   error // desired repeats a key where managed reads
}

// NewDesired reads desired for Diffs over the managed paths.
func NewDesired(desired []byte, managed []Path) *Desired {
	w := &Desired{managed: managed}
	des, err := parseResource("desired", desired)
	if err != nil {
		w.parseErr = err
		return w
	}
	w.doc = newFoldDoc(des)
	if err := checkDuplicateKeysIn("desired", w.doc, managed); err != nil {
		w.keyErr = fmt.Errorf("scim diff: %w", err)
	}
	return w
}

// Diff is Diff(current, desired, managed, opts) with the desired resource
// and managed paths w was made with.
func (w *Desired) Diff(current []byte, opts DiffOptions) ([]PatchOp, error) {
	cur, err := parseResource("current", current)
	if err != nil {
		return nil, err
	}
	return w.diff(cur, opts)
}

// diff diffs a parsed current resource, reporting problems in the order
// Diff always has: current's JSON, desired's, then keys repeated in
// current, in desired.
func (w *Desired) diff(cur gjson.Result, opts DiffOptions) ([]PatchOp, error) {
	if w.parseErr != nil {
		return nil, w.parseErr
	}
	managed := w.managed
	cf := newFoldDoc(cur)
	if err := checkDuplicateKeysIn("current", cf, managed); err != nil {
		return nil, fmt.Errorf("scim diff: %w", err)
	}
	if w.keyErr != nil {
		return nil, w.keyErr
	}
	d := &differ{opts: opts, cur: cf, des: w.doc, max: opts.MaxOpsPerRequest}
	if d.max <= 0 {
		d.max = DefaultMaxOpsPerRequest
	}
	var done pathSet // the paths diffed, as strings.ToLower of their text
	for i, p := range managed {
		if isCoreURN(p.URN) {
			p.URN = ""
		}
		a := d.def(p.URN, p.Attr)
		if len(p.Filter) > 0 {
			// filtered skips the element's read-only sub-attributes.
			if skipAttr(Path{URN: p.URN, Attr: p.Attr}, a, d.opts.Core == nil) {
				continue
			}
			if !done.add(Path{URN: p.URN, Attr: p.Attr, Filter: p.Filter}) {
				continue
			}
			if err := d.filtered(p, a, managed[i:]); err != nil {
				return nil, err
			}
			continue
		}
		if skipAttr(p, a, d.opts.Core == nil) {
			continue
		}
		if !done.add(p) {
			continue
		}
		if err := d.path(p, a); err != nil {
			return nil, err
		}
	}
	return d.ops, nil
}

func parseResource(what string, doc []byte) (gjson.Result, error) {
	if !gjson.ValidBytes(doc) {
		return gjson.Result{}, fmt.Errorf("scim diff: %s resource is not valid JSON", what)
	}
	r := gjson.Parse(string(doc))
	if !r.IsObject() {
		return gjson.Result{}, fmt.Errorf("scim diff: %s resource is not a JSON object", what)
	}
	return r, nil
}

// DuplicateKeyError is a resource in which one JSON object holds the same
// key twice, compared ignoring case as SCIM attribute names are (RFC 7643
// §2.1), within what the managed paths read: {"userName":"a",
// "USERNAME":"b"}, or {"emails":[{"value":"a","Value":"b"}]}.
//
// Diff and PutBody reject such a resource rather than pick one of the
// values. RFC 8259 §4 leaves the meaning of repeated names to each parser:
// gjson (and so every look-up here) reads the first, JSON.parse and
// encoding/json keep the last, and a service provider that wrote such a
// document may mean either. A sync engine that guessed would compare
// against a value the service does not hold and could skip a needed update
// or overwrite the wrong value; the change fails instead, naming the key,
// so that the operator sees the service's faulty answer (or the mapping's,
// for desired). Keys outside the managed paths are not checked: the engine
// never reads them, and a service's oddity there must not stop the sync.
type DuplicateKeyError struct {
	Resource string    // "current" or "desired"
	At       string    // where the object is: "" for the resource itself, else a path such as emails[0]
	Keys     [2]string // the key as first written, and its repetition
}

func (e *DuplicateKeyError) Error() string {
	where := ""
	if e.At != "" {
		where = " in " + e.At
	}
	again := "again"
	if e.Keys[1] != e.Keys[0] {
		again = "again as " + Quote(e.Keys[1])
	}
	return fmt.Sprintf("%s resource: key %s appears %s%s: SCIM attribute names ignore case, so which value counts is ambiguous",
		e.Resource, Quote(e.Keys[0]), again, where)
}

// checkDuplicateKeys returns a *DuplicateKeyError for the first key
// repeated in doc within what the managed paths read: the extension object's
// URN key, the attribute's key, and every object inside its value.
func checkDuplicateKeys(what string, doc gjson.Result, managed []Path) error {
	return checkDuplicateKeysIn(what, newFoldDoc(doc), managed)
}

// checkDuplicateKeysIn is checkDuplicateKeys of a resource read once.
func checkDuplicateKeysIn(what string, doc *foldDoc, managed []Path) error {
	var done map[[2]string]bool // past foldLinear paths; before, the paths already checked are looked at
	if len(managed) > foldLinear {
		done = make(map[[2]string]bool, len(managed))
	}
	for i, p := range managed {
		if isCoreURN(p.URN) {
			p.URN = ""
		}
		if done != nil {
			key := [2]string{foldKey(p.URN), foldKey(p.Attr)}
			if done[key] {
				continue
			}
			done[key] = true
		} else if checkedBefore(managed[:i], p) {
			continue
		}
		at := ""
		if p.URN != "" {
			if k, ok := doc.root.repeated(p.URN); ok {
				return &DuplicateKeyError{Resource: what, Keys: k}
			}
			at = p.URN
		}
		obj := doc.object(p.URN)
		if k, ok := obj.repeated(p.Attr); ok {
			return &DuplicateKeyError{Resource: what, At: at, Keys: k}
		}
		if i := obj.find(p.Attr); i >= 0 {
			if loc, k, ok := repeatedKey(obj.val(i)); ok {
				if at != "" {
					at += ":"
				}
				return &DuplicateKeyError{Resource: what, At: at + obj.keys[i] + loc, Keys: k}
			}
		}
	}
	return nil
}

// checkedBefore reports whether one of paths reads the attribute p reads
// (its URN, a core one counting as none, and its name, ignoring case), for
// which checkDuplicateKeysIn has then checked everything p needs.
func checkedBefore(paths []Path, p Path) bool {
	for _, q := range paths {
		if isCoreURN(q.URN) {
			q.URN = ""
		}
		if strings.EqualFold(q.Attr, p.Attr) && strings.EqualFold(q.URN, p.URN) {
			return true
		}
	}
	return false
}

// repeatedKey finds the first key repeated ignoring case in an object in
// v: the two keys, and where the object is relative to v ("" for v itself,
// else such as "[1]" or ".name"). The location is written only for the
// object found, as the search returns: the check of every resource costs
// no string for the objects that pass.
func repeatedKey(v gjson.Result) (loc string, keys [2]string, ok bool) {
	switch {
	case v.IsArray():
		i := 0
		v.ForEach(func(_, el gjson.Result) bool {
			if l, k, found := repeatedKey(el); found {
				loc, keys, ok = "["+strconv.Itoa(i)+"]"+l, k, true
				return false
			}
			i++
			return true
		})
	case v.IsObject():
		// Up to foldLinear keys are compared with those before them, in
		// place; past that, foldSet indexes them.
		var small [foldLinear]string
		n := 0
		var seen *foldSet
		v.ForEach(func(k, el gjson.Result) bool {
			prev, dup := "", false
			switch {
			case seen != nil:
				prev, dup = seen.add(k.Str)
			case n < foldLinear:
				for _, p := range small[:n] {
					if strings.EqualFold(p, k.Str) {
						prev, dup = p, true
						break
					}
				}
				if !dup {
					small[n] = k.Str
					n++
				}
			default:
				seen = &foldSet{}
				for _, p := range small[:n] {
					seen.add(p)
				}
				prev, dup = seen.add(k.Str)
			}
			if dup {
				loc, keys, ok = "", [2]string{prev, k.Str}, true
				return false
			}
			if l, kk, found := repeatedKey(el); found {
				loc, keys, ok = "."+k.Str+l, kk, true
				return false
			}
			return true
		})
	}
	return loc, keys, ok
}

// skipAttr reports whether the managed path p, whose attribute is a, is
// never written: "schemas", read-only and write-only attributes and
// sub-attributes. Without a core schema, the read-only attributes of RFC
// 7643 (id, meta, groups) are known by name.
func skipAttr(p Path, a *Attribute, noCore bool) bool {
	if p.URN == "" && (strings.EqualFold(p.Attr, "schemas") || noCore && strings.EqualFold(p.Attr, "groups")) {
		return true
	}
	if a == nil {
		return false
	}
	if a.Mutability == ReadOnly || a.Mutability == WriteOnly {
		return true
	}
	if s := a.Sub(p.Sub); p.Sub != "" && s != nil && (s.Mutability == ReadOnly || s.Mutability == WriteOnly) {
		return true
	}
	return false
}

// skipSub reports whether sub-attribute name of a is never written.
func skipSub(a *Attribute, name string) bool {
	s := a.Sub(name)
	return s != nil && (s.Mutability == ReadOnly || s.Mutability == WriteOnly)
}

type differ struct {
	opts     DiffOptions
	cur, des *foldDoc // each resource read once
	max      int
	ops      []PatchOp
}

// def returns the definition of attribute attr of schema urn ("" for the
// core schema), or nil.
func (d *differ) def(urn, attr string) *Attribute {
	if urn == "" || d.opts.Core != nil && strings.EqualFold(urn, d.opts.Core.ID) {
		if a := d.opts.Core.Attr(attr); a != nil {
			return a
		}
		return findAttr(commonAttributes, attr)
	}
	return findSchema(urn, nil, d.opts.Extensions).Attr(attr)
}

// schemaObject returns the object holding the attributes of schema urn in doc.
func schemaObject(doc gjson.Result, urn string) gjson.Result {
	if urn == "" {
		return doc
	}
	return getFold(doc, urn)
}

// opPath renders p for an operation.
func opPath(p Path) string { return p.String() }

func (d *differ) add(op, path string, v json.RawMessage) {
	d.ops = append(d.ops, PatchOp{Op: op, Path: path, Value: v})
}

// path diffs one managed path without filter.
func (d *differ) path(p Path, a *Attribute) error {
	cv := d.cur.attr(p.URN, p.Attr)
	dv := d.des.attr(p.URN, p.Attr)
	multi := a != nil && a.MultiValued || a == nil && (cv.IsArray() || dv.IsArray())
	if p.Sub != "" {
		if multi {
			return d.multi(p, a, cv, dv, p.Sub)
		}
		sub := a.Sub(p.Sub)
		d.simple(p, getFold(cv, p.Sub), getFold(dv, p.Sub), attrCaseExact(sub), attrType(sub))
		return nil
	}
	if multi || strings.EqualFold(p.Attr, "members") {
		return d.multi(p, a, cv, dv, "")
	}
	if a != nil && a.Type == TypeComplex || a == nil && (cv.IsObject() || dv.IsObject()) {
		d.complex(p, a, cv, dv)
		return nil
	}
	d.simple(p, cv, dv, attrCaseExact(a), attrType(a))
	return nil
}

// simple diffs one simple value at path p, which is rendered only for an
// operation (most values are equal).
func (d *differ) simple(p Path, cv, dv gjson.Result, exact bool, typ string) {
	switch {
	case unassigned(dv) && unassigned(cv):
	case unassigned(dv):
		d.add("remove", opPath(p), nil)
	case unassigned(cv) || !equalValues(cv, dv, exact, typ):
		d.add("replace", opPath(p), compactJSON(dv.Raw))
	}
}

// complex diffs a complex single-valued attribute sub-attribute by
// sub-attribute.
func (d *differ) complex(p Path, a *Attribute, cv, dv gjson.Result) {
	if unassigned(dv) {
		if !unassigned(cv) {
			d.add("remove", opPath(p), nil)
		}
		return
	}
	if !dv.IsObject() || !unassigned(cv) && !cv.IsObject() {
		d.simple(p, cv, dv, attrCaseExact(a), attrType(a))
		return
	}
	each := func(k string, dsv, csv gjson.Result) {
		if skipSub(a, k) {
			return
		}
		sub := a.Sub(k)
		q := p
		q.Sub = k
		d.simple(q, csv, dsv, attrCaseExact(sub), attrType(sub))
	}
	// Diff rejected keys repeated in an object (ignoring case); seen only
	// keeps a key that both objects have from being diffed twice. Each
	// object is read once (fold.go): linear in its size.
	var seen foldSet
	dobj, cobj := newFoldObject(dv), newFoldObject(cv)
	for _, k := range dobj.keys {
		if _, dup := seen.add(k); !dup {
			each(k, dobj.get(k), cobj.get(k))
		}
	}
	for _, k := range cobj.keys {
		if _, dup := seen.add(k); !dup {
			each(k, gjson.Result{}, cobj.get(k))
		}
	}
}

// filtered diffs the element that p's attribute and filter select, over the
// sub-attributes that the paths in rest with the same attribute and filter
// manage.
func (d *differ) filtered(p Path, a *Attribute, rest []Path) error {
	var subs []string
	whole := false
	group := Path{URN: p.URN, Attr: p.Attr, Filter: p.Filter}
	for _, q := range rest {
		if isCoreURN(q.URN) {
			q.URN = ""
		}
		if len(q.Filter) == 0 || !samePathFold(Path{URN: q.URN, Attr: q.Attr, Filter: q.Filter}, group) {
			continue
		}
		if q.Sub == "" {
			whole = true
			continue
		}
		if skipSub(a, q.Sub) || containsFold(subs, q.Sub) {
			continue
		}
		subs = append(subs, q.Sub)
	}
	cv := d.cur.attr(p.URN, p.Attr)
	dv := d.des.attr(p.URN, p.Attr)
	ce := findElement(cv, p.Filter, a)
	de := findElement(dv, p.Filter, a)
	attrPath := opPath(Path{URN: p.URN, Attr: p.Attr})
	if a != nil && a.Type != TypeComplex || a == nil && (de.Exists() && !de.IsObject() || ce.Exists() && !ce.IsObject()) {
		// A simple multi-valued attribute (x[value eq "a"]): the element
		// is there or not.
		switch {
		case de.Exists() && !ce.Exists():
			d.add("add", attrPath, []byte("["+string(compactJSON(de.Raw))+"]"))
		case ce.Exists() && !de.Exists():
			d.add("remove", opPath(Path{URN: p.URN, Attr: p.Attr, Filter: []Eq{{Attr: "value", Value: filterValue(ce)}}}), nil)
		}
		return nil
	}
	if whole {
		add := func(k string) {
			if !inFilter(p.Filter, k) && !skipSub(a, k) && !containsFold(subs, k) {
				subs = append(subs, k)
			}
		}
		for _, el := range []gjson.Result{de, ce} {
			el.ForEach(func(k, _ gjson.Result) bool {
				add(k.Str)
				return true
			})
		}
	}
	hasDes := false
	for _, s := range subs {
		if !unassigned(getFold(de, s)) {
			hasDes = true
			break
		}
	}
	if !ce.Exists() {
		if !hasDes {
			return nil
		}
		var b []byte
		b = append(b, "[{"...)
		n := 0
		field := func(k string, raw []byte) {
			if n > 0 {
				b = append(b, ',')
			}
			n++
			b = append(b, Quote(k)...)
			b = append(b, ':')
			b = append(b, raw...)
		}
		for _, eq := range p.Filter {
			field(eq.Attr, []byte(formatJSON(eq.Value)))
		}
		for _, s := range subs {
			if inFilter(p.Filter, s) {
				continue
			}
			if v := getFold(de, s); !unassigned(v) {
				field(s, compactJSON(v.Raw))
			}
		}
		b = append(b, "}]"...)
		d.add("add", attrPath, b)
		return nil
	}
	// Address the element with current's own spelling of the filter values.
	q := Path{URN: p.URN, Attr: p.Attr, Filter: make([]Eq, len(p.Filter))}
	for i, eq := range p.Filter {
		q.Filter[i] = Eq{Attr: eq.Attr, Value: eq.Value}
		if v := elementSub(ce, eq.Attr); v.Exists() {
			q.Filter[i].Value = filterValue(v)
		}
	}
	if !hasDes {
		// Remove the element, unless it holds none of the managed
		// sub-attributes either.
		for _, s := range subs {
			if !unassigned(getFold(ce, s)) {
				d.add("remove", opPath(q), nil)
				break
			}
		}
		return nil
	}
	for _, s := range subs {
		sub := a.Sub(s)
		q.Sub = s
		d.simple(q, getFold(ce, s), getFold(de, s), attrCaseExact(sub), attrType(sub))
	}
	return nil
}

// findElement returns the first element of the multi-valued value v that
// filter selects, or the zero Result.
func findElement(v gjson.Result, filter []Eq, a *Attribute) gjson.Result {
	var out gjson.Result
	eachElement(v, func(_ int, el gjson.Result) bool {
		if matchEqs(el, filter, a) {
			out = el
			return false
		}
		return true
	})
	return out
}

// eachElement calls fn for each element of the multi-valued value v: the
// items of an array, or v itself when it is a single present value.
func eachElement(v gjson.Result, fn func(i int, el gjson.Result) bool) {
	if v.IsArray() {
		i := 0
		v.ForEach(func(_, el gjson.Result) bool {
			if unassigned(el) {
				return true
			}
			i++
			return fn(i-1, el)
		})
		return
	}
	if !unassigned(v) {
		fn(0, v)
	}
}

// elementSub returns sub-attribute name of element el; "value" of a simple
// element is the element itself.
func elementSub(el gjson.Result, name string) gjson.Result {
	if !el.IsObject() {
		if strings.EqualFold(name, "value") {
			return el
		}
		return gjson.Result{}
	}
	return getFold(el, name)
}

func matchEqs(el gjson.Result, filter []Eq, a *Attribute) bool {
	for _, eq := range filter {
		v := elementSub(el, eq.Attr)
		exact := attrCaseExact(a.Sub(eq.Attr))
		if a != nil && a.Type != TypeComplex {
			exact = a.CaseExact
		}
		switch w := eq.Value.(type) {
		case nil:
			if !unassigned(v) {
				return false
			}
		case string:
			if v.Type != gjson.String || !(exact && v.Str == w || !exact && strings.EqualFold(v.Str, w)) {
				return false
			}
		case float64:
			if v.Type != gjson.Number || v.Num != w {
				return false
			}
		case bool:
			if (v.Type != gjson.True && v.Type != gjson.False) || v.Bool() != w {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func inFilter(filter []Eq, name string) bool {
	for _, eq := range filter {
		if strings.EqualFold(eq.Attr, name) {
			return true
		}
	}
	return false
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// elemKind says how multi derives an element's identity.
type elemKind int

const (
	kindMember  elemKind = iota // value, case-sensitively (Group members)
	kindComplex                 // type and value per caseExact; all sub-attributes without value
	kindSimple                  // the element itself
	kindProject                 // one sub-attribute (a path such as emails.value)
)

// multi diffs a multi-valued attribute mapped whole, or one sub-attribute
// of all its elements (proj).
func (d *differ) multi(p Path, a *Attribute, cv, dv gjson.Result, proj string) error {
	kind := kindComplex
	switch {
	case proj != "":
		kind = kindProject
	case strings.EqualFold(p.Attr, "members"):
		kind = kindMember
	case a != nil && a.Type != TypeComplex:
		kind = kindSimple
	case a == nil:
		kind = kindSimple
		eachElement(dv, func(_ int, el gjson.Result) bool {
			if el.IsObject() {
				kind = kindComplex
			}
			return false
		})
		eachElement(cv, func(_ int, el gjson.Result) bool {
			if el.IsObject() {
				kind = kindComplex
			}
			return false
		})
	}
	m := multiDiff{a: a, kind: kind, proj: proj}
	attrPath := opPath(Path{URN: p.URN, Attr: p.Attr})

	if unassigned(dv) && kind != kindMember && kind != kindProject {
		if !unassigned(cv) {
			d.add("remove", attrPath, nil)
		}
		return nil
	}

	// Index current by identity, once.
	n := 0
	if cv.IsArray() {
		cv.ForEach(func(_, _ gjson.Result) bool { n++; return true })
	} else if !unassigned(cv) {
		n = 1
	}
	type curElem struct {
		el   gjson.Result
		seen bool // a desired element has its identity
		keep bool // ... and is equal to it
		dup  bool // a later element of the same identity as an earlier one
	}
	curs := make([]curElem, 0, n)
	index := make(map[string]int, n)
	eachElement(cv, func(_ int, el gjson.Result) bool {
		if kind == kindProject && el.IsObject() && unassigned(getFold(el, proj)) {
			return true // not an element of the projection
		}
		key := m.key(el)
		c := curElem{el: el}
		if _, ok := index[key]; ok {
			c.dup = true
		} else {
			index[key] = len(curs)
		}
		curs = append(curs, c)
		return true
	})

	var adds [][]byte
	var added map[string]bool
	eachElement(dv, func(_ int, el gjson.Result) bool {
		if kind == kindProject {
			if el.IsObject() {
				el = getFold(el, proj)
			}
			if unassigned(el) {
				return true
			}
		}
		key := m.key(el)
		if i, ok := index[key]; ok {
			c := &curs[i]
			if c.seen {
				return true
			}
			c.seen = true
			if c.keep = m.same(c.el, el); c.keep {
				return true
			}
			// Changed: remove current's, then add desired's.
		} else if added[key] {
			return true
		}
		if added == nil {
			added = map[string]bool{}
		}
		added[key] = true
		adds = append(adds, m.element(el))
		return true
	})
	for _, c := range curs {
		if c.keep || c.dup {
			continue
		}
		f, err := m.filter(c.el)
		if err != nil {
			return fmt.Errorf("scim diff: %s: %w", attrPath, err)
		}
		d.add("remove", opPath(Path{URN: p.URN, Attr: p.Attr, Filter: f}), nil)
	}
	for len(adds) > 0 {
		k := min(len(adds), d.max)
		size := 2
		for _, e := range adds[:k] {
			size += len(e) + 1
		}
		b := make([]byte, 0, size)
		b = append(b, '[')
		for i, e := range adds[:k] {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, e...)
		}
		b = append(b, ']')
		d.add("add", attrPath, b)
		adds = adds[k:]
	}
	return nil
}

type multiDiff struct {
	a    *Attribute
	kind elemKind
	proj string
}

// key returns the identity of element el.
func (m *multiDiff) key(el gjson.Result) string {
	switch m.kind {
	case kindMember:
		if v := getFold(el, "value"); v.Exists() {
			return scalarKey(v, true)
		}
		if !el.IsObject() {
			return scalarKey(el, true)
		}
	case kindSimple:
		if !el.IsObject() {
			return scalarKey(el, m.a == nil || m.a.CaseExact)
		}
	case kindProject:
		if el.IsObject() {
			el = getFold(el, m.proj)
		}
		return scalarKey(el, attrCaseExact(m.a.Sub(m.proj)))
	case kindComplex:
		if !el.IsObject() {
			return scalarKey(el, attrCaseExact(m.a.Sub("value")))
		}
		if v := getFold(el, "value"); !unassigned(v) {
			t := getFold(el, "type")
			return scalarKey(t, attrCaseExact(m.a.Sub("type"))) + "\x00" + scalarKey(v, attrCaseExact(m.a.Sub("value")))
		}
	}
	var b strings.Builder
	canonicalElement(&b, el, m.a)
	return b.String()
}

// same reports whether current element c equals desired element d, given
// that their identities are equal: every sub-attribute d has is equal in c
// (sub-attributes only c has, such as a provider's display, are ignored).
func (m *multiDiff) same(c, d gjson.Result) bool {
	if m.kind != kindComplex || !d.IsObject() {
		return true
	}
	dobj, cobj := newFoldObject(d), newFoldObject(c)
	for _, k := range dobj.keys {
		if skipSub(m.a, k) {
			continue
		}
		v := dobj.get(k)
		sub := m.a.Sub(k)
		cv := cobj.get(k)
		if unassigned(v) && unassigned(cv) {
			continue
		}
		if unassigned(v) || unassigned(cv) || !equalValues(cv, v, attrCaseExact(sub), attrType(sub)) {
			return false
		}
	}
	return true
}

// element returns desired element el as it goes into an add: without
// read-only sub-attributes, compact.
func (m *multiDiff) element(el gjson.Result) []byte {
	if m.kind == kindProject {
		return []byte("{" + Quote(m.proj) + ":" + string(compactJSON(el.Raw)) + "}")
	}
	if !el.IsObject() || m.a == nil {
		return compactJSON(el.Raw)
	}
	strip := false
	el.ForEach(func(k, v gjson.Result) bool {
		if skipSub(m.a, k.Str) || v.Type == gjson.Null {
			strip = true
		}
		return !strip
	})
	if !strip {
		return compactJSON(el.Raw)
	}
	b := []byte{'{'}
	el.ForEach(func(k, v gjson.Result) bool {
		if skipSub(m.a, k.Str) || v.Type == gjson.Null {
			return true
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, compactJSON(k.Raw)...)
		b = append(b, ':')
		b = append(b, compactJSON(v.Raw)...)
		return true
	})
	return append(b, '}')
}

// filter returns the comparisons that select current element el in a
// remove path, with el's own values.
func (m *multiDiff) filter(el gjson.Result) ([]Eq, error) {
	if !el.IsObject() {
		if m.kind == kindProject {
			return []Eq{{Attr: m.proj, Value: filterValue(el)}}, nil
		}
		return []Eq{{Attr: "value", Value: filterValue(el)}}, nil
	}
	switch m.kind {
	case kindMember:
		if v := getFold(el, "value"); v.Exists() {
			return []Eq{{Attr: "value", Value: filterValue(v)}}, nil
		}
	case kindProject:
		return []Eq{{Attr: m.proj, Value: filterValue(getFold(el, m.proj))}}, nil
	}
	if v := getFold(el, "value"); !unassigned(v) && isScalar(v) {
		var f []Eq
		if t := getFold(el, "type"); !unassigned(t) && isScalar(t) {
			f = append(f, Eq{Attr: "type", Value: filterValue(t)})
		}
		return append(f, Eq{Attr: "value", Value: filterValue(v)}), nil
	}
	var f []Eq
	el.ForEach(func(k, v gjson.Result) bool {
		if !unassigned(v) && isScalar(v) {
			f = append(f, Eq{Attr: k.Str, Value: filterValue(v)})
		}
		return true
	})
	if len(f) == 0 {
		return nil, fmt.Errorf("element %s has no simple sub-attribute a filter could select it by", el.Raw)
	}
	return f, nil
}

func isScalar(v gjson.Result) bool {
	return v.Type == gjson.String || v.Type == gjson.Number || v.Type == gjson.True || v.Type == gjson.False
}

// filterValue converts a JSON scalar to an Eq value.
func filterValue(v gjson.Result) any {
	switch v.Type {
	case gjson.String:
		return v.Str
	case gjson.Number:
		return v.Num
	case gjson.True:
		return true
	case gjson.False:
		return false
	}
	return nil
}

// formatJSON renders an Eq value as JSON.
func formatJSON(v any) string {
	switch v := v.(type) {
	case string:
		return Quote(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return "null"
}

// scalarKey returns a map key for a JSON scalar: strings lower-cased unless
// exact, other values as raw JSON after a type mark.
func scalarKey(v gjson.Result, exact bool) string {
	switch v.Type {
	case gjson.String:
		if exact {
			return v.Str
		}
		return strings.ToLower(v.Str)
	case gjson.Number:
		return "\x01" + strconv.FormatFloat(v.Num, 'g', -1, 64)
	case gjson.Null:
		return "\x02"
	}
	if !v.Exists() {
		return "\x02"
	}
	return "\x03" + v.Raw
}

// canonicalElement writes el as JSON with keys lower-cased and sorted, strings of
// sub-attributes that are not caseExact lower-cased, nulls and read-only
// sub-attributes left out: the identity of an element without value.
func canonicalElement(b *strings.Builder, el gjson.Result, a *Attribute) {
	if !el.IsObject() {
		b.WriteString(scalarKey(el, attrCaseExact(a)))
		return
	}
	type kv struct{ k, v string }
	var kvs []kv
	el.ForEach(func(k, v gjson.Result) bool {
		if unassigned(v) || skipSub(a, k.Str) {
			return true
		}
		kvs = append(kvs, kv{strings.ToLower(k.Str), scalarKey(v, attrCaseExact(a.Sub(k.Str)))})
		return true
	})
	slices.SortStableFunc(kvs, func(x, y kv) int { return strings.Compare(x.k, y.k) })
	b.WriteByte('{')
	for _, e := range kvs {
		b.WriteString(Quote(e.k))
		b.WriteByte(':')
		b.WriteString(Quote(e.v))
		b.WriteByte(',')
	}
	b.WriteByte('}')
}

// attrCaseExact is a's caseExact; attributes the schemas do not define compare
// case-sensitively.
func attrCaseExact(a *Attribute) bool { return a == nil || a.CaseExact }

func attrType(a *Attribute) string {
	if a == nil {
		return ""
	}
	return a.Type
}

// unassigned reports whether v means "no value" (RFC 7643 §2.5): missing, null,
// an empty object (or one of nulls only), or an array of such.
func unassigned(v gjson.Result) bool {
	switch {
	case !v.Exists(), v.Type == gjson.Null:
		return true
	case v.IsArray():
		empty := true
		v.ForEach(func(_, el gjson.Result) bool {
			empty = unassigned(el)
			return empty
		})
		return empty
	case v.IsObject():
		empty := true
		v.ForEach(func(_, el gjson.Result) bool {
			empty = el.Type == gjson.Null
			return empty
		})
		return empty
	}
	return false
}

// equalValues compares two present values of an attribute of type typ ("" if
// unknown).
func equalValues(a, b gjson.Result, exact bool, typ string) bool {
	switch {
	case a.Type == gjson.Number && b.Type == gjson.Number:
		return a.Num == b.Num
	case a.Type == gjson.String && b.Type == gjson.String:
		if a.Str == b.Str {
			return true
		}
		if typ == TypeDateTime || typ == "" {
			if ta, err := time.Parse(time.RFC3339Nano, a.Str); err == nil {
				if tb, err := time.Parse(time.RFC3339Nano, b.Str); err == nil {
					return ta.Equal(tb)
				}
			}
		}
		return !exact && strings.EqualFold(a.Str, b.Str)
	case a.IsObject() && b.IsObject():
		ao, bo := newFoldObject(a), newFoldObject(b)
		for _, x := range [2][2]*foldObject{{&ao, &bo}, {&bo, &ao}} {
			for i, k := range x[0].keys {
				v, w := x[0].val(i), x[1].get(k)
				if !(unassigned(v) && unassigned(w) || !unassigned(v) && !unassigned(w) && equalValues(v, w, exact, "")) {
					return false
				}
			}
		}
		return true
	case a.IsArray() && b.IsArray():
		av, bv := a.Array(), b.Array()
		if len(av) != len(bv) {
			return false
		}
		for i := range av {
			if !equalValues(av[i], bv[i], exact, typ) {
				return false
			}
		}
		return true
	}
	return a.Type == b.Type && a.Raw == b.Raw
}

// compactJSON returns raw JSON without insignificant white space.
func compactJSON(raw string) json.RawMessage {
	if !strings.ContainsAny(raw, " \t\r\n") {
		return json.RawMessage(raw)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(raw)); err != nil {
		return json.RawMessage(raw)
	}
	return buf.Bytes()
}

// PatchBodies renders ops as RFC 7644 §3.5.2 PatchOp request bodies
// ({"schemas":[URNPatchOp],"Operations":[…]}), in order, each with at most
// maxOps operations (DefaultMaxOpsPerRequest when maxOps ≤ 0). Each element
// of an add's array value counts as one operation: an add whose elements do
// not fit in the rest of a body is split across bodies, and consecutive adds
// of arrays to the same path in one body are joined into one. No ops, no
// bodies.
func PatchBodies(ops []PatchOp, maxOps int) [][]byte {
	if maxOps <= 0 {
		maxOps = DefaultMaxOpsPerRequest
	}
	var bodies [][]byte
	var b []byte // the open body
	room := 0    // operations the open body can still take
	var addPath string
	var addElems []string // elements of the add not yet written to b
	writeOp := func(op, path string, value []byte) {
		if b[len(b)-1] != '[' {
			b = append(b, ',')
		}
		b = append(b, `{"op":`...)
		b = append(b, Quote(op)...)
		if path != "" {
			b = append(b, `,"path":`...)
			b = append(b, Quote(path)...)
		}
		if value != nil {
			b = append(b, `,"value":`...)
			b = append(b, value...)
		}
		b = append(b, '}')
	}
	flushAdd := func() {
		if len(addElems) == 0 {
			return
		}
		v := make([]byte, 0, 64)
		v = append(v, '[')
		for i, e := range addElems {
			if i > 0 {
				v = append(v, ',')
			}
			v = append(v, e...)
		}
		writeOp("add", addPath, append(v, ']'))
		addElems = addElems[:0]
	}
	next := func() { // make room for one more operation
		if room > 0 {
			return
		}
		flushAdd()
		if b != nil {
			bodies = append(bodies, append(b, "]}"...))
		}
		b = append(make([]byte, 0, 256), `{"schemas":["`+URNPatchOp+`"],"Operations":[`...)
		room = maxOps
	}
	for _, op := range ops {
		v := gjson.ParseBytes(op.Value)
		if !strings.EqualFold(op.Op, "add") || !v.IsArray() || len(v.Array()) == 0 {
			next()
			flushAdd()
			writeOp(op.Op, op.Path, op.Value)
			room--
			continue
		}
		if op.Path != addPath {
			flushAdd()
			addPath = op.Path
		}
		v.ForEach(func(_, e gjson.Result) bool {
			if room == 0 {
				next()
				addPath = op.Path
			}
			addElems = append(addElems, e.Raw)
			room--
			return true
		})
	}
	if b != nil {
		flushAdd()
		bodies = append(bodies, append(b, "]}"...))
	}
	return bodies
}

// PutBody returns the full resource to send with PUT (RFC 7644 §3.5.1):
// current with every managed path set to desired's value, or removed where
// desired has none, so that PUT does not wipe the attributes the pipe does
// not manage (PUT replaces the whole resource: whatever the body lacks, the
// service provider may clear). A filtered path changes only its element (the
// first matching one, filter values compared ignoring case), appending it
// when current has none; a multi-valued attribute mapped whole gets desired's
// list. "schemas" is the union of current's and desired's, current's first;
// "meta" is left out (the service provider owns it); "id", "groups" and
// "schemas" are never taken from desired, whatever is managed. Keys keep
// current's spelling. Like Diff, it rejects a key repeated where a managed
// path reads (*DuplicateKeyError).
func PutBody(current, desired []byte, managed []Path) ([]byte, error) {
	cur, err := parseResource("current", current)
	if err != nil {
		return nil, err
	}
	des, err := parseResource("desired", desired)
	if err != nil {
		return nil, err
	}
	if err := checkDuplicateKeys("current", cur, managed); err != nil {
		return nil, fmt.Errorf("scim put body: %w", err)
	}
	if err := checkDuplicateKeys("desired", des, managed); err != nil {
		return nil, fmt.Errorf("scim put body: %w", err)
	}
	out := []byte(cur.Raw)
	if k, ok := keyFold(cur, "meta"); ok {
		if out, err = sjson.DeleteBytes(out, EscapeKey(k)); err != nil {
			return nil, err
		}
	}
	// schemas: union, current's first.
	var schemas []string
	for _, doc := range []gjson.Result{cur, des} {
		getFold(doc, "schemas").ForEach(func(_, v gjson.Result) bool {
			if !containsFold(schemas, v.String()) {
				schemas = append(schemas, v.String())
			}
			return true
		})
	}
	if len(schemas) > 0 {
		k, ok := keyFold(cur, "schemas")
		if !ok {
			k = "schemas"
		}
		if out, err = sjson.SetBytes(out, EscapeKey(k), schemas); err != nil {
			return nil, err
		}
	}
	for _, p := range managed {
		if isCoreURN(p.URN) {
			p.URN = ""
		}
		if skipAttr(p, nil, true) || p.URN == "" && (strings.EqualFold(p.Attr, "id") || strings.EqualFold(p.Attr, "meta")) {
			continue
		}
		if out, err = putPath(out, des, p); err != nil {
			return nil, fmt.Errorf("scim put body: %s: %w", p, err)
		}
	}
	return out, nil
}

// keyFold returns the key of object obj equal to name ignoring case.
func keyFold(obj gjson.Result, name string) (string, bool) {
	key, ok := "", false
	obj.ForEach(func(k, _ gjson.Result) bool {
		if strings.EqualFold(k.Str, name) {
			key, ok = k.Str, true
			return false
		}
		return true
	})
	return key, ok
}

// putPath sets managed path p in doc to its value in des.
func putPath(doc []byte, des gjson.Result, p Path) ([]byte, error) {
	cur := gjson.ParseBytes(doc)
	// sjson path of the attribute in doc, spelled as doc spells it.
	prefix := ""
	cbase, dbase := cur, des
	if p.URN != "" {
		dbase = getFold(des, p.URN)
		k, ok := keyFold(cur, p.URN)
		if !ok {
			if unassigned(dbase) {
				return doc, nil
			}
			k = p.URN
		}
		cbase = getFold(cur, k)
		prefix = EscapeKey(k) + "."
	}
	attrKey, ok := keyFold(cbase, p.Attr)
	if !ok {
		attrKey = p.Attr
	}
	attrPath := prefix + EscapeKey(attrKey)
	dv := getFold(dbase, p.Attr)
	cv := getFold(cbase, p.Attr)
	set := func(path string, v gjson.Result) ([]byte, error) {
		if unassigned(v) {
			return sjson.DeleteBytes(doc, path)
		}
		return sjson.SetRawBytes(doc, path, compactJSON(v.Raw))
	}
	if len(p.Filter) == 0 {
		if p.Sub == "" {
			return set(attrPath, dv)
		}
		if cv.IsArray() || dv.IsArray() {
			return set(attrPath, dv) // a sub-attribute of every element: take desired's list
		}
		subKey, ok := keyFold(cv, p.Sub)
		if !ok {
			subKey = p.Sub
		}
		return set(attrPath+"."+EscapeKey(subKey), getFold(dv, p.Sub))
	}
	ci := -1
	eachElement(cv, func(i int, el gjson.Result) bool {
		if matchEqsFold(el, p.Filter) {
			ci = i
			return false
		}
		return true
	})
	de := findElementFold(dv, p.Filter)
	var want gjson.Result
	if p.Sub == "" {
		want = de
	} else {
		want = getFold(de, p.Sub)
	}
	if ci < 0 {
		if unassigned(want) {
			return doc, nil
		}
		// A new element: the filter's values plus this sub-attribute; later
		// paths of the same element find it and add theirs.
		el := []byte("{}")
		var err error
		for _, eq := range p.Filter {
			if el, err = sjson.SetRawBytes(el, EscapeKey(eq.Attr), []byte(formatJSON(eq.Value))); err != nil {
				return nil, err
			}
		}
		if p.Sub == "" {
			el = compactJSON(want.Raw)
		} else if el, err = sjson.SetRawBytes(el, EscapeKey(p.Sub), compactJSON(want.Raw)); err != nil {
			return nil, err
		}
		if !cv.IsArray() && cv.Exists() {
			return nil, errors.New("current value is not a list")
		}
		return sjson.SetRawBytes(doc, attrPath+".-1", el)
	}
	elPath := attrPath + "." + strconv.Itoa(ci)
	if !cv.IsArray() {
		elPath = attrPath
	}
	if p.Sub == "" {
		return set(elPath, want)
	}
	ce := gjson.Get(cur.Raw, elPath)
	subKey, ok := keyFold(ce, p.Sub)
	if !ok {
		subKey = p.Sub
	}
	return set(elPath+"."+EscapeKey(subKey), want)
}

// matchEqsFold matches filter values case-insensitively (PutBody has no
// schema).
func matchEqsFold(el gjson.Result, filter []Eq) bool {
	return matchEqs(el, filter, &Attribute{Type: TypeString})
}

func findElementFold(v gjson.Result, filter []Eq) gjson.Result {
	return findElement(v, filter, &Attribute{Type: TypeString})
}

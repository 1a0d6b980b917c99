package scim

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// SCIM attribute names ignore case (RFC 7643 §2.1), so the diff finds an
// object's members by key ignoring case. getFold scans the object for one
// key; looking up every key of an object that way is quadratic in its
// size, which a service answering with an object of 100 000 keys turns
// into minutes of CPU. foldObject and foldSet read an object once and find
// each key in constant time, so that Diff is linear in the documents' size.

// foldLinear is the size up to which a scan beats a map.
const foldLinear = 16

// foldObject is an object's members, found by key ignoring case: the
// first of keys repeated ignoring case, as getFold finds.
type foldObject struct {
	keys []string
	// raws are the members' values as raw JSON, read with gjson.Parse
	// when looked up: a fifth of the memory of a gjson.Result each.
	raws  []string
	index map[string]int // foldKey → position; only past foldLinear keys
	// again maps the foldKey of a key repeated ignoring case to the
	// position of its first repetition; only with index.
	again map[string]int
}

func newFoldObject(obj gjson.Result) foldObject {
	return readFoldObject(obj, nil, nil)
}

// readFoldObject reads obj's members into keys and raws (empty slices
// whose capacity it may use; nil to allocate).
func readFoldObject(obj gjson.Result, keys, raws []string) foldObject {
	f := foldObject{keys: keys, raws: raws}
	if !obj.IsObject() {
		return f
	}
	obj.ForEach(func(k, v gjson.Result) bool {
		f.keys = append(f.keys, k.Str)
		f.raws = append(f.raws, v.Raw)
		return true
	})
	if len(f.keys) > foldLinear {
		f.index = make(map[string]int, len(f.keys))
		for i, k := range f.keys {
			fk := foldKey(k)
			if _, ok := f.index[fk]; !ok {
				f.index[fk] = i // the first one wins
			} else if _, ok := f.again[fk]; !ok {
				if f.again == nil {
					f.again = map[string]int{}
				}
				f.again[fk] = i
			}
		}
	}
	return f
}

// find returns the position of the member called name ignoring case (the
// first of them), or -1.
func (f *foldObject) find(name string) int {
	if f.index != nil {
		if i, ok := f.index[foldKey(name)]; ok {
			return i
		}
		return -1
	}
	for i, k := range f.keys {
		if strings.EqualFold(k, name) {
			return i
		}
	}
	return -1
}

// get returns the member called name ignoring case, or the zero Result.
func (f *foldObject) get(name string) gjson.Result {
	if i := f.find(name); i >= 0 {
		return f.val(i)
	}
	return gjson.Result{}
}

// val returns the value of member i.
func (f *foldObject) val(i int) gjson.Result { return gjson.Parse(f.raws[i]) }

// repeated returns the first two keys equal to name ignoring case, if the
// object has two.
func (f *foldObject) repeated(name string) ([2]string, bool) {
	var keys [2]string
	if f.index != nil {
		fk := foldKey(name)
		j, ok := f.again[fk]
		if !ok {
			return keys, false
		}
		return [2]string{f.keys[f.index[fk]], f.keys[j]}, true
	}
	n := 0
	for _, k := range f.keys {
		if strings.EqualFold(k, name) {
			keys[n] = k
			if n++; n == 2 {
				return keys, true
			}
		}
	}
	return keys, false
}

// foldDoc is a resource read once for Diff: its members, and those of
// each extension schema's object, found by key ignoring case. Diff looks up
// every managed path in both resources, several times each (the duplicate
// key check, the diff itself); reading the objects once keeps that from
// parsing the resource again for each look-up.
type foldDoc struct {
	doc  gjson.Result
	root foldObject
	exts []foldExt // the extensions' objects read so far
	// The members of a resource of usual size (a User with its enterprise
	// extension) fit here, so that reading it costs no allocation per
	// object; larger objects take memory of their own.
	used int
	keys [foldDocMembers]string
	raws [foldDocMembers]string
}

// foldDocMembers is how many members a foldDoc holds without allocating.
const foldDocMembers = 20

func newFoldDoc(doc gjson.Result) *foldDoc {
	f := &foldDoc{doc: doc}
	f.root = f.read(doc)
	return f
}

// read reads obj's members into what is left of the foldDoc's room, or
// into memory of their own when they do not fit.
func (f *foldDoc) read(obj gjson.Result) foldObject {
	o := readFoldObject(obj, f.keys[f.used:f.used:foldDocMembers], f.raws[f.used:f.used:foldDocMembers])
	if len(o.keys) <= foldDocMembers-f.used {
		f.used += len(o.keys) // in the room; otherwise append moved them out and the room is still free
	}
	return o
}

// foldExt is the object of one extension schema in a foldDoc.
type foldExt struct {
	urn string
	obj *foldObject
}

// object returns the members of the object holding schema urn's
// attributes: the resource itself for "" (the core schema).
func (f *foldDoc) object(urn string) *foldObject {
	if urn == "" {
		return &f.root
	}
	for _, e := range f.exts { // a resource has few extensions
		if strings.EqualFold(e.urn, urn) {
			return e.obj
		}
	}
	o := f.read(f.root.get(urn))
	f.exts = append(f.exts, foldExt{urn, &o})
	return &o
}

// attr returns attribute attr of schema urn ("" for the core schema).
func (f *foldDoc) attr(urn, attr string) gjson.Result {
	return f.object(urn).get(attr)
}

// foldSet is a set of keys compared ignoring case.
type foldSet struct {
	list []string
	m    map[string]string // foldKey → the key as first added; past foldLinear keys
}

// add adds k and returns "", or returns the key equal to k ignoring case
// already in the set.
func (s *foldSet) add(k string) (prev string, dup bool) {
	if s.m != nil {
		fk := foldKey(k)
		if p, ok := s.m[fk]; ok {
			return p, true
		}
		s.m[fk] = k
		return "", false
	}
	for _, p := range s.list {
		if strings.EqualFold(p, k) {
			return p, true
		}
	}
	s.list = append(s.list, k)
	if len(s.list) > foldLinear {
		s.m = make(map[string]string, 2*len(s.list))
		for _, p := range s.list {
			s.m[foldKey(p)] = p
		}
		s.list = nil
	}
	return "", false
}

// foldKey maps s to a key equal for two strings exactly when
// strings.EqualFold says they are equal: each rune becomes the smallest of
// its simple case-folding orbit (k, K and the Kelvin sign K all become K).
func foldKey(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToUpper(s) // for ASCII letters the upper case is the orbit's smallest
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
	}
	return b.String()
}

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
	keys  []string
	vals  []gjson.Result
	index map[string]int // foldKey → position; only past foldLinear keys
}

func newFoldObject(obj gjson.Result) foldObject {
	var f foldObject
	if !obj.IsObject() {
		return f
	}
	obj.ForEach(func(k, v gjson.Result) bool {
		f.keys = append(f.keys, k.Str)
		f.vals = append(f.vals, v)
		return true
	})
	if len(f.keys) > foldLinear {
		f.index = make(map[string]int, len(f.keys))
		for i := len(f.keys) - 1; i >= 0; i-- {
			f.index[foldKey(f.keys[i])] = i // the first one wins
		}
	}
	return f
}

// get returns the member called name ignoring case, or the zero Result.
func (f *foldObject) get(name string) gjson.Result {
	if f.index != nil {
		if i, ok := f.index[foldKey(name)]; ok {
			return f.vals[i]
		}
		return gjson.Result{}
	}
	for i, k := range f.keys {
		if strings.EqualFold(k, name) {
			return f.vals[i]
		}
	}
	return gjson.Result{}
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

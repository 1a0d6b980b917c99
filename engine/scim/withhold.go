package scim

import (
	"encoding/json"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/secret"
)

// isPasswordKey reports whether a JSON key names the User's password
// attribute: "password" in any case, bare or with its schema URN
// ("urn:ietf:params:scim:schemas:core:2.0:User:password"), as a resource
// attribute or a PATCH path.
func isPasswordKey(k string) bool {
	k = strings.TrimSpace(k)
	if i := strings.LastIndexByte(k, ':'); i >= 0 {
		k = k[i+1:]
	}
	return strings.EqualFold(k, "password")
}

// PasswordValues returns the password values a request body carries: the
// value of every "password" member at any depth (a resource, a PATCH
// operation's value object) and the value of every PATCH operation whose
// path is password. The client keeps them out of what it reports about
// the answer (some services echo the request in their errors).
func PasswordValues(body []byte) []string {
	if len(body) == 0 || !gjson.ValidBytes(body) {
		return nil
	}
	var out []string
	var walk func(v gjson.Result, depth int)
	strs := func(v gjson.Result) {
		if v.Type == gjson.String {
			out = append(out, v.String())
			return
		}
		v.ForEach(func(_, e gjson.Result) bool {
			if e.Type == gjson.String {
				out = append(out, e.String())
			}
			return true
		})
	}
	walk = func(v gjson.Result, depth int) {
		if depth > MaxDepth {
			return
		}
		switch {
		case v.IsObject():
			path := v.Get("path")
			if path.Type == gjson.String && isPasswordKey(path.String()) {
				strs(v.Get("value"))
			}
			v.ForEach(func(k, e gjson.Result) bool {
				if isPasswordKey(k.String()) {
					strs(e)
				}
				walk(e, depth+1)
				return true
			})
		case v.IsArray():
			v.ForEach(func(_, e gjson.Result) bool {
				walk(e, depth+1)
				return true
			})
		}
	}
	walk(gjson.ParseBytes(body), 0)
	return out
}

// Withhold returns a copy of a SCIM JSON document (a resource, a PATCH
// request) for people to read: every password value, and every string
// that s scrubs, shows as secret.Withheld. Key order is kept. A body that
// is not JSON is only scrubbed. It is for output only: what is sent is
// always the document itself.
func Withhold(doc []byte, s secret.Scrubber) []byte {
	if !gjson.ValidBytes(doc) {
		return s.Bytes(doc)
	}
	w := withholder{s: s}
	w.value(gjson.ParseBytes(doc), false, 0)
	return w.buf
}

type withholder struct {
	s   secret.Scrubber
	buf []byte
}

var withheldJSON = []byte(`"` + secret.Withheld + `"`)

func (w *withholder) value(v gjson.Result, hide bool, depth int) {
	switch {
	case depth > MaxDepth:
		w.buf = append(w.buf, withheldJSON...)
	case v.IsObject():
		path := v.Get("path")
		hideValue := path.Type == gjson.String && isPasswordKey(path.String())
		w.buf = append(w.buf, '{')
		first := true
		v.ForEach(func(k, e gjson.Result) bool {
			if !first {
				w.buf = append(w.buf, ',')
			}
			first = false
			w.buf = appendJSONString(w.buf, w.s.String(k.String()))
			w.buf = append(w.buf, ':')
			h := hide || isPasswordKey(k.String()) || hideValue && k.String() == "value"
			w.value(e, h, depth+1)
			return true
		})
		w.buf = append(w.buf, '}')
	case v.IsArray():
		w.buf = append(w.buf, '[')
		first := true
		v.ForEach(func(_, e gjson.Result) bool {
			if !first {
				w.buf = append(w.buf, ',')
			}
			first = false
			w.value(e, hide, depth+1)
			return true
		})
		w.buf = append(w.buf, ']')
	case hide && v.Type != gjson.Null:
		w.buf = append(w.buf, withheldJSON...)
	case v.Type == gjson.String:
		w.buf = appendJSONString(w.buf, w.s.String(v.String()))
	default:
		w.buf = append(w.buf, v.Raw...)
	}
}

func appendJSONString(b []byte, s string) []byte {
	j, _ := json.Marshal(s)
	return append(b, j...)
}

package repl

import (
	"encoding/base64"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/scimsync/scimsync/engine/ldif"
	"github.com/scimsync/scimsync/engine/logsafe"
	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/lang"
)

// formatValue renders a value in expr's literal syntax, which for strings,
// numbers, lists and maps is JSON's: "a", 1.5, ["a", "b"], {"k": true}.
// nil is nil; a string that is not UTF-8 (a raw binary value) is a byte
// literal b"\x01…"; references are ref([…], Endpoint…).
func formatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "nil"
	case string:
		return quote(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(v), 'g', -1, 32)
	case *lang.Refs:
		if v == nil {
			return "nil"
		}
		var eps []string
		for _, e := range v.Endpoints {
			eps = append(eps, e.Name)
		}
		return "ref(" + formatValue(v.DNs) + ", " + strings.Join(eps, ", ") + ")"
	case *lang.Endpoint:
		if v == nil {
			return "nil"
		}
		return v.Name
	case time.Time:
		return "date(" + strconv.Quote(v.Format(time.RFC3339Nano)) + ")"
	case time.Duration:
		return "duration(" + strconv.Quote(v.String()) + ")"
	case []byte:
		return byteLiteral(string(v))
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		items := make([]string, rv.Len())
		for i := range items {
			items[i] = formatValue(rv.Index(i).Interface())
		}
		return "[" + strings.Join(items, ", ") + "]"
	case reflect.Map:
		keys := rv.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		items := make([]string, len(keys))
		for i, k := range keys {
			items[i] = formatValue(k.Interface()) + ": " + formatValue(rv.MapIndex(k).Interface())
		}
		return "{" + strings.Join(items, ", ") + "}"
	case reflect.Pointer:
		if rv.IsNil() {
			return "nil"
		}
	}
	return fmt.Sprint(v)
}

// quote renders a string as a JSON-style literal, or a byte literal when it
// is not UTF-8.
func quote(s string) string {
	if !utf8.ValidString(s) {
		return byteLiteral(s)
	}
	return strconv.Quote(s)
}

func byteLiteral(s string) string {
	var b strings.Builder
	b.WriteString(`b"`)
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, `\x%02x`, s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// typeName names the type of a value as the REPL prints it after " : ":
// nil, string, int, float, bool, list<string> (a list whose elements share
// one type), list<any>, list (empty), map, ref, endpoint, time, duration.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nil"
	case *lang.Refs:
		return "ref"
	case *lang.Endpoint:
		return "endpoint"
	case time.Time:
		return "time"
	case time.Duration:
		return "duration"
	case []byte:
		return "bytes"
	case []string:
		return "list<string>"
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		if rv.Len() == 0 {
			if rv.Type().Elem().Kind() == reflect.Interface {
				return "list"
			}
			return "list<" + staticTypeName(rv.Type().Elem()) + ">"
		}
		elem := ""
		for i := 0; i < rv.Len(); i++ {
			t := typeName(rv.Index(i).Interface())
			if elem != "" && t != elem {
				return "list<any>"
			}
			elem = t
		}
		return "list<" + elem + ">"
	case reflect.Map:
		return "map"
	}
	return staticTypeName(rv.Type())
}

var (
	refsType     = reflect.TypeOf((*lang.Refs)(nil))
	endpointType = reflect.TypeOf((*lang.Endpoint)(nil))
	timeType     = reflect.TypeOf(time.Time{})
	durationType = reflect.TypeOf(time.Duration(0))
)

// staticTypeName names a compile-time type in the REPL's terms: any for an
// interface (known only at run time), list<T>, map<K, V>, and the names of
// typeName. A nil type is unknown.
func staticTypeName(t reflect.Type) string {
	if t == nil {
		return "unknown"
	}
	switch t {
	case refsType:
		return "ref"
	case endpointType:
		return "endpoint"
	case timeType:
		return "time"
	case durationType:
		return "duration"
	}
	switch t.Kind() {
	case reflect.Interface:
		return "any"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "int"
	case reflect.Float32, reflect.Float64:
		return "float"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "bytes"
		}
		return "list<" + staticTypeName(t.Elem()) + ">"
	case reflect.Map:
		return "map<" + staticTypeName(t.Key()) + ", " + staticTypeName(t.Elem()) + ">"
	}
	return t.String()
}

// writeLDIF writes a change's entry as an LDIF content record, with binary
// or unsafe values base64-encoded (RFC 2849 "::"), and the change's type
// and changed attributes as comments.
func writeLDIF(w io.Writer, ch *lang.Change) {
	if ch.OldDN != "" {
		fmt.Fprintf(w, "# renamed from %s\n", logsafe.Escape(ch.OldDN))
	}
	if len(ch.Changed) > 0 {
		fmt.Fprintf(w, "# changed: %s\n", logsafe.Escape(strings.Join(ch.Changed, ", ")))
	}
	writeAttr(w, "dn", ch.DN)
	for _, a := range ch.Entry.Attrs() {
		for _, v := range a.Values {
			writeAttr(w, a.Name, v)
		}
	}
}

func writeAttr(w io.Writer, name, v string) {
	if lang.IsSecretAttribute(name) {
		// Password values never leave the process: the REPL shows that
		// there is one, not what it is.
		fmt.Fprintf(w, "%s: %s\n", name, secret.Withheld)
		return
	}
	if safeLDIF(v) {
		fmt.Fprintf(w, "%s: %s\n", name, v)
		return
	}
	fmt.Fprintf(w, "%s:: %s\n", name, base64.StdEncoding.EncodeToString([]byte(v)))
}

// safeLDIF reports whether v may be written as is (RFC 2849 SAFE-STRING),
// allowing non-ASCII UTF-8 for readability, as most LDAP tools print it.
func safeLDIF(v string) bool {
	if v == "" {
		return true
	}
	if !utf8.ValidString(v) || v[0] == ' ' || v[0] == ':' || v[0] == '<' || v[len(v)-1] == ' ' {
		return false
	}
	for _, c := range v {
		if logsafe.Unsafe(c) { // C0, DEL, C1 and bidi overrides: never raw on a terminal
			return false
		}
	}
	return true
}

// entryRecord turns an entry read from a directory into an LDIF content
// record, to apply to the REPL's Directory.
func entryRecord(e *lang.Entry) *ldif.Record {
	rec := &ldif.Record{DN: e.DN}
	for _, a := range e.Attrs() {
		rec.Attrs = append(rec.Attrs, ldif.Attr{Name: a.Name, Values: a.Values})
	}
	return rec
}

package repl

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/scimsync/scimsync/lang"
)

func TestFormatValue(t *testing.T) {
	tests := []struct {
		v          any
		value, typ string
	}{
		{nil, "nil", "nil"},
		{"a\"b", `"a\"b"`, "string"},
		{"\x01\xfe", `b"\x01\xfe"`, "string"},
		{[]string{"a", "\xff"}, `["a", b"\xff"]`, "list<string>"},
		{[]string(nil), "[]", "list<string>"},
		{[]any{}, "[]", "list"},
		{[]any{"a", "b"}, `["a", "b"]`, "list<string>"},
		{[]any{1, 2.5}, "[1, 2.5]", "list<any>"},
		{map[string]any{"z": nil, "a": []any{true}}, `{"a": [true], "z": nil}`, "map"},
		{42, "42", "int"},
		{1e21, "1e+21", "float"},
		{time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), `date("2024-01-02T03:04:05Z")`, "time"},
		{90 * time.Second, `duration("1m30s")`, "duration"},
		{&lang.Refs{DNs: []string{"uid=a"}, Endpoints: []*lang.Endpoint{{Name: "Users"}}}, `ref(["uid=a"], Users)`, "ref"},
	}
	for _, tt := range tests {
		if got := formatValue(tt.v); got != tt.value {
			t.Errorf("formatValue(%#v) = %s, want %s", tt.v, got, tt.value)
		}
		if got := typeName(tt.v); got != tt.typ {
			t.Errorf("typeName(%#v) = %s, want %s", tt.v, got, tt.typ)
		}
	}
}

func TestStaticTypeName(t *testing.T) {
	tests := map[string]reflect.Type{
		"unknown":                nil,
		"any":                    reflect.TypeFor[any](),
		"string":                 reflect.TypeFor[string](),
		"list<string>":           reflect.TypeFor[[]string](),
		"list<any>":              reflect.TypeFor[[]any](),
		"map<string, any>":       reflect.TypeFor[map[string]any](),
		"bool":                   reflect.TypeFor[bool](),
		"int":                    reflect.TypeFor[int64](),
		"float":                  reflect.TypeFor[float64](),
		"bytes":                  reflect.TypeFor[[]byte](),
		"ref":                    reflect.TypeFor[*lang.Refs](),
		"endpoint":               reflect.TypeFor[*lang.Endpoint](),
		"list<map<string, any>>": reflect.TypeFor[[]map[string]any](),
	}
	for want, typ := range tests {
		if got := staticTypeName(typ); got != want {
			t.Errorf("staticTypeName(%v) = %s, want %s", typ, got, want)
		}
	}
}

func TestWriteLDIF(t *testing.T) {
	ch := &lang.Change{Type: lang.ModRDN, DN: "uid=b,dc=x", OldDN: "uid=a,dc=x", Changed: []string{"uid"},
		Entry: lang.NewEntry("uid=b,dc=x", []lang.Attr{
			{Name: "uid", Values: []string{"b"}},
			{Name: "cn", Values: []string{"José", " leading space", ":colon", ""}},
			{Name: "objectGUID", Values: []string{"\x01\x02\xff"}},
		})}
	var b bytes.Buffer
	writeLDIF(&b, ch)
	want := `# renamed from uid=a,dc=x
# changed: uid
dn: uid=b,dc=x
uid: b
cn: José
cn:: IGxlYWRpbmcgc3BhY2U=
cn:: OmNvbG9u
cn: 
objectGUID:: AQL/
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

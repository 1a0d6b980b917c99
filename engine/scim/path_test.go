package scim

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

var knownURNs = []string{URNUser, URNGroup, URNEnterpriseUser}

func TestParsePathValid(t *testing.T) {
	tests := []struct {
		in   string
		want Path
	}{
		{`userName`, Path{Attr: "userName"}},
		{`name.givenName`, Path{Attr: "name", Sub: "givenName"}},
		{`emails[type eq "work"].value`, Path{Attr: "emails", Filter: []Eq{{"type", "work"}}, Sub: "value"}},
		{`emails[type eq "work"]`, Path{Attr: "emails", Filter: []Eq{{"type", "work"}}}},
		{`emails[ type  EQ "work"  and primary eq true ].value`, Path{Attr: "emails", Filter: []Eq{{"type", "work"}, {"primary", true}}, Sub: "value"}},
		{`x509Certificates[value eq null]`, Path{Attr: "x509Certificates", Filter: []Eq{{"value", nil}}}},
		{`things[n eq -1.5e2].v`, Path{Attr: "things", Filter: []Eq{{"n", -150.0}}, Sub: "v"}},
		{`addresses[type eq "a]b\"c"].locality`, Path{Attr: "addresses", Filter: []Eq{{"type", `a]b"c`}}, Sub: "locality"}},
		{`members.$ref`, Path{Attr: "members", Sub: "$ref"}},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`,
			Path{URN: URNEnterpriseUser, Attr: "employeeNumber"}},
		{`"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"`,
			Path{URN: URNEnterpriseUser, Attr: "employeeNumber"}},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`,
			Path{URN: URNEnterpriseUser, Attr: "manager", Sub: "value"}},
		{`URN:IETF:params:scim:schemas:extension:enterprise:2.0:user:manager.value`,
			Path{URN: URNEnterpriseUser, Attr: "manager", Sub: "value"}},
		{`urn:ietf:params:scim:schemas:core:2.0:User:name.familyName`,
			Path{URN: URNUser, Attr: "name", Sub: "familyName"}},
		{`urn:acme:ext:1.5:Thing:serial`, Path{URN: "urn:acme:ext:1.5:Thing", Attr: "serial"}},
		{`urn:acme:ext:1.5:Thing:badges[kind eq "x:y"].id`,
			Path{URN: "urn:acme:ext:1.5:Thing", Attr: "badges", Filter: []Eq{{"kind", "x:y"}}, Sub: "id"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePath(tt.in, knownURNs)
			if err != nil {
				t.Fatalf("ParsePath: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestParsePathLongestURN(t *testing.T) {
	known := []string{"urn:acme:User", "urn:acme:User:v2"}
	got, err := ParsePath("urn:acme:User:v2:badge", known)
	if err != nil {
		t.Fatal(err)
	}
	if got.URN != "urn:acme:User:v2" || got.Attr != "badge" {
		t.Fatalf("got %#v", got)
	}
}

func TestParsePathInvalid(t *testing.T) {
	tests := []struct {
		in     string
		offset int
		msg    string
	}{
		{``, 0, "empty path"},
		{`1abc`, 0, "expected attribute name"},
		{`name.`, 5, "expected attribute name"},
		{`name.givenName.x`, 14, "sub-attributes nest only one level"},
		{`emails[type "work"]`, 12, `expected "eq" in filter`},
		{`emails[type eq "work" or type eq "home"]`, 22, "only eq comparisons joined by and can select an element"},
		{`emails[type ne "work"]`, 12, "only eq comparisons joined by and can select an element"},
		{`emails[type pr]`, 12, "only eq comparisons joined by and can select an element"},
		{`emails[not (type eq "work")]`, 7, "only eq comparisons joined by and can select an element"},
		{`emails[(type eq "work")]`, 7, "only eq comparisons joined by and can select an element"},
		{`emails[type eq "work]`, 15, "unterminated string"},
		{`emails[type eq "work"`, 6, `missing "]"`},
		{`emails[]`, 7, "empty filter"},
		{`emails[type eq work]`, 15, "expected a value"},
		{`emails[type eq 'work']`, 15, "strings must be in double quotes"},
		{`emails[type eq "a\x"]`, 17, `invalid escape`},
		{`emails[type eq "work"].value[x eq 1]`, 28, "a filter must follow the attribute"},
		{`emails[type eq "work"][primary eq true]`, 22, "only one filter is allowed"},
		{`emails[type eq "w" and type eq "h"]`, 23, "compared twice"},
		{`emails[value.type eq "w"]`, 7, "a filter compares sub-attributes"},
		{`user name`, 4, "unexpected ' '"},
		{`foo:bar`, 3, `unexpected ":"`},
		{`"userName`, 0, "unterminated string"},
		{`"user\"Name"`, 5, "a quoted path cannot contain quotes or escapes"},
		{`"name."`, 6, "expected attribute name"},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`, 0, "path names the schema"},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:`, 59, "expected attribute name"},
		{`urn:`, 0, "invalid schema URN"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParsePath(tt.in, knownURNs)
			var pe *PathError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *PathError", err)
			}
			if pe.Offset != tt.offset || !strings.Contains(pe.Msg, tt.msg) {
				t.Fatalf("got offset %d %q, want offset %d containing %q", pe.Offset, pe.Msg, tt.offset, tt.msg)
			}
			if pe.Msg != strings.TrimSuffix(pe.Msg, ".") {
				t.Errorf("message ends with a period: %q", pe.Msg)
			}
		})
	}
}

func TestPathStringRoundTrip(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{`userName`, `userName`},
		{`name.givenName`, `name.givenName`},
		{`emails[type eq "work"].value`, `emails[type eq "work"].value`},
		{`emails[ type  EQ "work"  AND primary eq TRUE ]`, `emails[type eq "work" and primary eq true]`},
		{`things[n eq 10 and m eq null and s eq "q\"\\\n"].v`, `things[n eq 10 and m eq null and s eq "q\"\\\n"].v`},
		{`"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"`,
			`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:manager.value`,
			`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`},
		{`urn:acme:ext:1.5:Thing:badges[kind eq "x"].id`, `urn:acme:ext:1.5:Thing:badges[kind eq "x"].id`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParsePath(tt.in, knownURNs)
			if err != nil {
				t.Fatal(err)
			}
			s := p.String()
			if s != tt.want {
				t.Fatalf("String() = %q, want %q", s, tt.want)
			}
			for _, known := range [][]string{knownURNs, nil} {
				back, err := ParsePath(s, known)
				if err != nil {
					t.Fatalf("ParsePath(String()): %v", err)
				}
				if !reflect.DeepEqual(back, p) {
					t.Fatalf("round trip (known=%v): got %#v, want %#v", known != nil, back, p)
				}
			}
		})
	}
}

func TestJSONPath(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{`userName`, `userName`},
		{`name.givenName`, `name.givenName`},
		{`members.$ref`, `members.\$ref`},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`,
			`urn:ietf:params:scim:schemas:extension:enterprise:2\.0:User.employeeNumber`},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`,
			`urn:ietf:params:scim:schemas:extension:enterprise:2\.0:User.manager.value`},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName`, `userName`},
		{`emails[type eq "work"].value`, ``},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParsePath(tt.in, knownURNs)
			if err != nil {
				t.Fatal(err)
			}
			got := p.JSONPath()
			if got != tt.want {
				t.Fatalf("JSONPath() = %q, want %q", got, tt.want)
			}
			if got == "" {
				return
			}
			doc, err := sjson.Set(`{"schemas":[]}`, got, "v1")
			if err != nil {
				t.Fatalf("sjson.Set: %v", err)
			}
			if r := gjson.Get(doc, got); r.String() != "v1" {
				t.Fatalf("gjson.Get(%s) = %q in %s", got, r.Raw, doc)
			}
			// The document has the literal keys, nested as the path says.
			var keys []string
			if p.URN != "" && !isCoreURN(p.URN) {
				keys = append(keys, p.URN)
			}
			keys = append(keys, p.Attr)
			if p.Sub != "" {
				keys = append(keys, p.Sub)
			}
			r := gjson.Parse(doc)
			for _, k := range keys {
				var next gjson.Result
				r.ForEach(func(key, v gjson.Result) bool {
					if key.String() == k {
						next = v
						return false
					}
					return true
				})
				if !next.Exists() {
					t.Fatalf("key %q missing in %s", k, doc)
				}
				r = next
			}
		})
	}
}

func TestEscapeKeySjsonGjson(t *testing.T) {
	keys := []string{
		URNEnterpriseUser, "a.b", "a*b", "a?b", "a|b", "a#b", "#", "@this", "a\\b", "$ref",
		":colon", "sp ace", "ünï", `q"uote`, "a..b", "!", "{}", "[0]", "a,b", "a=b",
	}
	for _, k := range keys {
		t.Run(k, func(t *testing.T) {
			path := EscapeKey(k) + "." + EscapeKey("x.y")
			doc, err := sjson.Set(`{}`, path, 42)
			if err != nil {
				t.Fatalf("sjson.Set(%q): %v", path, err)
			}
			outer := gjson.Parse(doc)
			var found gjson.Result
			outer.ForEach(func(key, v gjson.Result) bool {
				if key.String() == k {
					found = v
				}
				return true
			})
			if !found.Exists() {
				t.Fatalf("key %q not in %s (path %q)", k, doc, path)
			}
			if got := gjson.Get(doc, path); got.Int() != 42 {
				t.Fatalf("gjson.Get(%q) = %s in %s", path, got.Raw, doc)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	cands := []string{"userName", "name", "displayName", "emails", "phoneNumbers", "title"}
	tests := []struct {
		name string
		want string
	}{
		{"username", "userName"},
		{"USERNAME", "userName"},
		{"usrName", "userName"},
		{"userNmae", "userName"},
		{"emial", "emails"},
		{"email", "emails"},
		{"phonenumber", "phoneNumbers"},
		{"titel", "title"},
		{"nmae", "name"},
		{"zzz", ""},
		{"department", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Suggest(tt.name, cands); got != tt.want {
				t.Fatalf("Suggest(%q) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
	t.Run("no candidates", func(t *testing.T) {
		if got := Suggest("x", nil); got != "" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("tie keeps first", func(t *testing.T) {
		if got := Suggest("ab", []string{"ac", "ad"}); got != "ac" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("unicode runes", func(t *testing.T) {
		if got := Suggest("größe", []string{"grösse", "grüße"}); got != "grüße" {
			t.Fatalf("got %q", got)
		}
	})
}

// TestPathKey: appendKey is strings.ToLower of String, and pathSet tells
// paths apart exactly as a set of those strings does, small or large.
func TestPathKey(t *testing.T) {
	paths := []Path{
		{Attr: "userName"}, {Attr: "USERNAME"}, {Attr: "name", Sub: "givenName"}, {Attr: "Name", Sub: "GivenName"},
		{URN: URNEnterpriseUser, Attr: "employeeNumber"}, {URN: strings.ToLower(URNEnterpriseUser), Attr: "EmployeeNumber"},
		{Attr: "emails", Filter: []Eq{{Attr: "type", Value: "work"}}, Sub: "value"},
		{Attr: "emails", Filter: []Eq{{Attr: "type", Value: "Work"}}, Sub: "value"},
		{Attr: "emails", Filter: []Eq{{Attr: "type", Value: "work"}, {Attr: "primary", Value: true}}},
		{Attr: "x", Filter: []Eq{{Attr: "n", Value: 1.5}, {Attr: "z", Value: nil}, {Attr: "q", Value: "a\"b\\\u2028"}}},
		{Attr: "\u212a"}, {Attr: "k"}, {Attr: "K"}, {Attr: "İ"}, {Attr: "i"}, {Attr: "\xff"}, {Attr: "\ufffd"},
		{Attr: "ẞ"}, {Attr: "ß"}, {Attr: strings.Repeat("Long", 50)}, {Attr: strings.Repeat("long", 50)},
	}
	for _, p := range paths {
		if got, want := string(p.appendKey(nil)), strings.ToLower(p.String()); got != want {
			t.Errorf("appendKey(%s) = %q, want %q", p, got, want)
		}
	}
	for _, n := range []int{3, len(paths)} { // below and past foldLinear
		var set pathSet
		seen := map[string]bool{}
		for _, p := range paths[:n] {
			k := strings.ToLower(p.String())
			if got, want := set.add(p), !seen[k]; got != want {
				t.Errorf("%d paths: add(%s) = %v, want %v", n, p, got, want)
			}
			seen[k] = true
		}
		for _, p := range paths[:n] {
			if set.add(p) {
				t.Errorf("%d paths: add(%s) again = true", n, p)
			}
		}
	}
}

package engine

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/lang"
)

// TestShadowProjection: the record kept of a write's answer holds the
// managed attributes only, compact, spelled as the service spelled them;
// there is none when the answer is not the resource written, does not
// hold what was written, or would hold a secret of the change.
func TestShadowProjection(t *testing.T) {
	p := openldapPipe(t, "http://127.0.0.1:1/scim")
	const dn = "uid=bench-u000001,ou=People,dc=example,dc=com"
	ch := &lang.Change{Type: lang.Modify, DN: dn, Changed: []string{"title"}, Entry: lang.NewEntry(dn, []lang.Attr{
		{Name: "objectClass", Values: []string{"inetOrgPerson"}}, {Name: "uid", Values: []string{"bench-u000001"}},
		{Name: "cn", Values: []string{"Bench User 1"}}, {Name: "sn", Values: []string{"User1"}},
		{Name: "givenName", Values: []string{"Bench"}}, {Name: "displayName", Values: []string{"Bench User 1"}},
		{Name: "mail", Values: []string{"bench-u000001@Example.COM"}}, {Name: "title", Values: []string{"Engineer 1"}},
		{Name: "telephoneNumber", Values: []string{"+1 555 0000001"}}, {Name: "employeeNumber", Values: []string{"1"}},
	})}
	res, err := p.NewEvaluator().Eval(ch, lang.Realtime)
	if err != nil {
		t.Fatal(err)
	}
	desired, err := res.Resource(lang.Update, nil)
	if err != nil {
		t.Fatal(err)
	}
	managed := res.Managed(lang.Update)
	user := benchUser(1) // title "Engineer 1", as desired
	id := "00000001-b12f-479e-bc86-9a81a26c618c"
	const covers = `"covers":["username","name","displayname","title","emails","phonenumbers","active",` +
		`"urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:employeenumber",` +
		`"urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:manager"]`
	const body = `"body":{"userName":"bench-u000001","name":{"familyName":"User1","givenName":"Bench"},"displayName":"Bench User 1",` +
		`"title":"Engineer 1","active":true,"emails":[{"value":"bench-u000001@example.com","type":"work"}],` +
		`"phoneNumbers":[{"value":"+1 555 0000001","type":"work"}],` +
		`"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"1"}}`
	tests := []struct {
		name    string
		answer  string
		secrets []string
		want    string // "" for no record
	}{
		{"the answer of the test server", user, nil, `{` + covers + `,` + body + `}`},
		{"spaced, and spelled otherwise", strings.NewReplacer(`"title":`, "\n  \"TITLE\" :  ", `,"active"`, " ,\t\"active\"",
			`"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{`, `"URN:ietf:params:scim:schemas:extension:enterprise:2.0:USER": { "department": "x", `).Replace(user),
			nil, `{` + covers + `,` + strings.NewReplacer(`"title":`, `"TITLE":`,
				`"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`, `"URN:ietf:params:scim:schemas:extension:enterprise:2.0:USER"`).Replace(body) + `}`},
		{"another resource", strings.Replace(user, id, "00000002-b12f-479e-bc86-9a81a26c618c", 1), nil, ""},
		{"not what was written", strings.Replace(user, `"title":"Engineer 1"`, `"title":"Engineer 2"`, 1), nil, ""},
		{"no body (204)", "", nil, ""},
		{"not JSON", user[:40], nil, ""},
		{"a secret of the change in it", user, []string{"Engineer 1"}, ""},
		{"a secret elsewhere", user, []string{"hunter2"}, `{` + covers + `,` + body + `}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := shadowProjection(res.Endpoint, id, []byte(tt.answer), scim.NewDesired(desired, managed), managed, diffOptions(res.Endpoint, 0), tt.secrets)
			if string(got) != tt.want {
				t.Errorf("record\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// TestAppendCompact: appendCompact writes what json.Compact writes.
func TestAppendCompact(t *testing.T) {
	for _, raw := range []string{
		`"a b"`, ` { "a" : [ 1 , 2 ] ,` + "\n\t" + `"b\"c \\" : "d \" e\\\\" } `, `[]`, `"\u00e9 \\ \" "`, `true`, ` -1.5e3 `,
		`{"x":{"y":[{"z":" ] } "}]}}`, "[\r\n]",
	} {
		t.Run(raw, func(t *testing.T) {
			var want bytes.Buffer
			if err := json.Compact(&want, []byte(raw)); err != nil {
				t.Fatal(err)
			}
			if got := appendCompact([]byte("x"), raw); string(got) != "x"+want.String() {
				t.Errorf("appendCompact = %s, want x%s", got, want.String())
			}
		})
	}
}

// TestLowerEqual: lowerEqual is strings.ToLower(a) == strings.ToLower(b).
func TestLowerEqual(t *testing.T) {
	words := []string{"title", "Title", "TITLE", "titlE ", "K", "k", "\u212a", "İ", "i", "I", "ß", "ẞ", "\xff", "\ufffd", "", "é", "É"}
	for _, a := range words {
		for _, b := range words {
			//lint:ignore SA6005 the reference lowerEqual must agree with is this very comparison
			if got, want := lowerEqual(a, b), strings.ToLower(a) == strings.ToLower(b); got != want {
				t.Errorf("lowerEqual(%q, %q) = %v, want %v", a, b, got, want)
			}
		}
	}
}

// TestDecodeShadowRecord: a stored record reads back as shadowProjection
// wrote it; anything else is not a record (the change then reads the
// resource).
func TestDecodeShadowRecord(t *testing.T) {
	tests := []struct {
		val    string
		ok     bool
		covers string // joined by spaces
		body   string
	}{
		{`{"covers":["title","urn:x:user:employeenumber"],"body":{"title":"A","urn:x:User":{"employeeNumber":"1"}}}`, true,
			"title urn:x:user:employeenumber", `{"title":"A","urn:x:User":{"employeeNumber":"1"}}`},
		{`{"covers":null,"body":{}}`, true, "", `{}`},
		{`{"body":{"title":"A"}}`, true, "", `{"title":"A"}`},
		{`{"covers":["title",1],"body":{}}`, false, "", ""},
		{`{"covers":"title","body":{}}`, false, "", ""},
		{`{"covers":["title"],"body":"A"}`, false, "", ""},
		{`{"covers":["title"]}`, false, "", ""},
		{`{"covers":["title"],"body":{"title":"A"}`, false, "", ""},
		{`[]`, false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.val, func(t *testing.T) {
			rec, ok := decodeShadowRecord([]byte(tt.val))
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if got := strings.Join(rec.Covers, " "); got != tt.covers || string(rec.Body) != tt.body {
				t.Errorf("covers %q body %s, want %q %s", got, rec.Body, tt.covers, tt.body)
			}
		})
	}
}

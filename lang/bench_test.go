package lang_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/tidwall/sjson"

	"github.com/scimsync/scimsync/lang"
)

// benchScript maps a 10-attribute user; BenchmarkMapChange compares it with
// the same mapping written by hand in Go (handMap, below).
const benchScript = `pipe "bench"
source ldif { file = "x.ldif" }
scim { url = "https://scim.example.com/v2" }
endpoint Users {
  path    = "/Users"
  schemas = ["urn:ietf:params:scim:schemas:core:2.0:User",
             "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]
  lookup  = "userName eq " + scimQuote(first(uid))
}
class groups {
  base     = "ou=Groups,dc=example,dc=com"
  endpoint = Users
}
class people {
  base     = "ou=People,dc=example,dc=com"
  when     = hasValue(objectClass, "inetOrgPerson")
  endpoint = Users
  map {
    userName                     = first(uid)
    externalId                   = first(entryUUID)
    name.givenName               = first(givenName)
    name.familyName              = first(sn)
    displayName                  = first(displayName) ?? first(cn)
    title                        = first(title)
    emails[type eq "work"].value = lower(first(mail))
    phoneNumbers[type eq "work"].value = first(telephoneNumber)
    active                       = !hasValue(nsAccountLock, "true")
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber" = first(employeeNumber)
  }
}
`

func benchChange() *lang.Change {
	dn := "uid=jdoe,ou=People,dc=example,dc=com"
	return &lang.Change{Type: lang.Add, DN: dn, Entry: lang.NewEntry(dn, []lang.Attr{
		{Name: "objectClass", Values: []string{"top", "person", "organizationalPerson", "inetOrgPerson"}},
		{Name: "uid", Values: []string{"jdoe"}},
		{Name: "entryUUID", Values: []string{"0b6c1f3e-3b1a-4c4e-9d0a-7f1e2d3c4b5a"}},
		{Name: "givenName", Values: []string{"John"}},
		{Name: "sn", Values: []string{"Doe"}},
		{Name: "cn", Values: []string{"John Doe"}},
		{Name: "displayName", Values: []string{"Johnny Doe"}},
		{Name: "title", Values: []string{"Engineer"}},
		{Name: "mail", Values: []string{"John.Doe@Example.com"}},
		{Name: "telephoneNumber", Values: []string{"+1 555 0100"}},
		{Name: "employeeNumber", Values: []string{"4711"}},
	})}
}

// BenchmarkMapChange: one change through class selection, the lookup
// filter and the mapping to SCIM JSON, by the compiled pipe ("pipe") and by
// the same mapping written by hand in Go, two ways: setting each attribute
// with sjson ("go-sjson", the obvious code) and appending the JSON directly
// ("go-append", the fastest plain Go).
func BenchmarkMapChange(b *testing.B) {
	ch := benchChange()
	b.Run("pipe", func(b *testing.B) {
		p, err := lang.Load("bench.pipe", benchScript, lang.LoadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		ev := p.NewEvaluator()
		b.ReportAllocs()
		for b.Loop() {
			res, err := ev.Eval(ch, lang.Realtime)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := res.Resource(lang.Create, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	people, _ := ldap.ParseDN("ou=People,dc=example,dc=com")
	groups, _ := ldap.ParseDN("ou=Groups,dc=example,dc=com")
	b.Run("go-sjson", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := handMap(ch, people, groups); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go-append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			var ok bool
			if _, buf, ok = handAppend(ch, people, groups, buf[:0]); !ok {
				b.Fatal("not mapped")
			}
		}
	})
}

// handAppend is benchScript's class selection and mapping written in Go,
// appending the JSON directly.
func handAppend(ch *lang.Change, people, groups *ldap.DN, b []byte) (string, []byte, bool) {
	dn, err := ldap.ParseDN(ch.DN)
	if err != nil || groups.AncestorOfFold(dn) || !people.AncestorOfFold(dn) {
		return "", b, false
	}
	e := ch.Entry
	hasValue := func(attr, v string) bool {
		for _, x := range e.Get(attr) {
			if strings.EqualFold(x, v) {
				return true
			}
		}
		return false
	}
	if !hasValue("objectClass", "inetOrgPerson") {
		return "", b, false
	}
	filter := "userName eq " + strconv.Quote(e.First("uid"))
	b = append(b, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]`...)
	str := func(key, v string) {
		if v != "" {
			b = append(b, `,"`+key+`":`...)
			b = strconv.AppendQuote(b, v)
		}
	}
	str("userName", e.First("uid"))
	str("externalId", e.First("entryUUID"))
	b = append(b, `,"name":{"givenName":`...)
	b = strconv.AppendQuote(b, e.First("givenName"))
	b = append(b, `,"familyName":`...)
	b = strconv.AppendQuote(b, e.First("sn"))
	b = append(b, '}')
	dname := e.First("displayName")
	if dname == "" {
		dname = e.First("cn")
	}
	str("displayName", dname)
	str("title", e.First("title"))
	if m := e.First("mail"); m != "" {
		b = append(b, `,"emails":[{"type":"work","value":`...)
		b = strconv.AppendQuote(b, strings.ToLower(m))
		b = append(b, "}]"...)
	}
	if t := e.First("telephoneNumber"); t != "" {
		b = append(b, `,"phoneNumbers":[{"type":"work","value":`...)
		b = strconv.AppendQuote(b, t)
		b = append(b, "}]"...)
	}
	b = append(b, `,"active":`...)
	b = strconv.AppendBool(b, !hasValue("nsAccountLock", "true"))
	b = append(b, `,"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":`...)
	b = strconv.AppendQuote(b, e.First("employeeNumber"))
	b = append(b, "}}"...)
	return filter, b, true
}

// handMap is benchScript's class selection and mapping written in Go.
func handMap(ch *lang.Change, people, groups *ldap.DN) (string, []byte, error) {
	dn, err := ldap.ParseDN(ch.DN)
	if err != nil {
		return "", nil, err
	}
	if groups.AncestorOfFold(dn) {
		return "", nil, nil // the groups class; not reached here
	}
	if !people.AncestorOfFold(dn) {
		return "", nil, nil
	}
	e := ch.Entry
	hasValue := func(attr, v string) bool {
		for _, x := range e.Get(attr) {
			if strings.EqualFold(x, v) {
				return true
			}
		}
		return false
	}
	if !hasValue("objectClass", "inetOrgPerson") {
		return "", nil, nil
	}
	filter := "userName eq " + strconv.Quote(e.First("uid"))
	doc := []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]}`)
	set := func(path, v string) {
		if v != "" && err == nil {
			doc, err = sjson.SetBytes(doc, path, v)
		}
	}
	set("userName", e.First("uid"))
	set("externalId", e.First("entryUUID"))
	set("name.givenName", e.First("givenName"))
	set("name.familyName", e.First("sn"))
	dname := e.First("displayName")
	if dname == "" {
		dname = e.First("cn")
	}
	set("displayName", dname)
	set("title", e.First("title"))
	if m := e.First("mail"); m != "" {
		set("emails.0.type", "work")
		set("emails.0.value", strings.ToLower(m))
	}
	if t := e.First("telephoneNumber"); t != "" {
		set("phoneNumbers.0.type", "work")
		set("phoneNumbers.0.value", t)
	}
	if err == nil {
		doc, err = sjson.SetBytes(doc, "active", !hasValue("nsAccountLock", "true"))
	}
	set(`urn:ietf:params:scim:schemas:extension:enterprise:2\.0:User.employeeNumber`, e.First("employeeNumber"))
	return filter, doc, err
}

// TestHandMapMatchesPipe keeps the benchmark honest: both sides build the
// same resource.
func TestHandMapMatchesPipe(t *testing.T) {
	p, err := lang.Load("bench.pipe", benchScript, lang.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ch := benchChange()
	res, err := p.NewEvaluator().Eval(ch, lang.Realtime)
	if err != nil {
		t.Fatal(err)
	}
	got, err := res.Resource(lang.Create, nil)
	if err != nil {
		t.Fatal(err)
	}
	people, _ := ldap.ParseDN("ou=People,dc=example,dc=com")
	groups, _ := ldap.ParseDN("ou=Groups,dc=example,dc=com")
	filter, want, err := handMap(ch, people, groups)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) || res.Filter != filter {
		t.Errorf("pipe and hand-written Go (sjson) differ:\npipe %s %s\ngo   %s %s", res.Filter, got, filter, want)
	}
	filter, want, _ = handAppend(ch, people, groups, nil)
	if string(got) != string(want) || res.Filter != filter {
		t.Errorf("pipe and hand-written Go (append) differ:\npipe %s %s\ngo   %s %s", res.Filter, got, filter, want)
	}
}

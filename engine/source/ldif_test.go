package source

import (
	"reflect"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/engine/ldif"
	"github.com/scimsync/scimsync/lang"
)

func apply(t *testing.T, d *Directory, text string) []*lang.Change {
	t.Helper()
	r := ldif.NewReader(strings.NewReader(text))
	var out []*lang.Change
	for {
		rec, err := r.Next()
		if err != nil {
			if err.Error() == "EOF" {
				return out
			}
			t.Fatal(err)
		}
		ch, err := d.Apply(rec)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ch)
	}
}

func TestDirectoryApply(t *testing.T) {
	d := NewDirectory()
	chs := apply(t, d, `dn: uid=a,ou=People,dc=example,dc=com
uid: a
cn: A
mail: a@example.com

dn: UID=A,ou=people,DC=example,dc=com
uid: a
cn: A two

dn: uid=a,ou=People,dc=example,dc=com
changetype: modify
add: mail
mail: a2@example.com
-
delete: mail
mail: A@EXAMPLE.COM
-
replace: title
title: Boss
-

dn: uid=a,ou=People,dc=example,dc=com
changetype: modrdn
newrdn: uid=b
deleteoldrdn: 1
newsuperior: ou=Staff,dc=example,dc=com

dn: uid=b,ou=Staff,dc=example,dc=com
changetype: delete
`)
	type want struct {
		typ     lang.ChangeType
		dn, old string
		changed []string
		attrs   map[string][]string
	}
	wants := []want{
		{lang.Add, "uid=a,ou=People,dc=example,dc=com", "", nil, map[string][]string{"cn": {"A"}, "mail": {"a@example.com"}}},
		{lang.Modify, "UID=A,ou=people,DC=example,dc=com", "", []string{"cn", "mail"}, map[string][]string{"cn": {"A two"}, "mail": nil}},
		{lang.Modify, "UID=A,ou=people,DC=example,dc=com", "", []string{"mail", "title"}, map[string][]string{"mail": {"a2@example.com"}, "title": {"Boss"}}},
		{lang.ModRDN, "uid=b,ou=Staff,dc=example,dc=com", "uid=a,ou=People,dc=example,dc=com", []string{"uid"}, map[string][]string{"uid": {"b"}, "title": {"Boss"}}},
		{lang.Delete, "uid=b,ou=Staff,dc=example,dc=com", "", nil, map[string][]string{"uid": {"b"}}},
	}
	if len(chs) != len(wants) {
		t.Fatalf("%d changes, want %d", len(chs), len(wants))
	}
	for i, w := range wants {
		ch := chs[i]
		if ch.Type != w.typ || ch.DN != w.dn || ch.OldDN != w.old || !reflect.DeepEqual(ch.Changed, w.changed) {
			t.Errorf("change %d = %v %q old %q changed %v; want %v %q old %q changed %v", i, ch.Type, ch.DN, ch.OldDN, ch.Changed, w.typ, w.dn, w.old, w.changed)
		}
		for a, vs := range w.attrs {
			if got := ch.Entry.Get(a); !reflect.DeepEqual(got, vs) {
				t.Errorf("change %d: %s = %v, want %v", i, a, got, vs)
			}
		}
	}
	if d.Len() != 0 {
		t.Errorf("after the delete the directory holds %d entries", d.Len())
	}
	// An earlier change's entry is not changed by later records.
	if got := chs[0].Entry.Get("cn"); !reflect.DeepEqual(got, []string{"A"}) {
		t.Errorf("the first change's entry was modified later: cn = %v", got)
	}
}

func TestNormalizeDN(t *testing.T) {
	for _, tt := range []struct{ a, b string }{
		{"uid=a,ou=People,dc=example,dc=com", "UID=A, OU=people, DC=Example, DC=COM"},
		{`cn=a\,b,dc=x`, `CN=A\2CB,DC=X`},
	} {
		if NormalizeDN(tt.a) != NormalizeDN(tt.b) {
			t.Errorf("NormalizeDN(%q) = %q != NormalizeDN(%q) = %q", tt.a, NormalizeDN(tt.a), tt.b, NormalizeDN(tt.b))
		}
	}
}

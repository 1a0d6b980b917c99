package lang

import (
	"reflect"
	"testing"
)

func TestEntryCaseInsensitive(t *testing.T) {
	e := NewEntry("uid=a,dc=x", []Attr{
		{Name: "givenName", Values: []string{"Ann"}},
		{Name: "GIVENNAME", Values: []string{"Anna"}},
		{Name: "mail", Values: []string{"a@x", "b@x"}},
	})
	for _, name := range []string{"givenName", "givenname", "GIVENNAME", "GivenName"} {
		if got := e.Get(name); !reflect.DeepEqual(got, []string{"Ann", "Anna"}) {
			t.Errorf("Get(%q) = %v", name, got)
		}
	}
	if e.Attrs()[0].Name != "givenName" {
		t.Errorf("the first spelling is not kept: %q", e.Attrs()[0].Name)
	}
	e.Delete("MAIL", "A@X")
	if got := e.Get("mail"); !reflect.DeepEqual(got, []string{"b@x"}) {
		t.Errorf("after deleting a value, mail = %v", got)
	}
	if got := e.value("mail"); !reflect.DeepEqual(got, []string{"b@x"}) {
		t.Errorf("the boxed value is stale: %v", got)
	}
	e.Replace("mail")
	if e.Get("mail") != nil || !reflect.DeepEqual(e.value("mail"), noValues) {
		t.Errorf("Replace with no values does not remove: %v", e.Get("mail"))
	}
	if got := e.value("givenname"); !reflect.DeepEqual(got, []string{"Ann", "Anna"}) {
		t.Errorf("boxed values misaligned after a delete: %v", got)
	}
	c := e.Clone()
	c.Add("givenName", "X")
	if len(e.Get("givenName")) != 2 {
		t.Error("Clone shares values with the original")
	}
}

func TestParseChangeType(t *testing.T) {
	for in, want := range map[string]ChangeType{"add": Add, "Modify": Modify, "delete": Delete, "modrdn": ModRDN, "moddn": ModRDN} {
		if got, ok := ParseChangeType(in); !ok || got != want {
			t.Errorf("ParseChangeType(%q) = %v, %v", in, got, ok)
		}
	}
	if _, ok := ParseChangeType("rename"); ok {
		t.Error("rename accepted")
	}
}

package engine

import (
	"testing"

	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/lang"
)

// TestDestinationRemovedElement: removing the LDAP mail removes the work
// email element whole from the resource, in PUT mode as in PATCH mode —
// never leaving {"type":"work"} behind (issue 12, defect 6) — and the
// other managed values stay as mapped.
func TestDestinationRemovedElement(t *testing.T) {
	for _, update := range []string{"put", "patch"} {
		t.Run(update, func(t *testing.T) {
			f := newFixture(t, update, "delete")
			uid := scimtest.Unique("elem-" + update)
			id := f.apply(person(uid), "").ID
			if u := f.get("/Users/" + id); u.Get(`emails.#(type=="work").value`).Str != "given.family@example.com" {
				t.Fatalf("created resource: %s", u.Raw)
			}
			mod := person(uid, lang.Attr{Name: "mail"})
			mod.Type = lang.Modify
			if out := f.apply(mod, id); out.Outcome != Updated || out.Requests != 1 {
				t.Fatalf("modify = %+v, want updated with one request", out)
			}
			u := f.get("/Users/" + id)
			for _, el := range u.Get("emails").Array() {
				t.Errorf("emails keeps an element %s after the mail was removed:\n%s", el.Raw, u.Raw)
			}
			if u.Get("name.givenName").Str != "Given" || u.Get("userName").Str != uid {
				t.Errorf("other attributes changed: %s", u.Raw)
			}
			if out := f.apply(mod, id); out.Outcome != Unchanged || out.Requests != 0 {
				t.Errorf("re-applying the modify = %+v, want unchanged", out)
			}
		})
	}
}

package lang_test

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/lang"
)

// TestGoneElementManagedWhole: when the mapped values of a filtered path's
// element are all gone (or its value is), the resource has no such element
// and the result manages the element whole, so that a PUT body built from
// the current resource drops it instead of keeping {"type": "work"}, as
// PATCH already did (issue 12, defect 6).
func TestGoneElementManagedWhole(t *testing.T) {
	const maps = `    emails[type eq "work"].value   = lower(first(mail))
    emails[type eq "work"].primary = true
    phoneNumbers[type eq "work"].display = first(telephoneNumber)
    addresses[type eq "work"] = first(l) == nil ? nil : {"type": "work", "locality": first(l)}
    ims[type eq "xmpp"] = {"type": "xmpp"}`
	const current = `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"1","userName":"a",
		"emails":[{"type":"work","value":"old@example.com","primary":true},{"type":"home","value":"h@example.com"}],
		"phoneNumbers":[{"type":"work","display":"+1 555","value":"tel:+1555"}],
		"addresses":[{"type":"work","locality":"Lyon"}],
		"ims":[{"type":"xmpp","value":"a@jabber.example"}]}`
	tests := []struct {
		name    string
		attrs   []lang.Attr
		managed string // Managed(Update), joined by "; "
		put     string // the PUT body's emails, phoneNumbers, addresses and ims
		patch   string // the PATCH operations
	}{
		{
			name:    "all gone",
			managed: `userName; emails[type eq "work"]; phoneNumbers[type eq "work"]; addresses[type eq "work"]; ims[type eq "xmpp"]`,
			put:     `[{"type":"home","value":"h@example.com"}] [] [] []`,
			patch:   `remove emails[type eq "work"] ; remove phoneNumbers[type eq "work"] ; remove addresses[type eq "work"] ; remove ims[type eq "xmpp"] `,
		},
		{
			name:    "all there",
			attrs:   []lang.Attr{{Name: "mail", Values: []string{"New@Example.com"}}, {Name: "telephoneNumber", Values: []string{"+1 556"}}, {Name: "l", Values: []string{"Paris"}}},
			managed: `userName; emails[type eq "work"].value; emails[type eq "work"].primary; phoneNumbers[type eq "work"].display; addresses[type eq "work"]; ims[type eq "xmpp"]`,
			put:     `[{"type":"work","value":"new@example.com","primary":true},{"type":"home","value":"h@example.com"}] [{"type":"work","display":"+1 556","value":"tel:+1555"}] [{"type":"work","locality":"Paris"}] []`,
			patch:   `replace emails[type eq "work"].value "new@example.com"; replace phoneNumbers[type eq "work"].display "+1 556"; replace addresses[type eq "work"].locality "Paris"; remove ims[type eq "xmpp"] `,
		},
	}
	p, err := loadMap(t, maps)
	if err != nil {
		t.Fatal(err)
	}
	ev := p.NewEvaluator()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := lang.NewEntry("uid=a,dc=example,dc=com", append([]lang.Attr{{Name: "uid", Values: []string{"a"}}}, tt.attrs...))
			res, err := ev.Eval(&lang.Change{Type: lang.Modify, DN: e.DN, Entry: e}, lang.Realtime)
			if err != nil {
				t.Fatal(err)
			}
			// Managed before and after Resource give the same answer.
			early := paths(res.Managed(lang.Update))
			desired, err := res.Resource(lang.Update, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := paths(res.Managed(lang.Update)); got != tt.managed || early != got {
				t.Errorf("Managed = %s (before Resource: %s), want %s", got, early, tt.managed)
			}
			// No element of the resource is only its filter's attributes.
			for _, a := range []string{"emails", "phoneNumbers", "addresses", "ims"} {
				for _, el := range gjson.GetBytes(desired, a).Array() {
					if n := len(el.Map()); n <= 1 {
						t.Errorf("resource %s has an empty element %s", desired, el.Raw)
					}
				}
			}
			body, err := scim.PutBody([]byte(current), desired, res.Managed(lang.Update))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range []string{"emails", "phoneNumbers", "addresses", "ims"} {
				v := gjson.GetBytes(body, a)
				if !v.Exists() {
					got = append(got, "[]")
					continue
				}
				got = append(got, v.Raw)
			}
			if g := strings.Join(got, " "); g != tt.put {
				t.Errorf("PUT body parts\n got %s\nwant %s\n(body %s)", g, tt.put, body)
			}
			// PATCH makes the same change.
			ops, err := scim.Diff([]byte(current), desired, res.Managed(lang.Update), scim.DiffOptions{Core: scim.Builtin(scim.URNUser)})
			if err != nil {
				t.Fatal(err)
			}
			var got2 []string
			for _, op := range ops {
				got2 = append(got2, op.Op+" "+op.Path+" "+string(op.Value))
			}
			if g := strings.Join(got2, "; "); g != tt.patch {
				t.Errorf("PATCH operations\n got %s\nwant %s", g, tt.patch)
			}
		})
	}
}

func paths(ps []scim.Path) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, "; ")
}

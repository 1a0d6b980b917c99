package engine

import (
	"testing"

	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/lang"
)

// TestKeepSetCompact: what a listing keeps of a resource, per pipe and
// endpoint. The shipped openldap pipe manages nearly every attribute of
// its Users, so only meta, schemas and what it does not manage go; a
// pipe that does not manage a group's members drops them; the attributes
// a lookup filter is compared by locally (the core schema's single-valued
// strings, id, externalId) and what verify shows and reads (userName,
// displayName, externalId, active) stay whatever the pipe manages; keys
// keep their spelling, order and duplicates (so that Diff refuses the
// duplicates of a managed attribute as it would); what is not a JSON
// object, and every resource of a pipe that updates by PUT (the body is
// built from the whole resource), is kept whole.
func TestKeepSetCompact(t *testing.T) {
	ldapPipe := openldapPipe(t, "https://scim.example.com/v2")
	putPipe := openldapPipe(t, "https://scim.example.com/v2")
	putPipe.Update = "put"
	small := listingPipe(t) // Users: userName, displayName; Groups: displayName
	const enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	tests := []struct {
		name string
		p    *lang.Pipe
		ep   string
		in   string
		want string
	}{
		{"openldap user", ldapPipe, "Users",
			benchUser(7),
			`{"id":"00000007-b12f-479e-bc86-9a81a26c618c","externalId":"00000007-2c1f-103f-8f2a-5b1f2f7a8e11","userName":"bench-u000007",` +
				`"name":{"familyName":"User7","givenName":"Bench"},"displayName":"Bench User 7","title":"Engineer 7","active":true,` +
				`"emails":[{"value":"bench-u000007@example.com","type":"work"}],"phoneNumbers":[{"value":"+1 555 0000007","type":"work"}],` +
				`"` + enterprise + `":{"employeeNumber":"7"}}`},
		{"unmanaged multi-valued and unknown attributes go, core strings stay", ldapPipe, "Users",
			`{"id":"1","userName":"a","nickName":"n","photos":[{"value":"p"}],"groups":[{"value":"g"}],"shoeSize":"9","x509Certificates":[{"value":"c"}],"profileUrl":"https://x"}`,
			`{"id":"1","userName":"a","nickName":"n"}`},
		{"group, members managed", ldapPipe, "Groups",
			`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"id":"g","displayName":"staff","meta":{"resourceType":"Group"},"members":[{"value":"1","display":"A"}]}`,
			`{"id":"g","displayName":"staff","members":[{"value":"1","display":"A"}]}`},
		{"group, members not managed", small, "Groups",
			`{"id":"g","displayName":"staff","externalId":"x","members":[{"value":"1"}]}`,
			`{"id":"g","displayName":"staff","externalId":"x"}`},
		{"verify's attributes, not managed", small, "Users",
			`{"id":"1","userName":"a","externalId":"e","active":false,"title":"t","emails":[{"value":"a@x"}],"` + enterprise + `":{"employeeNumber":"1"}}`,
			`{"id":"1","userName":"a","externalId":"e","active":false,"title":"t"}`},
		{"spelling, order and duplicates", ldapPipe, "Users",
			`{ "USERNAME" : "a", "meta":{}, "Title":"x", "title":"y", "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER":{"employeeNumber":"1"}, "id" : "1" }`,
			`{"USERNAME":"a","Title":"x","title":"y","URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER":{"employeeNumber":"1"},"id":"1"}`},
		{"escaped key", ldapPipe, "Users", `{"id":"1","user\u004eame":"a","met\u0061":{}}`, `{"id":"1","user\u004eame":"a"}`},
		{"nothing kept", ldapPipe, "Users", `{"meta":{"version":"1"}}`, `{}`},
		{"not an object", ldapPipe, "Users", `["id"]`, `["id"]`},
		{"not JSON", ldapPipe, "Users", `{"id":"1","meta":`, `{"id":"1","meta":`},
		{"PUT: whole", putPipe, "Users", benchUser(7), benchUser(7)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := keepFor(tt.p, tt.p.Endpoint(tt.ep))
			if tt.p.Update == "put" && k != nil {
				t.Fatal("a pipe that updates by PUT has its listings compacted")
			}
			if got := string(k.compact(tt.in)); got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestCompactListingAnswers: lookups answered by a compact listing give
// what a whole one gives (the resource found, by the attributes it keeps),
// and a group whose members the pipe does not manage is answered from the
// listing though listed without them, where a whole listing asks the
// service (it would need the members).
func TestCompactListingAnswers(t *testing.T) {
	p := listingPipe(t)
	users := []string{
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"1","userName":"alice","displayName":"Alice","nickName":"Al","meta":{"version":"1"},"emails":[{"value":"a@x"}]}`,
		`{"id":"2","userName":"bob","displayName":"Twin","name":{"familyName":"Smith"}}`,
		`{"id":"3","userName":"carol","displayName":"Twin"}`,
	}
	groups := []string{`{"id":"g1","displayName":"staff"}`, `{"id":"g2","displayName":"all","members":[{"value":"1"}]}`}
	compact := func(ep string, rs []string) *Listing {
		// As List builds it.
		l := newListing(p.Endpoint(ep))
		keep := keepFor(p, p.Endpoint(ep))
		l.members = l.members && keep.has("members")
		for _, r := range rs {
			l.res[gjson.Get(r, "id").String()] = &listedRes{raw: keep.compact(r)}
		}
		l.snapped, l.total = len(l.res), len(l.res)
		l.listed.Store(true)
		return l
	}
	whole := func(ep string, rs []string) *Listing {
		var bs [][]byte
		for _, r := range rs {
			bs = append(bs, []byte(r))
		}
		return NewListing(p.Endpoint(ep), bs...)
	}
	tests := []struct {
		ep, filter, known string
		want              string // id found, "none", "ask", "multiple"
		wantWhole         string // when a whole listing answers otherwise
	}{
		{ep: "Users", filter: `userName eq "ALICE"`, want: "1"},
		{ep: "Users", known: "2", want: "2"},
		{ep: "Users", filter: `nickName eq "al"`, want: "1"},
		{ep: "Users", filter: `name.familyName eq "smith"`, want: "2"},
		{ep: "Users", filter: `displayName eq "twin"`, want: "multiple"},
		{ep: "Users", filter: `userName eq "dave"`, want: "none"},
		{ep: "Users", filter: `emails.value eq "a@x"`, want: "ask"},
		{ep: "Groups", filter: `displayName eq "staff"`, want: "g1", wantWhole: "ask"},
		{ep: "Groups", known: "g2", want: "g2"},
	}
	answer := func(l *Listing, filter, known string) string {
		r := l.lookup(filter, known)
		switch {
		case !r.done:
			return "ask"
		case r.err != nil && IsMultipleMatch(r.err):
			return "multiple"
		case r.err != nil:
			return r.err.Error()
		case r.current == nil:
			return "none"
		}
		return r.id
	}
	for _, tt := range tests {
		t.Run(tt.ep+" "+tt.filter+tt.known, func(t *testing.T) {
			rs := users
			if tt.ep == "Groups" {
				rs = groups
			}
			// A fresh listing each: a question asked twice goes to the service.
			got, gotWhole := answer(compact(tt.ep, rs), tt.filter, tt.known), answer(whole(tt.ep, rs), tt.filter, tt.known)
			wantWhole := tt.wantWhole
			if wantWhole == "" {
				wantWhole = tt.want
			}
			if got != tt.want || gotWhole != wantWhole {
				t.Fatalf("compact %s, whole %s; want %s and %s", got, gotWhole, tt.want, wantWhole)
			}
		})
	}
}

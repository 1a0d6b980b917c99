package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/lang"
)

func TestOpAttributes(t *testing.T) {
	tests := []struct {
		ops  string
		want string
	}{
		{`[{"op":"replace","path":"displayName","value":"x"}]`, "displayName"},
		{`[{"op":"replace","path":"name.givenName","value":"x"},{"op":"replace","path":"name.familyName","value":"y"}]`, "name"},
		{`[{"op":"remove","path":"members[value eq \"1\"]"},{"op":"add","path":"members","value":[{"value":"2"}]}]`, "members"},
		{`[{"op":"replace","path":"emails[type eq \"work\"].value","value":"a@b"}]`, "emails"},
		{`[{"op":"replace","value":{"title":"t","active":true}}]`, "active,title"},
		{`[{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value","value":"1"}]`,
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			var ops []scim.PatchOp
			if err := json.Unmarshal([]byte(tt.ops), &ops); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(OpAttributes(ops), ","); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestVerifyMatch checks the local evaluation of lookup filters over a
// listing: equalities joined by and, case folded as the schema says;
// anything else is left to the service.
func TestVerifyMatch(t *testing.T) {
	l := NewListing(testEndpoint(t),
		[]byte(`{"id":"1","userName":"Alice","externalId":"A1","name":{"familyName":"Smith"}}`),
		[]byte(`{"id":"2","userName":"bob","externalId":"a1"}`),
		[]byte(`{"id":"3","userName":"carol","name":{"familyName":"Smith"}}`),
	)
	tests := []struct {
		filter string
		ids    string
		ok     bool
	}{
		{`userName eq "alice"`, "1", true}, // userName is caseExact false
		{`externalId eq "A1"`, "1", true},  // externalId is caseExact
		{`externalId eq "a1"`, "2", true},
		{`name.familyName eq "smith"`, "1,3", true},
		{`name.familyName eq "smith" and userName eq "carol"`, "3", true},
		{`userName eq "dave"`, "", true},
		{`userName sw "a"`, "", false},
		{`userName eq "a" or userName eq "b"`, "", false},
		{`emails[value eq "x"]`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			ids, ok := l.Match(tt.filter)
			if ok != tt.ok || strings.Join(ids, ",") != tt.ids {
				t.Fatalf("got %v %v, want %q %v", ids, ok, tt.ids, tt.ok)
			}
		})
	}
}

func TestMemberDiff(t *testing.T) {
	missing, extra := memberDiff([]byte(`{"members":[{"value":"a"},{"value":"b"}]}`), []byte(`{"members":[{"value":"b"},{"value":"c"}]}`))
	if strings.Join(missing, ",") != "c" || strings.Join(extra, ",") != "a" {
		t.Fatalf("missing %v extra %v", missing, extra)
	}
}

func testEndpoint(t *testing.T) *lang.Endpoint {
	t.Helper()
	script := `pipe "v"
source ldif { file = "x.ldif" }
scim {
  url   = "https://scim.example.com/v2"
  token = "t"
}
endpoint Users {
  path    = "/Users"
  schemas = ["urn:ietf:params:scim:schemas:core:2.0:User"]
  lookup  = "userName eq " + scimQuote(first(uid))
}
class people {
  endpoint = Users
  map { userName = first(uid) }
}
`
	p, err := lang.Load("v.pipe", script, lang.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p.Endpoint("Users")
}

// TestVerifyListPaging: a listing is used only when the service pages it;
// one that answers the first page again for every startIndex (as the
// SCIMMY test server does) is left to lookups rather than taken as
// holding only its first page.
func TestVerifyListPaging(t *testing.T) {
	users := make([]string, 45)
	for i := range users {
		users[i] = fmt.Sprintf(`{"id":"%02d","userName":"u%02d"}`, i, i)
	}
	for _, tt := range []struct {
		name   string
		pages  bool // honour startIndex
		listed bool
	}{{"pages", true, true}, {"ignores startIndex", false, false}} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/scim+json")
				if strings.HasSuffix(r.URL.Path, "/ServiceProviderConfig") {
					fmt.Fprint(w, `{"filter":{"supported":true,"maxResults":20}}`)
					return
				}
				start, _ := strconv.Atoi(r.URL.Query().Get("startIndex"))
				if !tt.pages || start < 1 {
					start = 1
				}
				end := min(start-1+20, len(users))
				fmt.Fprintf(w, `{"totalResults":%d,"startIndex":%d,"itemsPerPage":20,"Resources":[%s]}`,
					len(users), start, strings.Join(users[start-1:end], ","))
			}))
			defer srv.Close()
			c, err := scim.NewClient(scim.Config{URL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			ep := testEndpoint(t)
			v := &verifier{d: &Destination{Client: c}, opts: VerifyOptions{Log: slog.New(slog.DiscardHandler)}}
			ve := &verifyEndpoint{ep: ep, report: &EndpointReport{}}
			if err := v.list(context.Background(), ve); err != nil {
				t.Fatal(err)
			}
			if ve.list.Listed() != tt.listed || tt.listed && ve.list.Len() != len(users) {
				t.Fatalf("listed %v with %d resources", ve.list.Listed(), ve.list.Len())
			}
		})
	}
}

package scim

// Tests of the SCIM test server (testdata/servers/scim-server.js) itself: what it checks and
// captures on a single POST, PUT or PATCH it must check and capture on the same request sent as
// an operation of a POST /Bulk, or every engine test whose writes now go in Bulk requests (resync
// uses Bulk where the service advertises it) would stop checking what it claims to.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/scim/scimtest"
)

// TestServerBulkOperationsCheckedAsSingle: each check the test server
// applies to a write on /Users or /Groups refuses the same write inside a
// POST /Bulk with the status, scimType and detail the single request gets;
// that operation alone fails (a good create in the same request is
// carried out), and the request log's Bulk entry shows each operation's
// outcome.
func TestServerBulkOperationsCheckedAsSingle(t *testing.T) {
	env := scimtest.Server(t)
	env.RequireBulkChecks(t)
	ctx := context.Background()
	noTarget := "noTarget"
	tests := []struct {
		name   string
		method string
		path   string // "{id}": a user made for the case
		data   string // "{name}": a name of each request's own; "{taken}": the user's userName, upper-cased; "{case}": a name of the case's own
		setup  func(t *testing.T, ua string)
		status int
		typ    string
	}{
		{name: "unknown attribute in a User POST", method: "POST", path: "/Users",
			data: `{"schemas":["` + URNUser + `"],"userName":"{name}","shoeSize":"9"}`, status: 400, typ: "invalidSyntax"},
		{name: "unknown sub-attribute in a User POST", method: "POST", path: "/Users",
			data: `{"schemas":["` + URNUser + `"],"userName":"{name}","name":{"givenName":"A","nickName":"B"}}`, status: 400, typ: "invalidSyntax"},
		{name: "unknown attribute in a User PUT", method: "PUT", path: "/Users/{id}",
			data: `{"schemas":["` + URNUser + `"],"userName":"{name}","shoeSize":"9"}`, status: 400, typ: "invalidSyntax"},
		{name: "unknown attribute in a Group POST", method: "POST", path: "/Groups",
			data: `{"schemas":["` + URNGroup + `"],"displayName":"{name}","colour":"red"}`, status: 400, typ: "invalidSyntax"},
		{name: "member that is no known id", method: "POST", path: "/Groups",
			data: `{"schemas":["` + URNGroup + `"],"displayName":"{name}","members":[{"value":"no-such-id-{case}"}]}`, status: 400, typ: "invalidValue"},
		{name: "userName taken", method: "POST", path: "/Users",
			data: `{"schemas":["` + URNUser + `"],"userName":"{taken}"}`, status: 409, typ: "uniqueness"},
		{name: "password refused in a POST", method: "POST", path: "/Users",
			data:   `{"schemas":["` + URNUser + `"],"userName":"{name}","password":"Refused-1!"}`,
			setup:  func(t *testing.T, ua string) { env.RefusePasswords(t, ua, 400, "mutability") },
			status: 400, typ: "mutability"},
		{name: "password refused in a PATCH", method: "PATCH", path: "/Users/{id}",
			data:   `{"schemas":["` + URNPatchOp + `"],"Operations":[{"op":"replace","path":"password","value":"Refused-2!"}]}`,
			setup:  func(t *testing.T, ua string) { env.RefusePasswords(t, ua, 403, "") },
			status: 403, typ: ""},
		{name: "filtered PATCH path in strict mode", method: "PATCH", path: "/Users/{id}",
			data: `{"schemas":["` + URNPatchOp + `"],"Operations":[{"op":"remove","path":"emails[type eq \"work\"]"}]}`,
			setup: func(t *testing.T, ua string) {
				env.Strict(t, scimtest.Strict{UserAgent: ua, RejectFilteredPaths: true, ScimType: &noTarget})
			},
			status: 400, typ: "noTarget"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ua := serverClient(t, env, Retry{}, nil)
			taken := scimtest.Unique("bchk-taken")
			id := createUser(t, c, taken)
			if tt.setup != nil {
				tt.setup(t, ua)
			}
			// Each form gets a name of its own, so that neither meets
			// the other's resource if the check under test let it through.
			op := func(form string) BulkOperation {
				data := strings.NewReplacer("{name}", scimtest.Unique("bchk-"+form), "{taken}", strings.ToUpper(taken), "{case}", taken).Replace(tt.data)
				o := BulkOperation{Method: tt.method, Path: strings.ReplaceAll(tt.path, "{id}", id), Data: []byte(data)}
				if tt.method == "POST" {
					o.BulkID = "case"
				}
				return o
			}
			single := op("single")
			_, err := c.Do(ctx, single.Method, single.Path, single.Data)
			var want *Error
			if !errors.As(err, &want) || want.Status != tt.status || want.ScimType != tt.typ {
				t.Fatalf("the single %s %s: %v, want %d %q", tt.method, tt.path, err, tt.status, tt.typ)
			}

			good := scimtest.Unique("bchk-good")
			res, err := c.Bulk(ctx, []BulkOperation{
				{Method: "POST", Path: "/Users", BulkID: "good", Data: []byte(`{"schemas":["` + URNUser + `"],"userName":"` + good + `"}`)},
				op("bulk"),
			})
			if err != nil {
				t.Fatal(err)
			}
			if res[0].Status != http.StatusCreated || res[0].ID == "" {
				t.Errorf("the good create of the same request: %d %v", res[0].Status, res[0].Err)
			} else {
				t.Cleanup(func() { _ = c.Delete(ctx, "/Users", res[0].ID) })
			}
			var got *Error
			if !errors.As(res[1].Err, &got) {
				t.Fatalf("the operation in POST /Bulk: %d %v, want %d %q", res[1].Status, res[1].Err, tt.status, tt.typ)
			}
			if got.Status != want.Status || got.ScimType != want.ScimType || got.Detail != want.Detail {
				t.Errorf("in POST /Bulk: %d %q %q\nalone:        %d %q %q", got.Status, got.ScimType, got.Detail, want.Status, want.ScimType, want.Detail)
			}

			var logged []scimtest.BulkOutcome
			for _, q := range env.Requests(t, ua) {
				if q.Method == "POST" && q.Path == "/Bulk" {
					logged = q.Operations
				}
			}
			for i := range logged {
				logged[i].Location = ""
			}
			sent := op("log")
			wantLog := []scimtest.BulkOutcome{{Method: "POST", Path: "/Users", BulkID: "good", Status: http.StatusCreated},
				{Method: sent.Method, Path: sent.Path, BulkID: sent.BulkID, Status: tt.status, ScimType: tt.typ}}
			if fmt.Sprint(logged) != fmt.Sprint(wantLog) {
				t.Errorf("the log's operations %+v, want %+v", logged, wantLog)
			}
		})
	}
}

// TestServerBulkPasswordsCapturedAsSingle: a password sent in an
// operation of a POST /Bulk (a create, a PUT, a PATCH) is captured by
// /_control/passwords exactly as the same request sent alone, with the
// operation's method; one whose operation fails is not; and the request
// log holds no password, the Bulk request's included, where it shows
// "(withheld)".
func TestServerBulkPasswordsCapturedAsSingle(t *testing.T) {
	env := scimtest.Server(t)
	env.RequireBulkChecks(t)
	ctx := context.Background()
	c, ua := serverClient(t, env, Retry{}, nil)
	alone, inBulk := scimtest.Unique("bpw-alone"), scimtest.Unique("bpw-bulk")
	pw := func(n int) string { return fmt.Sprintf("Bulk-Pw-%s-%d \"q\"/+", inBulk, n) }
	user := func(name, password string) []byte {
		return []byte(fmt.Sprintf(`{"schemas":[%q],"userName":%q,"password":%q}`, URNUser, name, password))
	}
	patch := func(password string) []byte {
		return []byte(fmt.Sprintf(`{"schemas":[%q],"Operations":[{"op":"replace","path":"password","value":%q}]}`, URNPatchOp, password))
	}

	// The single requests, whose capture the Bulk operations must match.
	body, err := c.Create(ctx, "/Users", user(alone, pw(1)))
	if err != nil {
		t.Fatal(err)
	}
	aloneID := gjson.GetBytes(body, "id").String()
	t.Cleanup(func() { _ = c.Delete(ctx, "/Users", aloneID) })

	steps := []struct {
		name string
		ops  []BulkOperation
		want map[string][2]string // userName -> password, method, after the step
	}{
		{"create", []BulkOperation{{Method: "POST", Path: "/Users", BulkID: "u", Data: user(inBulk, pw(2))}},
			map[string][2]string{alone: {pw(1), "POST"}, inBulk: {pw(2), "POST"}}},
		{"PUT and PATCH", []BulkOperation{
			{Method: "PUT", Path: "/Users/" + aloneID, Data: user(alone, pw(3))},
			{Method: "PATCH", Path: "/Users/{inBulk}", Data: patch(pw(4))},
		}, map[string][2]string{alone: {pw(3), "PUT"}, inBulk: {pw(4), "PATCH"}}},
		{"failed operations capture nothing", []BulkOperation{
			{Method: "POST", Path: "/Users", BulkID: "dup", Data: user(strings.ToUpper(alone), pw(5))},
			{Method: "PUT", Path: "/Users/{inBulk}", Data: []byte(fmt.Sprintf(`{"schemas":[%q],"userName":%q,"password":%q,"shoeSize":"9"}`, URNUser, inBulk, pw(6)))},
			{Method: "PATCH", Path: "/Users/no-such-id", Data: patch(pw(7))},
		}, map[string][2]string{alone: {pw(3), "PUT"}, inBulk: {pw(4), "PATCH"}}},
	}
	var inBulkID string
	for _, s := range steps {
		for i := range s.ops {
			s.ops[i].Path = strings.ReplaceAll(s.ops[i].Path, "{inBulk}", inBulkID)
		}
		res, err := c.Bulk(ctx, s.ops)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if s.name == "create" {
			if inBulkID = res[0].ID; inBulkID == "" {
				t.Fatalf("create: %d %v", res[0].Status, res[0].Err)
			}
			t.Cleanup(func() { _ = c.Delete(ctx, "/Users", inBulkID) })
		}
		for i, r := range res {
			if wantFail := strings.HasPrefix(s.name, "failed"); (r.Err != nil) != wantFail {
				t.Errorf("%s: operation %d: %d %v", s.name, i+1, r.Status, r.Err)
			}
		}
		got := env.Passwords(t, ua)
		for name, w := range s.want {
			if p := got[name]; p.Password != w[0] || p.Method != w[1] {
				t.Errorf("%s: %s's last password came by %s (right value: %v), want by %s", s.name, name, p.Method, p.Password == w[0], w[1])
			}
		}
	}

	logged, err := json.Marshal(env.Requests(t, ua))
	if err != nil {
		t.Fatal(err)
	}
	all := string(logged)
	for n := 1; n <= 7; n++ {
		for _, form := range []string{pw(n), strings.ReplaceAll(pw(n), `"`, `\"`)} {
			if strings.Contains(all, form) {
				t.Errorf("the request log holds password %d", n)
			}
		}
	}
	withheld := 0
	for _, q := range env.Requests(t, ua) {
		if q.Path == "/Bulk" {
			withheld += strings.Count(string(q.Body), `"(withheld)"`)
		}
	}
	if withheld != 6 {
		t.Errorf("the logged BulkRequests show %d passwords as (withheld), want 6", withheld)
	}
}

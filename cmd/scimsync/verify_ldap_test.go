package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/engine"
	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/engine/source/ldaptest"
)

// privateSCIM starts a SCIM test server of the test's own (the shared one
// holds every other test's resources, which verify would count as
// unmanaged) and returns its URL and token.
func privateSCIM(t *testing.T) (url, token string) {
	t.Helper()
	e := scimtest.Private(t)
	return e.URL, e.Token
}

const verifyScript = `pipe "verify-ldap"
source syncrepl {
  url      = env("V_LDAP_URL")
  base     = env("V_LDAP_BASE")
  bindDN   = env("V_LDAP_BIND_DN")
  password = env("V_LDAP_BIND_PW")
}
scim {
  url   = env("SCIM_URL")
  token = env("SCIM_TOKEN")
}
endpoint Users {
  path    = "/Users"
  schemas = ["urn:ietf:params:scim:schemas:core:2.0:User"]
  lookup  = "userName eq " + scimQuote(first(uid))
}
endpoint Groups {
  path    = "/Groups"
  schemas = ["urn:ietf:params:scim:schemas:core:2.0:Group"]
  lookup  = "displayName eq " + scimQuote(first(cn))
}
class people {
  base     = env("V_PEOPLE")
  when     = hasValue(objectClass, "inetOrgPerson")
  endpoint = Users
  map {
    userName    = first(uid)
    displayName = first(cn)
  }
}
class groups {
  base     = "ou=Groups," + env("V_LDAP_BASE")
  endpoint = Groups
  when     = hasValue(objectClass, "groupOfNames")
  map {
    displayName = first(cn)
    members     = ref(member, Users)
  }
}
`

// TestVerifyLDAP is issue 14's verify test against slapd and a SCIM
// server: a synced pipe verifies clean (exit 0); after edits made directly
// in SCIM (an attribute changed, a member removed, a resource deleted, a
// foreign resource added) and in the directory with no engine running (a
// name changed, an entry added, one deleted), verify reports exactly those
// items in the human and the JSON report and exits 1; the foreign resource
// is unmanaged and never counts; an attribute the pipe does not map
// (title) changed in SCIM is never reported. --repair fixes the rest and
// verify is clean again. Then the mass-delete guard: the people class's
// base pointed at an empty subtree makes every user an orphan, and
// --repair stops before deleting any.
func TestVerifyLDAP(t *testing.T) {
	scimURL, scimToken := privateSCIM(t)
	srv := ldaptest.OpenLDAP(t)
	c := srv.Dial(t)
	prefix := scimtest.Unique("vf")
	base := "ou=" + prefix + "," + srv.Base
	var made []string
	add := func(dn string, attrs map[string][]string) {
		t.Helper()
		req := ldap.NewAddRequest(dn, nil)
		for _, k := range []string{"objectClass", "ou", "uid", "cn", "sn", "member"} {
			if v, ok := attrs[k]; ok {
				req.Attribute(k, v)
			}
		}
		if err := c.Add(req); err != nil {
			t.Fatalf("add %s: %v", dn, err)
		}
		made = append(made, dn)
	}
	t.Cleanup(func() {
		for i := len(made) - 1; i >= 0; i-- {
			_ = c.Del(ldap.NewDelRequest(made[i], nil))
		}
	})
	ou := func(dn, name string) {
		add(dn, map[string][]string{"objectClass": {"top", "organizationalUnit"}, "ou": {name}})
	}
	ou(base, prefix)
	ou("ou=People,"+base, "People")
	ou("ou=Groups,"+base, "Groups")
	ou("ou=Empty,"+base, "Empty")
	user := func(i int) string {
		uid := fmt.Sprintf("%s-u%d", prefix, i)
		dn := "uid=" + uid + ",ou=People," + base
		add(dn, map[string][]string{"objectClass": {"top", "person", "organizationalPerson", "inetOrgPerson"},
			"uid": {uid}, "cn": {"User " + uid}, "sn": {"S"}})
		return dn
	}
	var dns []string
	for i := 0; i < 5; i++ {
		dns = append(dns, user(i))
	}
	groupDN := "cn=" + prefix + "-g,ou=Groups," + base
	add(groupDN, map[string][]string{"objectClass": {"top", "groupOfNames"}, "cn": {prefix + "-g"}, "member": dns[:2]})

	pipe := filepath.Join(t.TempDir(), "verify.pipe")
	if err := os.WriteFile(pipe, []byte(verifyScript), 0o600); err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	t.Setenv("V_LDAP_URL", srv.URL)
	t.Setenv("V_LDAP_BASE", base)
	t.Setenv("V_PEOPLE", "ou=People,"+base)
	t.Setenv("V_LDAP_BIND_DN", srv.BindDN)
	t.Setenv("V_LDAP_BIND_PW", srv.BindPW)
	t.Setenv("SCIM_URL", scimURL)
	t.Setenv("SCIM_TOKEN", scimToken)
	client, err := scim.NewClient(scim.Config{URL: scimURL, Auth: scim.AuthBearer, Token: secret.New(scimToken)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	idOf := func(endpoint, filter string) string {
		t.Helper()
		found, _, err := client.Search(ctx, endpoint, filter, false)
		if err != nil || len(found) != 1 {
			t.Fatalf("%s %s: %v, %d found", endpoint, filter, err, len(found))
		}
		var r struct{ ID string }
		_ = json.Unmarshal(found[0], &r)
		return r.ID
	}
	verify := func(args ...string) (int, string, string) {
		t.Helper()
		return runCLI(t, append(append([]string{"verify", "--state-dir", stateDir}, args...), pipe)...)
	}
	report := func(args ...string) (int, engine.VerifyReport) {
		t.Helper()
		code, out, stderr := verify(append([]string{"--json"}, args...)...)
		var rep engine.VerifyReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("verify --json: exit %d: %v\n%s\n%s", code, err, out, stderr)
		}
		return code, rep
	}

	if code, _, stderr := runCLI(t, "resync", "--state-dir", stateDir, "--progress-interval", "0", pipe); code != exitOK {
		t.Fatalf("resync: exit %d\n%s", code, stderr)
	}

	// In sync: nothing to report.
	code, out, stderr := verify()
	if code != exitOK || !strings.Contains(out, "Users") || strings.Contains(out, "missing (") {
		t.Fatalf("verify of a synced pipe: exit %d\n%s\n%s", code, out, stderr)
	}
	if code, rep := report(); code != exitOK || len(rep.Items) != 0 || rep.Entries != 8 { // 5 users, the group, their two ous
		t.Fatalf("verify --json of a synced pipe: exit %d, %d entries, items %+v", code, rep.Entries, rep.Items)
	}

	// Edits in SCIM.
	u := map[int]string{}
	for i := range 5 {
		u[i] = idOf("/Users", fmt.Sprintf(`userName eq "%s-u%d"`, prefix, i))
	}
	gid := idOf("/Groups", fmt.Sprintf(`displayName eq "%s-g"`, prefix))
	patch := func(endpoint, id, body string) {
		t.Helper()
		if _, err := client.Patch(ctx, endpoint, id, []byte(body)); err != nil {
			t.Fatalf("patch %s/%s: %v", endpoint, id, err)
		}
	}
	patch("/Users", u[0], `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"Edited in SCIM"}]}`)
	// title is not mapped: never drift.
	patch("/Users", u[3], `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"title","value":"Boss"}]}`)
	patch("/Groups", gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"`+u[1]+`\"]"}]}`)
	if err := client.Delete(ctx, "/Users", u[2]); err != nil {
		t.Fatal(err)
	}
	foreign, err := client.Create(ctx, "/Users", []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+prefix+`-foreign"}`))
	if err != nil {
		t.Fatal(err)
	}
	var fr struct{ ID string }
	_ = json.Unmarshal(foreign, &fr)

	// Edits in the directory, with no engine running.
	mod := ldap.NewModifyRequest(dns[1], nil)
	mod.Replace("cn", []string{"Renamed In LDAP"})
	if err := c.Modify(mod); err != nil {
		t.Fatal(err)
	}
	dn5 := user(5)
	if err := c.Del(ldap.NewDelRequest(dns[4], nil)); err != nil {
		t.Fatal(err)
	}

	type item struct{ kind, endpoint, dn, id, attrs string }
	want := []item{
		{"missing", "Users", dns[2], "", ""},
		{"missing", "Users", dn5, "", ""},
		{"differing", "Users", dns[0], u[0], "displayName"},
		{"differing", "Users", dns[1], u[1], "displayName"},
		{"orphan", "Users", dns[4], u[4], ""},
		{"unmanaged", "Users", "", fr.ID, ""},
		{"differing", "Groups", groupDN, gid, "members"},
	}
	code, rep := report()
	var got []item
	for _, it := range rep.Items {
		got = append(got, item{string(it.Kind), it.Endpoint, it.DN, it.ID, strings.Join(it.Attributes, ",")})
		if it.Kind == engine.Differing && it.Endpoint == "Groups" &&
			(!slices.Equal(it.MembersMissing, []string{u[1]}) || len(it.MembersExtra) != 0) {
			t.Errorf("group members: missing %v extra %v, want missing [%s]", it.MembersMissing, it.MembersExtra, u[1])
		}
		if it.Kind == engine.Differing && len(it.Patch) == 0 {
			t.Errorf("%s: no PATCH", it.DN)
		}
		if it.Kind == engine.Orphan && (it.Reason != "gone" || it.Action != "delete") {
			t.Errorf("orphan: reason %q action %q", it.Reason, it.Action)
		}
	}
	key := func(i item) string { return i.endpoint + " " + i.kind + " " + strings.ToLower(i.dn) + " " + i.id }
	sort.Slice(want, func(i, j int) bool { return key(want[i]) < key(want[j]) })
	sort.Slice(got, func(i, j int) bool { return key(got[i]) < key(got[j]) })
	if code != exitFail || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("verify --json after the edits: exit %d\n got %v\nwant %v", code, got, want)
	}
	users := rep.Endpoints[0]
	if users.Name != "Users" || users.Missing != 2 || users.Differing != 2 || users.Orphans != 1 || users.Unmanaged != 1 || users.InSync != 1 {
		t.Errorf("Users counts: %+v", users)
	}
	if rep.Requests > 4 {
		t.Errorf("%d SCIM requests to compare 6 entries at 2 listable endpoints, want at most 4 (the service configuration and one page per endpoint)", rep.Requests)
	}

	// The human report: the table and every item (fewer than --show).
	code, out, _ = verify()
	for _, s := range []string{"missing (2):", "differing (3):", "orphan (1):", "1 unmanaged resources",
		"displayName", "members missing: " + u[1], "PATCH {", "entry gone; delete", dn5} {
		if !strings.Contains(out, s) {
			t.Errorf("human report lacks %q", s)
		}
	}
	if code != exitFail || strings.Contains(out, "title") || strings.Contains(out, "Boss") {
		t.Fatalf("human report: exit %d\n%s", code, out)
	}

	// --repair, then clean (the foreign resource left alone).
	if code, out, stderr := verify("--repair"); code != exitOK {
		t.Fatalf("verify --repair: exit %d\n%s\n%s", code, out, stderr)
	}
	code, rep = report()
	if code != exitOK || len(rep.Items) != 1 || rep.Items[0].Kind != engine.Unmanaged || rep.Items[0].ID != fr.ID {
		t.Fatalf("verify after --repair: exit %d, items %+v, errors %v", code, rep.Items, rep.Errors)
	}
	if _, err := client.Get(ctx, "/Users/"+u[4]); !scim.IsStatus(err, 404) {
		t.Errorf("the orphan is still there: %v", err)
	}

	// The guard: the people class pointed at an empty subtree.
	t.Setenv("V_PEOPLE", "ou=Empty,"+base)
	code, rep = report()
	if code != exitFail || rep.Endpoints[0].Orphans != 5 {
		t.Fatalf("verify with an empty base: exit %d, %+v", code, rep.Endpoints[0])
	}
	code, out, stderr = verify("--repair", "--max-deletes", "3")
	if code != exitUsage || !strings.Contains(stderr, "stopped before deleting anything: 5 deletes") || !strings.Contains(stderr, "--allow-deletes") {
		t.Fatalf("verify --repair with an empty base: exit %d\n%s\n%s", code, out, stderr)
	}
	for _, i := range []int{0, 1, 3} {
		if _, err := client.Get(ctx, "/Users/"+u[i]); err != nil {
			t.Errorf("user %d deleted despite the guard: %v", i, err)
		}
	}
}

package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/state"
)

// groupsScript: people (not contractors) and groups; %ONDELETE% and
// %ONLEAVE% are set per test.
const groupsScript = `pipe "groups-test"
source ldif { file = "x.ldif" }
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
  base     = "ou=People,dc=example,dc=com"
  when     = !hasValue(employeeType, "contractor")
  endpoint = Users
  onDelete = "%ONDELETE%"
  onLeave  = "%ONLEAVE%"
  map {
    userName    = rdnValue(dn)
    displayName = first(cn)
    active      = true
  }
}
class groups {
  base     = "ou=Groups,dc=example,dc=com"
  endpoint = Groups
  map {
    displayName = first(cn)
    members     = ref(member, Users, Groups)
  }
}
`

// stream is an LDIF change stream the tests append to and run.
type stream struct {
	f      *fixture
	path   string
	st     *state.Store
	prefix string
}

func newStream(t *testing.T, onDelete, onLeave string) *stream {
	f := newScriptFixture(t, strings.NewReplacer("%ONDELETE%", onDelete, "%ONLEAVE%", onLeave).Replace(groupsScript))
	dir := t.TempDir()
	st, err := state.Open(dir, "groups")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &stream{f: f, path: filepath.Join(dir, "s.ldif"), st: st, prefix: scimtest.Unique("grp")}
}

func (s *stream) user(n string) string {
	return "uid=" + s.prefix + "-" + n + ",ou=People,dc=example,dc=com"
}
func (s *stream) group(n string) string {
	return "cn=" + s.prefix + "-" + n + ",ou=Groups,dc=example,dc=com"
}

// run appends records to the stream and applies them.
func (s *stream) run(records ...string) *Runner {
	s.f.t.Helper()
	fh, err := os.OpenFile(s.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		s.f.t.Fatal(err)
	}
	for _, r := range records {
		fmt.Fprintf(fh, "%s\n\n", strings.TrimSpace(r))
	}
	fh.Close()
	return s.f.runLDIF(s.path, s.st)
}

func (s *stream) scim(endpoint, filter string) []gjson.Result {
	s.f.t.Helper()
	found, _, err := s.f.client.Search(context.Background(), endpoint, filter, false)
	if err != nil {
		s.f.t.Fatal(err)
	}
	var out []gjson.Result
	for _, b := range found {
		out = append(out, gjson.ParseBytes(b))
	}
	return out
}

func (s *stream) userRes(n string) []gjson.Result {
	return s.scim("/Users", `userName eq "`+s.prefix+"-"+n+`"`)
}

func (s *stream) groupMembers(n string) []string {
	s.f.t.Helper()
	g := s.scim("/Groups", `displayName eq "`+s.prefix+"-"+n+`"`)
	if len(g) != 1 {
		s.f.t.Fatalf("group %s: %d found", n, len(g))
	}
	return memberValues([]byte(g[0].Raw))
}

func userLDIF(dn, cn string, extra ...string) string {
	uid := strings.TrimPrefix(strings.SplitN(dn, ",", 2)[0], "uid=")
	return fmt.Sprintf("dn: %s\nuid: %s\ncn: %s\n%s", dn, uid, cn, strings.Join(extra, "\n"))
}

// TestGroupBeforeItsMembers: a group that comes in the stream before its
// members gets them all: the references wait for the members to be created.
func TestGroupBeforeItsMembers(t *testing.T) {
	s := newStream(t, "delete", "delete")
	s.run(
		fmt.Sprintf("dn: %s\ncn: %s-early\nmember: %s\nmember: %s", s.group("early"), s.prefix, s.user("m1"), s.user("m2")),
		userLDIF(s.user("m1"), "M1"),
		userLDIF(s.user("m2"), "M2"),
	)
	members := s.groupMembers("early")
	ids := []string{s.userRes("m1")[0].Get("id").Str, s.userRes("m2")[0].Get("id").Str}
	if len(members) != 2 || !containsStr(members, ids[0]) || !containsStr(members, ids[1]) {
		t.Errorf("members %v, want %v", members, ids)
	}
}

// TestMembershipChangesSendOnePatch: adding or removing one member in the
// directory sends one PATCH with one operation.
func TestMembershipChangesSendOnePatch(t *testing.T) {
	s := newStream(t, "delete", "delete")
	var users []string
	for i := 0; i < 20; i++ {
		users = append(users, userLDIF(s.user(fmt.Sprint(i)), "U"))
	}
	group := fmt.Sprintf("dn: %s\ncn: %s-big\n", s.group("big"), s.prefix)
	for i := 0; i < 10; i++ {
		group += "member: " + s.user(fmt.Sprint(i)) + "\n"
	}
	s.run(append(users, group)...)
	if got := s.groupMembers("big"); len(got) != 10 {
		t.Fatalf("members %d, want 10", len(got))
	}
	for _, change := range []string{
		fmt.Sprintf("dn: %s\nchangetype: modify\nadd: member\nmember: %s\n-", s.group("big"), s.user("15")),
		fmt.Sprintf("dn: %s\nchangetype: modify\ndelete: member\nmember: %s\n-", s.group("big"), s.user("3")),
	} {
		before := lastSeq(t, s.f.env, s.f.ua)
		s.run(change)
		var patches []scimtest.Request
		for _, r := range s.f.env.Requests(t, s.f.ua) {
			if r.Seq > before && r.Method != "GET" {
				patches = append(patches, r)
			}
		}
		if len(patches) != 1 || patches[0].Method != "PATCH" {
			t.Fatalf("one membership change sent %d write requests, want one PATCH: %+v", len(patches), patches)
		}
		var body struct{ Operations []json.RawMessage }
		if err := json.Unmarshal(patches[0].Body, &body); err != nil || len(body.Operations) != 1 {
			t.Errorf("the PATCH has %d operations, want 1: %s", len(body.Operations), patches[0].Body)
		}
	}
	if got := s.groupMembers("big"); len(got) != 10 || containsStr(got, s.userRes("3")[0].Get("id").Str) ||
		!containsStr(got, s.userRes("15")[0].Get("id").Str) {
		t.Errorf("members after the changes: %v", got)
	}
}

// TestLeavingScope: an entry that stops matching its class (a contractor
// now) is deleted by default, deactivated (and taken out of the pipe's
// groups) or kept as the class says; coming back in scope creates or
// reactivates it.
func TestLeavingScope(t *testing.T) {
	for _, tt := range []struct {
		onLeave string
		want    string // "gone", "inactive" or "kept"
	}{
		{"delete", "gone"},
		{"deactivate", "inactive"},
		{"keep", "kept"},
	} {
		t.Run(tt.onLeave, func(t *testing.T) {
			s := newStream(t, "delete", tt.onLeave)
			s.run(userLDIF(s.user("x"), "X"), userLDIF(s.user("y"), "Y"),
				fmt.Sprintf("dn: %s\ncn: %s-team\nmember: %s\nmember: %s", s.group("team"), s.prefix, s.user("x"), s.user("y")))
			x := s.userRes("x")
			if len(x) != 1 {
				t.Fatalf("x not created")
			}
			s.run(fmt.Sprintf("dn: %s\nchangetype: modify\nadd: employeeType\nemployeeType: contractor\n-", s.user("x")))
			x = s.userRes("x")
			members := s.groupMembers("team")
			switch tt.want {
			case "gone":
				if len(x) != 0 {
					t.Errorf("x still in SCIM: %v", x)
				}
			case "inactive":
				if len(x) != 1 || x[0].Get("active").Bool() {
					t.Errorf("x not deactivated: %v", x)
				}
				if containsStr(members, x[0].Get("id").Str) {
					t.Errorf("deactivated x is still a member of the pipe's group: %v", members)
				}
			case "kept":
				if len(x) != 1 || !x[0].Get("active").Bool() {
					t.Errorf("x not kept as it was: %v", x)
				}
			}
			// Back in scope.
			s.run(fmt.Sprintf("dn: %s\nchangetype: modify\ndelete: employeeType\n-", s.user("x")))
			if x = s.userRes("x"); len(x) != 1 || !x[0].Get("active").Bool() {
				t.Errorf("x back in scope: %v", x)
			}
		})
	}
}

// TestDeleteDeactivates: with onDelete = "deactivate", a deleted entry's
// resource stays, inactive, and leaves the groups the pipe manages.
func TestDeleteDeactivates(t *testing.T) {
	s := newStream(t, "deactivate", "deactivate")
	s.run(userLDIF(s.user("d"), "D"), fmt.Sprintf("dn: %s\ncn: %s-g\nmember: %s", s.group("g"), s.prefix, s.user("d")))
	id := s.userRes("d")[0].Get("id").Str
	if !containsStr(s.groupMembers("g"), id) {
		t.Fatal("d not a member")
	}
	s.run(fmt.Sprintf("dn: %s\nchangetype: delete", s.user("d")))
	d := s.userRes("d")
	if len(d) != 1 || d[0].Get("active").Bool() {
		t.Fatalf("d after the delete: %v", d)
	}
	if containsStr(s.groupMembers("g"), id) {
		t.Error("the deactivated user is still a member")
	}
}

// TestThousandMembers: a group of 1000 members resyncs with every member
// resolved.
func TestThousandMembers(t *testing.T) {
	if testing.Short() {
		t.Skip("1000 users")
	}
	f := newFixture(t, "patch", "delete")
	prefix := scimtest.Unique("k")
	dir := directory(t, prefix, 1000)
	st, failed := f.resync(dir, nil, nil)
	if len(failed) > 0 || st.Failed.Load() != 0 {
		t.Fatalf("failed: %v", failed)
	}
	g, _, err := f.client.Search(context.Background(), "/Groups", `displayName eq "`+prefix+`-all"`, false)
	if err != nil || len(g) != 1 {
		t.Fatalf("group: %v", err)
	}
	if n := len(memberValues(g[0])); n != 1000 {
		t.Errorf("%d members resolved, want 1000", n)
	}
}

package engine

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/engine/source/ldaptest"
	"github.com/scimsync/scimsync/engine/state"
	"github.com/scimsync/scimsync/lang"
)

// Regression tests of issue 12 ("never write wrong data") against the real
// SCIM server and directories.

// TestDeleteDecidedByOwningClass: a class that does not synchronize deletes
// keeps its resources when their entries are deleted, even when a later
// class would take the delete record (which carries only the DN): the
// class that made the resource decides.
func TestDeleteDecidedByOwningClass(t *testing.T) {
	script := strings.Replace(groupsScript, "class people {", `class keepers {
  base       = "ou=People,dc=example,dc=com"
  when       = hasValue(employeeType, "keeper")
  endpoint   = Users
  operations = ["create", "modify"]
  map {
    userName    = rdnValue(dn)
    displayName = first(cn)
  }
}
class people {`, 1)
	s := newStream(t, "delete", "delete")
	s.f = newScriptFixture(t, strings.NewReplacer("%ONDELETE%", "delete", "%ONLEAVE%", "delete").Replace(script))
	s.run(userLDIF(s.user("k"), "K", "employeeType: keeper"), userLDIF(s.user("p"), "P"))
	k, p := s.userRes("k"), s.userRes("p")
	if len(k) != 1 || len(p) != 1 {
		t.Fatalf("created: keeper %d, person %d", len(k), len(p))
	}
	r := s.run(fmt.Sprintf("dn: %s\nchangetype: delete", s.user("k")), fmt.Sprintf("dn: %s\nchangetype: delete", s.user("p")))
	if got := s.userRes("k"); len(got) != 1 || got[0].Get("id").Str != k[0].Get("id").Str {
		t.Errorf("the keeper's resource after its entry was deleted: %v; want it kept", got)
	}
	if got := s.userRes("p"); len(got) != 0 {
		t.Errorf("the person's resource was not deleted: %v", got)
	}
	if r.Stats.Dropped.Load() != 1 || r.Stats.Deleted.Load() != 1 {
		t.Errorf("dropped %d, deleted %d; want 1 and 1", r.Stats.Dropped.Load(), r.Stats.Deleted.Load())
	}
	_ = s.f.client.Delete(context.Background(), "/Users", k[0].Get("id").Str)
}

// TestCreateWithinMemberCap: a group created with more members than
// maxPatchOps is created with the first of them and gets the rest by
// PATCH, no request carrying more than the cap.
func TestCreateWithinMemberCap(t *testing.T) {
	s := newStream(t, "delete", "delete")
	s.f = newScriptFixture(t, strings.NewReplacer("%ONDELETE%", "delete", "%ONLEAVE%", "delete",
		"token = env(\"SCIM_TOKEN\")", "token = env(\"SCIM_TOKEN\")\n  maxPatchOps = 10").Replace(groupsScript))
	var recs []string
	group := fmt.Sprintf("dn: %s\ncn: %s-big\n", s.group("big"), s.prefix)
	for i := range 25 {
		recs = append(recs, userLDIF(s.user(fmt.Sprint(i)), "U"))
		group += "member: " + s.user(fmt.Sprint(i)) + "\n"
	}
	before := lastSeq(t, s.f.env, s.f.ua)
	s.run(append(recs, group)...)
	if got := s.groupMembers("big"); len(got) != 25 {
		t.Fatalf("members %d, want 25", len(got))
	}
	for _, q := range s.f.env.Requests(t, s.f.ua) {
		if q.Seq <= before || !strings.HasPrefix(q.Path, "/Groups") {
			continue
		}
		switch q.Method {
		case "POST":
			if n := len(gjson.GetBytes(q.Body, "members").Array()); n > 10 {
				t.Errorf("the group was created with %d members, cap 10", n)
			}
		case "PATCH":
			if n := len(gjson.GetBytes(q.Body, "Operations").Array()); n > 10 {
				t.Errorf("a PATCH has %d operations, cap 10", n)
			}
			for _, op := range gjson.GetBytes(q.Body, "Operations").Array() {
				if n := len(op.Get("value").Array()); n > 10 {
					t.Errorf("a PATCH operation adds %d members, cap 10", n)
				}
			}
		}
	}
}

// TestUnconfirmedCreateIsNotDuplicated: a group create whose answer comes
// after the client's timeout (the service creates it all the same) is never
// sent blind a second time: the run looks it up and adopts it. Groups have
// no unique attribute, so no 409 would save a second POST.
func TestUnconfirmedCreateIsNotDuplicated(t *testing.T) {
	s := newStream(t, "delete", "delete")
	s.f = newScriptFixture(t, strings.NewReplacer("%ONDELETE%", "delete", "%ONLEAVE%", "delete",
		"token = env(\"SCIM_TOKEN\")", "token = env(\"SCIM_TOKEN\")\n  timeout = \"1s\"").Replace(groupsScript))
	s.f.dest.CreateGrace = 5 * time.Second
	s.f.env.Fault(t, scimtest.Fault{Status: 0, DelayMs: 2500, Count: 1, Method: "POST", Path: "/Groups", UserAgent: s.f.ua})
	r := s.run(userLDIF(s.user("m"), "M"), fmt.Sprintf("dn: %s\ncn: %s-slow\nmember: %s", s.group("slow"), s.prefix, s.user("m")))
	found := s.scim("/Groups", `displayName eq "`+s.prefix+`-slow"`)
	if len(found) != 1 {
		t.Fatalf("%d groups for one LDAP group", len(found))
	}
	if got := memberValues([]byte(found[0].Raw)); len(got) != 1 || got[0] != s.userRes("m")[0].Get("id").Str {
		t.Errorf("members %v", got)
	}
	if r.Stats.Parked.Load() != 0 || r.Stats.Waits.Load() == 0 {
		t.Errorf("parked %d, waits %d: want 0 parked and the unconfirmed create waited out", r.Stats.Parked.Load(), r.Stats.Waits.Load())
	}
	m, ok := mappingOf(t, s.st, "dn:"+source.NormalizeDN(s.group("slow")))
	if !ok || m.SCIMID != found[0].Get("id").Str || len(m.Pending) != 0 {
		t.Errorf("id map %+v, want the adopted group's id and no pending create", m)
	}
}

// TestCreateInFlightAtCrashIsReconciled: the engine was killed with a
// POST in flight (the id map says a create was sent, the checkpoint is
// before the add); the POST landed; by the time the engine is back the
// entry has left scope. The run finds the resource by the filters the id
// map kept and removes it as the class's onLeave says, instead of leaving
// an orphan.
func TestCreateInFlightAtCrashIsReconciled(t *testing.T) {
	shared := ldaptest.OpenLDAP(t)
	c := shared.Dial(t)
	prefix := scimtest.Unique("inf")
	srv := shared.Subtree(t, c, prefix)
	r := startLDAPRun(t, "openldap-to-scim.pipe", srv)
	uDN := srv.AddUser(t, c, prefix+"-u", nil)
	res, err := c.Search(ldap.NewSearchRequest(uDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"entryUUID"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatal(err)
	}
	uuid := strings.ToLower(res.Entries[0].GetAttributeValue("entryUUID"))
	body, err := r.client.Create(context.Background(), "/Users",
		[]byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+prefix+`-u"}`))
	if err != nil {
		t.Fatal(err)
	}
	id := gjson.GetBytes(body, "id").Str
	if err := r.st.Put(uuid, state.Mapping{Endpoint: "Users", DN: uDN, Class: "people",
		Pending: []string{`userName eq "` + prefix + `-u"`}, CreateSent: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	elsewhere := ldapAddOU(t, c, srv, "Elsewhere")
	if err := c.ModifyDN(ldap.NewModifyDNRequest(uDN, "uid="+prefix+"-u", true, elsewhere)); err != nil {
		t.Fatal(err)
	}
	r.start()
	r.gone("/Users/" + id)
	waitFor(t, 5*time.Second, "the id map to forget the entry", func() (bool, string) {
		m, ok := mappingOf(t, r.st, uuid)
		return !ok, fmt.Sprintf("%+v", m)
	})
}

// TestCreateLandingLateIsStillRemoved: as above, but the POST in flight
// lands only after the run has looked for it once (a proxy or the service
// held it: the fault test's "delay-before" found this as a group left in
// SCIM after its entry was deleted). Within the create grace, not finding
// the resource is no proof that it will not appear: the run waits the
// grace out, looks again, and removes it.
func TestCreateLandingLateIsStillRemoved(t *testing.T) {
	for _, how := range []string{"delete", "move-out"} {
		t.Run(how, func(t *testing.T) {
			shared := ldaptest.OpenLDAP(t)
			c := shared.Dial(t)
			prefix := scimtest.Unique("late")
			srv := shared.Subtree(t, c, prefix)
			r := startLDAPRun(t, "openldap-to-scim.pipe", srv)
			r.tune = func(run *Runner) { run.Dest.CreateGrace = 3 * time.Second }
			uDN := srv.AddUser(t, c, prefix+"-u", nil)
			res, err := c.Search(ldap.NewSearchRequest(uDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
				"(objectClass=*)", []string{"entryUUID"}, nil))
			if err != nil || len(res.Entries) != 1 {
				t.Fatal(err)
			}
			uuid := strings.ToLower(res.Entries[0].GetAttributeValue("entryUUID"))
			// The id map as a run killed with the POST in flight left it.
			if err := r.st.Put(uuid, state.Mapping{Endpoint: "Users", DN: uDN, Class: "people",
				Pending: []string{`userName eq "` + prefix + `-u"`}, CreateSent: time.Now().UTC()}); err != nil {
				t.Fatal(err)
			}
			if how == "delete" {
				if err := c.Del(ldap.NewDelRequest(uDN, nil)); err != nil {
					t.Fatal(err)
				}
			} else {
				elsewhere := ldapAddOU(t, c, srv, "Elsewhere")
				if err := c.ModifyDN(ldap.NewModifyDNRequest(uDN, "uid="+prefix+"-u", true, elsewhere)); err != nil {
					t.Fatal(err)
				}
			}
			r.start()
			time.Sleep(time.Second) // the run has looked once and found nothing
			body, err := r.client.Create(context.Background(), "/Users",
				[]byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+prefix+`-u"}`))
			if err != nil {
				t.Fatal(err)
			}
			r.gone("/Users/" + gjson.GetBytes(body, "id").Str)
			waitFor(t, 5*time.Second, "the id map to forget the entry", func() (bool, string) {
				m, ok := mappingOf(t, r.st, uuid)
				return !ok, fmt.Sprintf("%+v", m)
			})
		})
	}
}

// TestReplayedAddJudgedByCurrentDN: 389-ds's changelog replays, after a
// crash, an add recorded outside the class's base for an entry that was
// moved into it since (and that SCIM has already). The replay is judged by
// the entry's DN now: the resource keeps its id; nothing is deleted or
// created again.
func TestReplayedAddJudgedByCurrentDN(t *testing.T) {
	shared := ldaptest.DS389(t)
	c := shared.Dial(t)
	prefix := scimtest.Unique("rpl")
	srv := shared.Subtree(t, c, prefix)
	r := startLDAPRun(t, "389ds-to-scim.pipe", srv)
	startPos, err := r.st.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := ldapAddOU(t, c, srv, "Elsewhere")
	u := ldap.NewAddRequest("uid="+prefix+"-u,"+elsewhere, nil)
	u.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "inetOrgPerson"})
	u.Attribute("uid", []string{prefix + "-u"})
	u.Attribute("cn", []string{"U"})
	u.Attribute("sn", []string{"U"})
	if err := c.Add(u); err != nil {
		t.Fatal(err)
	}
	if err := c.ModifyDN(ldap.NewModifyDNRequest("uid="+prefix+"-u,"+elsewhere, "uid="+prefix+"-u", true, "ou=People,"+srv.Base)); err != nil {
		t.Fatal(err)
	}
	r.start()
	id := r.user(prefix+"-u", nil).Get("id").Str
	waitFor(t, 10*time.Second, "the checkpoint past the rename", func() (bool, string) {
		pos, _ := r.st.Checkpoint()
		return pos != startPos, pos
	})
	r.halt()
	// As after a kill -9 before the checkpoint was saved: the changes are
	// read again, the id map knows the entry.
	if err := r.st.SetCheckpoint(startPos); err != nil {
		t.Fatal(err)
	}
	seq := r.lastSeq()
	r2 := r.restart()
	waitFor(t, 10*time.Second, "the changes read again", func() (bool, string) {
		pos, _ := r2.st.Checkpoint()
		return pos != startPos, pos
	})
	time.Sleep(500 * time.Millisecond)
	if w := r.writesSince(seq); len(w) != 0 {
		t.Errorf("replaying the add and the rename sent %v, want nothing", w)
	}
	if got := r.user(prefix+"-u", nil).Get("id").Str; got != id {
		t.Errorf("the resource has a new id %s, want %s", got, id)
	}
	_ = r.client.Delete(context.Background(), "/Users", id)
}

// TestPresentPhaseHonoursOnDelete: deletes that slapd reports through a
// present phase (after a restart that lost its in-memory session log) go
// through the owning class's onDelete: deactivated, not deleted.
func TestPresentPhaseHonoursOnDelete(t *testing.T) {
	priv := ldaptest.StartOpenLDAP(t, "OPENLDAP_SESSIONLOG=memory")
	c := priv.Dial(t)
	prefix := scimtest.Unique("prs")
	srv := priv.Subtree(t, c, prefix)
	r := startLDAPRun(t, "openldap-to-scim.pipe", srv)
	// the shipped pipe with onDelete = "deactivate" for people
	p, err := lang.Load("deactivate.pipe", strings.Replace(pipeText(t, "openldap-to-scim.pipe"),
		"  endpoint = Users\n", "  endpoint = Users\n  onDelete = \"deactivate\"\n", 1),
		lang.LoadOptions{LookupEnv: func(k string) (string, bool) {
			v, ok := map[string]string{"LDAP_URL": srv.URL, "LDAP_BASE": srv.Base, "LDAP_BIND_DN": srv.BindDN,
				"LDAP_BIND_PW": srv.BindPW, "SCIM_URL": r.env.URL, "SCIM_TOKEN": r.env.Token}[k]
			return v, ok
		}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Class("people").OnDelete != "deactivate" {
		t.Fatal("the pipe was not changed")
	}
	r.pipe = p
	r.start()
	dDN := srv.AddUser(t, c, prefix+"-d", nil)
	id := r.user(prefix+"-d", nil).Get("id").Str
	r.halt()
	priv.Stop(t)
	priv.Restart(t, "OPENLDAP_SESSIONLOG=memory")
	c = priv.Dial(t)
	ldapDelete(t, c, dDN)
	r.restart()
	r.user(prefix+"-d", func(u gjson.Result) (bool, string) {
		return u.Get("id").Str == id && u.Get("active").Exists() && !u.Get("active").Bool(), u.Raw
	})
	_ = r.client.Delete(context.Background(), "/Users", id)
}

// pipeText reads a shipped pipe.
func pipeText(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile("../scripts/" + file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestModifyOfUnreadAttributesSendsNothing: a modify that changes only
// attributes no expression of the owning class reads sends no request at
// all, not even a GET; one that changes a mapped attribute does.
func TestModifyOfUnreadAttributesSendsNothing(t *testing.T) {
	s := newStream(t, "delete", "delete")
	s.run(userLDIF(s.user("q"), "Q", "description: one"))
	before := lastSeq(t, s.f.env, s.f.ua)
	s.run(fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: description\ndescription: two\n-", s.user("q")))
	var sent []string
	for _, q := range s.f.env.Requests(t, s.f.ua) {
		if q.Seq > before {
			sent = append(sent, q.Method+" "+q.Path)
		}
	}
	if len(sent) != 0 {
		t.Errorf("a modify of an unmapped attribute sent %v, want nothing", sent)
	}
	s.run(fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: cn\ncn: Q2\n-", s.user("q")))
	if u := s.userRes("q"); len(u) != 1 || u[0].Get("displayName").Str != "Q2" {
		t.Errorf("a modify of a mapped attribute: %v", u)
	}
}

// TestDeactivatedLeavesGroupsOnAStrictService: a deactivated user leaves
// the pipe's groups also on a service that refuses value filters in PATCH
// paths (remove members[value eq "id"]): the group's members are replaced
// whole instead.
func TestDeactivatedLeavesGroupsOnAStrictService(t *testing.T) {
	s := newStream(t, "deactivate", "deactivate")
	s.f.env.Strict(t, scimtest.Strict{UserAgent: s.f.ua, RejectFilteredPaths: true})
	s.run(userLDIF(s.user("d"), "D"), userLDIF(s.user("e"), "E"),
		fmt.Sprintf("dn: %s\ncn: %s-g\nmember: %s\nmember: %s", s.group("g"), s.prefix, s.user("d"), s.user("e")))
	id, other := s.userRes("d")[0].Get("id").Str, s.userRes("e")[0].Get("id").Str
	r := s.run(fmt.Sprintf("dn: %s\nchangetype: delete", s.user("d")))
	if d := s.userRes("d"); len(d) != 1 || d[0].Get("active").Bool() {
		t.Fatalf("d after the delete: %v", d)
	}
	if got := s.groupMembers("g"); len(got) != 1 || got[0] != other {
		t.Errorf("members %v, want only %s (the deactivated %s gone)", got, other, id)
	}
	if n := r.Stats.Parked.Load(); n != 0 {
		t.Errorf("%d parked", n)
	}
}

// TestMovedOutOfTheSourceLeavesScope: with classes that name no base of
// their own, an entry renamed to a DN outside the source's base (as
// 389-ds's changelog and AD's DirSync report it) has left the pipe's scope:
// its class's onLeave applies (delete by default).
func TestMovedOutOfTheSourceLeavesScope(t *testing.T) {
	shared := ldaptest.DS389(t)
	c := shared.Dial(t)
	prefix := scimtest.Unique("mos")
	outside := "ou=" + prefix + "-outside," + shared.Base
	o := ldap.NewAddRequest(outside, nil)
	o.Attribute("objectClass", []string{"top", "organizationalUnit"})
	if err := c.Add(o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ldapDelete(t, c, "uid="+prefix+"-u,"+outside); ldapDelete(t, c, outside) })
	srv := shared.Subtree(t, c, prefix)
	r := startLDAPRun(t, "389ds-to-scim.pipe", srv)
	text := strings.Replace(pipeText(t, "389ds-to-scim.pipe"), `  base     = "ou=People," + env("LDAP_BASE", "dc=example,dc=com")`+"\n", "", 1)
	p, err := lang.Load("nobase.pipe", text, lang.LoadOptions{LookupEnv: func(k string) (string, bool) {
		v, ok := map[string]string{"LDAP_URL": srv.URL, "LDAP_BASE": srv.Base, "LDAP_BIND_DN": srv.BindDN,
			"LDAP_BIND_PW": srv.BindPW, "SCIM_URL": r.env.URL, "SCIM_TOKEN": r.env.Token}[k]
		return v, ok
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Class("people").Base) != 0 {
		t.Fatal("the people class still names a base")
	}
	r.pipe = p
	r.start()
	uDN := srv.AddUser(t, c, prefix+"-u", nil)
	id := r.user(prefix+"-u", nil).Get("id").Str
	if err := c.ModifyDN(ldap.NewModifyDNRequest(uDN, "uid="+prefix+"-u", true, outside)); err != nil {
		t.Fatal(err)
	}
	r.gone("/Users/" + id)
}

package source

import (
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/engine/source/ldaptest"
	"github.com/scimsync/scimsync/lang"
)

// TestDirSyncSamba runs the DirSync source against the shared Samba AD DC
// (ldaptest.AD: started by .ci/samba.sh as root, required in CI; it skips
// saying why when not root, since Samba's LDAP port is fixed at 389), in
// an OU of its own: an add, a modify, a rename and a delete (a tombstone
// under CN=Deleted Objects) each arrive as one event with the entry's
// objectGUID as identity.
func TestDirSyncSamba(t *testing.T) {
	shared := ldaptest.AD(t)
	c := shared.Dial(t)
	srv := shared.ADSubtree(t, c, ldaptest.Unique("ds"))
	cfg := lang.SourceConfig{
		Kind: "dirsync", URLs: []string{srv.URL}, BindDN: srv.BindDN,
		Password: secret.New(srv.BindPW), Base: []string{srv.Base},
		Timeout: 10 * time.Second, PollInterval: 200 * time.Millisecond,
	}
	start := startPoint(t, cfg, StartSpec{Kind: StartEnd})
	src := openSource(t, cfg, start, Options{})

	name := ldaptest.Unique("ds")
	dn := "CN=" + name + ",OU=People," + srv.Base
	add := ldap.NewAddRequest(dn, nil)
	add.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "user"})
	add.Attribute("sAMAccountName", []string{name[:min(len(name), 20)]})
	add.Attribute("mail", []string{name + "@example.com"})
	if err := c.Add(add); err != nil {
		t.Fatal(err)
	}
	ev := nextFor(t, src, 10*time.Second, about(name))
	if ev.Change.Type != lang.Add || ev.Identity == "" || ev.Change.Entry.First("mail") != name+"@example.com" {
		t.Fatalf("add: %+v identity %q", ev.Change, ev.Identity)
	}
	id := ev.Identity
	if got := canonicalIdentity("objectGUID", ev.Change.Entry.First("objectGUID")); got != id {
		t.Errorf("identity %q, the entry's objectGUID %q", id, got)
	}
	modify(t, c, dn, func(m *ldap.ModifyRequest) { m.Replace("description", []string{"changed"}) })
	ev = nextFor(t, src, 10*time.Second, about(id))
	if ev.Change.Type != lang.Modify || ev.Change.Entry.First("description") != "changed" {
		t.Fatalf("modify: %+v", ev.Change)
	}
	t.Logf("modify: changed %q", ev.Change.Changed)
	newDN := rename(t, c, dn, "CN="+name+"-x")
	ev = nextFor(t, src, 10*time.Second, about(id))
	if ev.Change.Type != lang.ModRDN || !strings.EqualFold(ev.Change.OldDN, dn) || !strings.EqualFold(ev.Change.DN, newDN) {
		t.Fatalf("rename: %+v", ev.Change)
	}
	del(t, c, newDN)
	ev = nextFor(t, src, 10*time.Second, about(id))
	if ev.Change.Type != lang.Delete || !strings.EqualFold(ev.Change.DN, newDN) {
		t.Fatalf("delete: %+v", ev.Change)
	}
}

package source

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/engine/source/ldaptest"
	"github.com/scimsync/scimsync/lang"
)

// TestDirSyncSamba runs the DirSync source against a Samba AD DC. It is
// optional and never required by SCIMSYNC_REQUIRE_SERVERS: Samba's LDAP
// port is fixed at 389, so it needs root and one instance per network
// namespace. Start one with the team harness (start-samba-ad.sh, see the
// servers doc) and export SAMBA_AD_URL, SAMBA_AD_BASE, SAMBA_AD_BIND_DN and
// SAMBA_AD_BIND_PW from its env file.
func TestDirSyncSamba(t *testing.T) {
	url := os.Getenv("SAMBA_AD_URL")
	if url == "" {
		t.Skip("optional: Samba AD not running (it needs root and port 389); export SAMBA_AD_URL etc. to run this test")
	}
	base := os.Getenv("SAMBA_AD_BASE")
	cfg := lang.SourceConfig{
		Kind: "dirsync", URLs: []string{url}, BindDN: os.Getenv("SAMBA_AD_BIND_DN"),
		Password: secret.New(os.Getenv("SAMBA_AD_BIND_PW")), Base: []string{"CN=Users," + base},
		Timeout: 10 * time.Second, PollInterval: 200 * time.Millisecond,
	}
	start := startPoint(t, cfg, StartSpec{Kind: StartEnd})
	src := openSource(t, cfg, start, Options{})

	c, err := ldap.DialURL(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(cfg.BindDN, cfg.Password.Reveal()); err != nil {
		t.Fatal(err)
	}
	name := ldaptest.Unique("ds")
	dn := "CN=" + name + ",CN=Users," + base
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

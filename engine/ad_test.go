package engine

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/source/ldaptest"
)

// TestRunADLifecycle runs scripts/ad-to-scim.pipe as written with a Runner
// in real time against the shared Samba AD DC (DirSync), in an OU of the
// test's own (LDAP_BASE). What reaches SCIM, and how: an add is a user
// with its objectGUID as externalId, enabled or not by bit 2 of
// userAccountControl; a group's members, one a nested group of type Group;
// an attribute modify is one PATCH; a rename (the cn) keeps the SCIM id
// and replaces displayName in one PATCH; a member added or removed is one
// PATCH of the group; a disable sets active to false; a user moved out of
// the base is deleted; a deleted user or group (an AD tombstone, found
// under CN=Deleted Objects) is one DELETE. Nothing is parked.
func TestRunADLifecycle(t *testing.T) {
	t.Parallel()
	shared := ldaptest.AD(t)
	c := shared.Dial(t)
	prefix := scimtest.Unique("ar") // AD account names hold 20 characters
	srv := shared.ADSubtree(t, c, prefix)
	r := startLDAPRun(t, "ad-to-scim.pipe", srv)
	r.start()
	var ids [][2]string // SCIM users and groups to remove when the test ends
	t.Cleanup(func() {
		for _, id := range ids {
			_ = r.client.Delete(context.Background(), id[0], id[1])
		}
	})

	t0 := time.Now()
	a := srv.AddADUser(t, c, prefix+"-a", map[string][]string{"title": {"Engineer"}, "mail": {"A@Example.com"}})
	d := srv.AddADUser(t, c, prefix+"-d", map[string][]string{"userAccountControl": {"546"}})
	b := srv.AddADUser(t, c, prefix+"-b", nil)
	var aGUID string
	if res, err := c.Search(ldap.NewSearchRequest(a.DN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"objectGUID"}, nil)); err != nil {
		t.Fatal(err)
	} else {
		aGUID = ldaptest.ADGUID(res.Entries[0])
	}
	aID := r.user(a.UPN, func(u gjson.Result) (bool, string) {
		return u.Get("externalId").Str == aGUID && u.Get("title").Str == "Engineer" && u.Get("active").Bool() &&
			u.Get("emails.0.value").Str == "a@example.com" && u.Get("displayName").Str == prefix+"-a", u.Raw
	}).Get("id").Str
	dID := r.user(d.UPN, func(u gjson.Result) (bool, string) {
		return u.Get("active").Exists() && !u.Get("active").Bool(), u.Raw
	}).Get("id").Str
	bID := r.user(b.UPN, nil).Get("id").Str
	ids = append(ids, [2]string{"/Users", aID}, [2]string{"/Users", dID}, [2]string{"/Users", bID})
	t.Logf("3 adds reached SCIM in %v", time.Since(t0).Round(time.Millisecond))

	innerDN := srv.AddADGroup(t, c, prefix+"-in", d.DN)
	innerID := r.group(prefix+"-in", dID).Get("id").Str
	gDN := srv.AddADGroup(t, c, prefix+"-g", a.DN, innerDN)
	g := r.group(prefix+"-g", aID, innerID)
	gID := g.Get("id").Str
	ids = append(ids, [2]string{"/Groups", gID}, [2]string{"/Groups", innerID})
	for _, m := range g.Get("members").Array() {
		if m.Get("value").Str == innerID && m.Get("type").Str != "Group" {
			t.Errorf("the nested group is a member of type %q, want Group", m.Get("type").Str)
		}
	}

	// one attribute: one PATCH
	seq := r.lastSeq()
	ldapModify(t, c, a.DN, func(m *ldap.ModifyRequest) { m.Replace("title", []string{"Lead"}) })
	r.user(a.UPN, func(u gjson.Result) (bool, string) { return u.Get("title").Str == "Lead", u.Raw })
	time.Sleep(300 * time.Millisecond) // anything else the change would send
	if w := r.writesSince(seq); len(w) != 1 || w[0] != "PATCH /Users/"+aID {
		t.Errorf("a title change sent %q, want one PATCH /Users/%s", w, aID)
	}

	// rename: the same resource, displayName follows the cn
	seq = r.lastSeq()
	if err := c.ModifyDN(ldap.NewModifyDNRequest(a.DN, "CN="+prefix+"-a2", true, "")); err != nil {
		t.Fatal(err)
	}
	r.user(a.UPN, func(u gjson.Result) (bool, string) {
		return u.Get("id").Str == aID && u.Get("displayName").Str == prefix+"-a2", u.Raw
	})
	time.Sleep(300 * time.Millisecond)
	if w := r.writesSince(seq); len(w) != 1 || w[0] != "PATCH /Users/"+aID {
		t.Errorf("a rename sent %q, want one PATCH /Users/%s", w, aID)
	}
	r.group(prefix+"-g", aID, innerID)

	// members: an add, then a remove, each one PATCH of the group
	for _, step := range []struct {
		what string
		mod  func(*ldap.ModifyRequest)
		want []string
	}{
		{"adding a member", func(m *ldap.ModifyRequest) { m.Add("member", []string{b.DN}) }, []string{aID, bID, innerID}},
		{"removing the nested group", func(m *ldap.ModifyRequest) { m.Delete("member", []string{innerDN}) }, []string{aID, bID}},
	} {
		seq = r.lastSeq()
		ldapModify(t, c, gDN, step.mod)
		r.group(prefix+"-g", step.want...)
		time.Sleep(300 * time.Millisecond)
		if w := r.writesSince(seq); len(w) != 1 || w[0] != "PATCH /Groups/"+gID {
			t.Errorf("%s sent %q, want one PATCH /Groups/%s", step.what, w, gID)
		}
	}

	// disable: active false
	a2DN := "CN=" + prefix + "-a2,OU=People," + srv.Base
	ldapModify(t, c, a2DN, func(m *ldap.ModifyRequest) {
		m.Replace("userAccountControl", []string{"546"})
	})
	r.user(a.UPN, func(u gjson.Result) (bool, string) { return !u.Get("active").Bool(), u.Raw })

	// out of the base: deleted in SCIM, and out of the group
	outside := "OU=" + prefix + "x," + shared.Base
	ou := ldap.NewAddRequest(outside, nil)
	ou.Attribute("objectClass", []string{"top", "organizationalUnit"})
	if err := c.Add(ou); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Del(ldap.NewDelRequest(outside, []ldap.Control{ldap.NewControlString("1.2.840.113556.1.4.805", true, "")}))
	})
	if err := c.ModifyDN(ldap.NewModifyDNRequest(b.DN, "CN="+prefix+"-b", true, outside)); err != nil {
		t.Fatal(err)
	}
	r.gone("/Users/" + bID)
	r.group(prefix+"-g", aID)

	// tombstones: one DELETE each
	for _, del := range []struct{ dn, path string }{{d.DN, "/Users/" + dID}, {gDN, "/Groups/" + gID}} {
		seq = r.lastSeq()
		t1 := time.Now()
		ldapDelete(t, c, del.dn)
		r.gone(del.path)
		t.Logf("a delete reached SCIM in %v", time.Since(t1).Round(time.Millisecond))
		time.Sleep(300 * time.Millisecond)
		var deletes []string
		for _, w := range r.writesSince(seq) {
			if strings.HasPrefix(w, http.MethodDelete) {
				deletes = append(deletes, w)
			}
		}
		if len(deletes) != 1 || deletes[0] != "DELETE "+del.path {
			t.Errorf("deleting %s sent %q, want one DELETE %s", del.dn, deletes, del.path)
		}
	}
	// the inner group lost its only member with d's tombstone
	r.group(prefix + "-in")
	if n := r.runner.Stats.Parked.Load(); n != 0 {
		t.Errorf("%d changes parked", n)
	}
}

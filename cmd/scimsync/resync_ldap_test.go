package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/engine/source/ldaptest"
)

// TestResyncLDAP runs the command over slapd: --dry-run and --filter send
// nothing and show only the matching entries, the real resync creates the
// users and the group, a second one sends nothing.
func TestResyncLDAP(t *testing.T) {
	env := scimtest.Server(t)
	srv := ldaptest.OpenLDAP(t)
	c := srv.Dial(t)
	prefix := scimtest.Unique("cr")
	base := "ou=" + prefix + "," + srv.Base
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
	}
	ou := func(dn, name string) {
		add(dn, map[string][]string{"objectClass": {"top", "organizationalUnit"}, "ou": {name}})
	}
	ou(base, prefix)
	ou("ou=People,"+base, "People")
	ou("ou=Groups,"+base, "Groups")
	var members []string
	for i := 0; i < 5; i++ {
		uid := fmt.Sprintf("%s-u%d", prefix, i)
		dn := "uid=" + uid + ",ou=People," + base
		members = append(members, dn)
		add(dn, map[string][]string{"objectClass": {"top", "person", "organizationalPerson", "inetOrgPerson"},
			"uid": {uid}, "cn": {"User " + uid}, "sn": {"S"}})
	}
	add("cn="+prefix+"-g,ou=Groups,"+base, map[string][]string{"objectClass": {"top", "groupOfNames"},
		"cn": {prefix + "-g"}, "member": members})
	t.Cleanup(func() {
		for _, dn := range append(append([]string{"cn=" + prefix + "-g,ou=Groups," + base}, members...),
			"ou=People,"+base, "ou=Groups,"+base, base) {
			_ = c.Del(ldap.NewDelRequest(dn, nil))
		}
	})

	script := `pipe "cli-ldap"
source syncrepl {
  url      = env("CLI_LDAP_URL")
  base     = env("CLI_LDAP_BASE")
  bindDN   = env("CLI_LDAP_BIND_DN")
  password = env("CLI_LDAP_BIND_PW")
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
  base     = "ou=People," + env("CLI_LDAP_BASE")
  when     = hasValue(objectClass, "inetOrgPerson")
  endpoint = Users
  map {
    userName    = first(uid)
    displayName = first(cn)
  }
}
class groups {
  base     = "ou=Groups," + env("CLI_LDAP_BASE")
  endpoint = Groups
  when     = hasValue(objectClass, "groupOfNames")
  map {
    displayName = first(cn)
    members     = ref(member, Users)
  }
}
`
	pipe := filepath.Join(t.TempDir(), "ldap.pipe")
	if err := os.WriteFile(pipe, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CLI_LDAP_URL", srv.URL)
	t.Setenv("CLI_LDAP_BASE", base)
	t.Setenv("CLI_LDAP_BIND_DN", srv.BindDN)
	t.Setenv("CLI_LDAP_BIND_PW", srv.BindPW)
	client, err := scim.NewClient(scim.Config{URL: env.URL, Auth: scim.AuthBearer, Token: secret.New(env.Token)})
	if err != nil {
		t.Fatal(err)
	}
	users := func() int {
		t.Helper()
		n := 0
		for i := 0; i < 5; i++ {
			found, _, err := client.Search(context.Background(), "/Users", fmt.Sprintf(`userName eq "%s-u%d"`, prefix, i), false)
			if err != nil {
				t.Fatal(err)
			}
			n += len(found)
		}
		return n
	}

	code, _, stderr := runCLI(t, "resync", "--dry-run", "--filter", "(uid=a", pipe)
	if code != exitUsage || !strings.Contains(stderr, `--filter: invalid LDAP filter "(uid=a"`) {
		t.Fatalf("bad filter: exit %d, %s", code, stderr)
	}

	// A dry run with a filter: two users shown as creates, in the one
	// Bulk request the service (which advertises Bulk) would get, the
	// group out of the filter; nothing sent.
	code, stdout, stderr := runCLI(t, "resync", "--dry-run", "--progress-interval", "0", "--filter",
		fmt.Sprintf("(|(uid=%s-u1)(uid=%s-u3))", prefix, prefix), pipe)
	if code != exitOK || strings.Count(stdout, "POST /Bulk\n") != 1 || strings.Count(stdout, `"path": "/Users"`) != 2 ||
		strings.Contains(stdout, "/Groups") || !strings.Contains(stdout, prefix+"-u3") || !strings.Contains(stderr, "resync: 2 entries") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if n := users(); n != 0 {
		t.Fatalf("the dry run created %d users", n)
	}

	// The real thing: 5 users and the group with its members.
	code, _, stderr = runCLI(t, "resync", "--progress-interval", "0", pipe)
	if code != exitOK || !strings.Contains(stderr, "6 created") || !strings.Contains(stderr, "2 out of scope") {
		t.Fatalf("resync: exit %d\n%s", code, stderr)
	}
	if n := users(); n != 5 {
		t.Fatalf("%d users created, want 5", n)
	}
	found, _, err := client.Search(context.Background(), "/Groups", `displayName eq "`+prefix+`-g"`, false)
	if err != nil || len(found) != 1 || strings.Count(string(found[0]), `"value"`) != 5 {
		t.Fatalf("group: %v %s", err, found)
	}

	// Again: nothing differs, nothing written; the reads (the
	// ServiceProviderConfig and a page of each endpoint's listing) are
	// counted apart.
	code, _, stderr = runCLI(t, "resync", "--progress-interval", "0", pipe)
	if code != exitOK || !strings.Contains(stderr, "6 unchanged") || !regexp.MustCompile(`; 0 write requests, [1-9][0-9]* requests in all\n`).MatchString(stderr) {
		t.Fatalf("second resync: exit %d\n%s", code, stderr)
	}
}

package engine

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/source/ldaptest"
	"github.com/scimsync/scimsync/lang"
)

// ldapScript is the pipe of the LDAP resync tests: %KIND%, %URL%, %BASE%
// (the test's own subtree) are set per test, the rest from the environment.
const ldapScript = `pipe "ldap-resync-test"
source %KIND% {
  url      = "%URL%"
  base     = "%SUFFIX%"
  bindDN   = env("LDAP_TEST_BIND_DN")
  password = env("LDAP_TEST_BIND_PW")
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
  base     = "ou=People,%BASE%"
  when     = hasValue(objectClass, "inetOrgPerson")
  endpoint = Users
  map {
    userName                     = first(uid)
    name.familyName              = first(sn)
    displayName                  = first(cn)
    emails[type eq "work"].value = lower(first(mail))
    active                       = !hasValue(nsAccountLock, "true")
  }
}
class groups {
  base     = ["ou=Groups,%BASE%", "cn=nested,ou=Groups,%BASE%"]
  when     = hasValue(objectClass, "groupOfNames")
  endpoint = Groups
  map {
    displayName = first(cn)
    members     = ref(member, Users, Groups)
  }
}
`

// ldapTree adds the test's own subtree to srv: ou=PREFIX with ou=People
// (users PREFIX-u000…) and ou=Groups (PREFIX-all, of the first members
// users), and returns the subtree's DN.
func ldapTree(t *testing.T, srv ldaptest.Server, c *ldap.Conn, prefix string, users, members int) string {
	t.Helper()
	base := "ou=" + prefix + "," + srv.Base
	add := func(dn string, attrs map[string][]string) {
		req := ldap.NewAddRequest(dn, nil)
		for _, k := range sortedKeys(attrs) {
			req.Attribute(k, attrs[k])
		}
		if err := c.Add(req); err != nil {
			t.Fatalf("add %s: %v", dn, err)
		}
	}
	add(base, map[string][]string{"objectClass": {"top", "organizationalUnit"}, "ou": {prefix}})
	add("ou=People,"+base, map[string][]string{"objectClass": {"top", "organizationalUnit"}, "ou": {"People"}})
	add("ou=Groups,"+base, map[string][]string{"objectClass": {"top", "organizationalUnit"}, "ou": {"Groups"}})
	var dns []string
	for i := 0; i < users; i++ {
		uid := fmt.Sprintf("%s-u%03d", prefix, i)
		dn := "uid=" + uid + ",ou=People," + base
		dns = append(dns, dn)
		add(dn, map[string][]string{
			"objectClass": {"top", "person", "organizationalPerson", "inetOrgPerson"},
			"uid":         {uid}, "cn": {fmt.Sprintf("User %d", i)}, "sn": {"Number"},
			"mail": {strings.ToUpper(uid) + "@Example.com"}, "employeeNumber": {fmt.Sprint(i)},
		})
	}
	add("cn="+prefix+"-all,ou=Groups,"+base, map[string][]string{
		"objectClass": {"top", "groupOfNames"}, "cn": {prefix + "-all"}, "member": dns[:members],
	})
	t.Cleanup(func() { deleteTree(c, base) })
	return base
}

func sortedKeys(m map[string][]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// deleteTree removes base and everything under it, deepest first.
func deleteTree(c *ldap.Conn, base string) {
	res, err := c.SearchWithPaging(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"1.1"}, nil), 500)
	if err != nil {
		return
	}
	sort.Slice(res.Entries, func(i, j int) bool { return len(res.Entries[i].DN) > len(res.Entries[j].DN) })
	for _, e := range res.Entries {
		_ = c.Del(ldap.NewDelRequest(e.DN, nil))
	}
}

// ldapFixture is a pipe over one LDAP server's test subtree and a SCIM
// client with its own User-Agent.
type ldapFixture struct {
	*fixture
	srv    ldaptest.Server
	conn   *ldap.Conn
	prefix string
	base   string
}

func newLDAPFixture(t *testing.T, srv ldaptest.Server, kind string, users, members int) *ldapFixture {
	t.Helper()
	env := scimtest.Server(t)
	c := srv.Dial(t)
	prefix := scimtest.Unique("lr")
	base := ldapTree(t, srv, c, prefix, users, members)
	t.Setenv("LDAP_TEST_BIND_DN", srv.BindDN)
	t.Setenv("LDAP_TEST_BIND_PW", srv.BindPW)
	script := strings.NewReplacer("%KIND%", kind, "%URL%", srv.URL, "%SUFFIX%", srv.Base, "%BASE%", base).Replace(ldapScript)
	p, err := lang.Load("ldap.pipe", script, lang.LoadOptions{LookupEnv: os.LookupEnv})
	if err != nil {
		t.Fatal(err)
	}
	cfg := p.SCIM
	ua := scimtest.UserAgent(t)
	cfg.UserAgent = ua
	client, err := scim.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, env: env, pipe: p, dest: &Destination{Client: client, Pipe: p}, ev: p.NewEvaluator(), client: client, ua: ua}
	return &ldapFixture{fixture: f, srv: srv, conn: c, prefix: prefix, base: base}
}

// entries opens LDAPEntries over the fixture's pipe.
func (f *ldapFixture) entries(opts LDAPOptions) *LDAPEntries {
	f.t.Helper()
	if opts.PageSize == 0 {
		opts.PageSize = 64 // several pages even in a small directory
	}
	le, err := NewLDAPEntries(context.Background(), f.pipe, opts)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { le.Close() })
	return le
}

// resyncLDAP runs Resync over le, references read through le as the
// command does; dryRun collects the requests instead of sending them.
func (f *ldapFixture) resyncLDAP(le *LDAPEntries, dryRun *[]string) *Stats {
	f.t.Helper()
	d := *f.dest
	var mu sync.Mutex
	if dryRun != nil {
		d.DryRun = func(method, path string, _ []byte) {
			mu.Lock()
			*dryRun = append(*dryRun, method+" "+path)
			mu.Unlock()
		}
	}
	var failed []string
	opts := ResyncOptions{
		Workers: 4,
		Refs:    &RefResolver{Pipe: f.pipe, Dest: &d, Mode: lang.Resync, Placeholder: dryRun != nil, Entry: le.Get},
		Failed:  func(dn string, err error) { mu.Lock(); failed = append(failed, dn+": "+err.Error()); mu.Unlock() },
	}
	st, err := Resync(context.Background(), f.pipe, &d, le, opts)
	if err != nil {
		f.t.Fatal(err)
	}
	if len(failed) > 0 {
		f.t.Fatalf("%d failed, first: %s", len(failed), failed[0])
	}
	return st
}

// scimUsers returns userName → id of the SCIM users whose userName starts
// with the fixture's prefix.
func (f *ldapFixture) scimUsers() map[string]string {
	f.t.Helper()
	// POST /.search: the test server ignores paging parameters in a query string.
	out := map[string]string{}
	for start := 1; start < 100000; {
		body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"userName sw \"%s-\"","startIndex":%d,"count":100}`, f.prefix, start)
		r, err := f.client.Do(context.Background(), http.MethodPost, "/Users/.search", []byte(body))
		if err != nil {
			f.t.Fatal(err)
		}
		page := gjson.GetBytes(r.Body, "Resources").Array()
		for _, u := range page {
			out[u.Get("userName").String()] = u.Get("id").String()
		}
		if len(page) == 0 || start+len(page) > int(gjson.GetBytes(r.Body, "totalResults").Int()) {
			break
		}
		start += len(page)
	}
	return out
}

func TestLDAPEntriesResync(t *testing.T) {
	for _, tc := range []struct {
		name, kind string
		server     func(testing.TB) ldaptest.Server
	}{
		{"openldap", "syncrepl", ldaptest.OpenLDAP},
		{"389ds", "changelog", ldaptest.DS389},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const users, members = 300, 200
			f := newLDAPFixture(t, tc.server(t), tc.kind, users, members)
			le := f.entries(LDAPOptions{})
			if got, want := le.Bases(), []string{"ou=People," + f.base, "ou=Groups," + f.base}; strings.Join(got, ";") != strings.Join(want, ";") {
				t.Errorf("bases %q, want %q (the nested group base is under ou=Groups)", got, want)
			}
			// The users, the group, and the two ou entries (out of scope).
			if n := le.Count(); n != users+1+2 {
				t.Errorf("Count = %d, want %d", n, users+3)
			}

			// Into an empty service: every user and the group, members resolved.
			st := f.resyncLDAP(le, nil)
			if st.Created.Load() != users+1 || st.OutOfScope.Load() != 2 || st.Done.Load() != users+3 {
				t.Fatalf("first resync: %d created, %d out of scope, %d done", st.Created.Load(), st.OutOfScope.Load(), st.Done.Load())
			}
			ids := f.scimUsers()
			if len(ids) != users {
				t.Fatalf("%d users in SCIM, want %d", len(ids), users)
			}
			u7 := gjson.ParseBytes(mustGet(t, f.client, "/Users/"+ids[f.prefix+"-u007"]))
			if u7.Get("emails.0.value").String() != f.prefix+"-u007@example.com" || u7.Get("displayName").String() != "User 7" {
				t.Errorf("user 7: %s", u7.Raw)
			}
			found, _, err := f.client.Search(context.Background(), "/Groups", `displayName eq "`+f.prefix+`-all"`, false)
			if err != nil || len(found) != 1 {
				t.Fatalf("group: %v, %d found", err, len(found))
			}
			var got, want []string
			for _, m := range gjson.GetBytes(found[0], "members.#.value").Array() {
				got = append(got, m.String())
			}
			for i := 0; i < members; i++ {
				want = append(want, ids[fmt.Sprintf("%s-u%03d", f.prefix, i)])
			}
			sort.Strings(got)
			sort.Strings(want)
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("group members: %d, want the %d first users", len(got), len(want))
			}

			// Again: everything unchanged, no write request.
			seq := lastSeq(t, f.env, f.ua)
			st = f.resyncLDAP(f.entries(LDAPOptions{}), nil)
			if st.Unchanged.Load() != users+1 || st.Requests.Load() != 0 {
				t.Errorf("second resync: %d unchanged, %d requests", st.Unchanged.Load(), st.Requests.Load())
			}
			if w := writesSince(t, f.env, f.ua, seq); len(w) > 0 {
				t.Errorf("second resync wrote: %v", w)
			}

			// Edits in LDAP, seen by a dry run: the two PATCHes shown in the
			// Bulk request a resync would send them in (the service
			// advertises Bulk), none sent.
			for _, i := range []int{3, 150} {
				dn := fmt.Sprintf("uid=%s-u%03d,ou=People,%s", f.prefix, i, f.base)
				req := ldap.NewModifyRequest(dn, nil)
				req.Replace("cn", []string{"Renamed"})
				if err := f.conn.Modify(req); err != nil {
					t.Fatal(err)
				}
			}
			seq = lastSeq(t, f.env, f.ua)
			var shown []string
			st = f.resyncLDAP(f.entries(LDAPOptions{}), &shown)
			sort.Strings(shown)
			if st.Updated.Load() != 2 || len(shown) != 1 || shown[0] != "POST /Bulk" {
				t.Errorf("dry run: %d updated, shown %v", st.Updated.Load(), shown)
			}
			if w := writesSince(t, f.env, f.ua, seq); len(w) > 0 {
				t.Errorf("the dry run wrote: %v", w)
			}

			// --filter: only the matching entries (u010 … u019 and the edited u003).
			seq = lastSeq(t, f.env, f.ua)
			le = f.entries(LDAPOptions{Filter: "(|(uid=" + f.prefix + "-u01*)(cn=Renamed))"})
			if n := le.Count(); n != 12 {
				t.Errorf("filtered Count = %d, want 12", n)
			}
			st = f.resyncLDAP(le, nil)
			if st.Done.Load() != 12 || st.Updated.Load() != 2 || st.Unchanged.Load() != 10 {
				t.Errorf("filtered resync: %d done, %d updated, %d unchanged", st.Done.Load(), st.Updated.Load(), st.Unchanged.Load())
			}
			if w := writesSince(t, f.env, f.ua, seq); len(w) != 1 || w[0] != "POST /Bulk" {
				t.Errorf("filtered resync wrote %v, want its 2 PATCHes in one Bulk request", w)
			}

			// --dn-file: the listed DNs, a missing one skipped.
			le = f.entries(LDAPOptions{DNs: []string{
				fmt.Sprintf("uid=%s-u001,ou=People,%s", f.prefix, f.base),
				"uid=nobody,ou=People," + f.base,
				fmt.Sprintf("cn=%s-all,ou=Groups,%s", f.prefix, f.base),
			}})
			st = f.resyncLDAP(le, nil)
			if st.Done.Load() != 2 || st.Unchanged.Load() != 2 {
				t.Errorf("DN list: %d done, %d unchanged", st.Done.Load(), st.Unchanged.Load())
			}
		})
	}
}

func mustGet(t *testing.T, c *scim.Client, path string) []byte {
	t.Helper()
	b, err := c.Get(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSearchBases(t *testing.T) {
	load := func(src, classes string) *lang.Pipe {
		t.Helper()
		script := `pipe "b"
source syncrepl {
  url = "ldap://127.0.0.1:1"
  ` + src + `
}
scim { url = "http://127.0.0.1:1/scim" }
endpoint Users { path = "/Users"
  schemas = ["urn:ietf:params:scim:schemas:core:2.0:User"]
  lookup = "userName eq " + scimQuote(first(uid)) }
` + classes
		p, err := lang.Load("b.pipe", script, lang.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	class := func(name, base string) string {
		b := ""
		if base != "" {
			b = "base = " + base + "\n"
		}
		return "class " + name + " {\n" + b + "endpoint = Users\nmap { userName = first(uid) }\n}\n"
	}
	for _, tc := range []struct {
		name, src, classes string
		want               string
		err                string
	}{
		{"class bases", `base = "dc=example,dc=com"`,
			class("a", `["ou=People,dc=example,dc=com", "ou=Staff,ou=People,dc=example,dc=com"]`) + class("b", `"ou=Groups,dc=example,dc=com"`),
			"ou=People,dc=example,dc=com;ou=Groups,dc=example,dc=com", ""},
		{"a class without base reads the source's", `base = "dc=example,dc=com"`,
			class("a", `"ou=People,dc=example,dc=com"`) + class("b", ""), "dc=example,dc=com", ""},
		{"narrowed to the source", `base = "ou=People,dc=example,dc=com"`,
			class("a", `"dc=example,dc=com"`), "ou=People,dc=example,dc=com", ""},
		{"outside the source", `base = "ou=People,dc=example,dc=com"`,
			class("a", `"ou=Groups,dc=example,dc=com"`), "", "no class base is under the source's base"},
		{"no base anywhere", ``, class("a", ""), "", ""},
		{"class bases, no source base", ``, class("a", `"OU=People,dc=example,dc=com"`) + class("b", `"ou=people,dc=example,dc=com"`),
			"ou=People,dc=example,dc=com", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := searchBases(load(tc.src, tc.classes))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ";") != tc.want {
				t.Errorf("bases %q, want %q", strings.Join(got, ";"), tc.want)
			}
		})
	}
}

func TestSearchAttributes(t *testing.T) {
	f := newFixtureNoServer(t)
	got := strings.Join(searchAttributes(f), ",")
	for _, want := range []string{"*", "nsaccountlock", "entryuuid", "nsUniqueId", "uid"} {
		if !strings.Contains(","+got+",", ","+want+",") {
			t.Errorf("attributes %s lack %s", got, want)
		}
	}
}

func newFixtureNoServer(t *testing.T) *lang.Pipe {
	t.Helper()
	script := strings.NewReplacer("%UPDATE%", "patch", "%ONDELETE%", "delete").Replace(destScript)
	p, err := lang.Load("dest.pipe", script, lang.LoadOptions{LookupEnv: func(string) (string, bool) { return "http://127.0.0.1:1/scim", true }})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMatchFilter(t *testing.T) {
	e := lang.NewEntry("uid=ann,ou=People,dc=example,dc=com", []lang.Attr{
		{Name: "uid", Values: []string{"ann"}},
		{Name: "cn", Values: []string{"Ann Lee"}},
		{Name: "mail", Values: []string{"Ann.Lee@Example.com"}},
		{Name: "employeeNumber", Values: []string{"42"}},
		{Name: "objectClass", Values: []string{"top", "inetOrgPerson"}},
	})
	for filter, want := range map[string]bool{
		"(uid=ann)":                    true,
		"uid=ANN":                      true,
		"(UID=bob)":                    false,
		"(mail=*)":                     true,
		"(title=*)":                    false,
		"(objectClass=*)":              true,
		"(cn=ann*)":                    true,
		"(cn=*lee)":                    true,
		"(cn=a*n*e)":                   true,
		"(cn=a*x*e)":                   false,
		"(employeeNumber>=5)":          true, // numerically, not "42" < "5"
		"(employeeNumber<=41)":         false,
		"(&(uid=ann)(!(cn=Bob*)))":     true,
		"(|(uid=bob)(mail=ann.lee@*))": true,
		"(&(uid=ann)(title=x))":        false,
		"(cn~=ann lee)":                true,
		"(cn=Ann\\20Lee)":              true,
	} {
		m, err := MatchFilter(filter)
		if err != nil {
			t.Errorf("%s: %v", filter, err)
			continue
		}
		if got := m(e); got != want {
			t.Errorf("%s: %v, want %v", filter, got, want)
		}
	}
	for _, bad := range []string{"(uid=ann", "(uid:caseExactMatch:=ann)", "((x))"} {
		if _, err := MatchFilter(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	if _, err := SearchFilter("(uid=ann"); err == nil || !strings.Contains(err.Error(), "invalid LDAP filter") {
		t.Errorf("SearchFilter: %v", err)
	}
	if f, _ := SearchFilter("uid=ann"); f != "(&(objectClass=*)(uid=ann))" {
		t.Errorf("SearchFilter = %s", f)
	}
}

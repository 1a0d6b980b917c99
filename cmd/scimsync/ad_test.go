package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/source/ldaptest"
)

// The tests in this file run the `scimsync` binary with the shipped
// scripts/ad-to-scim.pipe (DirSync) against the shared Samba AD domain
// controller that .ci/samba.sh starts (ldaptest.AD), as a new user would:
// each test works in an OU of its own, given as LDAP_BASE. The DC is never
// restarted (its port is fixed, one per machine), so nothing here stops it.
// engine/ad_test.go covers each kind of change in real time, in-process.

const adPipePath = "../../scripts/ad-to-scim.pipe"

// newADPipe is newLDAPPipe with the shipped AD pipe.
func newADPipe(t *testing.T, srv ldaptest.Server) *ldapPipe {
	t.Helper()
	p := newLDAPPipe(t, srv)
	p.pipe = adPipePath
	return p
}

// adUser is what the shipped pipe makes of an AD user, as the test reads it
// from the directory (want) or from SCIM (got).
type adUser struct {
	ExternalID, DisplayName, Title, Mail string
	Active                               bool
}

// adGroup is a group: its externalId and its members' externalIds, sorted.
type adGroup struct {
	ExternalID string
	Members    []string
}

// adView is a set of users by userName and groups by displayName.
type adView struct {
	Users  map[string]adUser
	Groups map[string]adGroup
}

// adDirectory reads what the directory says under base (one LDAP search):
// every user and group mapped as scripts/ad-to-scim.pipe maps it, the
// members by objectGUID. It is the oracle the SCIM state is compared with.
func adDirectory(t *testing.T, c *ldap.Conn, base string) adView {
	t.Helper()
	res, err := c.SearchWithPaging(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(|(&(objectClass=user)(!(objectClass=computer)))(objectClass=group))",
		[]string{"objectGUID", "objectClass", "userPrincipalName", "displayName", "cn", "title", "mail", "userAccountControl", "member"}, nil), 500)
	must(t, err)
	guid := map[string]string{} // lower-case DN -> externalId
	for _, e := range res.Entries {
		guid[strings.ToLower(e.DN)] = ldaptest.ADGUID(e)
	}
	v := adView{Users: map[string]adUser{}, Groups: map[string]adGroup{}}
	for _, e := range res.Entries {
		if slices.ContainsFunc(e.GetAttributeValues("objectClass"), func(s string) bool { return strings.EqualFold(s, "group") }) {
			g := adGroup{ExternalID: ldaptest.ADGUID(e)}
			for _, m := range e.GetAttributeValues("member") {
				id, ok := guid[strings.ToLower(m)]
				if !ok {
					t.Fatalf("group %s has member %s from outside %s: the test keeps members inside", e.DN, m, base)
				}
				g.Members = append(g.Members, id)
			}
			slices.Sort(g.Members)
			v.Groups[e.GetAttributeValue("cn")] = g
			continue
		}
		uac, err := strconv.ParseUint(e.GetAttributeValue("userAccountControl"), 10, 32)
		must(t, err)
		name := e.GetAttributeValue("displayName")
		if name == "" {
			name = e.GetAttributeValue("cn")
		}
		v.Users[e.GetAttributeValue("userPrincipalName")] = adUser{ExternalID: ldaptest.ADGUID(e), DisplayName: name,
			Title: e.GetAttributeValue("title"), Mail: strings.ToLower(e.GetAttributeValue("mail")), Active: uac&2 == 0}
	}
	return v
}

// scimList returns every resource at endpoint whose attr starts with
// prefix (POST /.search, paged: the test server pages 20 at a time).
func (p *ldapPipe) scimList(endpoint, attr, prefix string) []gjson.Result {
	p.t.Helper()
	var out []gjson.Result
	for start := 1; ; {
		req := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":%q,"startIndex":%d,"count":100}`,
			attr+` sw "`+prefix+`"`, start)
		r, err := p.client.Do(context.Background(), http.MethodPost, endpoint+"/.search", []byte(req))
		must(p.t, err)
		page := gjson.GetBytes(r.Body, "Resources").Array()
		out = append(out, page...)
		start += len(page)
		if len(page) == 0 || start > int(gjson.GetBytes(r.Body, "totalResults").Int()) {
			return out
		}
	}
}

// adSCIM reads what SCIM holds for the test: users whose userName and
// groups whose displayName start with prefix, members as externalIds. A
// resource there twice, or a member that is not one of these resources,
// fails the test.
func (p *ldapPipe) adSCIM(prefix string) adView {
	p.t.Helper()
	v := adView{Users: map[string]adUser{}, Groups: map[string]adGroup{}}
	ext := map[string]string{} // SCIM id -> externalId
	for _, u := range p.scimList("/Users", "userName", prefix) {
		name := u.Get("userName").Str
		if _, dup := v.Users[name]; dup {
			p.t.Errorf("user %s is in SCIM twice", name)
		}
		mail := ""
		for _, e := range u.Get("emails").Array() {
			if e.Get("type").Str == "work" {
				mail = e.Get("value").Str
			}
		}
		v.Users[name] = adUser{ExternalID: u.Get("externalId").Str, DisplayName: u.Get("displayName").Str,
			Title: u.Get("title").Str, Mail: mail, Active: u.Get("active").Bool()}
		ext[u.Get("id").Str] = u.Get("externalId").Str
	}
	groups := p.scimList("/Groups", "displayName", prefix)
	for _, g := range groups {
		ext[g.Get("id").Str] = g.Get("externalId").Str
	}
	for _, g := range groups {
		name := g.Get("displayName").Str
		if _, dup := v.Groups[name]; dup {
			p.t.Errorf("group %s is in SCIM twice", name)
		}
		ag := adGroup{ExternalID: g.Get("externalId").Str}
		for _, m := range g.Get("members").Array() {
			id, ok := ext[m.Get("value").Str]
			if !ok {
				p.t.Errorf("group %s has a member %s that is none of the test's resources", name, m.Raw)
				continue
			}
			ag.Members = append(ag.Members, id)
		}
		slices.Sort(ag.Members)
		v.Groups[name] = ag
	}
	return v
}

// adCompare reports every difference between the directory's view and
// SCIM's: missing, extra and differing users and groups.
func adCompare(t *testing.T, when string, want, got adView) {
	t.Helper()
	for name, w := range want.Users {
		if g, ok := got.Users[name]; !ok {
			t.Errorf("%s: user %s is missing in SCIM", when, name)
		} else if g != w {
			t.Errorf("%s: user %s\n SCIM      %+v\n directory %+v", when, name, g, w)
		}
	}
	for name := range got.Users {
		if _, ok := want.Users[name]; !ok {
			t.Errorf("%s: user %s is in SCIM, not in the directory", when, name)
		}
	}
	for name, w := range want.Groups {
		if g, ok := got.Groups[name]; !ok {
			t.Errorf("%s: group %s is missing in SCIM", when, name)
		} else if g.ExternalID != w.ExternalID || !slices.Equal(g.Members, w.Members) {
			t.Errorf("%s: group %s\n SCIM      %+v\n directory %+v", when, name, g, w)
		}
	}
	for name := range got.Groups {
		if _, ok := want.Groups[name]; !ok {
			t.Errorf("%s: group %s is in SCIM, not in the directory", when, name)
		}
	}
}

// cleanGroups deletes the SCIM groups a test made, when it ends.
func (p *ldapPipe) cleanGroups(prefix string) {
	p.t.Cleanup(func() {
		for _, g := range p.scimList("/Groups", "displayName", prefix) {
			_ = p.client.Delete(context.Background(), "/Groups", g.Get("id").Str)
		}
	})
}

func adModify(t *testing.T, c *ldap.Conn, dn string, f func(*ldap.ModifyRequest)) {
	t.Helper()
	m := ldap.NewModifyRequest(dn, nil)
	f(m)
	ldapDo(t, "modify "+dn, c.Modify(m))
}

// adOU adds an organizational unit, removed with everything under it when
// the test ends (tree delete control).
func adOU(t *testing.T, c *ldap.Conn, dn string) {
	t.Helper()
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"top", "organizationalUnit"})
	ldapDo(t, "add "+dn, c.Add(req))
	t.Cleanup(func() {
		_ = c.Del(ldap.NewDelRequest(dn, []ldap.Control{ldap.NewControlString("1.2.840.113556.1.4.805", true, "")}))
	})
}

// TestADEndToEnd runs scripts/ad-to-scim.pipe as a new user would against
// the Samba AD DC. `resync` provisions users (one disabled: bit 2 of
// userAccountControl is active=false) and groups, one nested in another.
// Then the directory changes: 30 adds, attribute modifies, a rename (the
// cn, so displayName), a move to another OU inside the base (same
// resource) and one out of it (deleted), a disable and an enable, member
// adds and removes, a new group with a nested member, deletes of a user
// and a group (tombstones). `run --once` is killed with SIGKILL after 10
// changes and run again. After each step the SCIM state must equal what an
// LDAP search of the directory says, each resource once, nothing parked.
func TestADEndToEnd(t *testing.T) {
	t.Parallel()
	shared := ldaptest.AD(t)
	c := shared.Dial(t)
	prefix := scimtest.Unique("ad") // 15 characters: AD account names hold 20
	srv := shared.ADSubtree(t, c, prefix)
	p := newADPipe(t, srv)
	p.cleanUsers(prefix)
	p.cleanGroups(prefix)
	name := func(s string) string { return prefix + "-" + s }

	// before the resync
	u := map[string]ldaptest.ADUser{}
	for i, attrs := range []map[string][]string{
		{"title": {"Engineer"}, "mail": {"U0@Example.com"}, "givenName": {"Una"}, "sn": {"Zero"}},
		{"mail": {"u1@example.com"}},
		{"userAccountControl": {"546"}, "title": {"Contractor"}}, // disabled
		{"displayName": {"User Three"}},
		{},
	} {
		n := fmt.Sprintf("u%d", i)
		u[n] = srv.AddADUser(t, c, name(n), attrs)
	}
	inDN := srv.AddADGroup(t, c, name("gin"), u["u1"].DN, u["u2"].DN)
	outDN := srv.AddADGroup(t, c, name("gout"), u["u0"].DN, inDN)
	delDN := srv.AddADGroup(t, c, name("gdel"), u["u0"].DN)

	p.mustRun("set-startpoint", "--end")
	t0 := time.Now()
	out := p.mustRun("resync")
	t.Logf("resync: %v: %s", time.Since(t0).Round(time.Millisecond), lastLine(out))
	got := p.adSCIM(prefix)
	adCompare(t, "after resync", adDirectory(t, c, srv.Base), got)
	if got.Users[u["u2"].UPN].Active || !got.Users[u["u0"].UPN].Active {
		t.Errorf("active: u0 %v (enabled in AD), u2 %v (disabled)", got.Users[u["u0"].UPN].Active, got.Users[u["u2"].UPN].Active)
	}
	if t.Failed() {
		t.FailNow()
	}
	// the nested group is a member of type Group
	for _, g := range p.scimList("/Groups", "displayName", name("gout")) {
		types := g.Get("members.#.type").Array()
		if len(types) != 2 || !slices.ContainsFunc(types, func(r gjson.Result) bool { return r.Str == "Group" }) {
			t.Errorf("the outer group's members %s: want a user and a Group", g.Get("members").Raw)
		}
	}

	// the changes `run` must apply
	t1 := time.Now()
	changes := 0
	var bulk []ldaptest.ADUser
	for i := range 30 {
		bulk = append(bulk, srv.AddADUser(t, c, name(fmt.Sprintf("b%02d", i)), map[string][]string{"title": {"Bulk"}}))
		changes++
	}
	adModify(t, c, u["u0"].DN, func(m *ldap.ModifyRequest) {
		m.Replace("title", []string{"Lead"})
		m.Replace("mail", []string{"Lead." + prefix + "@Example.com"})
	})
	adModify(t, c, u["u1"].DN, func(m *ldap.ModifyRequest) { m.Delete("mail", nil) })
	changes += 2
	// rename: the cn changes, and with it displayName
	ldapDo(t, "rename", c.ModifyDN(ldap.NewModifyDNRequest(u["u1"].DN, "CN="+name("u1r"), true, "")))
	u1DN := "CN=" + name("u1r") + ",OU=People," + srv.Base
	// a move inside the base, and one out of it
	otherOU := "OU=Other," + srv.Base
	adOU(t, c, otherOU)
	ldapDo(t, "move in", c.ModifyDN(ldap.NewModifyDNRequest(u["u3"].DN, "CN="+name("u3"), true, otherOU)))
	u3DN := "CN=" + name("u3") + "," + otherOU
	outsideOU := "OU=" + prefix + "x," + shared.Base
	adOU(t, c, outsideOU)
	ldapDo(t, "move out", c.ModifyDN(ldap.NewModifyDNRequest(u["u4"].DN, "CN="+name("u4"), true, outsideOU)))
	changes += 3
	// disable one, enable another
	adModify(t, c, u["u0"].DN, func(m *ldap.ModifyRequest) { m.Replace("userAccountControl", []string{"546"}) })
	adModify(t, c, u["u2"].DN, func(m *ldap.ModifyRequest) { m.Replace("userAccountControl", []string{"544"}) })
	changes += 2
	// members: adds and removes, a user at its new DN
	adModify(t, c, outDN, func(m *ldap.ModifyRequest) {
		m.Add("member", []string{bulk[0].DN, bulk[1].DN})
		m.Delete("member", []string{u["u0"].DN})
	})
	adModify(t, c, inDN, func(m *ldap.ModifyRequest) { m.Add("member", []string{u3DN}) })
	adModify(t, c, inDN, func(m *ldap.ModifyRequest) { m.Delete("member", []string{u1DN}) })
	changes += 3
	srv.AddADGroup(t, c, name("gnew"), outDN, bulk[2].DN)
	changes++
	// deletes: tombstones. u2 is a member of gin: AD takes it out.
	ldapDo(t, "delete user", c.Del(ldap.NewDelRequest(u["u2"].DN, nil)))
	ldapDo(t, "delete group", c.Del(ldap.NewDelRequest(delDN, nil)))
	ldapDo(t, "delete bulk", c.Del(ldap.NewDelRequest(bulk[29].DN, nil)))
	changes += 3
	t.Logf("%d directory changes made in %v", changes, time.Since(t1).Round(time.Millisecond))

	// From here SCIM answers through a proxy that refuses every 7th
	// request with 503 and every 30th with 429 (Retry-After: 1): faults and
	// a kill -9 together, against AD.
	faults := newFaultyProxy(t, p.env.URL)
	for i, kv := range p.environ {
		if strings.HasPrefix(kv, "SCIM_URL=") {
			p.environ[i] = "SCIM_URL=" + faults.URL
		}
	}

	// run --once, killed after 10 applied changes
	t2 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := p.command(ctx, "run", "--once")
	stderr, err := cmd.StderrPipe()
	must(t, err)
	must(t, cmd.Start())
	sc := bufio.NewScanner(stderr)
	lines := 0
	for lines < 10 && sc.Scan() {
		if strings.Contains(sc.Text(), `"dn"`) {
			lines++
		}
	}
	killed := cmd.Process.Signal(syscall.SIGKILL) == nil
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !killed || !ok || !ws.Signaled() {
		t.Fatalf("the first run was not killed mid-stream (after %d lines): %v", lines, err)
	}
	t.Logf("run killed after %d applied changes, %v", lines, time.Since(t2).Round(time.Millisecond))

	t3 := time.Now()
	out = p.mustRun("run", "--once")
	t.Logf("second run: %v: %s", time.Since(t3).Round(time.Millisecond), lastLine(out))
	if strings.Contains(out, `"msg":"parked"`) {
		t.Errorf("the second run parked changes:\n%s", out)
	}
	n503, n429 := faults.counts()
	if n503 == 0 || n429 == 0 {
		t.Errorf("the proxy refused %d requests with 503 and %d with 429: the faults were not exercised", n503, n429)
	}
	t.Logf("SCIM faults during the runs: %d × 503, %d × 429", n503, n429)
	want := adDirectory(t, c, srv.Base)
	got = p.adSCIM(prefix)
	adCompare(t, "after run, kill -9 and run", want, got)
	// the comparison is only as good as the directory's answer: check that
	// it saw what the test did
	if _, ok := want.Users[u["u4"].UPN]; ok || len(want.Users) != 3+29 {
		t.Errorf("the directory holds %d users under the base (want 32: u0, u1, u3 and 29 added; not the deleted u2 or the moved-out %s)", len(want.Users), u["u4"].UPN)
	}
	if w := want.Users[u["u1"].UPN]; w.DisplayName != name("u1r") || w.Mail != "" {
		t.Errorf("the directory's renamed user: %+v", w)
	}
	if want.Users[u["u0"].UPN].Active || !want.Users[u["u3"].UPN].Active {
		t.Errorf("the directory's accounts: u0 %+v u3 %+v", want.Users[u["u0"].UPN], want.Users[u["u3"].UPN])
	}
	if _, ok := want.Groups[name("gdel")]; ok || len(want.Groups[name("gin")].Members) != 1 {
		t.Errorf("the directory's groups: %+v", want.Groups)
	}

	// a later run finds nothing to do
	out = p.mustRun("run", "--once")
	if strings.Contains(out, `"msg":"created"`) || strings.Contains(out, `"msg":"updated"`) || strings.Contains(out, `"msg":"deleted"`) {
		t.Errorf("a third run applied changes:\n%s", out)
	}
}

// externalIDs finds the externalId values in a dry run's output.
var externalIDs = regexp.MustCompile(`"externalId":\s*"([^"]*)"`)

// TestADBuiltinsStayOut: `resync --dry-run` of scripts/ad-to-scim.pipe with
// LDAP_BASE set to the whole domain shows none of the objects a fresh
// domain has from the start — Administrator, Guest, krbtgt, the domain
// controller's account, Domain Admins, Domain Users, CN=Builtin's groups —
// while the test's own user and group in an OU are shown. Before the pipe
// was scoped it showed 51 resources for a domain with 11 real entries.
func TestADBuiltinsStayOut(t *testing.T) {
	t.Parallel()
	shared := ldaptest.AD(t)
	c := shared.Dial(t)
	prefix := scimtest.Unique("ab")
	srv := shared.ADSubtree(t, c, prefix)
	mine := srv.AddADUser(t, c, prefix+"-u", nil)
	srv.AddADGroup(t, c, prefix+"-g", mine.DN)

	// the domain's own users and groups, as the directory lists them
	res, err := c.SearchWithPaging(ldap.NewSearchRequest(shared.Base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(&(|(objectClass=user)(objectClass=group))(isCriticalSystemObject=TRUE))", []string{"objectGUID", "cn"}, nil), 500)
	must(t, err)
	builtin := map[string]string{} // externalId -> cn
	for _, e := range res.Entries {
		builtin[ldaptest.ADGUID(e)] = e.GetAttributeValue("cn")
	}
	for _, n := range []string{"Administrator", "Guest", "krbtgt", "Domain Admins", "Domain Users", "Administrators"} {
		if !slices.Contains(slices.Collect(maps.Values(builtin)), n) {
			t.Fatalf("the domain has no built-in %q: is it a fresh Samba AD domain? (%d critical objects)", n, len(builtin))
		}
	}

	p := newADPipe(t, shared) // LDAP_BASE: the whole domain
	code, stdout, stderr := p.run("resync", "--dry-run")
	if code != 0 {
		// other tests change the shared domain meanwhile: an entry they
		// delete under the resync may fail it; what counts is below
		t.Logf("resync --dry-run: exit %d\n%s", code, stderr)
	}
	shown := map[string]bool{}
	for _, m := range externalIDs.FindAllStringSubmatch(stdout, -1) {
		shown[m[1]] = true
	}
	for id, cn := range builtin {
		if shown[id] {
			t.Errorf("the built-in %s (%s) would be provisioned", cn, id)
		}
	}
	for _, n := range []string{`"userName": "Administrator`, `"userName": "Guest`, `"userName": "krbtgt`, `"userName": "DC1$`,
		`"displayName": "Domain Admins"`, `"displayName": "Domain Users"`, `"displayName": "Administrators"`} {
		if strings.Contains(stdout, n) {
			t.Errorf("the dry run shows %s", n)
		}
	}
	// the test's own entries are shown: the scope is not simply empty
	own := adDirectory(t, c, srv.Base)
	for _, id := range []string{own.Users[mine.UPN].ExternalID, own.Groups[prefix+"-g"].ExternalID} {
		if !shown[id] {
			t.Errorf("the test's own entry %s is not shown:\n%s\n%s", id, stdout, stderr)
		}
	}
	t.Logf("%s; %d built-in objects left out", lastLine(stderr), len(builtin))
}

// faultyProxy forwards to the SCIM test server but answers every 7th
// request 503 and every 30th 429 with Retry-After: 1 (a 503 first when both
// apply), as a busy SaaS service would.
type faultyProxy struct {
	URL        string
	mu         sync.Mutex
	n          int
	c503, c429 int
}

func newFaultyProxy(t *testing.T, target string) *faultyProxy {
	t.Helper()
	u, err := url.Parse(target)
	must(t, err)
	f := &faultyProxy{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.n++
		n := f.n
		switch {
		case n%7 == 0:
			f.c503++
		case n%30 == 0:
			f.c429++
		}
		f.mu.Unlock()
		switch {
		case n%7 == 0:
			http.Error(w, "busy", http.StatusServiceUnavailable)
		case n%30 == 0:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL + u.Path
	return f
}

func (f *faultyProxy) counts() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.c503, f.c429
}

package engine

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/engine/source/ldaptest"
	"github.com/scimsync/scimsync/lang"
)

// bulkRun is one resync of a pipe script into one SCIM server.
type bulkRun struct {
	t       *testing.T
	env     scimtest.Env
	pipe    *lang.Pipe
	client  *scim.Client
	ua      string
	workers int // default 4
}

// newBulkRun loads script (its env() read from vars, then the process)
// against env, with a User-Agent of its own. The server must check Bulk
// operations as it checks single requests (scimtest.RequireBulkChecks).
func newBulkRun(t *testing.T, env scimtest.Env, script string, vars map[string]string, timeout time.Duration) *bulkRun {
	t.Helper()
	env.RequireBulkChecks(t)
	p, err := lang.Load("bulk.pipe", script, lang.LoadOptions{LookupEnv: func(k string) (string, bool) {
		if v, ok := vars[k]; ok {
			return v, true
		}
		switch k {
		case "SCIM_URL":
			return env.URL, true
		case "SCIM_TOKEN":
			return env.Token, true
		}
		return os.LookupEnv(k)
	}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := p.SCIM
	ua := scimtest.UserAgent(t)
	cfg.UserAgent = ua
	if timeout > 0 {
		cfg.Timeout = timeout
	}
	c, err := scim.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &bulkRun{t: t, env: env, pipe: p, client: c, ua: ua}
}

// resync runs Resync over src, references read through get, as the
// command does; tune may change the destination.
func (r *bulkRun) resync(src Entries, get func(string) (*lang.Entry, error), tune func(*Destination)) (*Stats, map[string]error) {
	r.t.Helper()
	d := &Destination{Client: r.client, Pipe: r.pipe}
	if tune != nil {
		tune(d)
	}
	var mu sync.Mutex
	failed := map[string]error{}
	opts := ResyncOptions{
		Workers: max(r.workers, 4*btoi(r.workers == 0)),
		Refs:    &RefResolver{Pipe: r.pipe, Dest: d, Mode: lang.Resync, Placeholder: d.DryRun != nil, Entry: get},
		Failed:  func(dn string, err error) { mu.Lock(); failed[source.NormalizeDN(dn)] = err; mu.Unlock() },
	}
	st, err := Resync(context.Background(), r.pipe, d, src, opts)
	if err != nil {
		r.t.Fatal(err)
	}
	return st, failed
}

// requests counts the logged requests by "METHOD /path" (ids cut off).
func (r *bulkRun) requests() map[string]int {
	out := map[string]int{}
	for _, q := range r.env.Requests(r.t, r.ua) {
		p := q.Path
		if i := strings.Index(p[1:], "/"); i >= 0 && !strings.HasSuffix(p, "/.search") {
			p = p[:i+1] + "/{id}"
		}
		out[q.Method+" "+p]++
	}
	return out
}

// writeOps is how many resources a logged write request asked the
// service to write: each operation of a POST /Bulk, else 1. Tests whose
// point is what is written, not how it travels, count these, so that they
// hold for the Bulk path (resync's default where the service advertises
// Bulk) and the single one alike.
func writeOps(q scimtest.Request) int {
	if n := len(gjson.GetBytes(q.Body, "Operations").Array()); q.Method == http.MethodPost && q.Path == "/Bulk" && n > 0 {
		return n
	}
	return 1
}

// spcReads counts the GET /ServiceProviderConfig this fixture's client
// has sent.
func (f *fixture) spcReads() int {
	n := 0
	for _, q := range f.env.Requests(f.t, f.ua) {
		if q.Path == "/ServiceProviderConfig" {
			n++
		}
	}
	return n
}

// withBulk puts settings into a script's scim block.
func withBulk(script, settings string) string {
	i := strings.Index(script, "scim {\n")
	if i < 0 || settings == "" {
		return script
	}
	i += len("scim {\n")
	return script[:i] + settings + script[i:]
}

// scimState is a SCIM server's resources as the pipe manages them: each
// User by userName and each Group by displayName, with id and meta left
// out and group members named by their userName or displayName, so that
// two servers' states compare whatever ids they gave.
func scimState(t *testing.T, env scimtest.Env, prefix string) map[string]string {
	t.Helper()
	resp, err := http.Get(env.ControlURL + "/dump")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var dump map[string][]map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&dump); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, u := range dump["Users"] {
		names[u["id"].(string)] = "user:" + fmt.Sprint(u["userName"])
	}
	for _, g := range dump["Groups"] {
		names[g["id"].(string)] = "group:" + fmt.Sprint(g["displayName"])
	}
	out := map[string]string{}
	for kind, list := range dump {
		for _, res := range list {
			delete(res, "meta")
			key := names[res["id"].(string)]
			delete(res, "id")
			if !strings.Contains(key, prefix) {
				continue
			}
			if ms, ok := res["members"].([]any); ok {
				var named []string
				for _, m := range ms {
					mm := m.(map[string]any)
					named = append(named, names[fmt.Sprint(mm["value"])]+"/"+fmt.Sprint(mm["type"]))
				}
				sort.Strings(named)
				res["members"] = named
			}
			b, _ := json.Marshal(res)
			if _, dup := out[key]; dup {
				t.Errorf("%s: two resources named %s", kind, key)
			}
			out[key] = string(b)
		}
	}
	return out
}

// bulkDirectory fills an OpenLDAP subtree with users users and the groups
// "all" (every user), "half" (the first half and the nested group
// "inner") and "inner" (the first user), and returns the subtree.
func bulkDirectory(t *testing.T, prefix string, users int) ldaptest.Server {
	t.Helper()
	srv := ldaptest.OpenLDAP(t)
	c := srv.Dial(t)
	sub := srv.Subtree(t, c, prefix)
	var dns []string
	for i := 0; i < users; i++ {
		uid := fmt.Sprintf("%s-u%03d", prefix, i)
		dns = append(dns, sub.AddUser(t, c, uid, map[string][]string{
			"givenName": {"User"}, "mail": {uid + "@Example.com"}, "title": {"Engineer"}, "employeeNumber": {fmt.Sprint(i)}}))
	}
	group := func(name string, members []string) {
		dn := "cn=" + prefix + "-" + name + ",ou=Groups," + sub.Base
		req := ldap.NewAddRequest(dn, nil)
		req.Attribute("objectClass", []string{"top", "groupOfNames"})
		req.Attribute("cn", []string{prefix + "-" + name})
		req.Attribute("member", members)
		if err := c.Add(req); err != nil {
			t.Fatalf("add %s: %v", dn, err)
		}
	}
	inner := "cn=" + prefix + "-inner,ou=Groups," + sub.Base
	group("all", dns)
	group("half", append(slices.Clone(dns[:users/2]), inner))
	group("inner", dns[:1])
	return sub
}

// TestResyncBulkSameStateAsSingle (issue 15 #4 #5): a resync from slapd
// of users and nested groups into an empty service with bulk on sends the
// creates in about users/bulkMaxOperations BulkRequests, no single POST,
// and leaves the service in exactly the state a resync with bulk off
// leaves another empty service in: every managed attribute and every
// group's members.
func TestResyncBulkSameStateAsSingle(t *testing.T) {
	const users, maxOps = 30, 8
	prefix := ldaptest.Unique("rbs")
	sub := bulkDirectory(t, prefix, users)
	vars := map[string]string{"LDAP_URL": sub.URL, "LDAP_BASE": sub.Base, "LDAP_BIND_DN": sub.BindDN, "LDAP_BIND_PW": sub.BindPW}
	states := map[string]map[string]string{}
	for _, mode := range []string{"off", "on"} {
		env := scimtest.Private(t)
		r := newBulkRun(t, env, withBulk(pipeText(t, "openldap-to-scim.pipe"),
			fmt.Sprintf("  bulk = %q\n  bulkMaxOperations = %d\n", mode, maxOps)), vars, 0)
		le, err := NewLDAPEntries(context.Background(), r.pipe, LDAPOptions{PageSize: 16})
		if err != nil {
			t.Fatal(err)
		}
		st, failed := r.resync(le, le.Get, nil)
		le.Close()
		if len(failed) > 0 || st.Created.Load() != users+3 {
			t.Fatalf("bulk %s: created %d, failed %v", mode, st.Created.Load(), failed)
		}
		reqs := r.requests()
		if mode == "on" {
			if reqs["POST /Users"]+reqs["POST /Groups"] != 0 {
				t.Errorf("bulk on sent single creates: %v", reqs)
			}
			// ⌈30/8⌉ = 4 for the users; the groups in pass 2 take one, or
			// up to three when "half" waits for "inner" in a later pass.
			if n := reqs["POST /Bulk"]; n < 5 || n > 7 {
				t.Errorf("bulk on: %d BulkRequests, want 5 to 7: %v", n, reqs)
			}
		} else if reqs["POST /Bulk"] != 0 || reqs["POST /Users"] != users {
			t.Errorf("bulk off: %v", reqs)
		}
		states[mode] = scimState(t, env, prefix)
	}
	if len(states["on"]) != users+3 {
		t.Errorf("bulk on: %d resources, want %d", len(states["on"]), users+3)
	}
	for k, want := range states["off"] {
		if got := states["on"][k]; got != want {
			t.Errorf("%s:\n bulk on  %s\n bulk off %s", k, got, want)
		}
	}
	for k := range states["on"] {
		if _, ok := states["off"][k]; !ok {
			t.Errorf("%s: only with bulk on", k)
		}
	}
	if g := states["on"]["group:"+prefix+"-half"]; !strings.Contains(g, "group:"+prefix+"-inner/Group") {
		t.Errorf("the nested group is not a member of half: %s", g)
	}
}

// usersLDIF is a directory of n users, with nothing to refer to.
func usersLDIF(t *testing.T, prefix string, n int, extra string) *source.Directory {
	t.Helper()
	var b strings.Builder
	for i := 0; i < n; i++ {
		uid := fmt.Sprintf("%s-u%03d", prefix, i)
		fmt.Fprintf(&b, "dn: uid=%s,ou=People,dc=example,dc=com\nuid: %s\nentryUUID: uuid-%s\ngivenName: User\nsn: Number %d\ncn: User %d\nmail: %s@example.com\n%s\n",
			uid, uid, uid, i, i, uid, extra)
	}
	_, dir, err := source.ReadLDIF(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func dirGet(dir *source.Directory) func(string) (*lang.Entry, error) {
	return func(dn string) (*lang.Entry, error) { return dir.Get(dn), nil }
}

// noAdopt is the destination tests' pipe without adopt: a 409 fails.
var noAdopt = strings.NewReplacer("%UPDATE%", "patch", "%ONDELETE%", "delete", "  adopt   = true\n", "").Replace(destScript)

// TestResyncBulkOneBadEntryFailsAlone: a user whose userName the service
// refuses (409: another resource holds it) fails alone, with the error a
// single POST gets; the others of its BulkRequest are created, counted and
// reported applied. Bulk off fails the same entry with the same status.
func TestResyncBulkOneBadEntryFailsAlone(t *testing.T) {
	env := scimtest.Server(t)
	const users = 12
	for _, mode := range []string{"off", "on"} {
		t.Run(mode, func(t *testing.T) {
			prefix := scimtest.Unique("rbb")
			r := newBulkRun(t, env, withBulk(noAdopt, fmt.Sprintf("  bulk = %q\n  bulkMaxOperations = 5\n", mode)), nil, 0)
			// The userName of u003, held by a resource the lookup (by
			// externalId) does not find.
			squatter, err := r.client.Create(context.Background(), "/Users", []byte(`{"schemas":["`+scim.URNUser+`"],"userName":"`+prefix+`-u003"}`))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = r.client.Delete(context.Background(), "/Users", string(bytesField(squatter, "id"))) }()
			dir := usersLDIF(t, prefix, users, "")
			var appliedMu sync.Mutex
			applied := 0
			d := &Destination{Client: r.client, Pipe: r.pipe}
			failed := map[string]error{}
			st, err := Resync(context.Background(), r.pipe, d, &DirectoryEntries{Dir: dir}, ResyncOptions{
				Workers: 4,
				Refs:    &RefResolver{Pipe: r.pipe, Dest: d, Mode: lang.Resync, Entry: dirGet(dir)},
				Failed:  func(dn string, err error) { appliedMu.Lock(); failed[dn] = err; appliedMu.Unlock() },
				Applied: func(_ *lang.Entry, _ string, a Applied) {
					appliedMu.Lock()
					defer appliedMu.Unlock()
					if a.Outcome == Created && a.ID != "" {
						applied++
					}
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			bad := "uid=" + prefix + "-u003,ou=People,dc=example,dc=com"
			if len(failed) != 1 || !scim.IsStatus(failed[bad], http.StatusConflict) || st.Failed.Load() != 1 {
				t.Fatalf("failed %v, want only %s with a 409", failed, bad)
			}
			if !strings.HasPrefix(failed[bad].Error(), "create at /Users: scim: POST /Users: 409 Conflict (uniqueness)") {
				t.Errorf("the error reads %q", failed[bad])
			}
			if st.Created.Load() != users-1 || applied != users-1 {
				t.Errorf("created %d, reported applied %d, want %d", st.Created.Load(), applied, users-1)
			}
			for i := 0; i < users; i++ {
				found, _, err := r.client.Search(context.Background(), "/Users", `externalId eq "uuid-`+fmt.Sprintf("%s-u%03d", prefix, i)+`"`, false)
				if want := 1 - btoi(i == 3); err != nil || len(found) != want {
					t.Errorf("user %d: %d found (%v), want %d", i, len(found), err, want)
				}
				for _, u := range found {
					_ = r.client.Delete(context.Background(), "/Users", string(bytesField(u, "id")))
				}
			}
			if reqs := r.requests(); mode == "on" && (reqs["POST /Bulk"] != 3 || reqs["POST /Users"] != 1) {
				t.Errorf("requests %v, want 3 BulkRequests (12 creates by 5) and the squatter's POST", reqs)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestResyncBulkUnansweredIsLookedUpNotResent: a BulkRequest answered
// 503 by the service, or whose connection drops without an answer, may
// have been carried out: each of its creates is looked up first. After the
// service's own 503 (it has finished with the request) those not found are
// sent again: every user created once, no failure. After a dropped
// connection the service may still be at work on the request, so nothing
// is sent again: the creates fail as "may have been carried out", and the
// next resync, which looks them up, creates them — once each.
func TestResyncBulkUnansweredIsLookedUpNotResent(t *testing.T) {
	env := scimtest.Server(t)
	const users = 10
	for _, tt := range []struct {
		fault  scimtest.Fault
		resent bool
	}{
		{scimtest.Fault{Status: 503, Method: "POST", Path: "/Bulk"}, true},
		{scimtest.Fault{Drop: true, Method: "POST", Path: "/Bulk"}, false},
	} {
		t.Run(fmt.Sprintf("status %d drop %v", tt.fault.Status, tt.fault.Drop), func(t *testing.T) {
			prefix := scimtest.Unique("rbu")
			r := newBulkRun(t, env, withBulk(noAdopt, "  bulk = \"on\"\n"), nil, 0)
			tt.fault.UserAgent = r.ua
			env.Fault(t, tt.fault)
			dir := usersLDIF(t, prefix, users, "")
			st, failed := r.resync(&DirectoryEntries{Dir: dir}, dirGet(dir), nil)
			reqs := r.requests()
			if tt.resent {
				if len(failed) > 0 || st.Created.Load() != users {
					t.Fatalf("created %d, failed %v", st.Created.Load(), failed)
				}
				if reqs["POST /Bulk"] != 2 {
					t.Errorf("requests %v, want 2 BulkRequests (the one that failed, the one resent)", reqs)
				}
			} else {
				if len(failed) != users || st.Created.Load() != 0 || reqs["POST /Bulk"] != 1 {
					t.Fatalf("created %d, %d failed, requests %v; want every create failed and nothing resent", st.Created.Load(), len(failed), reqs)
				}
				for dn, err := range failed {
					if !strings.Contains(err.Error(), "it may have been carried out; it is looked up before being sent again") {
						t.Errorf("%s: %v", dn, err)
					}
				}
				if st, failed = r.resync(&DirectoryEntries{Dir: dir}, dirGet(dir), nil); len(failed) > 0 || st.Created.Load() != users {
					t.Fatalf("the next resync: created %d, failed %v", st.Created.Load(), failed)
				}
			}
			for i := 0; i < users; i++ {
				found, _, err := r.client.Search(context.Background(), "/Users", `userName eq "`+fmt.Sprintf("%s-u%03d", prefix, i)+`"`, false)
				if err != nil || len(found) != 1 {
					t.Errorf("user %d: %d found (%v), want 1", i, len(found), err)
				}
				for _, u := range found {
					_ = r.client.Delete(context.Background(), "/Users", string(bytesField(u, "id")))
				}
			}
		})
	}
}

// TestResyncBulkAutoSplitsByPayload: with bulk "auto" the limits come from
// the service's ServiceProviderConfig (a private server told to take at
// most 4 KiB per BulkRequest): the creates go in several requests, none
// refused as too large, and every user is created.
func TestResyncBulkAutoSplitsByPayload(t *testing.T) {
	env := scimtest.Private(t)
	body, _ := json.Marshal(map[string]any{"supported": true, "maxOperations": 1000, "maxPayloadSize": 4096})
	resp, err := http.Post(env.ControlURL+"/bulk", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("setting the bulk limits: %v %v", err, resp)
	}
	resp.Body.Close()
	const users = 40
	prefix := scimtest.Unique("rbp")
	r := newBulkRun(t, env, withBulk(noAdopt, "  bulk = \"auto\"\n"), nil, 0)
	dir := usersLDIF(t, prefix, users, "")
	st, failed := r.resync(&DirectoryEntries{Dir: dir}, dirGet(dir), nil)
	if len(failed) > 0 || st.Created.Load() != users {
		t.Fatalf("created %d, failed %v", st.Created.Load(), failed)
	}
	n, ops := 0, 0
	for _, q := range env.Requests(t, r.ua) {
		if q.Method == "POST" && q.Path == "/Bulk" {
			n++
			if q.Status != 200 {
				t.Errorf("a BulkRequest was answered %d", q.Status)
			}
			var doc struct{ Operations []json.RawMessage }
			_ = json.Unmarshal(q.Body, &doc)
			ops += len(doc.Operations)
		}
	}
	// Each create is about 400 bytes: 9 or 10 of them fit in 4 KiB.
	if n < 4 || n > 6 || ops != users {
		t.Errorf("%d BulkRequests carrying %d operations, want 4 to 6 carrying %d", n, ops, users)
	}
	if got := len(scimState(t, env, prefix)); got != users {
		t.Errorf("%d users at the service, want %d", got, users)
	}
}

// withPassword adds password = first(userPassword) to a destScript's people.
func withPassword(script string) string {
	return strings.Replace(script, "    title                        = first(title)\n",
		"    title                        = first(title)\n    password                     = first(userPassword)\n", 1)
}

// TestResyncBulkDryRun: a dry run with the default bulk setting ("auto"),
// into a service that advertises Bulk, shows the BulkRequest that would be
// sent, the password withheld, and sends no write.
func TestResyncBulkDryRun(t *testing.T) {
	env := scimtest.Server(t)
	script := withPassword(noAdopt)
	r := newBulkRun(t, env, script, nil, 0)
	prefix := scimtest.Unique("rbd")
	const pw = "Dry-Run-Secret-42"
	dir := usersLDIF(t, prefix, 3, "userPassword: "+pw+"\n")
	var shown []string
	st, failed := r.resync(&DirectoryEntries{Dir: dir}, dirGet(dir), func(d *Destination) {
		d.DryRun = func(method, path string, body []byte) { shown = append(shown, method+" "+path+" "+string(body)) }
	})
	if len(failed) > 0 || st.Created.Load() != 3 {
		t.Fatalf("created %d, failed %v", st.Created.Load(), failed)
	}
	if len(shown) != 1 || !strings.HasPrefix(shown[0], "POST /Bulk {") || strings.Count(shown[0], `"bulkId"`) != 3 {
		t.Fatalf("shown %v, want one BulkRequest of 3 creates", shown)
	}
	if strings.Contains(shown[0], pw) || !strings.Contains(shown[0], `"password":"(withheld)"`) {
		t.Errorf("the password is not withheld: %s", shown[0])
	}
	for k := range r.requests() {
		if !strings.HasPrefix(k, "GET ") {
			t.Errorf("a dry run sent %s", k)
		}
	}
}

// TestResyncBulkNestedGroupByBulkID: a group whose member is a group
// queued in the same BulkRequest refers to it as "bulkId:…" (RFC 7644
// §3.7.2), which the service resolves: both groups are created in one
// request of pass 2, with no further pass, and the outer group's member is
// the inner group's id.
func TestResyncBulkNestedGroupByBulkID(t *testing.T) {
	env := scimtest.Server(t)
	prefix := scimtest.Unique("rbn")
	user := "uid=" + prefix + "-u000,ou=People,dc=example,dc=com"
	ldif := fmt.Sprintf("dn: %s\nuid: %s-u000\nentryUUID: uuid-%s\ncn: U\nsn: U\n\n"+
		"dn: cn=%s-inner,ou=Groups,dc=example,dc=com\ncn: %s-inner\nmember: %s\n\n"+
		"dn: cn=%s-outer,ou=Groups,dc=example,dc=com\ncn: %s-outer\nmember: cn=%s-inner,ou=Groups,dc=example,dc=com\nmember: %s\n\n",
		user, prefix, prefix, prefix, prefix, user, prefix, prefix, prefix, user)
	_, dir, err := source.ReadLDIF(strings.NewReader(ldif))
	if err != nil {
		t.Fatal(err)
	}
	r := newBulkRun(t, env, withBulk(noAdopt, "  bulk = \"on\"\n"), nil, 0)
	r.workers = 1 // inner is queued before outer is mapped
	st, failed := r.resync(&DirectoryEntries{Dir: dir}, dirGet(dir), nil)
	if len(failed) > 0 || st.Created.Load() != 3 {
		t.Fatalf("created %d, failed %v", st.Created.Load(), failed)
	}
	var bulks []string
	for _, q := range env.Requests(t, r.ua) {
		if q.Method == "POST" && q.Path == "/Bulk" {
			bulks = append(bulks, string(q.Body))
		}
	}
	if len(bulks) != 2 || !strings.Contains(bulks[1], `"value":"bulkId:`) {
		t.Fatalf("BulkRequests %v, want 2, the second referring to the inner group by bulkId", bulks)
	}
	find := func(name string) []byte {
		found, _, err := r.client.Search(context.Background(), "/Groups", `displayName eq "`+prefix+"-"+name+`"`, false)
		if err != nil || len(found) != 1 {
			t.Fatalf("group %s: %v, %d found", name, err, len(found))
		}
		return found[0]
	}
	inner, outer := find("inner"), find("outer")
	members := memberValues(outer)
	if len(members) != 2 || !slices.Contains(members, string(bytesField(inner, "id"))) {
		t.Errorf("outer's members %v, want the user and inner %s", members, bytesField(inner, "id"))
	}
	_ = r.client.Delete(context.Background(), "/Groups", string(bytesField(outer, "id")))
	_ = r.client.Delete(context.Background(), "/Groups", string(bytesField(inner, "id")))
	u, _, _ := r.client.Search(context.Background(), "/Users", `userName eq "`+prefix+`-u000"`, false)
	for _, x := range u {
		_ = r.client.Delete(context.Background(), "/Users", string(bytesField(x, "id")))
	}
}

// TestResyncBulkUnansweredWithAListing: with lookups answered from a
// listing of the endpoint, a BulkRequest answered 503 still has its
// creates looked up at the service, not in the listing (which cannot know
// what the request did): a user that exists at the service but not in the
// listing (made after it was read, as by a request whose answer was lost)
// is found and adopted, never created twice; the others are sent again.
func TestResyncBulkUnansweredWithAListing(t *testing.T) {
	env := scimtest.Private(t)
	const users = 6
	prefix := scimtest.Unique("rbl")
	r := newBulkRun(t, env, withBulk(noAdopt, "  bulk = \"on\"\n"), nil, 0)
	d := &Destination{Client: r.client, Pipe: r.pipe}
	ls, err := d.ListAll(context.Background(), r.pipe.Endpoints, ListOptions{})
	if err != nil || !ls["Users"].Listed() {
		t.Fatalf("listing: %v %v", ls, err)
	}
	// After the listing: the resource a lost answer would have left.
	_, err = r.client.Create(context.Background(), "/Users", []byte(`{"schemas":["`+scim.URNUser+`"],"userName":"`+
		prefix+`-u002","externalId":"uuid-`+prefix+`-u002"}`))
	if err != nil {
		t.Fatal(err)
	}
	env.Fault(t, scimtest.Fault{Status: 503, Method: "POST", Path: "/Bulk", UserAgent: r.ua})
	dir := usersLDIF(t, prefix, users, "")
	st, failed := r.resync(&DirectoryEntries{Dir: dir}, dirGet(dir), func(d *Destination) { d.Listings = ls })
	if len(failed) > 0 || st.Created.Load() != users-1 || st.Updated.Load() != 1 {
		t.Fatalf("created %d, updated %d, failed %v; want %d created and the early one adopted", st.Created.Load(), st.Updated.Load(), failed, users-1)
	}
	state := scimState(t, env, prefix)
	if len(state) != users {
		t.Errorf("%d users at the service, want %d: %v", len(state), users, state)
	}
	if u := state["user:"+prefix+"-u002"]; !strings.Contains(u, `"givenName":"User"`) {
		t.Errorf("the adopted user was not updated: %s", u)
	}
}

// TestResyncBulkPasswordSentOnce: a resync whose mapping sends a password
// (password = first(userPassword)) into a service that advertises Bulk
// sends it in the Bulk request's create, once per user, and the service
// receives it as from a single POST (its /_control/passwords, which sees
// into Bulk operations); no form of it reaches the engine's and the
// client's log lines or an error. A service that refuses password writes
// fails each create alone with the error that says so, the value nowhere.
// bulk = "off" does the same in one POST per user: both paths are held to
// the same assertions.
func TestResyncBulkPasswordSentOnce(t *testing.T) {
	env := scimtest.Server(t)
	for _, tt := range []struct {
		bulk   string // the scim block's setting; "": the default
		refuse bool
	}{{"", false}, {"", true}, {"off", false}, {"off", true}} {
		t.Run(fmt.Sprintf("bulk %q refused %v", tt.bulk, tt.refuse), func(t *testing.T) {
			settings := ""
			if tt.bulk != "" {
				settings = fmt.Sprintf("  bulk = %q\n", tt.bulk)
			}
			r := newBulkRun(t, env, withPassword(withBulk(noAdopt, settings)), nil, 0)
			logs := &lockedBuffer{}
			log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			cfg := r.pipe.SCIM
			cfg.UserAgent = r.ua
			var err error
			if r.client, err = scim.NewClient(cfg, scim.WithLogger(log)); err != nil {
				t.Fatal(err)
			}
			if tt.refuse {
				env.RefusePasswords(t, r.ua, 400, "mutability")
			}
			prefix := scimtest.Unique("rbpw")
			const users = 4
			pws := map[string]string{}
			var b strings.Builder
			for i := 0; i < users; i++ {
				uid := fmt.Sprintf("%s-u%03d", prefix, i)
				pws[uid] = fmt.Sprintf("Bulk-Pw-%s-%d \"q\"/+ é", prefix, i)
				fmt.Fprintf(&b, "dn: uid=%s,ou=People,dc=example,dc=com\nuid: %s\nentryUUID: uuid-%s\ncn: U %d\nsn: U\nuserPassword:: %s\n\n",
					uid, uid, uid, i, base64.StdEncoding.EncodeToString([]byte(pws[uid])))
			}
			_, dir, err := source.ReadLDIF(strings.NewReader(b.String()))
			if err != nil {
				t.Fatal(err)
			}
			st, failed := r.resync(&DirectoryEntries{Dir: dir}, dirGet(dir), func(d *Destination) { d.Log = log })
			t.Cleanup(func() {
				for uid := range pws {
					found, _, _ := r.client.Search(context.Background(), "/Users", `userName eq "`+uid+`"`, false)
					for _, u := range found {
						_ = r.client.Delete(context.Background(), "/Users", string(bytesField(u, "id")))
					}
				}
			})

			reqs := r.requests()
			if bulk := tt.bulk == ""; bulk && (reqs["POST /Bulk"] != 1 || reqs["POST /Users"] != 0) ||
				!bulk && (reqs["POST /Bulk"] != 0 || reqs["POST /Users"] != users) {
				t.Errorf("requests %v", reqs)
			}
			withheld := 0
			for _, q := range env.Requests(t, r.ua) {
				withheld += strings.Count(string(q.Body), `"(withheld)"`)
			}
			if withheld != users {
				t.Errorf("%d passwords sent, want %d: one per user, once", withheld, users)
			}
			got := env.Passwords(t, r.ua)
			var errs []string
			for dn, err := range failed {
				errs = append(errs, dn+": "+err.Error())
			}
			if tt.refuse {
				if st.Created.Load() != 0 || len(failed) != users || len(got) != 0 {
					t.Fatalf("created %d, %d failed, %d passwords received; want every create refused", st.Created.Load(), len(failed), len(got))
				}
				for dn, err := range failed {
					var pe *PasswordRefusedError
					if !errors.As(err, &pe) || !scim.IsStatus(err, http.StatusBadRequest) || !strings.Contains(err.Error(), "the resource was not created") {
						t.Errorf("%s: %v", dn, err)
					}
				}
			} else {
				if st.Created.Load() != users || len(failed) > 0 {
					t.Fatalf("created %d, failed %v", st.Created.Load(), failed)
				}
				for uid, pw := range pws {
					if p := got[uid]; p.Password != pw || p.Method != http.MethodPost {
						t.Errorf("%s: the service received the right password: %v, by %q; want by POST", uid, p.Password == pw, p.Method)
					}
				}
			}
			out := logs.String() + strings.Join(errs, "\n")
			for _, pw := range pws {
				for _, form := range secret.Forms(pw) {
					if strings.Contains(out, form) {
						t.Errorf("a password is in the log or an error (form %q)", form)
					}
				}
			}
		})
	}
}

// TestResyncBulkMemberCap: with Bulk (the default where the service
// advertises it) a group with more members than maxPatchOps is created
// alone, with the first of them, and gets the rest by PATCH, no request
// carrying more than the cap; a smaller group goes in a Bulk request. The
// service ends with every member in both.
func TestResyncBulkMemberCap(t *testing.T) {
	env := scimtest.Server(t)
	const users, limit = 25, 10
	prefix := scimtest.Unique("rbc")
	var b strings.Builder
	var members []string
	for i := 0; i < users; i++ {
		uid := fmt.Sprintf("%s-u%03d", prefix, i)
		dn := "uid=" + uid + ",ou=People,dc=example,dc=com"
		members = append(members, "member: "+dn+"\n")
		fmt.Fprintf(&b, "dn: %s\nuid: %s\nentryUUID: uuid-%s\ncn: U %d\nsn: U\n\n", dn, uid, uid, i)
	}
	fmt.Fprintf(&b, "dn: cn=%s-big,ou=Groups,dc=example,dc=com\ncn: %s-big\n%s\n", prefix, prefix, strings.Join(members, ""))
	fmt.Fprintf(&b, "dn: cn=%s-small,ou=Groups,dc=example,dc=com\ncn: %s-small\n%s\n", prefix, prefix, strings.Join(members[:3], ""))
	_, dir, err := source.ReadLDIF(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	r := newBulkRun(t, env, withBulk(noAdopt, fmt.Sprintf("  maxPatchOps = %d\n", limit)), nil, 0)
	st, failed := r.resync(&DirectoryEntries{Dir: dir}, dirGet(dir), nil)
	t.Cleanup(func() {
		for _, name := range []string{"big", "small"} {
			found, _, _ := r.client.Search(context.Background(), "/Groups", `displayName eq "`+prefix+"-"+name+`"`, false)
			for _, g := range found {
				_ = r.client.Delete(context.Background(), "/Groups", string(bytesField(g, "id")))
			}
		}
		for i := 0; i < users; i++ {
			found, _, _ := r.client.Search(context.Background(), "/Users", fmt.Sprintf(`userName eq "%s-u%03d"`, prefix, i), false)
			for _, u := range found {
				_ = r.client.Delete(context.Background(), "/Users", string(bytesField(u, "id")))
			}
		}
	})
	if len(failed) > 0 || st.Created.Load() != users+2 {
		t.Fatalf("created %d, failed %v", st.Created.Load(), failed)
	}
	groupsInBulk, bigAlone := 0, 0
	for _, q := range env.Requests(t, r.ua) {
		body := gjson.ParseBytes(q.Body)
		switch {
		case q.Path == "/Bulk":
			for _, op := range body.Get("Operations").Array() {
				if n := len(op.Get("data.members").Array()); n > limit {
					t.Errorf("a Bulk operation creates %s with %d members, cap %d", op.Get("data.displayName"), n, limit)
				}
				if op.Get("path").Str == "/Groups" {
					groupsInBulk++
				}
			}
		case q.Method == "POST" && q.Path == "/Groups":
			bigAlone++
			if n := len(body.Get("members").Array()); n > limit {
				t.Errorf("the group was created with %d members, cap %d", n, limit)
			}
		case q.Method == "PATCH":
			for _, op := range body.Get("Operations").Array() {
				if n := len(op.Get("value").Array()); n > limit {
					t.Errorf("a PATCH operation adds %d members, cap %d", n, limit)
				}
			}
		}
	}
	if groupsInBulk != 1 || bigAlone != 1 {
		t.Errorf("%d groups created in Bulk requests and %d alone, want the small one and the big one", groupsInBulk, bigAlone)
	}
	for name, want := range map[string]int{"big": users, "small": 3} {
		found, _, err := r.client.Search(context.Background(), "/Groups", `displayName eq "`+prefix+"-"+name+`"`, false)
		if err != nil || len(found) != 1 || len(memberValues(found[0])) != want {
			t.Errorf("group %s: %v, %d found, members %v; want %d", name, err, len(found), found, want)
		}
	}
}

// countingEntries counts the entries a resync has taken from its source.
type countingEntries struct {
	Entries
	read atomic.Int64
}

func (c *countingEntries) Each(ctx context.Context, fn func(*lang.Entry) error) error {
	return c.Entries.Each(ctx, func(e *lang.Entry) error {
		c.read.Add(1)
		return fn(e)
	})
}

// TestResyncBulkHoldsBoundedWork: with the lookups answered from a listing
// (no request per entry), the directory is read far faster than a slow
// service answers Bulk requests. The workers wait while 2×workers batches
// are unanswered, so the entries read and not yet settled stay a few
// batches' worth instead of the whole directory (which each held its
// request body in memory).
func TestResyncBulkHoldsBoundedWork(t *testing.T) {
	env := scimtest.Private(t)
	const users, maxOps, workers = 200, 5, 2
	prefix := scimtest.Unique("rbb")
	r := newBulkRun(t, env, withBulk(noAdopt, fmt.Sprintf("  bulk = \"on\"\n  bulkMaxOperations = %d\n", maxOps)), nil, 0)
	d := &Destination{Client: r.client, Pipe: r.pipe}
	ls, err := d.ListAll(context.Background(), r.pipe.Endpoints, ListOptions{})
	if err != nil || !ls["Users"].Listed() {
		t.Fatalf("listing: %v %v", ls, err)
	}
	d.Listings = ls
	env.Fault(t, scimtest.Fault{DelayMs: 150, Count: users, Method: "POST", Path: "/Bulk", UserAgent: r.ua})
	dir := usersLDIF(t, prefix, users, "")
	src := &countingEntries{Entries: &DirectoryEntries{Dir: dir}}
	var settled, held atomic.Int64
	note := func() {
		if h := src.read.Load() - settled.Add(1); h > held.Load() {
			held.Store(h)
		}
	}
	var mu sync.Mutex
	failed := map[string]error{}
	st, err := Resync(context.Background(), r.pipe, d, src, ResyncOptions{
		Workers: workers,
		Refs:    &RefResolver{Pipe: r.pipe, Dest: d, Mode: lang.Resync, Entry: dirGet(dir)},
		Applied: func(*lang.Entry, string, Applied) { note() },
		Failed:  func(dn string, err error) { mu.Lock(); failed[dn] = err; mu.Unlock(); note() },
	})
	if err != nil || len(failed) > 0 || st.Created.Load() != users {
		t.Fatalf("resync: %v; created %d of %d, failed %v", err, st.Created.Load(), users, failed)
	}
	// Unanswered batches (2×workers) + the open one + the feed's buffer
	// (2×workers) + one entry per worker, with room to spare.
	limit := int64((2*workers+1)*maxOps + 2*workers + workers + 10)
	if h := held.Load(); h > limit {
		t.Errorf("up to %d entries read and not settled at once, want at most %d: the workers do not wait for the service", h, limit)
	}
	t.Logf("at most %d entries read and not settled at once (limit %d)", held.Load(), limit)
}

// TestResyncBulkOneBulkIDPerOperation: a group whose two members (groups)
// are queued in the same BulkRequest would carry two bulkId references;
// SCIMMY resolves only the last of an operation's references and refuses
// the group with the other left as a member value. The group waits for the
// next pass instead, where both members have ids, and is created whole.
func TestResyncBulkOneBulkIDPerOperation(t *testing.T) {
	env := scimtest.Server(t)
	prefix := scimtest.Unique("rb2")
	user := "uid=" + prefix + "-u000,ou=People,dc=example,dc=com"
	ldif := fmt.Sprintf("dn: %s\nuid: %s-u000\nentryUUID: uuid-%s\ncn: U\nsn: U\n\n", user, prefix, prefix)
	for _, g := range []string{"a", "b"} {
		ldif += fmt.Sprintf("dn: cn=%s-%s,ou=Groups,dc=example,dc=com\ncn: %s-%s\nmember: %s\n\n", prefix, g, prefix, g, user)
	}
	ldif += fmt.Sprintf("dn: cn=%s-outer,ou=Groups,dc=example,dc=com\ncn: %s-outer\n"+
		"member: cn=%s-a,ou=Groups,dc=example,dc=com\nmember: cn=%s-b,ou=Groups,dc=example,dc=com\n\n", prefix, prefix, prefix, prefix)
	_, dir, err := source.ReadLDIF(strings.NewReader(ldif))
	if err != nil {
		t.Fatal(err)
	}
	r := newBulkRun(t, env, withBulk(noAdopt, "  bulk = \"on\"\n"), nil, 0)
	r.workers = 1 // a and b are queued before outer is mapped
	st, failed := r.resync(&DirectoryEntries{Dir: dir}, dirGet(dir), nil)
	if len(failed) > 0 || st.Created.Load() != 4 {
		t.Fatalf("created %d, failed %v", st.Created.Load(), failed)
	}
	for _, q := range env.Requests(t, r.ua) {
		if q.Method == "POST" && q.Path == "/Bulk" {
			for _, op := range gjson.GetBytes(q.Body, "Operations").Array() {
				if n := strings.Count(op.Get("data").Raw, `"bulkId:`); n > 1 {
					t.Errorf("an operation with %d bulkId references: %s", n, op.Raw)
				}
			}
		}
	}
	found, _, err := r.client.Search(context.Background(), "/Groups", `displayName eq "`+prefix+`-outer"`, false)
	if err != nil || len(found) != 1 {
		t.Fatalf("outer: %v, %d found", err, len(found))
	}
	if m := memberValues(found[0]); len(m) != 2 || slices.Contains(m, "") || strings.Contains(strings.Join(m, ","), "bulkId") {
		t.Errorf("outer's members %v, want the two groups' ids", m)
	}
}

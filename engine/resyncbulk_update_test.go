package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/engine/source/ldaptest"
	"github.com/scimsync/scimsync/engine/state"
	"github.com/scimsync/scimsync/lang"
)

// bulkWrites counts a resync's write requests in the log after seq: the
// POST /Bulk requests, the PATCH operations they carried (and how many the
// service carried out), and the single writes by "METHOD /Endpoint".
type bulkWrites struct {
	bulks, patchOps, patchOK int
	single                   map[string]int
}

func countWrites(t *testing.T, env scimtest.Env, ua string, seq int) bulkWrites {
	t.Helper()
	w := bulkWrites{single: map[string]int{}}
	for _, q := range env.Requests(t, ua) {
		if q.Seq <= seq || q.Method == http.MethodGet || strings.HasSuffix(q.Path, "/.search") {
			continue
		}
		if q.Method == http.MethodPost && q.Path == "/Bulk" {
			w.bulks++
			for _, op := range q.Operations {
				if op.Method == http.MethodPatch {
					w.patchOps++
					if op.Status/100 == 2 {
						w.patchOK++
					}
				}
			}
			continue
		}
		p := q.Path
		if i := strings.Index(p[1:], "/"); i >= 0 {
			p = p[:i+1]
		}
		w.single[q.Method+" "+p]++
	}
	return w
}

// TestResyncBulkUpdatesSameStateAsSingle (issue 15 #5): 30 of 40 users
// in slapd differ from the service (title, email, or both) and two groups
// gained and lost members. A resync with bulk on sends the 30 users'
// PATCHes in ⌈30/8⌉ = 4 BulkRequests and the two groups' in one more, with
// no single write, every operation carried out; a resync with bulk off
// sends 32 PATCHes. Both leave their service in exactly the same state
// (every user, every group's members), and a further resync finds nothing
// to do.
func TestResyncBulkUpdatesSameStateAsSingle(t *testing.T) {
	const users, maxOps = 40, 8
	prefix := ldaptest.Unique("rbu")
	sub := bulkDirectory(t, prefix, users)
	c := ldaptest.OpenLDAP(t).Dial(t)
	dn := func(i int) string { return fmt.Sprintf("uid=%s-u%03d,ou=People,%s", prefix, i, sub.Base) }
	vars := map[string]string{"LDAP_URL": sub.URL, "LDAP_BASE": sub.Base, "LDAP_BIND_DN": sub.BindDN, "LDAP_BIND_PW": sub.BindPW}
	type run struct {
		mode string
		env  scimtest.Env
		r    *bulkRun
	}
	runs := []*run{{mode: "off"}, {mode: "on"}}
	resync := func(r *run) (*Stats, map[string]error) {
		le, err := NewLDAPEntries(context.Background(), r.r.pipe, LDAPOptions{PageSize: 16})
		if err != nil {
			t.Fatal(err)
		}
		defer le.Close()
		return r.r.resync(le, le.Get, nil)
	}
	for _, r := range runs {
		r.env = scimtest.Private(t)
		r.r = newBulkRun(t, r.env, withBulk(pipeText(t, "openldap-to-scim.pipe"),
			fmt.Sprintf("  bulk = %q\n  bulkMaxOperations = %d\n", r.mode, maxOps)), vars, 0)
		if st, failed := resync(r); len(failed) > 0 || st.Created.Load() != users+3 {
			t.Fatalf("bulk %s, into an empty service: created %d, failed %v", r.mode, st.Created.Load(), failed)
		}
	}

	// 30 users differ: title, email, or both; "half" gains u039 and loses
	// u001, "all" loses u002.
	for i := 0; i < 30; i++ {
		m := ldap.NewModifyRequest(dn(i), nil)
		if i%3 != 1 {
			m.Replace("title", []string{fmt.Sprintf("Manager %d", i)})
		}
		if i%3 != 0 {
			m.Replace("mail", []string{fmt.Sprintf("%s-new-%d@Example.org", prefix, i)})
		}
		if err := c.Modify(m); err != nil {
			t.Fatal(err)
		}
	}
	groups := "ou=Groups," + sub.Base
	for _, m := range []struct {
		group string
		add   bool
		who   int
	}{{"half", true, 39}, {"half", false, 1}, {"all", false, 2}} {
		req := ldap.NewModifyRequest("cn="+prefix+"-"+m.group+","+groups, nil)
		if m.add {
			req.Add("member", []string{dn(m.who)})
		} else {
			req.Delete("member", []string{dn(m.who)})
		}
		if err := c.Modify(req); err != nil {
			t.Fatal(err)
		}
	}

	states := map[string]map[string]string{}
	for _, r := range runs {
		seq := lastSeq(t, r.env, r.r.ua)
		st, failed := resync(r)
		if len(failed) > 0 || st.Updated.Load() != 32 || st.Unchanged.Load() != users+3-32 || st.Created.Load() != 0 {
			t.Fatalf("bulk %s: updated %d, unchanged %d, created %d, failed %v; want 32 updated", r.mode,
				st.Updated.Load(), st.Unchanged.Load(), st.Created.Load(), failed)
		}
		w := countWrites(t, r.env, r.r.ua, seq)
		t.Logf("bulk %s: %d BulkRequests carrying %d PATCHes, single writes %v; %d write requests counted", r.mode, w.bulks, w.patchOps, w.single, st.Requests.Load())
		if r.mode == "on" {
			if w.bulks != 5 || w.patchOps != 32 || w.patchOK != 32 || len(w.single) != 0 || st.Requests.Load() != 5 {
				t.Errorf("bulk on: %d BulkRequests carrying %d PATCHes (%d carried out), single writes %v, %d counted; want 5 carrying 32, none alone",
					w.bulks, w.patchOps, w.patchOK, w.single, st.Requests.Load())
			}
		} else if w.bulks != 0 || w.single["PATCH /Users"] != 30 || w.single["PATCH /Groups"] != 2 {
			t.Errorf("bulk off: %+v", w)
		}
		states[r.mode] = scimState(t, r.env, prefix)
		// Nothing is left to do.
		if st, failed := resync(r); len(failed) > 0 || st.Unchanged.Load() != users+3 {
			t.Errorf("bulk %s, again: unchanged %d, failed %v", r.mode, st.Unchanged.Load(), failed)
		}
	}
	if len(states["on"]) != users+3 {
		t.Errorf("bulk on: %d resources, want %d", len(states["on"]), users+3)
	}
	for k, want := range states["off"] {
		if got := states["on"][k]; got != want {
			t.Errorf("%s:\n bulk on  %s\n bulk off %s", k, got, want)
		}
	}
	for _, check := range []struct{ key, want string }{
		{"user:" + prefix + "-u000", `"title":"Manager 0"`},
		{"user:" + prefix + "-u001", prefix + `-new-1@example.org`},
		{"group:" + prefix + "-half", "user:" + prefix + "-u039/User"},
	} {
		if !strings.Contains(states["on"][check.key], check.want) {
			t.Errorf("%s lacks %s: %s", check.key, check.want, states["on"][check.key])
		}
	}
	if g := states["on"]["group:"+prefix+"-half"]; strings.Contains(g, "user:"+prefix+"-u001/") {
		t.Errorf("u001 is still a member of half: %s", g)
	}
}

// TestResyncBulkUpdateRefusedFallsBackAlone: every user's title differs;
// the service refuses one user's PATCH (its userName is held by another
// resource: 409 uniqueness), and another user was deleted at the service
// after the endpoint was listed (404). Each goes the single-request way
// once, alone: the first is read again, patched alone and fails with the
// error a resync with bulk off gives it, word for word; the second is
// looked up by the lookup filter, not found, and created. The other ten
// are updated by their Bulk operations, which no single request repeats.
func TestResyncBulkUpdateRefusedFallsBackAlone(t *testing.T) {
	env := scimtest.Server(t)
	const users = 12
	prefix := scimtest.Unique("rbr")
	r := newBulkRun(t, env, withBulk(noAdopt, "  bulk = \"on\"\n  bulkMaxOperations = 5\n"), nil, 0)
	dir := usersLDIF(t, prefix, users, "title: Engineer\n")
	t.Cleanup(func() { deleteUsers(t, r.client, prefix, users) })
	if st, failed := r.resync(&DirectoryEntries{Dir: dir}, dirGet(dir), nil); len(failed) > 0 || st.Created.Load() != users {
		t.Fatalf("created %d, failed %v", st.Created.Load(), failed)
	}
	squatter, err := r.client.Create(context.Background(), "/Users", []byte(`{"schemas":["`+scim.URNUser+`"],"userName":"`+prefix+`-taken"}`))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.client.Delete(context.Background(), "/Users", string(bytesField(squatter, "id"))) })
	udn := func(i int) string { return fmt.Sprintf("uid=%s-u%03d,ou=People,dc=example,dc=com", prefix, i) }
	for _, e := range dir.Entries() {
		e.Replace("title", "Manager")
	}
	dir.Get(udn(3)).Replace("uid", prefix+"-taken")

	d := &Destination{Client: r.client, Pipe: r.pipe}
	ls, err := d.ListAll(context.Background(), r.pipe.Endpoints, ListOptions{})
	if err != nil || !ls["Users"].Listed() {
		t.Fatalf("listing: %v %v", ls, err)
	}
	gone := userID(t, r.client, prefix+"-u007")
	if err := r.client.Delete(context.Background(), "/Users", gone); err != nil {
		t.Fatal(err)
	}
	seq := lastSeq(t, env, r.ua)
	st, failed := r.resync(&DirectoryEntries{Dir: dir}, dirGet(dir), func(d *Destination) { d.Listings = ls })
	bad := source.NormalizeDN(udn(3))
	if len(failed) != 1 || !scim.IsStatus(failed[bad], http.StatusConflict) {
		t.Fatalf("failed %v, want only %s with a 409", failed, bad)
	}
	if st.Updated.Load() != users-2 || st.Created.Load() != 1 {
		t.Errorf("updated %d, created %d; want %d and the deleted one created", st.Updated.Load(), st.Created.Load(), users-2)
	}
	w := countWrites(t, env, r.ua, seq)
	if w.bulks != 3 || w.patchOps != users || w.patchOK != users-2 || w.single["PATCH /Users"] != 1 || w.single["POST /Users"] != 1 {
		t.Errorf("%+v; want 3 BulkRequests carrying %d PATCHes (all but 2 carried out), one PATCH and one POST alone", w, users)
	}
	for i := 0; i < users; i++ {
		if i == 3 {
			continue
		}
		u := gjson.ParseBytes(userByName(t, r.client, fmt.Sprintf("%s-u%03d", prefix, i)))
		if u.Get("title").Str != "Manager" {
			t.Errorf("u%03d: title %q", i, u.Get("title").Str)
		}
	}

	// The single-request path refuses the same entry with the same words.
	off := newBulkRun(t, env, withBulk(noAdopt, "  bulk = \"off\"\n"), nil, 0)
	_, offFailed := off.resync(&DirectoryEntries{Dir: dir}, dirGet(dir), nil)
	if len(offFailed) != 1 || offFailed[bad] == nil || offFailed[bad].Error() != failed[bad].Error() {
		t.Errorf("bulk off failed %v\nbulk on failed %v", offFailed, failed)
	}
}

func userByName(t *testing.T, c *scim.Client, userName string) []byte {
	t.Helper()
	found, _, err := c.Search(context.Background(), "/Users", `userName eq "`+userName+`"`, false)
	if err != nil || len(found) != 1 {
		t.Fatalf("user %s: %v, %d found", userName, err, len(found))
	}
	return found[0]
}

func userID(t *testing.T, c *scim.Client, userName string) string {
	t.Helper()
	return gjson.GetBytes(userByName(t, c, userName), "id").Str
}

// deleteUsers deletes the users usersLDIF made, by externalId (their
// userName may have changed).
func deleteUsers(t *testing.T, c *scim.Client, prefix string, n int) {
	for i := 0; i < n; i++ {
		found, _, _ := c.Search(context.Background(), "/Users", fmt.Sprintf(`externalId eq "uuid-%s-u%03d"`, prefix, i), false)
		for _, u := range found {
			_ = c.Delete(context.Background(), "/Users", string(bytesField(u, "id")))
		}
	}
}

// answerLost is a proxy in front of the SCIM test server that passes the
// first POST /Bulk on, lets the service carry it out, and answers the
// client 503 instead of the service's BulkResponse: an answer lost after
// the work was done.
func answerLost(t *testing.T, env scimtest.Env) string {
	t.Helper()
	target, err := url.Parse(env.URL)
	if err != nil {
		t.Fatal(err)
	}
	var lost atomic.Bool
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	proxy.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Method == http.MethodPost && strings.HasSuffix(resp.Request.URL.Path, "/Bulk") && !lost.Swap(true) {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			body := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"503","detail":"answer lost"}`
			resp.StatusCode, resp.Status = http.StatusServiceUnavailable, "503 Service Unavailable"
			resp.Body = io.NopCloser(strings.NewReader(body))
			resp.ContentLength = int64(len(body))
			resp.Header.Set("Content-Length", fmt.Sprint(len(body)))
			resp.Header.Set("Content-Type", "application/scim+json")
		}
		return nil
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return srv.URL + target.Path
}

// TestResyncBulkUpdateUnanswered: the BulkRequest carrying ten users'
// PATCHes (title, and a new email in the filter form) gets no
// BulkResponse. After the service's own 503, whether it carried the
// request out (its answer lost on the way: a proxy) or not (a fault),
// each user is read again and diffed anew: what the request did is not
// sent again (no PATCH at all when it was carried out), what it did not do
// is sent alone, and nothing is duplicated (one work email each). After a
// dropped connection the service may still be at work on the request:
// nothing is sent, each update fails as "may have been carried out", and
// the next resync completes it. Each case ends in the state a resync with
// bulk off then finds nothing to change in; the groups' updates, in a
// later BulkRequest, are carried out once.
func TestResyncBulkUpdateUnanswered(t *testing.T) {
	env := scimtest.Server(t)
	const users = 10
	for _, tt := range []struct {
		name      string
		fault     *scimtest.Fault
		proxy     bool
		carried   bool // the lost request was carried out
		failsOnce bool
	}{
		{name: "503 after the work", proxy: true, carried: true},
		{name: "503 before the work", fault: &scimtest.Fault{Status: 503, Method: "POST", Path: "/Bulk"}},
		{name: "dropped", fault: &scimtest.Fault{Drop: true, Method: "POST", Path: "/Bulk"}, failsOnce: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			prefix := scimtest.Unique("rbq")
			vars := map[string]string{}
			if tt.proxy {
				vars["SCIM_URL"] = answerLost(t, env)
			}
			text := directoryLDIF(prefix, users)
			_, dir, err := source.ReadLDIF(strings.NewReader(text))
			if err != nil {
				t.Fatal(err)
			}
			r := newBulkRun(t, env, withBulk(noAdopt, "  bulk = \"on\"\n"), vars, 0)
			if tt.proxy {
				r.env.URL = vars["SCIM_URL"]
			}
			t.Cleanup(func() { deleteUsers(t, r.client, prefix, users); deleteGroups(t, r.client, prefix) })
			// Created with bulk off: the proxy loses the first BulkRequest's answer.
			single := newBulkRun(t, env, withBulk(noAdopt, "  bulk = \"off\"\n"), nil, 0)
			if st, failed := single.resync(&DirectoryEntries{Dir: dir}, dirGet(dir), nil); len(failed) > 0 || st.Created.Load() != users+3 {
				t.Fatalf("created %d, failed %v", st.Created.Load(), failed)
			}
			for i, e := range dir.Entries() {
				if strings.HasPrefix(e.DN, "uid=") {
					e.Replace("title", "Manager")
					e.Replace("mail", fmt.Sprintf("%s-new-%d@example.org", prefix, i))
				}
			}
			gdn := func(name string) string { return "cn=" + prefix + "-" + name + ",ou=Groups,dc=example,dc=com" }
			udn := func(i int) string { return fmt.Sprintf("uid=%s-u%03d,ou=People,dc=example,dc=com", prefix, i) }
			dir.Get(gdn("half")).Add("member", udn(users-1))
			dir.Get(gdn("all")).Delete("member", udn(0))
			if tt.fault != nil {
				f := *tt.fault
				f.UserAgent = r.ua
				env.Fault(t, f)
			}

			seq := lastSeq(t, env, r.ua)
			st, failed := r.resync(&DirectoryEntries{Dir: dir}, dirGet(dir), nil)
			w := countWrites(t, env, r.ua, seq)
			t.Logf("updated %d, failed %d; %+v", st.Updated.Load(), len(failed), w)
			if tt.failsOnce {
				if len(failed) != users || st.Updated.Load() != 2 || w.bulks != 2 || len(w.single) != 0 {
					t.Fatalf("updated %d, %d failed, writes %+v; want the users failed, nothing sent again, the groups updated", st.Updated.Load(), len(failed), w)
				}
				for dn, err := range failed {
					if !strings.Contains(err.Error(), "it may have been carried out; the next resync reads it again") {
						t.Errorf("%s: %v", dn, err)
					}
				}
				if st, failed = r.resync(&DirectoryEntries{Dir: dir}, dirGet(dir), nil); len(failed) > 0 || st.Updated.Load() != users {
					t.Fatalf("the next resync: updated %d, failed %v", st.Updated.Load(), failed)
				}
			} else {
				if len(failed) > 0 || st.Updated.Load() != users+2 {
					t.Fatalf("updated %d, failed %v", st.Updated.Load(), failed)
				}
				// The users' request (failed), the groups' request.
				wantPatches := users
				if tt.carried {
					wantPatches = 0
				}
				if w.bulks != 2 || w.single["PATCH /Users"] != wantPatches || w.single["PATCH /Groups"] != 0 {
					t.Errorf("writes %+v; want 2 BulkRequests and %d PATCHes alone", w, wantPatches)
				}
			}
			seq = lastSeq(t, env, single.ua)
			if st, failed := single.resync(&DirectoryEntries{Dir: dir}, dirGet(dir), nil); len(failed) > 0 || st.Unchanged.Load() != users+3 {
				t.Errorf("bulk off after: unchanged %d, failed %v; want nothing to change", st.Unchanged.Load(), failed)
			}
			if w := countWrites(t, env, single.ua, seq); len(w.single) != 0 || w.bulks != 0 {
				t.Errorf("bulk off after wrote %+v", w)
			}
			for i := 0; i < users; i++ {
				u := gjson.ParseBytes(userByName(t, r.client, fmt.Sprintf("%s-u%03d", prefix, i)))
				if n := len(u.Get("emails").Array()); n != 1 {
					t.Errorf("u%03d has %d emails: %s", i, n, u.Get("emails").Raw)
				}
			}
			for _, g := range []string{"all", "half"} {
				found, _, err := r.client.Search(context.Background(), "/Groups", `displayName eq "`+prefix+"-"+g+`"`, false)
				if err != nil || len(found) != 1 {
					t.Fatalf("group %s: %v", g, err)
				}
				m := memberValues(found[0])
				if c := slices.Compact(slices.Sorted(slices.Values(m))); len(c) != len(m) {
					t.Errorf("group %s lists a member twice: %v", g, m)
				}
			}
		})
	}
}

func deleteGroups(t *testing.T, c *scim.Client, prefix string) {
	for _, name := range []string{"all", "half", "inner"} {
		found, _, _ := c.Search(context.Background(), "/Groups", `displayName eq "`+prefix+"-"+name+`"`, false)
		for _, g := range found {
			_ = c.Delete(context.Background(), "/Groups", string(bytesField(g, "id")))
		}
	}
}

// TestResyncBulkUpdateKeepsShadowsRight: run (with shadows) sets ten
// users' title to B and keeps each one's shadow; the directory then says
// C, and a resync with Bulk PATCHes them to C in one BulkRequest; the
// directory goes back to B, and run, started again on the same state,
// sends each user its PATCH to B (after a read: the shadow is gone). A
// shadow left saying B would have made that change send nothing, and the
// service would keep C.
func TestResyncBulkUpdateKeepsShadowsRight(t *testing.T) {
	const users = 10
	srv := ldaptest.StartOpenLDAP(t)
	c := srv.Dial(t)
	sub := srv.Subtree(t, c, "rbs")
	env := scimtest.Private(t)
	p := shippedPipe(t, "openldap-to-scim.pipe", sub, env)
	st, err := state.Open(t.TempDir(), p.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ua := scimtest.UserAgent(t)
	cfg := p.SCIM
	cfg.UserAgent = ua
	client, err := scim.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dn := func(i int) string { return fmt.Sprintf("uid=u%02d,ou=People,%s", i, sub.Base) }
	for i := 0; i < users; i++ {
		sub.AddUser(t, c, fmt.Sprintf("u%02d", i), map[string][]string{"title": {"A"}})
	}
	setTitle := func(v string) {
		for i := 0; i < users; i++ {
			ldapModify(t, c, dn(i), func(m *ldap.ModifyRequest) { m.Replace("title", []string{v}) })
		}
	}
	end := func() string {
		pos, err := source.StartPoint(t.Context(), p.Source, source.StartSpec{Kind: source.StartEnd}, source.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return pos
	}
	var idsMu sync.Mutex
	ids := map[string]string{}
	resync := func(bulk bool) *Stats {
		t.Helper()
		pp := p
		if !bulk {
			q := *p
			q.Bulk = "off"
			pp = &q
		}
		d := &Destination{Client: client, Pipe: pp, Shadows: NewShadows(st)}
		le, err := NewLDAPEntries(context.Background(), pp, LDAPOptions{PageSize: 16})
		if err != nil {
			t.Fatal(err)
		}
		defer le.Close()
		stats, err := Resync(context.Background(), pp, d, le, ResyncOptions{Workers: 4,
			Refs:   &RefResolver{Pipe: pp, Dest: d, Mode: lang.Resync, Entry: le.Get},
			Failed: func(dn string, err error) { t.Errorf("resync: %s: %v", dn, err) },
			Applied: func(e *lang.Entry, class string, a Applied) {
				// The id map, as the resync command keeps it.
				if a.ID == "" || a.Endpoint == nil {
					return
				}
				if err := st.Put(source.Identity(e, pp.Source), state.Mapping{Endpoint: a.Endpoint.Name, SCIMID: a.ID, DN: e.DN, Class: class}); err != nil {
					t.Error(err)
				}
				idsMu.Lock()
				ids[e.DN] = a.ID
				idsMu.Unlock()
			}})
		if err != nil {
			t.Fatal(err)
		}
		return stats
	}
	// run over the changes from pos until n have been seen, then stopped.
	runUntil := func(pos string, n int64, change func()) []scimtest.Request {
		t.Helper()
		if err := st.SetCheckpoint(pos); err != nil {
			t.Fatal(err)
		}
		seq := lastSeq(t, env, ua)
		ctx, stop := context.WithCancel(context.Background())
		log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
		opts := source.Options{Logger: log, KnownDN: st.KnownDN, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
		src, err := source.Open(ctx, p.Source, pos, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		rd, err := source.OpenReader(ctx, p.Source, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		var seen atomic.Int64
		runner := &Runner{Pipe: p, Dest: &Destination{Client: client, Pipe: p, Shadows: NewShadows(st)}, Store: st, Source: src,
			Workers: 4, Log: log, ReadShadows: true, Observe: func(ChangeRecord) { seen.Add(1) },
			Entry: func(ctx context.Context, dn string) (*lang.Entry, error) {
				if !rd.InScope(dn) {
					return nil, nil
				}
				return rd.Entry(ctx, dn)
			}, EntryByID: rd.EntryByID}
		done := make(chan error, 1)
		go func() { done <- runner.Run(ctx) }()
		change()
		waitFor(t, 20*time.Second, "run's changes", func() (bool, string) {
			return seen.Load() >= n, fmt.Sprintf("%d of %d changes", seen.Load(), n)
		})
		stop()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		var out []scimtest.Request
		for _, q := range env.Requests(t, ua) {
			if q.Seq > seq {
				out = append(out, q)
			}
		}
		return out
	}
	title := func(i int) string {
		b, err := client.Get(context.Background(), "/Users/"+ids[dn(i)])
		if err != nil {
			t.Fatal(err)
		}
		return gjson.GetBytes(b, "title").Str
	}

	if s := resync(false); s.Created.Load() != users {
		t.Fatalf("first resync created %d", s.Created.Load())
	}
	// run: A→B, one PATCH each, and the shadows it keeps say B.
	runUntil(end(), users, func() { setTitle("B") })
	waitShadows := func(want bool) {
		t.Helper()
		waitFor(t, 10*time.Second, "the shadows", func() (bool, string) {
			for i := 0; i < users; i++ {
				v, ok, err := st.Shadow(shadowKey("/Users", ids[dn(i)]))
				if err != nil || ok != want || want && !strings.Contains(string(v), `"title":"B"`) {
					return false, fmt.Sprintf("u%02d: %s %v %v", i, v, ok, err)
				}
			}
			return true, ""
		})
	}
	waitShadows(true)

	setTitle("C")
	pos := end()
	seq := lastSeq(t, env, ua)
	if s := resync(true); s.Updated.Load() != users {
		t.Fatalf("bulk resync updated %d", s.Updated.Load())
	}
	if w := countWrites(t, env, ua, seq); w.bulks != 1 || w.patchOK != users || len(w.single) != 0 {
		t.Fatalf("the resync sent %+v; want one BulkRequest of %d PATCHes", w, users)
	}
	waitShadows(false)

	reqs := runUntil(pos, users, func() { setTitle("B") })
	gets, patches := 0, 0
	for _, q := range reqs {
		switch {
		case q.Method == http.MethodGet && len(q.Query) == 0:
			gets++
		case q.Method == http.MethodPatch:
			patches++
		}
	}
	if gets != users || patches != users {
		t.Errorf("run after the resync: %d GETs, %d PATCHes; want %d each (no shadow to trust)", gets, patches, users)
	}
	for i := 0; i < users; i++ {
		if got := title(i); got != "B" {
			t.Errorf("u%02d: title %q at the service, want B", i, got)
		}
	}
}

// TestResyncBulkUpdateDryRun: a dry run shows the BulkRequest a resync
// would send for three updates (three PATCH operations, each the body the
// update alone would send) and sends no write; a lone update is shown as
// its own PATCH, as it would be sent.
func TestResyncBulkUpdateDryRun(t *testing.T) {
	env := scimtest.Server(t)
	for _, n := range []int{3, 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			prefix := scimtest.Unique("rbdu")
			r := newBulkRun(t, env, noAdopt, nil, 0)
			dir := usersLDIF(t, prefix, n, "title: Engineer\n")
			t.Cleanup(func() { deleteUsers(t, r.client, prefix, n) })
			if st, failed := r.resync(&DirectoryEntries{Dir: dir}, dirGet(dir), nil); len(failed) > 0 || st.Created.Load() != int64(n) {
				t.Fatalf("created %d, failed %v", st.Created.Load(), failed)
			}
			for _, e := range dir.Entries() {
				e.Replace("title", "Manager")
			}
			seq := lastSeq(t, env, r.ua)
			var shown []string
			st, failed := r.resync(&DirectoryEntries{Dir: dir}, dirGet(dir), func(d *Destination) {
				d.DryRun = func(method, path string, body []byte) { shown = append(shown, method+" "+path+" "+string(body)) }
			})
			if len(failed) > 0 || st.Updated.Load() != int64(n) {
				t.Fatalf("updated %d, failed %v", st.Updated.Load(), failed)
			}
			if w := countWrites(t, env, r.ua, seq); w.bulks != 0 || len(w.single) != 0 {
				t.Errorf("a dry run wrote %+v", w)
			}
			if len(shown) != 1 {
				t.Fatalf("shown %q, want one request", shown)
			}
			patch := `{"schemas":["` + scim.URNPatchOp + `"],"Operations":[{"op":"replace","path":"title","value":"Manager"}]}`
			if n == 1 {
				if !strings.HasPrefix(shown[0], "PATCH /Users/") || !strings.HasSuffix(shown[0], " "+patch) {
					t.Errorf("shown %q, want the PATCH alone", shown[0])
				}
				return
			}
			body := gjson.Parse(strings.TrimPrefix(shown[0], "POST /Bulk "))
			ops := body.Get("Operations").Array()
			if !strings.HasPrefix(shown[0], "POST /Bulk ") || len(ops) != n {
				t.Fatalf("shown %q, want one BulkRequest of %d PATCHes", shown[0], n)
			}
			for _, op := range ops {
				if op.Get("method").Str != "PATCH" || !strings.HasPrefix(op.Get("path").Str, "/Users/") || op.Get("data").Raw != patch {
					t.Errorf("operation %s", op.Raw)
				}
			}
		})
	}
}

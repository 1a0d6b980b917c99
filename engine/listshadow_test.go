package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/engine/state"
	"github.com/scimsync/scimsync/lang"
)

// The tests in this file check the shadows a resync records from listings
// (listshadow.go) against the real SCIM test server.

// shadowDirectoryLDIF is a directory of users and ten groups, so that the
// groups' endpoint is worth reading back after a Bulk load (readBackWorth):
// "inner" (u000), "outer" (inner and u003: a member by bulkId when both are
// created in one Bulk request) and g02 to g09 (two users each).
func shadowDirectoryLDIF(prefix string, users int) string {
	var b strings.Builder
	for i := 0; i < users; i++ {
		uid := fmt.Sprintf("%s-u%03d", prefix, i)
		fmt.Fprintf(&b, "dn: uid=%s,ou=People,dc=example,dc=com\nuid: %s\nentryUUID: uuid-%s\ngivenName: User\nsn: Number %d\ncn: User %d\nmail: %s@example.com\n\n",
			uid, uid, uid, i, i, uid)
	}
	group := func(name string, members ...string) {
		fmt.Fprintf(&b, "dn: cn=%s-%s,ou=Groups,dc=example,dc=com\ncn: %s-%s\n", prefix, name, prefix, name)
		for _, m := range members {
			fmt.Fprintf(&b, "member: %s\n", m)
		}
		b.WriteString("\n")
	}
	user := func(i int) string { return fmt.Sprintf("uid=%s-u%03d,ou=People,dc=example,dc=com", prefix, i) }
	group("inner", user(0))
	group("outer", "cn="+prefix+"-inner,ou=Groups,dc=example,dc=com", user(3))
	for g := 2; g < 10; g++ {
		group(fmt.Sprintf("g%02d", g), user(g), user(g+1))
	}
	return b.String()
}

// listingProxy is a proxy in front of env that leaves attrs out of each
// resource of the list pages it passes on (GET …?startIndex=), as services
// that list less than they return by id do; it returns the SCIM base URL
// through it.
func listingProxy(t *testing.T, env scimtest.Env, attrs []string) string {
	t.Helper()
	target, err := url.Parse(env.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(&url.URL{Scheme: target.Scheme, Host: target.Host})
		r.Out.Host = target.Host
		r.Out.Header.Del("Accept-Encoding") // the pages are rewritten: plain
	}}
	proxy.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Method != http.MethodGet || resp.Request.URL.Query().Get("startIndex") == "" {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		n := len(gjson.GetBytes(body, "Resources").Array())
		for i := 0; i < n; i++ {
			for _, a := range attrs {
				if body, err = sjson.DeleteBytes(body, "Resources."+strconv.Itoa(i)+"."+a); err != nil {
					return err
				}
			}
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return srv.URL + target.Path
}

// listedShadowFixture is a fixture against a SCIM server of the test's own,
// reached through listingProxy (strip: what its listings leave out).
func listedShadowFixture(t *testing.T, strip []string) *fixture {
	t.Helper()
	env := scimtest.Private(t)
	base := env.URL
	if len(strip) > 0 {
		base = listingProxy(t, env, strip)
	}
	script := strings.NewReplacer("%UPDATE%", "patch", "%ONDELETE%", "delete").Replace(destScript)
	br := newBulkRun(t, env, script, map[string]string{"SCIM_URL": base}, 0)
	t.Cleanup(br.client.CloseIdleConnections)
	return &fixture{t: t, env: env, pipe: br.pipe, dest: &Destination{Client: br.client, Pipe: br.pipe}, ev: br.pipe.NewEvaluator(),
		client: br.client, ua: br.ua}
}

// TestResyncShadowsFromListings (issue 15): after a resync, the first
// change of a user (its title) and of a group's members (a second member),
// applied as run applies them (ApplyKnown reading shadows, in a process
// that opens the state the resync closed), is one PATCH and nothing else,
// whether the resync created everything in Bulk requests (their resources
// read back from a listing: two pages more) or found nothing to change
// (their listed copies: no request more). A service whose listings leave
// out the users' emails, or the groups' members, gives those resources no
// shadow, and their change reads them first, as without shadows. Every
// case leaves the service in the state the GET-first path leaves it in.
func TestResyncShadowsFromListings(t *testing.T) {
	const users = 12
	prefix := scimtest.Unique("rsl")
	text := shadowDirectoryLDIF(prefix, users)
	userDN := fmt.Sprintf("uid=%s-u%03d,ou=People,dc=example,dc=com", prefix, 1)
	groupDN := "cn=" + prefix + "-inner,ou=Groups,dc=example,dc=com"
	one := func(ep string) []string { return []string{"PATCH /" + ep + "/{id}"} }
	two := func(ep string) []string { return []string{"GET /" + ep + "/{id}", "PATCH /" + ep + "/{id}"} }
	var want string // the state the GET-first path leaves: the first case's
	for _, tt := range []struct {
		name string
		// unchanged: a resync without shadows, then one where nothing
		// differs that keeps them; else a Bulk resync keeping them.
		unchanged bool
		strip     []string // what the service's listings leave out
		read      bool     // the changes read shadows (run --shadows)
		wantPages int      // list pages the last resync read
		user      []string // the requests of the user's change
		group     []string // ... and of the group's
	}{
		{name: "GET first", read: false, wantPages: 4, user: two("Users"), group: two("Groups")},
		{name: "bulk load", read: true, wantPages: 4, user: one("Users"), group: one("Groups")},
		{name: "nothing differs", unchanged: true, read: true, wantPages: 2, user: one("Users"), group: one("Groups")},
		{name: "bulk load, users listed without emails", strip: []string{"emails"}, read: true, wantPages: 4, user: two("Users"), group: one("Groups")},
		{name: "bulk load, groups listed without members", strip: []string{"members"}, read: true, wantPages: 4, user: one("Users"), group: two("Groups")},
		{name: "nothing differs, groups listed without members", unchanged: true, strip: []string{"members"}, read: true, wantPages: 2, user: one("Users"), group: two("Groups")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := listedShadowFixture(t, tt.strip)
			_, dir, err := source.ReadLDIF(strings.NewReader(text))
			if err != nil {
				t.Fatal(err)
			}
			stateDir := t.TempDir()
			var mu sync.Mutex
			ids := map[string]string{}         // normalized DN -> id
			eps := map[string]*lang.Endpoint{} // normalized DN -> endpoint
			resync := func(st *state.Store) (*Stats, int) {
				t.Helper()
				seq := lastSeq(t, f.env, f.ua)
				stats, failed := f.resync(dir, nil, func(d *Destination, o *ResyncOptions) {
					ls, err := d.ListAll(context.Background(), f.pipe.Endpoints, ListOptions{Want: int64(dir.Len()), Who: "test"})
					if err != nil {
						t.Fatal(err)
					}
					d.Listings = ls
					if st != nil {
						d.Shadows = NewShadows(st)
					}
					o.Applied = func(e *lang.Entry, _ string, a Applied) {
						mu.Lock()
						defer mu.Unlock()
						ids[source.NormalizeDN(e.DN)], eps[source.NormalizeDN(e.DN)] = a.ID, a.Endpoint
					}
				})
				if len(failed) > 0 {
					t.Fatalf("resync failed: %s", failedDNs(failed))
				}
				pages := 0
				for _, q := range f.env.Requests(t, f.ua) {
					if q.Seq > seq && q.Method == http.MethodGet && q.Query["startIndex"] != nil {
						pages++
					}
				}
				return stats, pages
			}
			st, err := state.Open(stateDir, f.pipe.Name)
			if err != nil {
				t.Fatal(err)
			}
			var stats *Stats
			var pages int
			if tt.unchanged {
				if s, _ := resync(nil); s.Created.Load() != int64(dir.Len()) {
					t.Fatalf("first resync created %d of %d", s.Created.Load(), dir.Len())
				}
				stats, pages = resync(st)
				if stats.Unchanged.Load() != int64(dir.Len()) || stats.Requests.Load() != 0 {
					t.Fatalf("second resync: %d unchanged of %d, %d write requests", stats.Unchanged.Load(), dir.Len(), stats.Requests.Load())
				}
			} else {
				stats, pages = resync(st)
				if stats.Created.Load() != int64(dir.Len()) {
					t.Fatalf("resync created %d of %d", stats.Created.Load(), dir.Len())
				}
			}
			if pages != tt.wantPages {
				t.Errorf("the resync read %d list pages, want %d", pages, tt.wantPages)
			}
			// The resync's process ends; run's opens the state it left.
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			st, err = state.Open(stateDir, f.pipe.Name)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if st.ShadowsDropped() {
				t.Fatal("the resync did not close the state store cleanly: its shadows were dropped")
			}
			d := &Destination{Client: f.client, Pipe: f.pipe, Shadows: NewShadows(st)}
			refs := &RefResolver{Pipe: f.pipe, Dest: d, Mode: lang.Realtime, Entry: dirGet(dir)}
			alive := map[string]bool{}
			for dn, id := range ids {
				refs.Know(dn, eps[dn], id)
				alive[id] = true
			}
			change := func(dn, attr string, vals ...string) []string {
				t.Helper()
				e := dir.Get(dn)
				e.Replace(attr, vals...)
				res, err := f.pipe.NewEvaluator().Eval(&lang.Change{Type: lang.Modify, DN: dn, Entry: e}, lang.Realtime)
				if err != nil {
					t.Fatal(err)
				}
				seq := lastSeq(t, f.env, f.ua)
				id := ids[source.NormalizeDN(dn)]
				a, err := d.ApplyKnown(context.Background(), res, Known{ID: id, Shadow: tt.read, Alive: func(id string) bool { return alive[id] }}, refs)
				if err != nil || a.Outcome != Updated {
					t.Fatalf("%s: %+v %v", dn, a, err)
				}
				var got []string
				for _, q := range f.env.Requests(t, f.ua) {
					if q.Seq > seq {
						got = append(got, q.Method+" "+strings.Replace(q.Path, id, "{id}", 1))
					}
				}
				return got
			}
			if got := change(userDN, "title", "Manager"); strings.Join(got, ", ") != strings.Join(tt.user, ", ") {
				t.Errorf("the user's change sent %q, want %q", got, tt.user)
			}
			members := []string{fmt.Sprintf("uid=%s-u%03d,ou=People,dc=example,dc=com", prefix, 0), fmt.Sprintf("uid=%s-u%03d,ou=People,dc=example,dc=com", prefix, 2)}
			if got := change(groupDN, "member", members...); strings.Join(got, ", ") != strings.Join(tt.group, ", ") {
				t.Errorf("the group's change sent %q, want %q", got, tt.group)
			}
			got := f.state()
			if want == "" {
				want = got
				for _, s := range []string{`"title":"Manager"`, prefix + "-u002/User"} {
					if !strings.Contains(got, s) {
						t.Fatalf("the GET-first path left no %s:\n%s", s, got)
					}
				}
				return
			}
			if got != want {
				t.Errorf("the service's state:\n%s\nwant the GET-first path's:\n%s", got, want)
			}
		})
	}
}

// TestReadBackWorth: an endpoint is read back when its pages number at
// most a tenth of the resources Bulk wrote to it.
func TestReadBackWorth(t *testing.T) {
	for _, tt := range []struct {
		name                           string
		listed, created, written, size int
		pages                          int
		worth                          bool
	}{
		{"a load into an empty service", 0, 10000, 10000, 200, 50, true},
		{"a dozen: one page", 0, 12, 12, 200, 1, true},
		{"nine: not worth a page", 0, 9, 9, 200, 1, false},
		{"the default page", 0, 100, 100, 0, 1, true},
		{"the service's maxResults", 1000, 1000, 1000, 100, 20, true},
		{"a few updates of many", 100000, 0, 300, 200, 500, false},
		{"5 % of the endpoint: the break-even", 100000, 0, 5000, 200, 500, true},
		{"just under it", 100000, 0, 4999, 200, 500, false},
		{"one more than a page", 200, 1, 10, 200, 2, false},
		{"nothing written", 1000, 0, 0, 200, 5, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pages, worth := readBackWorth(tt.listed, tt.created, tt.written, tt.size)
			if pages != tt.pages || worth != tt.worth {
				t.Errorf("readBackWorth(%d, %d, %d, %d) = %d pages, worth %v; want %d, %v",
					tt.listed, tt.created, tt.written, tt.size, pages, worth, tt.pages, tt.worth)
			}
		})
	}
}

// TestKeepListed: a resync that finds nothing to change in a resource
// records the listing's copy of it as its shadow only when that copy may
// stand for the resource (listshadow.go); each case but the first breaks
// one rule, and no shadow is recorded.
func TestKeepListed(t *testing.T) {
	script := strings.NewReplacer("%UPDATE%", "patch", "%ONDELETE%", "delete").Replace(destScript)
	p, err := lang.Load("keeplisted.pipe", script, lang.LoadOptions{LookupEnv: func(k string) (string, bool) {
		return map[string]string{"SCIM_URL": "http://127.0.0.1:9/scim/v2", "SCIM_TOKEN": "t"}[k], true
	}})
	if err != nil {
		t.Fatal(err)
	}
	const userID, groupID = "u-1", "g-1"
	userDN := "uid=kl,ou=People,dc=example,dc=com"
	for _, tt := range []struct {
		name string
		dn   string
		// attrs are the entry's; the resource is listed as the entry
		// makes it, then changed by listed.
		attrs  []lang.Attr
		listed func(raw []byte) []byte
		before func(t *testing.T, d *Destination, l *Listing) // what happens between the listing and the resync's compare
		asRead bool                                           // the resync compared with a read of the resource, not the listed copy
		twice  bool                                           // a second resync finds the same: its record is not written again
		want   bool
	}{
		{name: "a user listed as the entry makes it", dn: userDN, want: true},
		{name: "found the same by a second resync", dn: userDN, twice: true, want: true},
		{name: "a group listed with its members", dn: "cn=kl,ou=Groups,dc=example,dc=com",
			attrs: []lang.Attr{{Name: "cn", Values: []string{"kl"}}, {Name: "member", Values: []string{userDN}}}, want: true},
		{name: "a group listed without members", dn: "cn=kl,ou=Groups,dc=example,dc=com",
			attrs: []lang.Attr{{Name: "cn", Values: []string{"kl"}}}},
		{name: "read, not listed", dn: userDN, asRead: true},
		{name: "written since it was listed", dn: userDN,
			before: func(t *testing.T, d *Destination, l *Listing) { l.wrote(userID, nil, "") }},
		{name: "written by another session since it was listed", dn: userDN,
			before: func(t *testing.T, d *Destination, l *Listing) {
				s := d.shadowBegin("/Users", userID, time.Now())
				s.note(nil, nil) // a write answered 204
				s.end()
			}},
		{name: "listed while a write was in doubt", dn: userDN,
			before: func(t *testing.T, d *Destination, l *Listing) {
				// Sent before the listing, its answer lost after it: the
				// quiet time (short here) is over by the compare, but the
				// copy is as old as the listing.
				d.Shadows.Quiet = time.Nanosecond
				s := d.shadowBegin("/Users", userID, time.Now())
				raw, _ := l.Peek(userID)
				d.Listings["Users"] = NewListing(l.ep, raw)
				s.note(nil, &scim.TransportError{Err: io.ErrUnexpectedEOF})
				s.end()
			}},
		{name: "listed within the quiet time after a process died", dn: userDN,
			before: func(t *testing.T, d *Destination, l *Listing) {
				// Its writes may land until the quiet time (short here)
				// after the store was opened, as the listing was read.
				d.Shadows.dropped, d.Shadows.opened, d.Shadows.Quiet = true, l.read, time.Nanosecond
			}},
		{name: "the copy holds a secret value", dn: userDN, attrs: []lang.Attr{{Name: "userPassword", Values: []string{"Number 7"}}, {Name: "sn", Values: []string{"Number 7"}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, err := state.Open(t.TempDir(), p.Name)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			d := &Destination{Pipe: p, Shadows: NewShadows(st)}
			refs := &RefResolver{Pipe: p, Dest: d, Mode: lang.Resync, Entry: func(string) (*lang.Entry, error) { return nil, nil }}
			refs.Know(userDN, p.Endpoint("Users"), userID)
			ch := person("kl", tt.attrs...)
			ch.DN = tt.dn
			if strings.HasPrefix(tt.dn, "cn=") {
				ch.Entry = lang.NewEntry(tt.dn, tt.attrs)
			}
			res, err := p.NewEvaluator().Eval(ch, lang.Resync)
			if err != nil {
				t.Fatal(err)
			}
			id := userID
			if res.Endpoint.Name == "Groups" {
				id = groupID
			}
			desired, err := res.Resource(lang.Update, refs)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := sjson.SetBytes(desired, "id", id)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ = sjson.DeleteBytes(raw, "schemas")
			l := NewListing(res.Endpoint, raw)
			d.Listings = map[string]*Listing{res.Endpoint.Name: l}
			if tt.before != nil {
				tt.before(t, d, l)
			}
			current := raw
			if tt.asRead {
				current, _ = sjson.SetBytes(raw, "meta.version", `W/"1"`)
			}
			a, err := d.ApplyFound(context.Background(), res, id, current, refs)
			if err != nil || a.Outcome != Unchanged || a.Requests != 0 {
				t.Fatalf("ApplyFound = %+v, %v; want unchanged, no request", a, err)
			}
			key := shadowKey(res.Endpoint.Path, id)
			if tt.twice {
				waitFor(t, 5*time.Second, "the shadow in the store", func() (bool, string) {
					_, ok, err := st.Shadow(key)
					return ok && err == nil, fmt.Sprint(err)
				})
				if _, err := d.ApplyFound(context.Background(), res, id, current, refs); err != nil {
					t.Fatal(err)
				}
				d.Shadows.mu.Lock()
				_, queued := d.Shadows.slots[key] // a slot stays while its write is queued, and after
				d.Shadows.mu.Unlock()
				if queued {
					t.Error("the second resync wrote the same shadow again")
				}
			}
			s := d.Shadows.begin(res.Endpoint.Path, id, time.Now(), time.Minute)
			rec := s.read(res.Endpoint, func(string) bool { return true })
			s.end()
			if got := rec != nil; got != tt.want {
				t.Errorf("shadow recorded: %v, want %v", got, tt.want)
			}
			if rec != nil && !rec.covers(res.Managed(lang.Update)) {
				t.Errorf("the shadow does not cover the managed attributes: %s", rec.Covers)
			}
		})
	}
}

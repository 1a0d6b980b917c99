package engine

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
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

// The tests in this file run the shipped pipes (scripts/openldap-to-scim.pipe
// with syncrepl, scripts/389ds-to-scim.pipe with cn=changelog) as written,
// with a Runner in real time, against the real slapd, 389-ds and SCIM
// servers. The Runner is driven in-process so that its SCIM client can
// carry this test's User-Agent, which filters the server's request log.

// ldapRun is a Runner reading a shared LDAP server in real time.
type ldapRun struct {
	t      *testing.T
	srv    ldaptest.Server
	env    scimtest.Env
	pipe   *lang.Pipe
	client *scim.Client
	ua     string
	st     *state.Store
	runner *Runner
	stop   context.CancelFunc
	done   chan error
	tune   func(*Runner) // set before start: changes the Runner before it runs
}

// shippedPipe loads a pipe of scripts/ with the environment the
// test-server scripts print (LDAP_URL ... SCIM_TOKEN).
func shippedPipe(t *testing.T, file string, srv ldaptest.Server, env scimtest.Env) *lang.Pipe {
	t.Helper()
	vars := map[string]string{"LDAP_URL": srv.URL, "LDAP_BASE": srv.Base, "LDAP_BIND_DN": srv.BindDN,
		"LDAP_BIND_PW": srv.BindPW, "SCIM_URL": env.URL, "SCIM_TOKEN": env.Token}
	p, err := lang.LoadFile("../scripts/"+file, lang.LoadOptions{LookupEnv: func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startLDAPRun sets the start point at the end of the source's changes and
// starts a Runner in real time; it is stopped when the test ends.
func startLDAPRun(t *testing.T, file string, srv ldaptest.Server) *ldapRun {
	t.Helper()
	return startLDAPRunVia(t, file, srv, "")
}

// startLDAPRunVia is startLDAPRun with the pipe's SCIM URL set to scimURL
// (a proxy in front of the test server) when it is not "".
func startLDAPRunVia(t *testing.T, file string, srv ldaptest.Server, scimURL string) *ldapRun {
	t.Helper()
	env := scimtest.Server(t)
	penv := env
	if scimURL != "" {
		penv.URL = scimURL
	}
	p := shippedPipe(t, file, srv, penv)
	r := &ldapRun{t: t, srv: srv, env: env, pipe: p, ua: scimtest.UserAgent(t), done: make(chan error, 1)}
	cfg := p.SCIM
	cfg.UserAgent = r.ua
	var err error
	if r.client, err = scim.NewClient(cfg); err != nil {
		t.Fatal(err)
	}
	if r.st, err = state.Open(t.TempDir(), p.Name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.st.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pos, err := source.StartPoint(ctx, p.Source, source.StartSpec{Kind: source.StartEnd}, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.st.SetCheckpoint(pos); err != nil {
		t.Fatal(err)
	}
	return r
}

// start opens the source at the checkpoint and runs until the test ends.
func (r *ldapRun) start() {
	t := r.t
	t.Helper()
	pos, err := r.st.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	opts := source.Options{Logger: log, KnownDN: r.st.KnownDN, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	src, err := source.Open(ctx, r.pipe.Source, pos, opts)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := source.OpenReader(ctx, r.pipe.Source, opts)
	if err != nil {
		t.Fatal(err)
	}
	r.runner = &Runner{Pipe: r.pipe, Dest: &Destination{Client: r.client, Pipe: r.pipe}, Store: r.st, Source: src,
		Workers: 4, Log: log, Entry: func(ctx context.Context, dn string) (*lang.Entry, error) {
			if !rd.InScope(dn) {
				return nil, nil
			}
			return rd.Entry(ctx, dn)
		}, EntryByID: rd.EntryByID}
	if r.tune != nil {
		r.tune(r.runner)
	}
	runCtx, stop := context.WithCancel(context.Background())
	r.stop = stop
	go func() { r.done <- r.runner.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not stop within 15s of its context's end")
		}
		src.Close()
		rd.Close()
	})
}

// waitFor polls cond every 100 ms until it holds, failing after limit with
// what it last reported.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, got := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last: %s", limit, what, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// find returns the resources a filter finds at an endpoint.
func (r *ldapRun) find(endpoint, filter string) []gjson.Result {
	r.t.Helper()
	found, _, err := r.client.Search(context.Background(), endpoint, filter, false)
	if err != nil {
		r.t.Fatalf("search %s %s: %v", endpoint, filter, err)
	}
	out := make([]gjson.Result, len(found))
	for i, f := range found {
		out[i] = gjson.ParseBytes(f)
	}
	return out
}

// user waits until exactly one user has userName and check accepts it.
func (r *ldapRun) user(userName string, check func(gjson.Result) (bool, string)) gjson.Result {
	r.t.Helper()
	var u gjson.Result
	waitFor(r.t, 10*time.Second, "user "+userName, func() (bool, string) {
		found := r.find("/Users", `userName eq "`+userName+`"`)
		if len(found) != 1 {
			return false, fmt.Sprintf("%d users", len(found))
		}
		u = found[0]
		if check == nil {
			return true, ""
		}
		return check(u)
	})
	return u
}

// group waits until exactly one group has displayName and its members are
// exactly ids.
func (r *ldapRun) group(name string, ids ...string) gjson.Result {
	r.t.Helper()
	var g gjson.Result
	slices.Sort(ids)
	waitFor(r.t, 10*time.Second, "group "+name+" with members "+strings.Join(ids, ","), func() (bool, string) {
		found := r.find("/Groups", `displayName eq "`+name+`"`)
		if len(found) != 1 {
			return false, fmt.Sprintf("%d groups", len(found))
		}
		g = found[0]
		var got []string
		for _, m := range g.Get("members.#.value").Array() {
			got = append(got, m.String())
		}
		slices.Sort(got)
		return slices.Equal(got, ids), "members " + strings.Join(got, ",")
	})
	return g
}

// gone waits until the resource no longer exists.
func (r *ldapRun) gone(path string) {
	r.t.Helper()
	waitFor(r.t, 10*time.Second, path+" deleted", func() (bool, string) {
		_, err := r.client.Get(context.Background(), path)
		return scim.IsStatus(err, http.StatusNotFound), fmt.Sprint(err)
	})
}

// lastSeq is the sequence number of this test's newest logged request.
func (r *ldapRun) lastSeq() int {
	seq := 0
	for _, q := range r.env.Requests(r.t, r.ua) {
		seq = max(seq, q.Seq)
	}
	return seq
}

// writesSince lists this test's write requests logged after seq.
func (r *ldapRun) writesSince(seq int) []string {
	var out []string
	for _, q := range r.env.Requests(r.t, r.ua) {
		if q.Seq > seq && q.Method != http.MethodGet && !strings.HasSuffix(q.Path, "/.search") {
			out = append(out, q.Method+" "+q.Path)
		}
	}
	return out
}

func ldapModify(t *testing.T, c *ldap.Conn, dn string, f func(*ldap.ModifyRequest)) {
	t.Helper()
	m := ldap.NewModifyRequest(dn, nil)
	f(m)
	if err := c.Modify(m); err != nil {
		t.Fatalf("modify %s: %v", dn, err)
	}
}

// ldapAddGroup adds a groupOfNames cn=name under ou=Groups of srv and
// returns its DN.
func ldapAddGroup(t *testing.T, c *ldap.Conn, srv ldaptest.Server, name string, members ...string) string {
	t.Helper()
	dn := "cn=" + name + ",ou=Groups," + srv.Base
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"top", "groupOfNames"})
	req.Attribute("cn", []string{name})
	req.Attribute("member", members)
	if err := c.Add(req); err != nil {
		t.Fatalf("add %s: %v", dn, err)
	}
	return dn
}

// ldapAddOU adds ou=name under srv's base (outside every class's base) and
// returns its DN.
func ldapAddOU(t *testing.T, c *ldap.Conn, srv ldaptest.Server, name string) string {
	t.Helper()
	dn := "ou=" + name + "," + srv.Base
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"top", "organizationalUnit"})
	req.Attribute("ou", []string{name})
	if err := c.Add(req); err != nil {
		t.Fatalf("add %s: %v", dn, err)
	}
	return dn
}

// halt stops the run before the test ends (the cleanup then finds it
// stopped).
func (r *ldapRun) halt() {
	r.t.Helper()
	r.stop()
	if err := <-r.done; err != nil {
		r.t.Fatal(err)
	}
	r.done <- nil
}

// restart runs the pipe again from the store's checkpoint, as a new
// process would.
func (r *ldapRun) restart() *ldapRun {
	r2 := *r
	r2.done = make(chan error, 1)
	r2.start()
	return &r2
}

func ldapDelete(t *testing.T, c *ldap.Conn, dn string) {
	t.Helper()
	if err := c.Del(ldap.NewDelRequest(dn, nil)); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		t.Fatalf("delete %s: %v", dn, err)
	}
}

// TestRunLDAPLifecycle: with each shipped pipe and its server, add,
// modify, modrdn and delete of users and groups made in the directory
// reach SCIM while the Runner runs: group members become SCIM ids (one
// that the run never saw is read from the directory and looked up), a
// member added to a group is one PATCH, a renamed user keeps its SCIM id
// and its group membership.
func TestRunLDAPLifecycle(t *testing.T) {
	for _, tc := range []struct {
		name, pipe string
		server     func(testing.TB) ldaptest.Server
		idAttr     string
	}{
		{"openldap-syncrepl", "openldap-to-scim.pipe", ldaptest.OpenLDAP, "entryUUID"},
		{"389ds-changelog", "389ds-to-scim.pipe", ldaptest.DS389, "nsUniqueId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			shared := tc.server(t)
			c := shared.Dial(t)
			prefix := scimtest.Unique("rl")
			// LDAP_BASE is a subtree of this test's: the run sees only the
			// changes made there, not those of tests running beside it
			srv := shared.Subtree(t, c, prefix)
			add := func(uid string, attrs map[string][]string) string {
				return srv.AddUser(t, c, uid, attrs)
			}
			// made before the start point: the run never sees its add, and
			// SCIM has it as a resync would have made it
			preDN := add(prefix+"-pre", nil)
			r := startLDAPRun(t, tc.pipe, srv)
			pre, err := r.client.Create(context.Background(), "/Users",
				[]byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+prefix+`-pre"}`))
			if err != nil {
				t.Fatal(err)
			}
			preID := gjson.GetBytes(pre, "id").String()
			r.start()
			t0 := time.Now()

			aDN := add(prefix+"-a", map[string][]string{"mail": {"A@Example.com"}, "givenName": {"Ann"}})
			bDN := add(prefix+"-b", nil)
			cDN := add(prefix+"-c", nil)
			a := r.user(prefix+"-a", func(u gjson.Result) (bool, string) {
				return u.Get("emails.0.value").Str == "a@example.com" && u.Get("name.givenName").Str == "Ann", u.Raw
			})
			aID := a.Get("id").Str
			if ext := a.Get("externalId").Str; len(ext) < 32 {
				t.Errorf("externalId %q: want the entry's %s", ext, tc.idAttr)
			}
			bID := r.user(prefix+"-b", nil).Get("id").Str
			cID := r.user(prefix+"-c", nil).Get("id").Str
			t.Logf("3 adds reached SCIM in %v", time.Since(t0).Round(time.Millisecond))

			gName := prefix + "-g"
			gDN := "cn=" + gName + ",ou=Groups," + srv.Base
			greq := ldap.NewAddRequest(gDN, nil)
			greq.Attribute("objectClass", []string{"top", "groupOfNames"})
			greq.Attribute("cn", []string{gName})
			greq.Attribute("member", []string{aDN, bDN, preDN})
			if err := c.Add(greq); err != nil {
				t.Fatal(err)
			}
			gID := r.group(gName, aID, bID, preID).Get("id").Str

			t1 := time.Now()
			ldapModify(t, c, aDN, func(m *ldap.ModifyRequest) {
				m.Replace("mail", []string{"ann.new@example.com"})
				m.Replace("givenName", []string{"Anne"})
			})
			r.user(prefix+"-a", func(u gjson.Result) (bool, string) {
				return u.Get("emails.0.value").Str == "ann.new@example.com" && u.Get("name.givenName").Str == "Anne" && u.Get("id").Str == aID, u.Raw
			})
			t.Logf("a modify reached SCIM in %v", time.Since(t1).Round(time.Millisecond))

			seq := r.lastSeq()
			ldapModify(t, c, gDN, func(m *ldap.ModifyRequest) { m.Add("member", []string{cDN}) })
			r.group(gName, aID, bID, cID, preID)
			time.Sleep(300 * time.Millisecond) // anything else the change would send
			if w := r.writesSince(seq); len(w) != 1 || w[0] != "PATCH /Groups/"+gID {
				t.Errorf("adding a member sent %q, want one PATCH /Groups/%s", w, gID)
			}

			// modrdn: same SCIM id, new userName, still a member
			t2 := time.Now()
			if err := c.ModifyDN(ldap.NewModifyDNRequest(aDN, "uid="+prefix+"-a2", true, "")); err != nil {
				t.Fatal(err)
			}
			a2DN := "uid=" + prefix + "-a2,ou=People," + srv.Base
			r.user(prefix+"-a2", func(u gjson.Result) (bool, string) { return u.Get("id").Str == aID, u.Raw })
			t.Logf("a modrdn reached SCIM in %v", time.Since(t2).Round(time.Millisecond))
			if n := len(r.find("/Users", `userName eq "`+prefix+`-a"`)); n != 0 {
				t.Errorf("the old userName is still there %d times", n)
			}
			r.group(gName, aID, bID, cID, preID)
			// the group's member value follows the rename (as refint would):
			// the members stay the same resources
			ldapModify(t, c, gDN, func(m *ldap.ModifyRequest) { m.Replace("member", []string{a2DN, bDN, cDN, preDN}) })
			time.Sleep(500 * time.Millisecond)
			r.group(gName, aID, bID, cID, preID)

			// deletes
			t3 := time.Now()
			ldapDelete(t, c, bDN)
			r.gone("/Users/" + bID)
			t.Logf("a delete reached SCIM in %v", time.Since(t3).Round(time.Millisecond))
			ldapDelete(t, c, gDN)
			r.gone("/Groups/" + gID)
			ldapDelete(t, c, cDN)
			r.gone("/Users/" + cID)
			if n := r.runner.Stats.Parked.Load(); n != 0 {
				t.Errorf("%d changes parked", n)
			}
			// the id map follows: the renamed user under its new DN, the
			// deleted ones gone (the id map is updated just after SCIM
			// answers the delete: wait for it)
			waitFor(t, 5*time.Second, "the id map to hold only "+a2DN, func() (bool, string) {
				var dns []string
				_ = r.st.Range(func(_ string, m state.Mapping) bool {
					if strings.Contains(m.DN, prefix) {
						dns = append(dns, strings.ToLower(m.DN))
					}
					return true
				})
				return slices.Equal(dns, []string{strings.ToLower(a2DN)}), fmt.Sprint(dns)
			})
			_ = r.client.Delete(context.Background(), "/Users", aID)
			_ = r.client.Delete(context.Background(), "/Users", preID)
		})
	}
}

// stopSource reports one change, then waits for the end of the run.
type stopSource struct {
	ev   *source.Event
	sent bool
}

func (s *stopSource) Next(ctx context.Context) (*source.Event, error) {
	if !s.sent {
		s.sent = true
		return s.ev, nil
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (s *stopSource) Close() error { return nil }

// TestRunStopFinishesReferences: a change in flight when the run is
// stopped is finished, not parked, even while it reads a referenced entry
// from the directory (Runner.Entry) and looks it up in SCIM.
func TestRunStopFinishesReferences(t *testing.T) {
	f := newFixture(t, "patch", "delete")
	p := scimtest.Unique("stop")
	uuid := "uuid-" + p
	body, err := f.client.Create(context.Background(), "/Users",
		[]byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+p+`","externalId":"`+uuid+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	uid := gjson.GetBytes(body, "id").Str
	t.Cleanup(func() { _ = f.client.Delete(context.Background(), "/Users", uid) })
	memberDN := "uid=" + p + ",ou=People,dc=example,dc=com"
	gDN := "cn=" + p + "-g,ou=Groups,dc=example,dc=com"
	group := lang.NewEntry(gDN, []lang.Attr{{Name: "cn", Values: []string{p + "-g"}}, {Name: "member", Values: []string{memberDN}}})
	src := &stopSource{ev: &source.Event{Kind: source.EventChange, Identity: uuid + "-g", Position: "ldif:1",
		Change: &lang.Change{Type: lang.Add, DN: gDN, Entry: group}}}
	st, err := state.Open(t.TempDir(), "stop-test")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, stop := context.WithCancel(context.Background())
	entered := make(chan struct{})
	r := &Runner{Pipe: f.pipe, Dest: f.dest, Store: st, Source: src, Workers: 2,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		Entry: func(ectx context.Context, dn string) (*lang.Entry, error) {
			close(entered)
			<-ctx.Done() // the run is being stopped while the entry is read
			time.Sleep(50 * time.Millisecond)
			if err := ectx.Err(); err != nil {
				return nil, err
			}
			return lang.NewEntry(dn, []lang.Attr{{Name: "uid", Values: []string{p}}, {Name: "entryUUID", Values: []string{uuid}}}), nil
		}}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the member was never read")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := r.Stats.Parked.Load(); n != 0 {
		parked, _ := st.ListParked()
		t.Fatalf("%d changes parked: %+v", n, parked)
	}
	found, _, err := f.client.Search(context.Background(), "/Groups", `displayName eq "`+p+`-g"`, false)
	if err != nil || len(found) != 1 {
		t.Fatalf("group: %d, %v", len(found), err)
	}
	t.Cleanup(func() { _ = f.client.Delete(context.Background(), "/Groups", gjson.GetBytes(found[0], "id").Str) })
	if m := gjson.GetBytes(found[0], "members.#.value").Array(); len(m) != 1 || m[0].Str != uid {
		t.Errorf("members %v, want [%s]", m, uid)
	}
}

// TestRunLDAPGroupsAndScope: against slapd (syncrepl) with the shipped
// pipe, in real time: a nested group is a member of type Group; removing
// a member is one PATCH with one operation; a user moved out of ou=People
// (out of its class's base) loses its SCIM resource (onLeave defaults to
// delete) and leaves the group.
func TestRunLDAPGroupsAndScope(t *testing.T) {
	shared := ldaptest.OpenLDAP(t)
	c := shared.Dial(t)
	prefix := scimtest.Unique("gs")
	srv := shared.Subtree(t, c, prefix)
	r := startLDAPRun(t, "openldap-to-scim.pipe", srv)
	r.start()
	aDN := srv.AddUser(t, c, prefix+"-a", nil)
	bDN := srv.AddUser(t, c, prefix+"-b", nil)
	aID := r.user(prefix+"-a", nil).Get("id").Str
	bID := r.user(prefix+"-b", nil).Get("id").Str
	innerDN := ldapAddGroup(t, c, srv, prefix+"-inner", bDN)
	innerID := r.group(prefix+"-inner", bID).Get("id").Str
	outerDN := ldapAddGroup(t, c, srv, prefix+"-outer", aDN, innerDN)
	outer := r.group(prefix+"-outer", aID, innerID)
	for _, m := range outer.Get("members").Array() {
		if m.Get("value").Str == innerID && m.Get("type").Str != "Group" {
			t.Errorf("the nested group is a member of type %q, want Group", m.Get("type").Str)
		}
	}
	outerID := outer.Get("id").Str

	seq := r.lastSeq()
	ldapModify(t, c, outerDN, func(m *ldap.ModifyRequest) { m.Delete("member", []string{innerDN}) })
	r.group(prefix+"-outer", aID)
	time.Sleep(300 * time.Millisecond)
	w := r.writesSince(seq)
	if len(w) != 1 || w[0] != "PATCH /Groups/"+outerID {
		t.Fatalf("removing a member sent %q, want one PATCH /Groups/%s", w, outerID)
	}
	var ops int
	for _, req := range r.env.Requests(t, r.ua) {
		if req.Seq > seq && req.Method == http.MethodPatch {
			ops = len(gjson.GetBytes(req.Body, "Operations").Array())
		}
	}
	if ops != 1 {
		t.Errorf("the PATCH has %d operations, want 1", ops)
	}

	// a out of ou=People: out of the people class's base.
	elsewhere := ldapAddOU(t, c, srv, "Elsewhere")
	if err := c.ModifyDN(ldap.NewModifyDNRequest(aDN, "uid="+prefix+"-a", true, elsewhere)); err != nil {
		t.Fatal(err)
	}
	r.gone("/Users/" + aID)
	if n := r.runner.Stats.Parked.Load(); n != 0 {
		t.Errorf("%d changes parked", n)
	}
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
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

// The tests in this file prove the run's behaviour under faults against
// the real servers: the SCIM test server behind outageProxy (which can
// answer 503 itself, or stop listening so that connections are refused),
// and slapd.

// outageProxy forwards to the real SCIM server, and can play an outage:
// 503 for every request, or no listener at all (connection refused). It
// records when each request arrived, as the service would see them.
type outageProxy struct {
	t      *testing.T
	addr   string
	target *url.URL
	rp     *httputil.ReverseProxy

	mu       sync.Mutex
	fail503  bool
	srv      *http.Server
	arrivals []time.Time
	answered map[int]int // status -> count, of what the proxy itself answered
}

func newOutageProxy(t *testing.T, target string) *outageProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &outageProxy{t: t, target: u, answered: map[int]int{}}
	p.rp = &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(&url.URL{Scheme: u.Scheme, Host: u.Host})
		r.Out.Host = u.Host
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(func() { p.down() })
	return p
}

// URL is the SCIM base URL through the proxy.
func (p *outageProxy) URL() string { return "http://" + p.addr + p.target.Path }

func (p *outageProxy) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.arrivals = append(p.arrivals, time.Now())
		fail := p.fail503
		if fail {
			p.answered[http.StatusServiceUnavailable]++
		}
		p.mu.Unlock()
		if fail {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, "<html><body>503 Service Temporarily Unavailable</body></html>")
			return
		}
		p.rp.ServeHTTP(w, r)
	})}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// set503 makes the proxy answer every request 503 (or not).
func (p *outageProxy) set503(on bool) {
	p.mu.Lock()
	p.fail503 = on
	p.mu.Unlock()
}

// down stops listening: connections are refused.
func (p *outageProxy) down() {
	p.mu.Lock()
	srv := p.srv
	p.srv = nil
	p.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// up listens again on the same address.
func (p *outageProxy) up() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("listening again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// logCounter counts log lines that contain a text.
type logCounter struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

func (l *logCounter) Write(b []byte) (int, error) {
	l.mu.Lock()
	l.lines = append(l.lines, strings.TrimSpace(string(b)))
	l.mu.Unlock()
	l.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func (l *logCounter) count(text string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, text) {
			n++
		}
	}
	return n
}

// TestRunOutageParksNothing: a SCIM outage longer than the client's retry
// budget — 503s for 15 s, then connections refused for 15 s — parks
// nothing: every change made during it (adds, a modify, a group with its
// members, a delete) arrives once the service is back, each once, and the
// outage is logged once when it starts and once when it ends.
func TestRunOutageParksNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("a 30 s outage")
	}
	shared := ldaptest.OpenLDAP(t)
	c := shared.Dial(t)
	prefix := scimtest.Unique("out")
	srv := shared.Subtree(t, c, prefix)
	env := scimtest.Server(t)
	px := newOutageProxy(t, env.URL)
	r := startLDAPRunVia(t, "openldap-to-scim.pipe", srv, px.URL())
	logs := &logCounter{t: t}
	r.tune = func(rn *Runner) {
		rn.Log = slog.New(slog.NewTextHandler(logs, nil))
		rn.MaxBackoff = 2 * time.Second
	}
	r.start()
	aDN := srv.AddUser(t, c, prefix+"-a", map[string][]string{"mail": {"a@example.com"}})
	aID := r.user(prefix+"-a", nil).Get("id").Str
	dDN := srv.AddUser(t, c, prefix+"-d", nil)
	dID := r.user(prefix+"-d", nil).Get("id").Str

	px.set503(true)
	began := time.Now()
	bDN := srv.AddUser(t, c, prefix+"-b", nil)
	ldapModify(t, c, aDN, func(m *ldap.ModifyRequest) { m.Replace("mail", []string{"a.new@example.com"}) })
	gName := prefix + "-g"
	ldapAddGroup(t, c, srv, gName, aDN, bDN)
	time.Sleep(15*time.Second - time.Since(began))
	px.down()
	ldapDelete(t, c, dDN)
	cDN := srv.AddUser(t, c, prefix+"-c", nil)
	time.Sleep(30*time.Second - time.Since(began))
	px.set503(false)
	px.up()
	t.Logf("outage: %v (503 answered %d times, then connections refused)", time.Since(began).Round(time.Second), px.answered[503])

	a := r.user(prefix+"-a", func(u gjson.Result) (bool, string) {
		return u.Get("emails.0.value").Str == "a.new@example.com", u.Raw
	})
	if a.Get("id").Str != aID {
		t.Errorf("user a has a new id %s, want %s", a.Get("id").Str, aID)
	}
	bID := r.user(prefix+"-b", nil).Get("id").Str
	r.user(prefix+"-c", nil)
	r.group(gName, aID, bID)
	r.gone("/Users/" + dID)
	_ = cDN
	if n := r.runner.Stats.Parked.Load(); n != 0 {
		parked, _ := r.st.ListParked()
		t.Errorf("%d changes parked during the outage: %+v", n, parked)
	}
	if n := logs.count("unavailable"); n != 1 {
		t.Errorf("the outage was logged %d times as it began, want once", n)
	}
	waitFor(t, 5*time.Second, "the end of the outage in the log", func() (bool, string) {
		n := logs.count("available again")
		return n == 1, fmt.Sprintf("%d lines", n)
	})
	if r.runner.Stats.Waits.Load() == 0 {
		t.Error("no change waited: the outage was not seen")
	}
}

// TestRunDirectoryRestartWhileReadingMembers: the directory restarts (for
// about a second) just as a group's members are read from it (members the
// run has not seen, so the id map cannot answer): the group waits and
// arrives whole; nothing is parked.
func TestRunDirectoryRestartWhileReadingMembers(t *testing.T) {
	priv := ldaptest.StartOpenLDAP(t)
	c := priv.Dial(t)
	prefix := scimtest.Unique("rst")
	srv := priv.Subtree(t, c, prefix)
	// members made before the start point: the run reads them from the
	// directory when the group names them
	aDN := srv.AddUser(t, c, prefix+"-a", nil)
	bDN := srv.AddUser(t, c, prefix+"-b", nil)
	r := startLDAPRun(t, "openldap-to-scim.pipe", srv)
	var ids []string
	for _, n := range []string{"a", "b"} {
		body, err := r.client.Create(context.Background(), "/Users",
			[]byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+prefix+"-"+n+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, gjson.GetBytes(body, "id").Str)
	}
	var once sync.Once
	restarted := make(chan struct{})
	// slapd may send the change to the run before it answers the add: the
	// directory stops only once the test's add has its answer.
	added := make(chan struct{})
	r.tune = func(rn *Runner) {
		rn.MaxBackoff = time.Second
		read := rn.Entry
		rn.Entry = func(ctx context.Context, dn string) (*lang.Entry, error) {
			once.Do(func() {
				select {
				case <-added:
				case <-time.After(10 * time.Second):
				}
				priv.Stop(t)
				go func() {
					defer close(restarted)
					time.Sleep(time.Second)
					priv.Restart(t)
				}()
			})
			return read(ctx, dn)
		}
	}
	r.start()
	gName := prefix + "-g"
	ldapAddGroup(t, c, srv, gName, aDN, bDN)
	close(added)
	select {
	case <-restarted:
	case <-time.After(30 * time.Second):
		t.Fatal("the members were never read")
	}
	r.group(gName, ids...)
	if n := r.runner.Stats.Parked.Load(); n != 0 {
		parked, _ := r.st.ListParked()
		t.Errorf("%d changes parked: %+v", n, parked)
	}
}

// TestParkedRetryReadsTheEntryNow: a parked change is a pointer to its
// entry. While the run was stopped the entry changed (a new mail, a
// rename, a member removed) or was deleted; retrying the parked change
// writes the entry as it is now, never the values of the change that
// failed, and a deleted entry's resource is deleted, not created again.
func TestParkedRetryReadsTheEntryNow(t *testing.T) {
	shared := ldaptest.OpenLDAP(t)
	c := shared.Dial(t)
	prefix := scimtest.Unique("ptr")
	srv := shared.Subtree(t, c, prefix)
	r := startLDAPRun(t, "openldap-to-scim.pipe", srv)
	r.start()
	aDN := srv.AddUser(t, c, prefix+"-a", map[string][]string{"mail": {"a0@example.com"}})
	bDN := srv.AddUser(t, c, prefix+"-b", nil)
	cDN := srv.AddUser(t, c, prefix+"-c", map[string][]string{"title": {"t0"}})
	aID := r.user(prefix+"-a", nil).Get("id").Str
	bID := r.user(prefix+"-b", nil).Get("id").Str
	cID := r.user(prefix+"-c", nil).Get("id").Str
	gName := prefix + "-g"
	gDN := ldapAddGroup(t, c, srv, gName, aDN, bDN)
	gID := r.group(gName, aID, bID).Get("id").Str

	// Each of these changes is refused (409, also on the two fresh tries)
	// and parked.
	for _, target := range []string{"/Users/" + aID, "/Users/" + cID, "/Groups/" + gID} {
		r.env.Fault(t, scimtest.Fault{Status: 409, Count: 3, Method: "PATCH", Path: target, UserAgent: r.ua})
	}
	ldapModify(t, c, aDN, func(m *ldap.ModifyRequest) { m.Replace("mail", []string{"a1@example.com"}) })
	ldapModify(t, c, cDN, func(m *ldap.ModifyRequest) { m.Replace("title", []string{"t1"}) })
	ldapModify(t, c, gDN, func(m *ldap.ModifyRequest) { m.Add("member", []string{cDN}) })
	waitFor(t, 20*time.Second, "three parked changes", func() (bool, string) {
		ps, _ := r.st.ListParked()
		return len(ps) == 3, fmt.Sprint(len(ps))
	})
	// The run stops; the directory moves on without it.
	r.halt() // for the cleanup
	ldapModify(t, c, aDN, func(m *ldap.ModifyRequest) { m.Replace("mail", []string{"a2@example.com"}) })
	if err := c.ModifyDN(ldap.NewModifyDNRequest(aDN, "uid="+prefix+"-a2", true, "")); err != nil {
		t.Fatal(err)
	}
	// b and c leave the group; a's member value follows its rename (as
	// refint would)
	a2DN := "uid=" + prefix + "-a2,ou=People," + srv.Base
	ldapModify(t, c, gDN, func(m *ldap.ModifyRequest) { m.Replace("member", []string{a2DN}) })
	ldapDelete(t, c, cDN)

	// `failed retry`, as it runs: a Runner without a source.
	ctx := context.Background()
	rd, err := source.OpenReader(ctx, r.pipe.Source, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	rr := &Runner{Pipe: r.pipe, Dest: &Destination{Client: r.client, Pipe: r.pipe}, Store: r.st,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, nil)), Entry: rd.Entry, EntryByID: rd.EntryByID}
	ok, failed, err := rr.RetryParked(ctx)
	if err != nil || ok != 3 || failed != 0 {
		t.Fatalf("retry: %d healed, %d failing, %v", ok, failed, err)
	}
	a := r.user(prefix+"-a2", nil)
	if a.Get("id").Str != aID || a.Get("emails.0.value").Str != "a2@example.com" {
		t.Errorf("user a after the retry: %s; want id %s, userName %s-a2 and the mail the entry has now", a.Raw, aID, prefix)
	}
	r.gone("/Users/" + cID)
	if n := len(r.find("/Users", `userName eq "`+prefix+`-c"`)); n != 0 {
		t.Errorf("the deleted user was created again (%d)", n)
	}
	r.group(gName, aID)
	_ = bID
}

// TestTemporaryClassification: what waits and what parks.
func TestTemporaryClassification(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"503", &scim.Error{Status: 503}, true},
		{"429", &scim.Error{Status: 429}, true},
		{"408", &scim.Error{Status: 408}, true},
		{"500 after retries", &scim.RetryError{Attempts: 5, Err: &scim.Error{Status: 500}}, true},
		{"timeout", fmt.Errorf("create: %w", &scim.TransportError{Timeout: true}), true},
		{"refused", &scim.TransportError{NotSent: true}, true},
		{"TLS", &scim.TransportError{TLS: true}, false},
		{"400", &scim.Error{Status: 400}, false},
		{"401", &scim.Error{Status: 401}, false},
		{"409", &scim.Error{Status: 409}, false},
		{"create pending", fmt.Errorf("x: %w", ErrCreatePending), true},
		{"ldap down", ldap.NewError(ldap.ErrorNetwork, errors.New("connection refused")), true},
		{"ldap busy", ldap.NewError(ldap.LDAPResultBusy, errors.New("busy")), true},
		{"ldap no such object", ldap.NewError(ldap.LDAPResultNoSuchObject, errors.New("x")), false},
		{"bad credentials", fmt.Errorf("x: %w", source.ErrAuth), false},
		{"mapping", &lang.EvalError{Msg: "unexpected EOF"}, false},
		{"reference read while the directory is down", &lang.EvalError{Msg: "reference", Err: ldap.NewError(ldap.ErrorNetwork, errors.New("EOF"))}, true},
		{"over the evaluation budget", &lang.EvalError{Msg: "uid=GEOFF: over budget", Err: &lang.BudgetError{}}, false},
		{"a reference to an entry that is not there, in a DN with EOF", &lang.EvalError{Msg: "reference uid=GEOFF",
			Err: fmt.Errorf("reading uid=GEOFF,dc=x: %w", ldap.NewError(ldap.LDAPResultNoSuchObject, errors.New("uid=GEOFF")))}, false},
	} {
		if got := Temporary(tc.err); got != tc.want {
			t.Errorf("%s: Temporary = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// mappingOf is a state helper for tests: the id map entry of a key.
func mappingOf(t *testing.T, st *state.Store, key string) (state.Mapping, bool) {
	t.Helper()
	m, ok, err := st.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	return m, ok
}

var _ = mappingOf

// TestParkedRetryWithoutIdentitySetting: a 389-ds pipe that names no
// identity attribute (the changelog tells it per record) retries a parked
// entry by reading it again — never taking it for deleted because the
// reader did not know which attribute to search.
func TestParkedRetryWithoutIdentitySetting(t *testing.T) {
	shared := ldaptest.DS389(t)
	c := shared.Dial(t)
	prefix := scimtest.Unique("noid")
	srv := shared.Subtree(t, c, prefix)
	r := startLDAPRun(t, "389ds-to-scim.pipe", srv)
	text := strings.Replace(pipeText(t, "389ds-to-scim.pipe"), `  identity     = "nsUniqueId"`+"\n", "", 1)
	p, err := lang.Load("noid.pipe", text, lang.LoadOptions{LookupEnv: func(k string) (string, bool) {
		v, ok := map[string]string{"LDAP_URL": srv.URL, "LDAP_BASE": srv.Base, "LDAP_BIND_DN": srv.BindDN,
			"LDAP_BIND_PW": srv.BindPW, "SCIM_URL": r.env.URL, "SCIM_TOKEN": r.env.Token}[k]
		return v, ok
	}})
	if err != nil || p.Source.Identity != "" {
		t.Fatalf("the pipe without identity: %v (identity %q)", err, p.Source.Identity)
	}
	r.pipe = p
	r.start()
	uDN := srv.AddUser(t, c, prefix+"-u", map[string][]string{"mail": {"t0@example.com"}})
	id := r.user(prefix+"-u", nil).Get("id").Str
	r.env.Fault(t, scimtest.Fault{Status: 409, Count: 3, Method: "PATCH", Path: "/Users/" + id, UserAgent: r.ua})
	ldapModify(t, c, uDN, func(m *ldap.ModifyRequest) { m.Replace("mail", []string{"t1@example.com"}) })
	waitFor(t, 20*time.Second, "the modify parked", func() (bool, string) {
		ps, _ := r.st.ListParked()
		return len(ps) == 1, fmt.Sprint(len(ps))
	})
	r.halt()
	ctx := context.Background()
	rd, err := source.OpenReader(ctx, p.Source, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	rr := &Runner{Pipe: p, Dest: &Destination{Client: r.client, Pipe: p}, Store: r.st,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, nil)), Entry: rd.Entry, EntryByID: rd.EntryByID}
	if ok, failed, err := rr.RetryParked(ctx); err != nil || ok != 1 || failed != 0 {
		t.Fatalf("retry: %d healed, %d failing, %v", ok, failed, err)
	}
	r.user(prefix+"-u", func(u gjson.Result) (bool, string) {
		return u.Get("id").Str == id && u.Get("emails.0.value").Str == "t1@example.com", u.Raw
	})
}

// TestRefusedCreateIsNotHeldBack: a create the service refuses (a 400:
// it was not carried out) does not hold the next attempt back as an
// unconfirmed create would: the fresh try a second later creates it.
func TestRefusedCreateIsNotHeldBack(t *testing.T) {
	s := newStream(t, "delete", "delete")
	s.f.env.Fault(t, scimtest.Fault{Status: 400, Count: 1, Method: "POST", Path: "/Users", UserAgent: s.f.ua})
	r := s.run(userLDIF(s.user("r"), "R"))
	if u := s.userRes("r"); len(u) != 1 {
		t.Fatalf("the user after a refused create: %v", u)
	}
	if r.Stats.Waits.Load() != 0 || r.Stats.Parked.Load() != 0 {
		t.Errorf("waits %d, parked %d: want the refused create tried again at once", r.Stats.Waits.Load(), r.Stats.Parked.Load())
	}
}

// TestParkedRetryWaitsOutATemporaryFailure: a parked entry whose retry
// meets a temporary failure (the service busy: a 503 to the create) waits
// and tries again, as a live change does, instead of staying parked —
// `run --once`'s last pass and `failed retry` would end with it parked
// (seen in the AD end-to-end test under injected 503s).
func TestParkedRetryWaitsOutATemporaryFailure(t *testing.T) {
	shared := ldaptest.OpenLDAP(t)
	c := shared.Dial(t)
	prefix := scimtest.Unique("ptw")
	srv := shared.Subtree(t, c, prefix)
	r := startLDAPRun(t, "openldap-to-scim.pipe", srv)
	r.start()
	// A create refused for good (400, three times: the read-again tries
	// too): the add is parked.
	r.env.Fault(t, scimtest.Fault{Status: 400, Count: 3, Method: "POST", Path: "/Users", UserAgent: r.ua})
	srv.AddUser(t, c, prefix+"-u", nil)
	waitFor(t, 20*time.Second, "the add parked", func() (bool, string) {
		ps, _ := r.st.ListParked()
		return len(ps) == 1, fmt.Sprint(len(ps))
	})
	r.halt()
	// The retry's create is answered 503 (not carried out) once.
	r.env.Fault(t, scimtest.Fault{Status: 503, Count: 1, Method: "POST", Path: "/Users", UserAgent: r.ua})
	ctx := context.Background()
	rd, err := source.OpenReader(ctx, r.pipe.Source, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	rr := &Runner{Pipe: r.pipe, Dest: &Destination{Client: r.client, Pipe: r.pipe}, Store: r.st,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, nil)), Entry: rd.Entry, EntryByID: rd.EntryByID, MaxBackoff: time.Second}
	if ok, failed, err := rr.RetryParked(ctx); err != nil || ok != 1 || failed != 0 {
		t.Fatalf("retry: %d healed, %d failing, %v; want the 503 waited out and the entry healed", ok, failed, err)
	}
	r.user(prefix+"-u", nil)
}

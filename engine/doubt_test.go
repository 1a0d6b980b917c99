package engine

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/source/ldaptest"
)

// TestWriteHeldPastTimeout: the SCIM server holds a group's PATCH for
// 2.5 s, past the client's 1 s timeout, and then carries it out (as a
// proxy or a load balancer that forwards a request the client gave up on).
// The write is not sent again on top of it, and what the change does next
// waits until the held request can no longer land and reads the group
// again: an added member is held once (SCIMMY keeps a member added twice
// twice), and a removal held while the member is added back does not undo
// the later add. Checked after the held requests have landed, against the
// directory's members.
func TestWriteHeldPastTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out held requests")
	}
	shared := ldaptest.OpenLDAP(t)
	c := shared.Dial(t)
	prefix := scimtest.Unique("held")
	srv := shared.Subtree(t, c, prefix)
	r := startLDAPRunVia(t, "openldap-to-scim.pipe", srv, "")
	r.pipe.SCIM.Timeout = time.Second
	cfg := r.pipe.SCIM
	cfg.UserAgent = r.ua
	var err error
	if r.client, err = scim.NewClient(cfg); err != nil {
		t.Fatal(err)
	}
	r.start()
	aDN := srv.AddUser(t, c, prefix+"-a", nil)
	bDN := srv.AddUser(t, c, prefix+"-b", nil)
	aID := r.user(prefix+"-a", nil).Get("id").Str
	bID := r.user(prefix+"-b", nil).Get("id").Str
	gName := prefix + "-g"
	gDN := ldapAddGroup(t, c, srv, gName, aDN)
	r.group(gName, aID)
	const hold = 2500 * time.Millisecond
	stable := func(what string, ids ...string) {
		t.Helper()
		r.group(gName, ids...)
		time.Sleep(hold + time.Second) // anything held lands by now
		r.group(gName, ids...)
		t.Logf("%s: the group holds exactly %v after the held request landed", what, ids)
	}

	// An add held past the timeout.
	r.env.Fault(t, scimtest.Fault{Method: "PATCH", Path: "/Groups", Count: 1, DelayMs: int(hold / time.Millisecond), UserAgent: r.ua})
	seq := r.lastSeq()
	ldapModify(t, c, gDN, func(m *ldap.ModifyRequest) { m.Add("member", []string{bDN}) })
	stable("add", aID, bID)
	if n := countPrefixed(r.writesSince(seq), "PATCH /Groups/"); n > 1 {
		t.Errorf("%d PATCHes of the group were carried out for one added member, want 1 (the held one): %v", n, r.writesSince(seq))
	}

	// A removal held past the timeout while the member is added back.
	r.env.Fault(t, scimtest.Fault{Method: "PATCH", Path: "/Groups", Count: 1, DelayMs: int(hold / time.Millisecond), UserAgent: r.ua})
	ldapModify(t, c, gDN, func(m *ldap.ModifyRequest) { m.Delete("member", []string{bDN}) })
	time.Sleep(200 * time.Millisecond)
	ldapModify(t, c, gDN, func(m *ldap.ModifyRequest) { m.Add("member", []string{bDN}) })
	stable("remove, then add back", aID, bID)

	if n := r.runner.Stats.Parked.Load(); n != 0 {
		t.Errorf("%d changes parked", n)
	}
}

// countPrefixed counts the writes whose line starts with prefix.
func countPrefixed(writes []string, prefix string) int {
	n := 0
	for _, w := range writes {
		if len(w) >= len(prefix) && w[:len(prefix)] == prefix {
			n++
		}
	}
	return n
}

// TestDoubtWaits: a write whose answer was lost puts its resource in doubt
// for the quiet time; an update of it waits before it reads, a write found
// in doubt waits and fails with ErrInDoubt (a temporary failure), and a
// store whose last process died puts every resource in doubt from Open.
func TestDoubtWaits(t *testing.T) {
	uncertain := &scim.TransportError{Method: "PATCH", Path: "/Groups/g1"}
	for _, tc := range []struct {
		method string
		err    error
		doubt  bool
	}{
		{http.MethodPatch, uncertain, true},
		{http.MethodPut, &scim.Error{Status: 500}, true},
		{http.MethodPatch, &scim.Error{Status: 429}, false},
		{http.MethodPatch, &scim.Error{Status: 503}, false}, // the service did not handle it
		{http.MethodPatch, &scim.Error{Status: 502}, true},
		{http.MethodPatch, &scim.Error{Status: 504}, true},
		{http.MethodPatch, &scim.Error{Status: 400}, false},
		{http.MethodPatch, &scim.TransportError{NotSent: true}, false},
		{http.MethodDelete, uncertain, false},
		{http.MethodPost, uncertain, false},
	} {
		d := &Destination{CreateGrace: 300 * time.Millisecond}
		d.noteDoubt(tc.method, "/Groups", "g1", tc.err)
		if got := time.Now().Before(d.doubtUntil("/Groups", "g1")); got != tc.doubt {
			t.Errorf("%s failing with %v: in doubt %v, want %v", tc.method, tc.err, got, tc.doubt)
		}
		if d.doubtUntil("/Groups", "g2").After(time.Now()) {
			t.Errorf("%s: another resource is in doubt", tc.method)
		}
	}

	d := &Destination{CreateGrace: 300 * time.Millisecond}
	d.noteDoubt(http.MethodPatch, "/Groups", "g1", uncertain)
	start := time.Now()
	waited, err := d.settle(context.Background(), "/Groups", "g1")
	if !waited || err != nil || time.Since(start) < 250*time.Millisecond {
		t.Errorf("settle: waited %v after %v, err %v; want a wait of the quiet time", waited, time.Since(start), err)
	}
	if waited, _ := d.settle(context.Background(), "/Groups", "g1"); waited {
		t.Error("settle waited again after the quiet time")
	}

	d.noteDoubt(http.MethodPatch, "/Groups", "g1", uncertain)
	// (no client: a write in doubt sends nothing)
	_, err = d.write(context.Background(), http.MethodPatch, "/Groups", "g1", []byte(`{}`))
	if !errors.Is(err, ErrInDoubt) || !Temporary(err) {
		t.Errorf("a write in doubt: %v, want ErrInDoubt, temporary", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d.noteDoubt(http.MethodPatch, "/Groups", "g1", uncertain)
	if _, err := d.settle(ctx, "/Groups", "g1"); err == nil {
		t.Error("settle with a cancelled context: no error")
	}

	// After a process that died: the quiet time from when it last sent a
	// write, or from Open when that is not known; nothing when it closed
	// cleanly.
	now := time.Now()
	for _, tc := range []struct {
		name string
		sh   *Shadows
		want time.Time
	}{
		{"unknown", &Shadows{dropped: true, opened: now}, now.Add(time.Hour)},
		{"sent 10 min ago", &Shadows{dropped: true, opened: now, lastSent: now.Add(-10 * time.Minute), lastSentKnown: true}, now.Add(50 * time.Minute)},
		{"sent 2 h ago", &Shadows{dropped: true, opened: now, lastSent: now.Add(-2 * time.Hour), lastSentKnown: true}, now.Add(-time.Hour)},
		{"closed cleanly", &Shadows{opened: now}, time.Time{}},
	} {
		dead := &Destination{CreateGrace: time.Hour, Shadows: tc.sh}
		if got := dead.doubtUntil("/Users", "any"); !got.Equal(tc.want) {
			t.Errorf("%s: in doubt until %v, want %v", tc.name, got.Sub(now), tc.want.Sub(now))
		}
	}
}

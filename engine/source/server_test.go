package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/engine/source/ldaptest"
	"github.com/scimsync/scimsync/lang"
)

// The tests in this file run against the real servers (see ldaptest). Other
// packages may write to the shared servers at the same time, so each test
// looks only at events for the entries it made (by identity or DN).

// nextFor reads events until one matches, failing after timeout.
func nextFor(t *testing.T, src Source, timeout time.Duration, match func(*Event) bool) *Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		ev, err := src.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for an event: %v", err)
		}
		if match(ev) {
			return ev
		}
	}
}

// about matches change events (applied or dropped) whose DN or old DN
// contains s, or whose identity is s.
func about(s string) func(*Event) bool {
	return func(ev *Event) bool {
		if ev.Change == nil {
			return false
		}
		if ev.Identity != "" && ev.Identity == s {
			return true
		}
		return strings.Contains(strings.ToLower(ev.Change.DN), strings.ToLower(s)) ||
			strings.Contains(strings.ToLower(ev.Change.OldDN), strings.ToLower(s))
	}
}

func openSource(t *testing.T, cfg lang.SourceConfig, start string, opts Options) Source {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	src, err := Open(ctx, cfg, start, opts)
	if err != nil {
		t.Fatalf("open %s source: %v", cfg.Kind, err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func startPoint(t *testing.T, cfg lang.SourceConfig, spec StartSpec) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pos, err := StartPoint(ctx, cfg, spec, Options{})
	if err != nil {
		t.Fatalf("start point: %v", err)
	}
	return pos
}

func modify(t *testing.T, c *ldap.Conn, dn string, f func(*ldap.ModifyRequest)) {
	t.Helper()
	m := ldap.NewModifyRequest(dn, nil)
	f(m)
	if err := c.Modify(m); err != nil {
		t.Fatalf("modify %s: %v", dn, err)
	}
}

func rename(t *testing.T, c *ldap.Conn, dn, newRDN string) string {
	t.Helper()
	if err := c.ModifyDN(ldap.NewModifyDNRequest(dn, newRDN, true, "")); err != nil {
		t.Fatalf("modrdn %s: %v", dn, err)
	}
	return newRDN + dn[strings.IndexByte(dn, ','):]
}

func del(t *testing.T, c *ldap.Conn, dn string) {
	t.Helper()
	if err := c.Del(ldap.NewDelRequest(dn, nil)); err != nil {
		t.Fatalf("delete %s: %v", dn, err)
	}
}

// checkLifecycle makes add, modify, modrdn and delete one at a time and
// checks that each arrives, within wait, as the right event with the
// current entry; it returns the identity and the position after the modify.
func checkLifecycle(t *testing.T, srv ldaptest.Server, src Source, idAttr string, wait time.Duration) (string, string) {
	t.Helper()
	c := srv.Dial(t)
	uid := ldaptest.Unique("life")

	t0 := time.Now()
	dn := srv.AddUser(t, c, uid, map[string][]string{"mail": {uid + "@example.com"}, "userPassword": {"pw-" + uid}})
	ev := nextFor(t, src, wait, about(uid))
	t.Logf("add arrived after %v", time.Since(t0).Round(time.Millisecond))
	if ev.Kind != EventChange || ev.Change.Type != lang.Add || !strings.EqualFold(ev.Change.DN, dn) {
		t.Fatalf("add: %v %+v", ev.Kind, ev.Change)
	}
	if ev.Change.Entry.First("mail") != uid+"@example.com" {
		t.Errorf("add: entry %+v", ev.Change.Entry.Attrs())
	}
	id := ev.Identity
	want := canonicalIdentity(idAttr, ev.Change.Entry.First(idAttr))
	if id == "" || id != want {
		t.Fatalf("add: identity %q, the entry's %s is %q", id, idAttr, want)
	}

	t0 = time.Now()
	modify(t, c, dn, func(m *ldap.ModifyRequest) {
		m.Replace("mail", []string{uid + ".new@example.com"})
		m.Add("telephoneNumber", []string{"+1 555 0100"})
	})
	ev = nextFor(t, src, wait, about(id))
	t.Logf("modify arrived after %v", time.Since(t0).Round(time.Millisecond))
	if ev.Kind != EventChange || ev.Change.Type != lang.Modify || ev.Change.Entry.First("mail") != uid+".new@example.com" ||
		ev.Change.Entry.First("telephoneNumber") != "+1 555 0100" {
		t.Fatalf("modify: %v %+v %v", ev.Kind, ev.Change, ev.Change.Entry.Attrs())
	}
	if ev.Change.Changed != nil && !slices.Equal(ev.Change.Changed, []string{"mail", "telephoneNumber"}) {
		t.Errorf("modify: changed %q", ev.Change.Changed)
	}
	afterModify := ev.Position

	t0 = time.Now()
	newDN := rename(t, c, dn, "uid="+uid+"-renamed")
	ev = nextFor(t, src, wait, about(id))
	t.Logf("modrdn arrived after %v", time.Since(t0).Round(time.Millisecond))
	if ev.Kind != EventChange || ev.Change.Type != lang.ModRDN || !strings.EqualFold(ev.Change.OldDN, dn) ||
		!strings.EqualFold(ev.Change.DN, newDN) || ev.Change.Entry.First("uid") != uid+"-renamed" {
		t.Fatalf("modrdn: %v %+v", ev.Kind, ev.Change)
	}

	t0 = time.Now()
	del(t, c, newDN)
	ev = nextFor(t, src, wait, about(id))
	t.Logf("delete arrived after %v", time.Since(t0).Round(time.Millisecond))
	if ev.Kind != EventChange || ev.Change.Type != lang.Delete || !strings.EqualFold(ev.Change.DN, newDN) {
		t.Fatalf("delete: %v %+v", ev.Kind, ev.Change)
	}
	return id, afterModify
}

func TestChangelog389(t *testing.T) {
	srv := ldaptest.DS389(t)
	cfg := srv.Source("changelog")
	cfg.PollInterval = 10 * time.Second // the persistent search must wake the poller
	start := startPoint(t, cfg, StartSpec{Kind: StartEnd})
	if !strings.HasPrefix(start, "changelog:") {
		t.Fatalf("start point %q", start)
	}
	src := openSource(t, cfg, start, Options{})
	id, afterModify := checkLifecycle(t, srv, src, "nsUniqueId", 5*time.Second)

	t.Run("resume", func(t *testing.T) {
		// from the position after the modify: only the rename and the delete
		// (the rename's entry is gone by now, so it is dropped)
		cfg := srv.Source("changelog")
		src := openSource(t, cfg, afterModify, Options{})
		ev := nextFor(t, src, 5*time.Second, about(id))
		if ev.Kind != EventDropped || ev.Change.Type != lang.ModRDN || ev.Dropped == "" {
			t.Fatalf("first event after resume: %v %+v", ev.Kind, ev.Change)
		}
		ev = nextFor(t, src, 5*time.Second, about(id))
		if ev.Kind != EventChange || ev.Change.Type != lang.Delete {
			t.Fatalf("second event after resume: %v %+v", ev.Kind, ev.Change)
		}
	})

	t.Run("gone and back", func(t *testing.T) {
		c := srv.Dial(t)
		uid := ldaptest.Unique("gone")
		cfg := srv.Source("changelog")
		start := startPoint(t, cfg, StartSpec{Kind: StartEnd})
		// modify then delete before the source reads: the modify is dropped
		dn := srv.AddUser(t, c, uid, nil)
		modify(t, c, dn, func(m *ldap.ModifyRequest) { m.Replace("description", []string{"x"}) })
		del(t, c, dn)
		// then added again at the same DN: a new identity, so the delete of
		// the old one still applies and the add is the new entry
		srv.AddUser(t, c, uid, nil)
		src := openSource(t, cfg, start, Options{})
		var got []string
		for range 4 {
			ev := nextFor(t, src, 5*time.Second, about(uid))
			got = append(got, ev.Kind.String()+" "+ev.Change.Type.String())
		}
		want := []string{"dropped add", "dropped modify", "change delete", "change add"}
		if !slices.Equal(got, want) {
			t.Errorf("events %q, want %q", got, want)
		}
	})

	t.Run("once", func(t *testing.T) {
		cfg := srv.Source("changelog")
		src := openSource(t, cfg, afterModify, Options{Once: true})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		n := 0
		for {
			_, err := src.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n < 2 {
			t.Errorf("--once read %d events", n)
		}
	})

	t.Run("start points", func(t *testing.T) {
		cfg := srv.Source("changelog")
		end := startPoint(t, cfg, StartSpec{Kind: StartEnd})
		rew := startPoint(t, cfg, StartSpec{Kind: StartRewind, Rewind: time.Hour})
		cn := startPoint(t, cfg, StartSpec{Kind: StartChangeNumber, ChangeNumber: 3})
		var e, r int64
		fmt.Sscanf(end, "changelog:%d", &e)
		fmt.Sscanf(rew, "changelog:%d", &r)
		if r >= e || cn != "changelog:2" {
			t.Errorf("end %s, rewind 1h %s, change-number 3 %s", end, rew, cn)
		}
	})
}

func TestChangelogTrimmed(t *testing.T) {
	srv := ldaptest.Start389DS(t)
	c := srv.Dial(t)
	cfg := srv.Source("changelog")
	start := startPoint(t, cfg, StartSpec{Kind: StartEnd})
	var n int64
	fmt.Sscanf(start, "changelog:%d", &n)
	srv.AddUser(t, c, "trim1", nil)
	srv.AddUser(t, c, "trim2", nil)
	// Directory Manager deletes the first change after the checkpoint, as
	// trimming by age would
	del(t, c, fmt.Sprintf("changenumber=%d,cn=changelog", n+1))

	src, err := OpenChangelog(context.Background(), cfg, start, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	src.gapGrace = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = src.Next(ctx)
	var te *TrimmedError
	if !errors.Is(err, ErrTrimmed) || !errors.As(err, &te) || te.Missing != n+1 {
		t.Fatalf("Next = %v, want a TrimmedError for change %d", err, n+1)
	}
	if _, err2 := src.Next(ctx); !errors.Is(err2, ErrTrimmed) {
		t.Errorf("the error is not sticky: %v", err2)
	}
	t.Log(err)

	// a checkpoint beyond the changelog's end (the changelog was reset)
	src2 := openSource(t, cfg, "changelog:999999", Options{})
	if _, err := src2.Next(ctx); !errors.Is(err, ErrTrimmed) {
		t.Errorf("checkpoint past lastChangeNumber: %v", err)
	}
}

func TestSyncreplOpenLDAP(t *testing.T) {
	srv := ldaptest.OpenLDAP(t)
	cfg := srv.Source("syncrepl")
	start := startPoint(t, cfg, StartSpec{Kind: StartEnd})
	if !strings.HasPrefix(start, "syncrepl:") {
		t.Fatalf("start point %q", start)
	}
	src := openSource(t, cfg, start, Options{})
	id, afterModify := checkLifecycle(t, srv, src, "entryUUID", 5*time.Second)

	t.Run("resume", func(t *testing.T) {
		// from the cookie after the modify: the entry is gone, so only its delete
		src := openSource(t, srv.Source("syncrepl"), afterModify, Options{})
		ev := nextFor(t, src, 5*time.Second, func(ev *Event) bool {
			return ev.Kind == EventPresentSet || about(id)(ev)
		})
		if ev.Kind == EventPresentSet {
			if slices.Contains(ev.Identities, id) {
				t.Fatalf("present set holds the deleted entry")
			}
			t.Log("resumed with a present phase")
			return
		}
		if ev.Change.Type != lang.Delete {
			t.Fatalf("after resume: %v %+v", ev.Kind, ev.Change)
		}
	})

	t.Run("rename across restart", func(t *testing.T) {
		c := srv.Dial(t)
		uid := ldaptest.Unique("mv")
		dn := srv.AddUser(t, c, uid, nil)
		ev := nextFor(t, src, 5*time.Second, about(uid))
		pos, id := ev.Position, ev.Identity
		newDN := rename(t, c, dn, "uid="+uid+"-x")
		// a new source knows the old DN only through KnownDN (the id map)
		known := func(x string) (string, bool) { return dn, x == id }
		src2 := openSource(t, srv.Source("syncrepl"), pos, Options{KnownDN: known})
		ev = nextFor(t, src2, 5*time.Second, about(id))
		if ev.Change.Type != lang.ModRDN || !strings.EqualFold(ev.Change.OldDN, dn) || !strings.EqualFold(ev.Change.DN, newDN) {
			t.Fatalf("rename seen on resume: %+v", ev.Change)
		}
		del(t, c, newDN)
	})
}

func TestSyncrepl389(t *testing.T) {
	// 389-ds's Content Synchronization plugin: syncUUID is the nsUniqueId,
	// so the identity equals the changelog source's
	srv := ldaptest.DS389(t)
	cfg := srv.Source("syncrepl")
	src := openSource(t, cfg, startPoint(t, cfg, StartSpec{Kind: StartEnd}), Options{})
	checkLifecycle(t, srv, src, "nsUniqueId", 5*time.Second)
}

func TestSyncreplOnce(t *testing.T) {
	srv := ldaptest.OpenLDAP(t)
	c := srv.Dial(t)
	cfg := srv.Source("syncrepl")
	start := startPoint(t, cfg, StartSpec{Kind: StartEnd})
	uid := ldaptest.Unique("once")
	srv.AddUser(t, c, uid, nil)
	src := openSource(t, cfg, start, Options{Once: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	seen := false
	for {
		ev, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen = seen || about(uid)(ev)
	}
	if !seen {
		t.Error("--once ended without the change made before it")
	}
	del(t, c, "uid="+uid+",ou=People,"+srv.Base)
}

func TestSyncreplRestart(t *testing.T) {
	srv := ldaptest.StartOpenLDAP(t)
	cfg := srv.Source("syncrepl")
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	src := openSource(t, cfg, "", Options{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, Logger: logger})
	// a refresh without cookie ends with the present set of the whole tree
	ev := nextFor(t, src, 10*time.Second, func(ev *Event) bool { return ev.Kind == EventPresentSet })
	if len(ev.Identities) < 6 {
		t.Fatalf("initial present set has %d identities (the seed has 7 entries)", len(ev.Identities))
	}
	c := srv.Dial(t)
	srv.AddUser(t, c, "before", nil)
	nextFor(t, src, 5*time.Second, about("uid=before"))

	t0 := time.Now()
	srv.Stop(t)
	srv.Restart(t)
	t.Logf("slapd restarted in %v", time.Since(t0).Round(time.Millisecond))
	c = srv.Dial(t)
	srv.AddUser(t, c, "after", nil)
	ev = nextFor(t, src, 15*time.Second, about("uid=after"))
	if ev.Change.Type != lang.Add {
		t.Fatalf("after the restart: %+v", ev.Change)
	}
	t.Logf("reconnected and read the next change %v after the restart began", time.Since(t0).Round(time.Millisecond))
	if out := logs.String(); !strings.Contains(out, "ldap connection lost") || strings.Contains(out, srv.BindPW) {
		t.Errorf("log:\n%s", out)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger in another goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSyncreplPresentPhase(t *testing.T) {
	// slapd with the in-memory session log forgets deletes over a restart,
	// so a resumed refresh is a present phase
	srv := ldaptest.StartOpenLDAP(t, "OPENLDAP_SESSIONLOG=memory")
	cfg := srv.Source("syncrepl")
	src := openSource(t, cfg, "", Options{})
	nextFor(t, src, 10*time.Second, func(ev *Event) bool { return ev.Kind == EventPresentSet })
	c := srv.Dial(t)
	srv.AddUser(t, c, "p1", nil)
	p1 := nextFor(t, src, 5*time.Second, about("uid=p1"))
	srv.AddUser(t, c, "p2", nil)
	p2 := nextFor(t, src, 5*time.Second, about("uid=p2"))
	pos := p2.Position
	src.Close()

	del(t, c, "uid=p1,ou=People,"+srv.Base)
	srv.Stop(t)
	srv.Restart(t, "OPENLDAP_SESSIONLOG=memory")

	src2 := openSource(t, cfg, pos, Options{})
	ev := nextFor(t, src2, 10*time.Second, func(ev *Event) bool {
		return ev.Kind == EventPresentSet || about(p1.Identity)(ev)
	})
	switch {
	case ev.Kind == EventPresentSet:
		if slices.Contains(ev.Identities, p1.Identity) || !slices.Contains(ev.Identities, p2.Identity) {
			t.Fatalf("present set: p1 (deleted) in it %v, p2 in it %v",
				slices.Contains(ev.Identities, p1.Identity), slices.Contains(ev.Identities, p2.Identity))
		}
		t.Logf("present phase: %d identities, p1 absent", len(ev.Identities))
	case ev.Change.Type == lang.Delete:
		t.Logf("the server sent an explicit delete for p1 instead of a present phase")
	default:
		t.Fatalf("unexpected %v %+v", ev.Kind, ev.Change)
	}
}

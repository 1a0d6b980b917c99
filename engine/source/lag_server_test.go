package source

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/engine/source/ldaptest"
	"github.com/scimsync/scimsync/lang"
)

// lastChangeNumber reads the root DSE's lastChangeNumber: what the tests
// compare a changelog lag with, from the directory itself.
func lastChangeNumber(t *testing.T, c *ldap.Conn) int64 {
	t.Helper()
	dse, err := rootDSE(c, "lastChangeNumber")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(dse.GetAttributeValue("lastChangeNumber"), 10, 64)
	if err != nil {
		t.Fatalf("lastChangeNumber %q", dse.GetAttributeValue("lastChangeNumber"))
	}
	return n
}

func measureLag(t *testing.T, cfg lang.SourceConfig, pos string) Lag {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lag, err := MeasureLag(ctx, cfg, pos, Options{})
	if err != nil {
		t.Fatalf("MeasureLag(%s): %v", pos, err)
	}
	return lag
}

func lagAt(t *testing.T, src Source, pos string) Lag {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lag, err := LagOf(ctx, src, pos)
	if err != nil {
		t.Fatalf("LagOf(%s): %v", pos, err)
	}
	return lag
}

// waitLink polls src's Link until it is down (or up), failing after limit.
func waitLink(t *testing.T, src Source, down bool, limit time.Duration) LinkState {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		l, ok := LinkOf(src)
		if !ok {
			t.Fatal("the source reports no link")
		}
		if l.Down == down {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("the link did not go down=%v within %v: %+v", down, limit, l)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLag389: on a private 389-ds, N changes after a checkpoint make the
// changelog lag N, as the directory's lastChangeNumber says (and as many
// as the test made), both measured on a connection of its own (status with
// run stopped) and through an open source; once the source has read them
// the lag at its position is 0 changes, 0 s. The Content Synchronization
// cookie of the same server carries a change number, so a syncrepl
// checkpoint's lag is the changelog's too. When the server stops, the
// changelog source's link goes down while Next reconnects, and up again
// after the restart.
func TestLag389(t *testing.T) {
	srv := ldaptest.Start389DS(t)
	c := srv.Dial(t)
	cfg := srv.Source("changelog")
	start := startPoint(t, cfg, StartSpec{Kind: StartEnd})
	syncStart := startPoint(t, srv.Source("syncrepl"), StartSpec{Kind: StartEnd})
	before := lastChangeNumber(t, c)
	if lag := measureLag(t, cfg, start); lag != (Lag{}) {
		t.Fatalf("lag at the end = %+v, want 0", lag)
	}
	const n = 5
	for i := range n {
		srv.AddUser(t, c, fmt.Sprintf("lag%d", i), nil)
	}
	want := lastChangeNumber(t, c) - before
	if want != n {
		t.Fatalf("the changelog grew by %d records for %d adds", want, n)
	}
	lag := measureLag(t, cfg, start)
	if lag.Changes != want || lag.Seconds < 0 {
		t.Errorf("MeasureLag = %+v, want %d changes", lag, want)
	}
	if lag := measureLag(t, srv.Source("syncrepl"), syncStart); lag.Changes != want {
		t.Errorf("syncrepl (content sync cookie) lag = %+v, want %d changes", lag, want)
	}

	src := openSource(t, cfg, start, Options{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	if lag := lagAt(t, src, start); lag.Changes != want {
		t.Errorf("LagAt(start) = %+v, want %d changes", lag, want)
	}
	cl := src.(*Changelog)
	cl.lag.every = time.Nanosecond // measure each time: the test moves the position at once
	for range n {
		nextFor(t, src, 10*time.Second, func(ev *Event) bool { return ev.Kind == EventChange })
	}
	if lag := lagAt(t, src, cl.Position()); lag != (Lag{}) {
		t.Errorf("LagAt(%s) after reading every change = %+v, want 0", cl.Position(), lag)
	}

	// the link: down while the server is stopped, up once Next reconnects
	waitLink(t, src, false, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := src.Next(ctx)
		done <- err
	}()
	srv.Stop(t)
	l := waitLink(t, src, true, 15*time.Second)
	if l.Since.IsZero() || l.Err == "" {
		t.Errorf("link down without time or reason: %+v", l)
	}
	srv.Restart(t)
	c = srv.Dial(t)
	srv.AddUser(t, c, "lagafter", nil)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Next after the restart: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no change read after the restart")
	}
	cancel()
	waitLink(t, src, false, time.Second)
}

// TestLagSyncreplOpenLDAP: on a private slapd, changes made after a
// syncrepl cookie are counted in the accesslog (as many as were made) and
// their age is above 0; once the source has read them the lag at its
// cookie is 0 changes, 0 s. An account that may not read the accesslog
// gets the seconds from contextCSN and the changes unknown. When slapd
// stops, the source's link goes down; it comes back after the restart.
func TestLagSyncreplOpenLDAP(t *testing.T) {
	srv := ldaptest.StartOpenLDAP(t)
	c := srv.Dial(t)
	cfg := srv.Source("syncrepl")

	// a reader without access to cn=accesslog (the start script lets only
	// the rootdn read it)
	readerPW := "reader-" + ldaptest.Unique("pw")
	readerDN := srv.AddUser(t, c, "lagreader", map[string][]string{"userPassword": {readerPW}})
	reader := cfg
	reader.BindDN, reader.Password = readerDN, secret.New(readerPW)

	start := startPoint(t, cfg, StartSpec{Kind: StartEnd})
	if lag := measureLag(t, cfg, start); lag != (Lag{}) {
		t.Fatalf("lag at the end = %+v, want 0", lag)
	}
	if lag := measureLag(t, reader, start); lag != (Lag{Changes: LagUnknown}) {
		t.Fatalf("lag at the end without the accesslog = %+v, want 0 s, changes unknown", lag)
	}
	const n = 3
	for i := range n {
		srv.AddUser(t, c, fmt.Sprintf("lag%d", i), nil)
	}
	lag := measureLag(t, cfg, start)
	if lag.Changes != n || lag.Seconds <= 0 {
		t.Errorf("lag = %+v, want %d changes and seconds > 0", lag, n)
	}
	lag = measureLag(t, reader, start)
	if lag.Changes != LagUnknown || lag.Seconds <= 0 {
		t.Errorf("lag without the accesslog = %+v, want changes unknown and seconds > 0", lag)
	}

	src := openSource(t, cfg, start, Options{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	sr := src.(*Syncrepl)
	sr.lag.every = time.Nanosecond // measure each time: the test moves the position at once
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		if _, err := src.Next(ctx); err != nil {
			t.Fatalf("reading up to the end: %v", err)
		}
		if lag := lagAt(t, src, sr.Position()); lag == (Lag{}) {
			break
		}
	}
	if lag := measureLag(t, reader, sr.Position()); lag != (Lag{Changes: LagUnknown}) {
		t.Errorf("caught-up lag without the accesslog = %+v, want 0 s", lag)
	}

	lctx, lcancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		for {
			ev, err := src.Next(lctx)
			if err != nil || ev.Change != nil {
				done <- err
				return
			}
		}
	}()
	srv.Stop(t)
	if l := waitLink(t, src, true, 15*time.Second); l.Err == "" || l.Since.IsZero() {
		t.Errorf("link down without time or reason: %+v", l)
	}
	srv.Restart(t)
	c = srv.Dial(t)
	srv.AddUser(t, c, "lagafter", nil)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Next after the restart: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no change read after the restart")
	}
	lcancel()
	waitLink(t, src, false, time.Second)
}

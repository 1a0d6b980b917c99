package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/source/ldaptest"
)

// startListening starts `scimsync run --listen 127.0.0.1:0` for p and
// returns the address it serves and its log; the run is interrupted when
// the test ends.
func startListening(t *testing.T, p *ldapPipe) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	t.Cleanup(cancel)
	cmd := p.command(ctx, "run", "--listen", "127.0.0.1:0", "--log-format", "json", "--workers", "2")
	stderr, err := cmd.StderrPipe()
	must(t, err)
	must(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	logs := &syncBuffer{}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.Write(append(sc.Bytes(), '\n'))
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && strings.HasPrefix(line.Msg, "serving /metrics") {
				addrc <- line.Addr
			}
		}
	}()
	select {
	case addr := <-addrc:
		return addr, logs
	case <-time.After(30 * time.Second):
		t.Fatalf("no listen address logged\n%s", logs.String())
	}
	return "", nil
}

// statusJSON runs `status --json` and decodes it.
func statusJSON(t *testing.T, p *ldapPipe) pipeStatus {
	t.Helper()
	code, stdout, stderr := p.run("status", "--json")
	if code != 0 {
		t.Fatalf("status --json: exit %d\n%s", code, stderr)
	}
	var st pipeStatus
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, stdout)
	}
	return st
}

// TestRunSourceDown runs `scimsync run --listen` with the shipped syncrepl
// pipe against a private slapd: once the change made is applied, the lag
// gauges of /metrics (parsed with the Prometheus text parser) and status
// say 0 changes, 0 s behind. Then slapd stops while the persistent search
// streams: /readyz turns 503 naming the source, status shows "the source"
// unavailable since a time and the metrics a directory outage, /healthz
// stays 200; after the restart /readyz is 200 again and a change made then
// goes through.
func TestRunSourceDown(t *testing.T) {
	srv := ldaptest.StartOpenLDAP(t)
	c := srv.Dial(t)
	prefix := scimtest.Unique("sd")
	p := newLDAPPipe(t, srv)
	p.cleanUsers(prefix)
	p.mustRun("set-startpoint", "--end")
	addr, logs := startListening(t, p)
	waitFor(t, 30*time.Second, "/readyz 200", func() bool { code, _ := probe(t, addr, "/readyz"); return code == 200 }, logs)

	// Two quick changes: run saves the checkpoint at most every 100 ms,
	// and the second of the two a moment later (not at the next change):
	// the lag of the saved checkpoint comes back to 0.
	ldapAddUser(t, c, srv, prefix+"-0", "sd@example.com")
	ldapAddUser(t, c, srv, prefix+"-1", "sd@example.com")
	waitFor(t, 60*time.Second, "the changes applied and the lag gauges at 0", func() bool {
		fams := scrapeMetrics(t, addr)
		_, hasN := fams["scimsync_lag_changes"]
		_, hasS := fams["scimsync_lag_seconds"]
		return metricSum(fams, "scimsync_changes_total", "outcome", "created") == 2 && hasN && hasS &&
			metricSum(fams, "scimsync_lag_changes") == 0 && metricSum(fams, "scimsync_lag_seconds") == 0
	}, logs)
	st := statusJSON(t, p)
	if !st.Running || st.Lag == nil || st.Lag.Changes == nil || *st.Lag.Changes != 0 || st.Lag.Seconds != 0 {
		t.Errorf("status --json while caught up: running %v, lag %+v (%s)", st.Running, st.Lag, st.LagUnknown)
	}
	if _, out, _ := p.run("status"); !strings.Contains(out, "lag:          0 changes, 0.0 s behind\n") {
		t.Errorf("status while caught up:\n%s", out)
	}

	stopped := time.Now()
	srv.Stop(t)
	waitFor(t, 30*time.Second, "/readyz 503 while the source is down", func() bool {
		code, body := probe(t, addr, "/readyz")
		return code == 503 && strings.Contains(body, "the source is unavailable since")
	}, logs)
	if code, _ := probe(t, addr, "/healthz"); code != 200 {
		t.Errorf("/healthz while the source is down: %d", code)
	}
	if v := metricSum(scrapeMetrics(t, addr), "scimsync_outage", "service", "directory"); v != 1 {
		t.Errorf("scimsync_outage{service=directory} while the source is down = %v", v)
	}
	st = statusJSON(t, p)
	if st.Outage != "the source" || st.OutageSince.Before(stopped.Add(-time.Second)) || !strings.Contains(st.LastError, "the source unavailable since") {
		t.Errorf("status --json while the source is down: outage %q since %v (stopped %v), last error %q",
			st.Outage, st.OutageSince, stopped, st.LastError)
	}
	if _, out, _ := p.run("status"); !strings.Contains(out, "outage:       the source unavailable since") {
		t.Errorf("status while the source is down:\n%s", out)
	}

	srv.Restart(t)
	waitFor(t, 60*time.Second, "/readyz 200 after the restart", func() bool {
		code, _ := probe(t, addr, "/readyz")
		return code == 200
	}, logs)
	c = srv.Dial(t)
	ldapAddUser(t, c, srv, prefix+"-after", "sd@example.com")
	p.waitUser(prefix+"-after", true, 60*time.Second)
	if out := logs.String(); strings.Contains(out, srv.BindPW) {
		t.Errorf("the bind password is in the log")
	}
}

// TestStatusLagChangelog: with run stopped, N changes made in a private
// 389-ds after the checkpoint show in status as N changes behind, N being
// what the directory's lastChangeNumber says past the checkpoint (and as
// many as the test made), in both formats; after `run --once` status says
// 0 changes, 0 s behind.
func TestStatusLagChangelog(t *testing.T) {
	srv := ldaptest.Start389DS(t)
	c := srv.Dial(t)
	prefix := scimtest.Unique("sl")
	p := newLDAPPipe(t, srv)
	p.cleanUsers(prefix)
	p.mustRun("set-startpoint", "--end")
	const n = 4
	for i := range n {
		ldapAddUser(t, c, srv, fmt.Sprintf("%s-%d", prefix, i), "sl@example.com")
	}
	st := statusJSON(t, p)
	cp, err := strconv.ParseInt(strings.TrimPrefix(st.Checkpoint, "changelog:"), 10, 64)
	if err != nil {
		t.Fatalf("checkpoint %q", st.Checkpoint)
	}
	res, err := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"lastChangeNumber"}, nil))
	must(t, err)
	last, _ := strconv.ParseInt(res.Entries[0].GetAttributeValue("lastChangeNumber"), 10, 64)
	if last-cp != n {
		t.Fatalf("the changelog holds %d changes past the checkpoint, the test made %d", last-cp, n)
	}
	if st.Running || st.Lag == nil || st.Lag.Changes == nil || *st.Lag.Changes != last-cp || st.Lag.Seconds < 0 {
		t.Errorf("status --json with run stopped: running %v, lag %+v (%s), want %d changes", st.Running, st.Lag, st.LagUnknown, last-cp)
	}
	if _, out, _ := p.run("status"); !strings.Contains(out, fmt.Sprintf("lag:          %d changes, ", n)) {
		t.Errorf("status with run stopped:\n%s", out)
	}
	p.mustRun("run", "--once")
	if _, out, _ := p.run("status"); !strings.Contains(out, "lag:          0 changes, 0.0 s behind\n") {
		t.Errorf("status after run --once:\n%s", out)
	}
}

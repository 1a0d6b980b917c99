package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/engine/source/ldaptest"
	"github.com/scimsync/scimsync/engine/state"
)

// The tests in this file run the `scimsync` binary with the shipped pipes,
// scripts/openldap-to-scim.pipe (syncrepl) and scripts/389ds-to-scim.pipe
// (cn=changelog), against the real slapd, 389-ds and SCIM servers, with the
// environment names the pipes read (LDAP_URL LDAP_BASE LDAP_BIND_DN
// LDAP_BIND_PW SCIM_URL SCIM_TOKEN). On the shared servers each test works
// in a subtree of its own, which it gives as LDAP_BASE (ldapSubtree), so
// that its runs see only its changes; restarts and a trimmed changelog use
// private servers.
// engine/run_ldap_test.go covers each kind of change in detail, in-process.

// ldapPipe is a shipped pipe run as a process against one LDAP server.
type ldapPipe struct {
	t       *testing.T
	bin     string
	srv     ldaptest.Server
	env     scimtest.Env
	pipe    string // path of the shipped script
	state   string // --state-dir
	environ []string
	client  *scim.Client
}

var shippedPipes = map[string]string{
	"openldap": "../../scripts/openldap-to-scim.pipe",
	"389ds":    "../../scripts/389ds-to-scim.pipe",
}

func newLDAPPipe(t *testing.T, srv ldaptest.Server) *ldapPipe {
	t.Helper()
	env := scimtest.Server(t)
	c, err := scim.NewClient(scim.Config{URL: env.URL, Auth: scim.AuthBearer, Token: secret.New(env.Token)})
	must(t, err)
	environ := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "LDAP_") || strings.HasPrefix(kv, "SCIM_")
	})
	environ = append(environ, "LDAP_URL="+srv.URL, "LDAP_BASE="+srv.Base, "LDAP_BIND_DN="+srv.BindDN,
		"LDAP_BIND_PW="+srv.BindPW, "SCIM_URL="+env.URL, "SCIM_TOKEN="+env.Token)
	return &ldapPipe{t: t, bin: binary(t), srv: srv, env: env, pipe: shippedPipes[srv.Kind],
		state: filepath.Join(t.TempDir(), "state"), environ: environ, client: c}
}

// command is `scimsync VERB [ARGS] --state-dir D PIPE`.
func (p *ldapPipe) command(ctx context.Context, verb string, args ...string) *exec.Cmd {
	args = append(append([]string{verb}, args...), "--state-dir", p.state, p.pipe)
	cmd := exec.CommandContext(ctx, p.bin, args...)
	cmd.Env = p.environ
	return cmd
}

// run runs a command to its end (at most 150 s: a run after a kill -9
// waits first for the writes the killed one may have left in flight, 30 s
// with the default SCIM timeout, engine/doubt.go).
func (p *ldapPipe) run(verb string, args ...string) (code int, stdout, stderr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	cmd := p.command(ctx, verb, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code <= 0 {
		p.t.Fatalf("scimsync %s: %v\n%s", verb, err, errb.String())
	}
	return code, out.String(), errb.String()
}

// mustRun runs a command that must exit 0.
func (p *ldapPipe) mustRun(verb string, args ...string) string {
	p.t.Helper()
	code, stdout, stderr := p.run(verb, args...)
	if code != 0 {
		p.t.Fatalf("scimsync %s %v: exit %d\n%s%s", verb, args, code, stdout, stderr)
	}
	return stderr
}

// users returns the SCIM users whose userName starts with prefix, by
// userName; a userName present twice fails the test.
func (p *ldapPipe) users(prefix string) map[string]gjson.Result {
	p.t.Helper()
	out := map[string]gjson.Result{}
	// POST /.search: the test server ignores paging parameters in a query string
	for start := 1; ; {
		req := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":%q,"startIndex":%d,"count":100}`,
			`userName sw "`+prefix+`"`, start)
		r, err := p.client.Do(context.Background(), http.MethodPost, "/Users/.search", []byte(req))
		must(p.t, err)
		page := gjson.GetBytes(r.Body, "Resources").Array()
		for _, u := range page {
			name := u.Get("userName").Str
			if _, dup := out[name]; dup {
				p.t.Errorf("user %s is in SCIM twice (a duplicate create)", name)
			}
			out[name] = u
		}
		start += len(page)
		if len(page) == 0 || start > int(gjson.GetBytes(r.Body, "totalResults").Int()) {
			return out
		}
	}
}

// waitUser polls SCIM until the user with userName is there (want true)
// or not (want false), for at most limit.
func (p *ldapPipe) waitUser(userName string, want bool, limit time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		_, n, err := p.client.Search(context.Background(), "/Users", `userName eq "`+userName+`"`, false)
		must(p.t, err)
		if (n == 1) == want {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("waited %v for user %s to be present=%v (%d found)", limit, userName, want, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cleanUsers deletes the SCIM users a test made, when it ends.
func (p *ldapPipe) cleanUsers(prefix string) {
	p.t.Cleanup(func() {
		found, _, err := p.client.Search(context.Background(), "/Users", `userName sw "`+prefix+`"`, false)
		if err != nil {
			return
		}
		for _, f := range found {
			_ = p.client.Delete(context.Background(), "/Users", gjson.GetBytes(f, "id").Str)
		}
	})
}

func ldapAddUser(t *testing.T, c *ldap.Conn, srv ldaptest.Server, uid, mail string) string {
	t.Helper()
	return srv.AddUser(t, c, uid, map[string][]string{"mail": {mail}, "givenName": {"G"}})
}

func ldapDo(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestRunLDAPStartpoint: after `set-startpoint --end`, `run --once` applies
// the changes made after it and none made before; a second run applies
// nothing.
func TestRunLDAPStartpoint(t *testing.T) {
	for _, kind := range []string{"openldap", "389ds"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			shared := server(t, kind)
			c := shared.Dial(t)
			prefix := scimtest.Unique("sp")
			srv := shared.Subtree(t, c, prefix)
			p := newLDAPPipe(t, srv)
			p.cleanUsers(prefix)
			ldapAddUser(t, c, srv, prefix+"-before", "before@example.com")
			p.mustRun("set-startpoint", "--end")
			after := ldapAddUser(t, c, srv, prefix+"-after", "after@example.com")
			ldapDo(t, "modify", c.Modify(modifyReq(after, "mail", "after2@example.com")))
			start := time.Now()
			stderr := p.mustRun("run", "--once")
			t.Logf("run --once: %v", time.Since(start).Round(time.Millisecond))
			users := p.users(prefix)
			if _, ok := users[prefix+"-before"]; ok || len(users) != 1 {
				t.Fatalf("SCIM has %d users with the prefix (before the start point there: %v)\n%s", len(users), ok, stderr)
			}
			if got := users[prefix+"-after"].Get("emails.0.value").Str; got != "after2@example.com" {
				t.Errorf("mail %q, want after2@example.com", got)
			}
			stderr = p.mustRun("run", "--once")
			if strings.Contains(stderr, `"msg":"created"`) || strings.Contains(stderr, `"msg":"updated"`) || !strings.Contains(stderr, `"applied":0`) {
				t.Errorf("a second run applied changes:\n%s", stderr)
			}
		})
	}
}

func server(t *testing.T, kind string) ldaptest.Server {
	if kind == "389ds" {
		return ldaptest.DS389(t)
	}
	return ldaptest.OpenLDAP(t)
}

func modifyReq(dn, attr string, vals ...string) *ldap.ModifyRequest {
	m := ldap.NewModifyRequest(dn, nil)
	m.Replace(attr, vals)
	return m
}

// TestRunLDAPKill9 makes a stream of 211 changes in the directory (adds,
// modifies, renames, deletes, a group and member additions), then runs
// `scimsync run --once`, kills it with SIGKILL in the middle, and runs it
// again: SCIM then holds exactly the expected users and group, each once.
func TestRunLDAPKill9(t *testing.T) {
	for _, kind := range []string{"openldap", "389ds"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			shared := server(t, kind)
			c := shared.Dial(t)
			prefix := scimtest.Unique("k9")
			srv := shared.Subtree(t, c, prefix)
			p := newLDAPPipe(t, srv)
			p.cleanUsers(prefix)
			p.mustRun("set-startpoint", "--end")

			const users = 100
			dn := func(uid string) string { return "uid=" + uid + ",ou=People," + srv.Base }
			want := map[string]string{} // userName -> mail
			t0 := time.Now()
			changes := 0
			for i := range users {
				uid := fmt.Sprintf("%s-%03d", prefix, i)
				ldapAddUser(t, c, srv, uid, uid+"@example.com")
				want[uid] = uid + "@example.com"
				changes++
			}
			for i := range 50 {
				uid := fmt.Sprintf("%s-%03d", prefix, i)
				ldapDo(t, "modify", c.Modify(modifyReq(dn(uid), "mail", "changed-"+uid+"@example.com")))
				want[uid] = "changed-" + uid + "@example.com"
				changes++
			}
			for i := 50; i < 75; i++ {
				uid := fmt.Sprintf("%s-%03d", prefix, i)
				ldapDo(t, "modrdn", c.ModifyDN(ldap.NewModifyDNRequest(dn(uid), "uid="+uid+"-r", true, "")))
				want[uid+"-r"] = want[uid]
				delete(want, uid)
				changes++
			}
			for i := 75; i < users; i++ {
				uid := fmt.Sprintf("%s-%03d", prefix, i)
				ldapDo(t, "delete", c.Del(ldap.NewDelRequest(dn(uid), nil)))
				delete(want, uid)
				changes++
			}
			gName := prefix + "-g"
			gDN := "cn=" + gName + ",ou=Groups," + srv.Base
			var members []string
			for i := range 10 {
				members = append(members, dn(fmt.Sprintf("%s-%03d", prefix, i)))
			}
			g := ldap.NewAddRequest(gDN, nil)
			g.Attribute("objectClass", []string{"top", "groupOfNames"})
			g.Attribute("cn", []string{gName})
			g.Attribute("member", members)
			ldapDo(t, "add group", c.Add(g))
			changes++
			for i := 10; i < 20; i++ {
				m := ldap.NewModifyRequest(gDN, nil)
				m.Add("member", []string{dn(fmt.Sprintf("%s-%03d", prefix, i))})
				ldapDo(t, "add member", c.Modify(m))
				changes++
			}
			t.Cleanup(func() {
				found, _, err := p.client.Search(context.Background(), "/Groups", `displayName eq "`+gName+`"`, false)
				if err == nil && len(found) == 1 {
					_ = p.client.Delete(context.Background(), "/Groups", gjson.GetBytes(found[0], "id").Str)
				}
			})
			t.Logf("%d LDAP changes made in %v", changes, time.Since(t0).Round(time.Millisecond))

			// first run: killed once 40 changes have been logged
			t1 := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := p.command(ctx, "run", "--once")
			stderr, err := cmd.StderrPipe()
			must(t, err)
			must(t, cmd.Start())
			sc := bufio.NewScanner(stderr)
			lines := 0
			for lines < 40 && sc.Scan() {
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
			t.Logf("killed after %d applied changes, %v", lines, time.Since(t1).Round(time.Millisecond))

			// second run: resumes and finishes
			t2 := time.Now()
			out := p.mustRun("run", "--once")
			t.Logf("second run: %v", time.Since(t2).Round(time.Millisecond))
			if strings.Contains(out, `"msg":"parked"`) {
				t.Errorf("the second run parked changes:\n%s", out)
			}
			got := p.users(prefix)
			if len(got) != len(want) {
				t.Errorf("%d users with the prefix, want %d", len(got), len(want))
			}
			for name, mail := range want {
				u, ok := got[name]
				if !ok {
					t.Errorf("user %s missing", name)
					continue
				}
				if m := u.Get("emails.0.value").Str; m != mail {
					t.Errorf("%s: mail %q, want %q", name, m, mail)
				}
			}
			found, _, err := p.client.Search(context.Background(), "/Groups", `displayName eq "`+gName+`"`, false)
			must(t, err)
			if len(found) != 1 {
				t.Fatalf("%d groups %s, want 1", len(found), gName)
			}
			var gotMembers, wantMembers []string
			for _, m := range gjson.GetBytes(found[0], "members.#.value").Array() {
				gotMembers = append(gotMembers, m.Str)
			}
			for i := range 20 {
				wantMembers = append(wantMembers, got[fmt.Sprintf("%s-%03d", prefix, i)].Get("id").Str)
			}
			slices.Sort(gotMembers)
			slices.Sort(wantMembers)
			if !slices.Equal(gotMembers, wantMembers) {
				t.Errorf("group members:\n got %q\nwant %q", gotMembers, wantMembers)
			}
		})
	}
}

// syncBuffer is a buffer a process's output is copied to while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(b)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunLDAPPrivateSlapd runs the tests that restart slapd, on private
// servers, one after the other (a private server's port is free while it is
// stopped: a second one starting then could take it).
func TestRunLDAPPrivateSlapd(t *testing.T) {
	t.Parallel()
	t.Run("restart", testRunSlapdRestart)
	t.Run("present phase", testRunPresentPhase)
	t.Run("down at start-up", testRunSlapdDownAtStart)
}

// testRunSlapdDownAtStart (issue 11 #5): `run` started while the directory
// is down waits for it, logging the outage once each way, and applies a
// change made once it is back; --startup-timeout bounds the wait, and
// refused credentials fail at once.
func testRunSlapdDownAtStart(t *testing.T) {
	srv := ldaptest.StartOpenLDAP(t)
	p := newLDAPPipe(t, srv)
	prefix := scimtest.Unique("ds")
	p.cleanUsers(prefix)
	p.mustRun("set-startpoint", "--end")
	srv.Stop(t)

	// bounded: gives up with the reason
	code, _, stderr := p.run("run", "--once", "--startup-timeout", "1s")
	if code != 1 || !strings.Contains(stderr, "source unavailable since ") || !strings.Contains(stderr, "(--startup-timeout 1s)") {
		t.Errorf("run --once --startup-timeout 1s with the directory down: exit %d\n%s", code, stderr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := p.command(ctx, "run")
	var logs syncBuffer
	cmd.Stderr = &logs
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("run after SIGTERM: %v\n%s", err, logs.String())
			}
		case <-time.After(15 * time.Second):
			t.Errorf("run did not stop within 15s of SIGTERM")
		}
	}()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(logs.String(), "source unavailable since "); {
		select {
		case err := <-exited:
			t.Fatalf("run exited while the directory was down: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("run did not report the directory down:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // a few attempts fail
	srv.Restart(t)
	c := srv.Dial(t)
	ldapAddUser(t, c, srv, prefix+"-1", "one@example.com")
	p.waitUser(prefix+"-1", true, 60*time.Second)
	out := logs.String()
	if n := strings.Count(out, "source unavailable since "); n != 1 {
		t.Errorf("the outage logged %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "source available again after "); n != 1 {
		t.Errorf("the end of the outage logged %d times, want once:\n%s", n, out)
	}
	if strings.Contains(out, srv.BindPW) {
		t.Error("the bind password is in the log")
	}

	// refused credentials are not an outage: run fails at once (a state of
	// its own: the running one holds the pipe's)
	bad := exec.CommandContext(ctx, p.bin, "run", "--once", "--state-dir", t.TempDir(), p.pipe)
	bad.Env = append(append([]string(nil), p.environ...), "LDAP_BIND_PW=not-the-password")
	var badOut bytes.Buffer
	bad.Stderr = &badOut
	err := bad.Run()
	if bad.ProcessState.ExitCode() != 1 || !strings.Contains(badOut.String(), "directory refused the credentials") ||
		strings.Contains(badOut.String(), "source unavailable") {
		t.Errorf("run with a wrong password: %v\n%s", err, badOut.String())
	}
}

// testRunSlapdRestart restarts slapd under a running `scimsync run`: it
// reconnects and applies a change made after the restart.
func testRunSlapdRestart(t *testing.T) {
	srv := ldaptest.StartOpenLDAP(t)
	p := newLDAPPipe(t, srv)
	prefix := scimtest.Unique("rs")
	p.cleanUsers(prefix)
	p.mustRun("set-startpoint", "--end")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := p.command(ctx, "run")
	var logs syncBuffer
	cmd.Stderr = &logs
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		t0 := time.Now()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("run after SIGTERM: %v\n%s", err, logs.String())
			}
			t.Logf("run stopped %v after SIGTERM", time.Since(t0).Round(time.Millisecond))
		case <-time.After(15 * time.Second):
			t.Errorf("run did not stop within 15s of SIGTERM")
		}
	}()

	c := srv.Dial(t)
	t1 := time.Now()
	ldapAddUser(t, c, srv, prefix+"-1", "one@example.com")
	p.waitUser(prefix+"-1", true, 20*time.Second)
	t.Logf("a change reached SCIM in %v", time.Since(t1).Round(time.Millisecond))

	t0 := time.Now()
	srv.Stop(t)
	srv.Restart(t)
	c = srv.Dial(t)
	ldapAddUser(t, c, srv, prefix+"-2", "two@example.com")
	p.waitUser(prefix+"-2", true, 20*time.Second)
	t.Logf("a change made after the restart reached SCIM %v after the restart began", time.Since(t0).Round(time.Millisecond))
	if out := logs.String(); !strings.Contains(out, "ldap connection lost") || !strings.Contains(out, "ldap reconnected") || strings.Contains(out, srv.BindPW) {
		t.Errorf("log:\n%s", out)
	}
}

// testRunPresentPhase: slapd keeps its session log in memory, so after a
// restart a resumed syncrepl refresh is a present phase; entries deleted
// while `scimsync run` was stopped are then deleted in SCIM.
func testRunPresentPhase(t *testing.T) {
	srv := ldaptest.StartOpenLDAP(t, "OPENLDAP_SESSIONLOG=memory")
	p := newLDAPPipe(t, srv)
	prefix := scimtest.Unique("pp")
	p.cleanUsers(prefix)
	p.mustRun("set-startpoint", "--end")
	c := srv.Dial(t)
	var dns []string
	for i := range 3 {
		dns = append(dns, ldapAddUser(t, c, srv, fmt.Sprintf("%s-%d", prefix, i), "p@example.com"))
	}
	p.mustRun("run", "--once")
	if n := len(p.users(prefix)); n != 3 {
		t.Fatalf("%d users after the first run, want 3", n)
	}

	ldapDo(t, "delete", c.Del(ldap.NewDelRequest(dns[0], nil)))
	ldapDo(t, "delete", c.Del(ldap.NewDelRequest(dns[1], nil)))
	srv.Stop(t)
	srv.Restart(t, "OPENLDAP_SESSIONLOG=memory")
	stderr := p.mustRun("run", "--once")
	got := p.users(prefix)
	if _, ok := got[prefix+"-2"]; len(got) != 1 || !ok {
		names := slices.Sorted(func(yield func(string) bool) {
			for n := range got {
				if !yield(n) {
					return
				}
			}
		})
		t.Fatalf("SCIM users after the restart: %q, want only %s-2\n%s", names, prefix, stderr)
	}
	if !strings.Contains(stderr, `"msg":"deleted"`) {
		t.Errorf("no deletion logged:\n%s", stderr)
	}
}

// TestRunChangelogTrimmed: when the 389-ds changelog no longer holds the
// changes after the checkpoint, `scimsync run` stops with exit 1 and tells
// the user to resync. A private 389-ds, since the test damages it.
func TestRunChangelogTrimmed(t *testing.T) {
	t.Parallel()
	srv := ldaptest.Start389DS(t)
	p := newLDAPPipe(t, srv)
	_, out, _ := p.run("set-startpoint", "--end")
	var n int64
	if i := strings.Index(out, "changelog:"); i < 0 {
		t.Fatalf("set-startpoint: %q", out)
	} else if _, err := fmt.Sscanf(out[i:], "changelog:%d", &n); err != nil {
		t.Fatalf("set-startpoint: %q", out)
	}
	c := srv.Dial(t)
	prefix := scimtest.Unique("tr")
	p.cleanUsers(prefix)
	ldapAddUser(t, c, srv, prefix+"-1", "t@example.com")
	ldapAddUser(t, c, srv, prefix+"-2", "t@example.com")
	// Directory Manager deletes the first change after the checkpoint, as
	// trimming by age would
	ldapDo(t, "trim", c.Del(ldap.NewDelRequest(fmt.Sprintf("changenumber=%d,cn=changelog", n+1), nil)))
	start := time.Now()
	code, _, stderr := p.run("run", "--once")
	t.Logf("run stopped in %v", time.Since(start).Round(time.Millisecond))
	if code != 1 || !strings.Contains(stderr, "changelog trimmed past the checkpoint") || !strings.Contains(stderr, "scimsync resync") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
	if n := len(p.users(prefix)); n != 0 {
		t.Errorf("%d users applied past the gap", n)
	}
}

// TestFailedRetryReadsReferences: `failed retry` reads a referenced entry
// that the id map does not know from the directory, as `run` does, and
// finds it in SCIM by its class's lookup.
func TestFailedRetryReadsReferences(t *testing.T) {
	shared := ldaptest.OpenLDAP(t)
	env := scimtest.Server(t)
	c := shared.Dial(t)
	prefix := scimtest.Unique("fr")
	srv := shared.Subtree(t, c, prefix)
	for k, v := range map[string]string{"LDAP_URL": srv.URL, "LDAP_BASE": srv.Base, "LDAP_BIND_DN": srv.BindDN,
		"LDAP_BIND_PW": srv.BindPW, "SCIM_URL": env.URL, "SCIM_TOKEN": env.Token, "SCIM_CA_FILE": ""} {
		t.Setenv(k, v)
	}
	pipePath := shippedPipes["openldap"]
	p, _, ok := loadPipe(pipePath, io.Discard)
	if !ok {
		t.Fatal("the shipped pipe does not load")
	}
	client, err := scim.NewClient(p.SCIM)
	must(t, err)
	// a user synced before the id map existed (by a resync), and a group
	// add naming it that failed and was parked
	memberDN := ldapAddUser(t, c, srv, prefix+"-m", "m@example.com")
	body, err := client.Create(context.Background(), "/Users", []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+prefix+`-m"}`))
	must(t, err)
	memberID := gjson.GetBytes(body, "id").Str
	t.Cleanup(func() { _ = client.Delete(context.Background(), "/Users", memberID) })
	gName := prefix + "-g"
	gDN := "cn=" + gName + ",ou=Groups," + srv.Base
	g := ldap.NewAddRequest(gDN, nil)
	g.Attribute("objectClass", []string{"top", "groupOfNames"})
	g.Attribute("cn", []string{gName})
	g.Attribute("member", []string{memberDN})
	ldapDo(t, "add group", c.Add(g))
	res, err := c.Search(ldap.NewSearchRequest(gDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"entryUUID"}, nil))
	must(t, err)
	uuid := strings.ToLower(res.Entries[0].GetAttributeValue("entryUUID"))
	// the parked record is a pointer to the entry: retrying reads it again
	stateDir := t.TempDir()
	st, err := openState(stateDir, p)
	must(t, err)
	_, err = st.Park(state.Parked{Key: uuid, Identity: uuid, DN: gDN, Op: "add", Class: "groups",
		Error: "the referenced entry is not at /Users yet", Attempts: 1, Time: time.Now()})
	must(t, err)
	must(t, st.Close())

	code, stdout, stderr := runCLI(t, "failed", "retry", "--state-dir", stateDir, pipePath)
	if code != 0 || !strings.Contains(stdout, "1 applied, 0 still failing") {
		t.Fatalf("failed retry: exit %d\n%s%s", code, stdout, stderr)
	}
	found, _, err := client.Search(context.Background(), "/Groups", `displayName eq "`+gName+`"`, false)
	must(t, err)
	if len(found) != 1 {
		t.Fatalf("%d groups %s", len(found), gName)
	}
	t.Cleanup(func() { _ = client.Delete(context.Background(), "/Groups", gjson.GetBytes(found[0], "id").Str) })
	if m := gjson.GetBytes(found[0], "members.#.value").Array(); len(m) != 1 || m[0].Str != memberID {
		t.Errorf("members %v, want [%s]", m, memberID)
	}
}

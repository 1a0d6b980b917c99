package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scimsync/scimsync/engine"
	"github.com/scimsync/scimsync/engine/control"
	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/state"
)

// TestFailedWhileRunning (issue 11 #4): `failed list` and `failed retry`
// work while `run` runs and holds the state file's lock: they go through
// the run's control socket. The run is kept busy by a SCIM request the
// proxy holds; the socket is gone when it exits.
func TestFailedWhileRunning(t *testing.T) {
	env := scimtest.Server(t)
	bin := binary(t)
	dir := t.TempDir()
	prefix := scimtest.Unique("ctl")
	proxy := newSCIMProxy(t, env, prefix+"-hold")
	ldif := fmt.Sprintf("dn: cn=%s-nouid,ou=People,dc=example,dc=com\ncn: no uid\n\n"+
		"dn: uid=%s-hold,ou=People,dc=example,dc=com\nuid: %s-hold\ncn: Held\n\n", prefix, prefix, prefix)
	ldifPath := filepath.Join(dir, "c.ldif")
	pipePath := filepath.Join(dir, "c.pipe")
	must(t, os.WriteFile(ldifPath, []byte(ldif), 0o644))
	must(t, os.WriteFile(pipePath, []byte(fmt.Sprintf(runPipe, ldifPath)), 0o644))
	stateDir := filepath.Join(dir, "state")
	sock := control.SocketPath(state.Path(stateDir, "kill-test"))

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--once", "--state-dir", stateDir, pipePath)
	cmd.Env = append(os.Environ(), "SCIM_URL="+proxy.URL, "SCIM_TOKEN="+env.Token)
	var logs syncBuffer
	cmd.Stderr = &logs
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-proxy.held:
	case err := <-exited:
		t.Fatalf("run exited before its request was held: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("no request held\n%s", logs.String())
	}

	// The change without uid is parked by now, or soon: list until it is.
	var listed string
	for deadline := time.Now().Add(20 * time.Second); ; {
		code, stdout, stderr := runCLI(t, "failed", "list", "--state-dir", stateDir, pipePath)
		if code != 0 {
			t.Fatalf("failed list while run runs: exit %d\n%s%s", code, stdout, stderr)
		}
		if strings.Contains(stdout, "1 failed changes") {
			listed = stdout
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("failed list never showed the parked change:\n%s\nrun's log:\n%s", stdout, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(listed, "\tcn="+prefix+"-nouid,ou=People,dc=example,dc=com\tclass ") {
		t.Errorf("failed list:\n%s", listed)
	}
	code, stdout, stderr := runCLI(t, "failed", "retry", "--state-dir", stateDir, pipePath)
	if code != 0 || !strings.Contains(stdout, "1 parked changes queued for a retry by the running `scimsync run`") {
		t.Errorf("failed retry while run runs: exit %d\n%s%s", code, stdout, stderr)
	}
	select {
	case err := <-exited:
		t.Fatalf("run exited while its request was held: %v", err)
	default:
	}
	if _, err := os.Lstat(sock); err != nil {
		t.Errorf("no control socket while run runs: %v", err)
	}

	proxy.letGo()
	err := <-exited
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(logs.String(), "1 change remains parked") {
		t.Errorf("run --once with a change parked: %v\n%s", err, logs.String())
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the control socket outlived the run: %v", err)
	}
	// Read from the store now: the same entry, the same line format.
	code, stdout, stderr = runCLI(t, "failed", "list", "--state-dir", stateDir, pipePath)
	if code != 0 || !strings.Contains(stdout, "\tcn="+prefix+"-nouid,ou=People,dc=example,dc=com\tclass ") || !strings.Contains(stdout, "1 failed changes") {
		t.Errorf("failed list after the run: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestFailedListSameOutput: `failed list` prints the same whether it reads
// the store or, the store being locked by a run, asks the run's socket.
func TestFailedListSameOutput(t *testing.T) {
	t.Setenv("SCIM_URL", "http://127.0.0.1:1/scim/v2")
	t.Setenv("SCIM_TOKEN", "")
	dir := t.TempDir()
	pipePath := filepath.Join(dir, "s.pipe")
	must(t, os.WriteFile(pipePath, []byte(fmt.Sprintf(runPipe, filepath.Join(dir, "none.ldif"))), 0o644))
	stateDir := filepath.Join(dir, "state")
	st, err := state.Open(stateDir, "kill-test")
	must(t, err)
	when := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	for _, p := range []state.Parked{
		{Key: "dn:uid=a,ou=people,dc=example,dc=com", DN: "uid=a,ou=People,dc=example,dc=com", Op: "add", Class: "people",
			Error: "s.pipe:17:36: first(uid) is nil", Attempts: 3, Time: when, NextTry: when.Add(time.Minute), Position: "ldif:1"},
		{Key: "0f6b", Identity: "0f6b", DN: "cn=g,ou=Groups,dc=example,dc=com", Op: "modify", Class: "groups",
			Error: "scim: PATCH /Groups/7: 400 Bad Request", Attempts: 1, Time: when.Add(time.Hour)},
	} {
		_, err := st.Park(p)
		must(t, err)
	}
	must(t, st.Close())
	code, direct, stderr := runCLI(t, "failed", "list", "--state-dir", stateDir, pipePath)
	if code != 0 || !strings.Contains(direct, "2 failed changes") {
		t.Fatalf("failed list from the store: exit %d\n%s%s", code, direct, stderr)
	}

	// Now as a run holds it: locked, served by the run's adapter.
	st, err = state.Open(stateDir, "kill-test")
	must(t, err)
	defer st.Close()
	srv, err := control.Listen(control.SocketPath(st.Path()), runnerBackend{&engine.Runner{Store: st}})
	must(t, err)
	defer srv.Close()
	code, remote, stderr := runCLI(t, "failed", "list", "--state-dir", stateDir, pipePath)
	if code != 0 {
		t.Fatalf("failed list through the socket: exit %d\n%s", code, stderr)
	}
	if remote != direct {
		t.Errorf("the outputs differ:\nfrom the store:\n%s\nthrough the socket:\n%s", direct, remote)
	}
}

// TestFailedLockedNoRun: the store locked by a command that serves no
// socket (resync): `failed list` says so, once it has tried twice.
func TestFailedLockedNoRun(t *testing.T) {
	t.Setenv("SCIM_URL", "http://127.0.0.1:1/scim/v2")
	t.Setenv("SCIM_TOKEN", "")
	dir := t.TempDir()
	pipePath := filepath.Join(dir, "s.pipe")
	must(t, os.WriteFile(pipePath, []byte(fmt.Sprintf(runPipe, filepath.Join(dir, "none.ldif"))), 0o644))
	stateDir := filepath.Join(dir, "state")
	st, err := state.Open(stateDir, "kill-test")
	must(t, err)
	defer st.Close()
	for _, verb := range []string{"list", "retry"} {
		code, _, stderr := runCLI(t, "failed", verb, "--state-dir", stateDir, pipePath)
		if code != 1 || !strings.Contains(stderr, "the pipe's state is in use by another process, and no running `scimsync run` answers on "+control.SocketPath(st.Path())) {
			t.Errorf("failed %s: exit %d\n%s", verb, code, stderr)
		}
	}
}

// TestRunRate (issue 11 #3): `run --rate N` sends at most N requests a
// second to the SCIM service, lookups included. Counted where they arrive:
// any one-second window holds at most N+1 of them (+1 for network jitter
// at the window's edges).
func TestRunRate(t *testing.T) {
	env := scimtest.Server(t)
	proxy := newSCIMProxy(t, env, "")
	t.Setenv("SCIM_URL", proxy.URL)
	t.Setenv("SCIM_TOKEN", env.Token)
	dir := t.TempDir()
	prefix := scimtest.Unique("rate")
	var b strings.Builder
	for i := range 6 {
		fmt.Fprintf(&b, "dn: uid=%s-%d,ou=People,dc=example,dc=com\nuid: %s-%d\ncn: R\n\n", prefix, i, prefix, i)
	}
	ldifPath := filepath.Join(dir, "r.ldif")
	pipePath := filepath.Join(dir, "r.pipe")
	must(t, os.WriteFile(ldifPath, []byte(b.String()), 0o644))
	must(t, os.WriteFile(pipePath, []byte(fmt.Sprintf(runPipe, ldifPath)), 0o644))
	const rate = 4
	code, _, stderr := runCLI(t, "run", "--once", "--rate", fmt.Sprint(rate), "--state-dir", filepath.Join(dir, "state"), pipePath)
	if code != 0 {
		t.Fatalf("run --rate: exit %d\n%s", code, stderr)
	}
	reqs := proxy.requests()
	if len(reqs) < 12 {
		t.Fatalf("%d requests for 6 creates (a lookup and a POST each)", len(reqs))
	}
	most := 0
	for i := range reqs {
		n := 0
		for j := i; j < len(reqs) && reqs[j].at.Sub(reqs[i].at) < time.Second; j++ {
			n++
		}
		most = max(most, n)
	}
	if most > rate {
		t.Errorf("%d requests arrived within one second with --rate %d", most, rate)
	}
}

// TestRunReplacesStaleSocket: a run killed with SIGKILL leaves its socket
// behind; the next run replaces it, serves it and removes it when done.
func TestRunReplacesStaleSocket(t *testing.T) {
	env := scimtest.Server(t)
	bin := binary(t)
	dir := t.TempDir()
	prefix := scimtest.Unique("stale")
	ldifPath := filepath.Join(dir, "s.ldif")
	pipePath := filepath.Join(dir, "s.pipe")
	must(t, os.WriteFile(ldifPath, []byte(fmt.Sprintf("dn: uid=%s,ou=People,dc=example,dc=com\nuid: %s\ncn: S\n\n", prefix, prefix)), 0o644))
	must(t, os.WriteFile(pipePath, []byte(fmt.Sprintf(runPipe, ldifPath)), 0o644))
	stateDir := filepath.Join(dir, "state")
	environ := append(os.Environ(), "SCIM_URL="+env.URL, "SCIM_TOKEN="+env.Token)

	// a run killed while its first request is held: its socket is never
	// served again
	proxy := newSCIMProxy(t, env, prefix)
	cmd := exec.Command(bin, "run", "--once", "--state-dir", stateDir, pipePath)
	cmd.Env = append(os.Environ(), "SCIM_URL="+proxy.URL, "SCIM_TOKEN="+env.Token)
	must(t, cmd.Start())
	select {
	case <-proxy.held:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("no request held")
	}
	sock := control.SocketPath(state.Path(stateDir, "kill-test"))
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("no socket while running: %v", err)
	}
	must(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("SIGKILL left no socket behind; the test proves nothing: %v", err)
	}

	run := exec.Command(bin, "run", "--once", "--state-dir", stateDir, pipePath)
	run.Env = environ
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("the run after a SIGKILL: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "no control socket") {
		t.Errorf("the stale socket was not replaced:\n%s", out)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after a clean exit: %v", err)
	}
}

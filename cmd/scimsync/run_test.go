package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/secret"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the command once for the tests that run it as a process.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "scimsync-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "scimsync")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

const runPipe = `pipe "kill-test"
source ldif { file = "%s" }
scim {
  url   = env("SCIM_URL")
  token = env("SCIM_TOKEN")
}
endpoint Users {
  path    = "/Users"
  schemas = ["urn:ietf:params:scim:schemas:core:2.0:User"]
  lookup  = "userName eq " + scimQuote(first(uid))
}
class people {
  endpoint = Users
  map {
    userName                     = first(uid)
    displayName                  = first(cn)
    emails[type eq "work"].value = first(mail)
  }
}
`

// TestRunKill9 kills `scimsync run` with SIGKILL in the middle of a stream
// of 220 changes, runs it again, and checks the SCIM state is exactly the
// expected one: every change applied, none twice (no duplicate creates).
func TestRunKill9(t *testing.T) {
	env := scimtest.Server(t)
	bin := binary(t)
	dir := t.TempDir()
	prefix := scimtest.Unique("kill")
	var b strings.Builder
	const users = 120
	want := map[string]string{} // userName -> mail, after every change
	for i := 0; i < users; i++ {
		uid := fmt.Sprintf("%s-%03d", prefix, i)
		fmt.Fprintf(&b, "dn: uid=%s,ou=People,dc=example,dc=com\nuid: %s\ncn: User %d\nmail: %s@example.com\n\n", uid, uid, i, uid)
		want[uid] = uid + "@example.com"
	}
	for i := 0; i < 60; i++ { // modifies
		uid := fmt.Sprintf("%s-%03d", prefix, i)
		fmt.Fprintf(&b, "dn: uid=%s,ou=People,dc=example,dc=com\nchangetype: modify\nreplace: mail\nmail: changed-%s@example.com\n-\n\n", uid, uid)
		want[uid] = "changed-" + uid + "@example.com"
	}
	for i := 60; i < 80; i++ { // renames
		uid := fmt.Sprintf("%s-%03d", prefix, i)
		fmt.Fprintf(&b, "dn: uid=%s,ou=People,dc=example,dc=com\nchangetype: modrdn\nnewrdn: uid=%s-r\ndeleteoldrdn: 1\n\n", uid, uid)
		want[uid+"-r"] = want[uid]
		delete(want, uid)
	}
	for i := 100; i < 120; i++ { // deletes
		uid := fmt.Sprintf("%s-%03d", prefix, i)
		fmt.Fprintf(&b, "dn: uid=%s,ou=People,dc=example,dc=com\nchangetype: delete\n\n", uid)
		delete(want, uid)
	}
	ldifPath := filepath.Join(dir, "stream.ldif")
	pipePath := filepath.Join(dir, "kill.pipe")
	must(t, os.WriteFile(ldifPath, []byte(b.String()), 0o644))
	must(t, os.WriteFile(pipePath, []byte(fmt.Sprintf(runPipe, ldifPath)), 0o644))
	stateDir := filepath.Join(dir, "state")
	environ := append(os.Environ(), "SCIM_URL="+env.URL, "SCIM_TOKEN="+env.Token)

	// First run: killed once 60 changes have been logged.
	cmd := exec.Command(bin, "run", "--once", "--state-dir", stateDir, pipePath)
	cmd.Env = environ
	stderr, err := cmd.StderrPipe()
	must(t, err)
	must(t, cmd.Start())
	sc := bufio.NewScanner(stderr)
	lines := 0
	deadline := time.Now().Add(60 * time.Second)
	for lines < 60 && time.Now().Before(deadline) && sc.Scan() {
		if strings.Contains(sc.Text(), `"dn"`) {
			lines++
		}
	}
	killed := cmd.Process.Signal(syscall.SIGKILL) == nil
	go func() {
		for sc.Scan() {
		}
	}()
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !killed || !ok || !ws.Signaled() {
		t.Fatalf("the first run was not killed mid-stream (after %d lines): %v", lines, err)
	}

	// Second run: resumes and finishes.
	cmd = exec.Command(bin, "run", "--once", "--state-dir", stateDir, pipePath)
	cmd.Env = environ
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	if strings.Contains(string(out), `"msg":"parked"`) {
		t.Errorf("second run parked changes:\n%s", out)
	}

	c, err := scim.NewClient(scim.Config{URL: env.URL, Auth: scim.AuthBearer, Token: secret.New(env.Token)})
	must(t, err)
	_, total, err := c.Search(context.Background(), "/Users", `userName sw "`+prefix+`"`, false)
	must(t, err)
	if total != len(want) {
		t.Errorf("%d users with the prefix, want %d (a duplicate create or a lost change)", total, len(want))
	}
	for name, mail := range want {
		found, n, err := c.Search(context.Background(), "/Users", `userName eq "`+name+`"`, false)
		must(t, err)
		if n != 1 || len(found) != 1 {
			t.Errorf("%s present %d times, want once", name, n)
			continue
		}
		if got := gjson.GetBytes(found[0], "emails.0.value").Str; got != mail {
			t.Errorf("%s: mail %q, want %q", name, got, mail)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestStartpointRunFailed: set-startpoint chooses where run starts; a
// change that fails is parked, listed by `failed list`, and retried by
// `failed retry`.
func TestStartpointRunFailed(t *testing.T) {
	env := scimtest.Server(t)
	t.Setenv("SCIM_URL", env.URL)
	t.Setenv("SCIM_TOKEN", env.Token)
	dir := t.TempDir()
	prefix := scimtest.Unique("sp")
	var b strings.Builder
	for i := 0; i < 3; i++ {
		fmt.Fprintf(&b, "dn: uid=%s-%d,ou=People,dc=example,dc=com\nuid: %s-%d\ncn: U\n\n", prefix, i, prefix, i)
	}
	fmt.Fprintf(&b, "dn: cn=%s-nouid,ou=People,dc=example,dc=com\ncn: no uid\n\n", prefix)
	ldifPath := filepath.Join(dir, "s.ldif")
	pipePath := filepath.Join(dir, "s.pipe")
	must(t, os.WriteFile(ldifPath, []byte(b.String()), 0o644))
	must(t, os.WriteFile(pipePath, []byte(fmt.Sprintf(runPipe, ldifPath)), 0o644))
	state := filepath.Join(dir, "state")

	code, stdout, stderr := runCLI(t, "set-startpoint", "--change-number", "2", "--state-dir", state, pipePath)
	if code != 0 || !strings.Contains(stdout, "start point set to ldif:1") {
		t.Fatalf("set-startpoint: %d\n%s%s", code, stdout, stderr)
	}
	// --once exits 1 while a change stays parked, saying how many
	code, _, stderr = runCLI(t, "run", "--once", "--state-dir", state, pipePath)
	if code != 1 || !strings.Contains(stderr, "scimsync run: 1 change remains parked; see `scimsync failed list "+pipePath+"`") {
		t.Fatalf("run: %d\n%s", code, stderr)
	}
	if strings.Contains(stderr, prefix+"-0,") || !strings.Contains(stderr, prefix+"-1,") || !strings.Contains(stderr, `"msg":"parked"`) {
		t.Errorf("run from record 2 should skip record 1 and park the entry without uid:\n%s", stderr)
	}
	code, stdout, _ = runCLI(t, "failed", "list", "--state-dir", state, pipePath)
	if code != 0 || !strings.Contains(stdout, "cn="+prefix+"-nouid") || !strings.Contains(stdout, "1 failed changes") {
		t.Errorf("failed list: %d\n%s", code, stdout)
	}
	code, stdout, _ = runCLI(t, "failed", "retry", "--state-dir", state, pipePath)
	if code != 1 || !strings.Contains(stdout, "0 applied, 1 still failing") {
		t.Errorf("failed retry: %d\n%s", code, stdout)
	}
	for _, bad := range [][]string{
		{"set-startpoint", pipePath},
		{"set-startpoint", "--end", "--beginning", pipePath},
		{"set-startpoint", "--rewind", "2h", "--state-dir", state, pipePath},
	} {
		if code, _, _ := runCLI(t, bad...); code == 0 {
			t.Errorf("%v succeeded", bad)
		}
	}
}

func TestParseRewind(t *testing.T) {
	for in, want := range map[string]time.Duration{"2h30m": 150 * time.Minute, "1d": 24 * time.Hour, "1d12h": 36 * time.Hour, "90s": 90 * time.Second, "500ms": 500 * time.Millisecond} {
		if got, err := parseRewind(in); err != nil || got != want {
			t.Errorf("parseRewind(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1h", "1w"} {
		if _, err := parseRewind(bad); err == nil {
			t.Errorf("parseRewind(%q) accepted", bad)
		}
	}
}

// TestResyncFillsIDMap: resync records what each entry became, so a later
// run finds a renamed entry's resource by the id map (its new uid would not
// find it by the lookup filter) instead of creating another.
func TestResyncFillsIDMap(t *testing.T) {
	env := scimtest.Server(t)
	t.Setenv("SCIM_URL", env.URL)
	t.Setenv("SCIM_TOKEN", env.Token)
	dir := t.TempDir()
	prefix := scimtest.Unique("idm")
	ldifPath := filepath.Join(dir, "s.ldif")
	pipePath := filepath.Join(dir, "s.pipe")
	must(t, os.WriteFile(ldifPath, []byte(fmt.Sprintf("dn: uid=%s-a,ou=People,dc=example,dc=com\nuid: %s-a\ncn: A\n\n", prefix, prefix)), 0o644))
	must(t, os.WriteFile(pipePath, []byte(fmt.Sprintf(runPipe, ldifPath)), 0o644))
	state := filepath.Join(dir, "state")
	if code, _, stderr := runCLI(t, "set-startpoint", "--end", "--state-dir", state, pipePath); code != 0 {
		t.Fatalf("set-startpoint: %s", stderr)
	}
	if code, _, stderr := runCLI(t, "resync", "--state-dir", state, pipePath); code != 0 || !strings.Contains(stderr, "1 created") {
		t.Fatalf("resync: %d %s", code, stderr)
	}
	c, err := scim.NewClient(scim.Config{URL: env.URL, Auth: scim.AuthBearer, Token: secret.New(env.Token)})
	must(t, err)
	found, _, err := c.Search(context.Background(), "/Users", `userName eq "`+prefix+`-a"`, false)
	must(t, err)
	if len(found) != 1 {
		t.Fatalf("resync made %d users", len(found))
	}
	id := gjson.GetBytes(found[0], "id").Str
	f, err := os.OpenFile(ldifPath, os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	fmt.Fprintf(f, "dn: uid=%s-a,ou=People,dc=example,dc=com\nchangetype: modrdn\nnewrdn: uid=%s-renamed\ndeleteoldrdn: 1\n\n", prefix, prefix)
	f.Close()
	if code, _, stderr := runCLI(t, "run", "--once", "--state-dir", state, pipePath); code != 0 {
		t.Fatalf("run: %s", stderr)
	}
	found, _, err = c.Search(context.Background(), "/Users", `userName eq "`+prefix+`-renamed"`, false)
	must(t, err)
	if len(found) != 1 || gjson.GetBytes(found[0], "id").Str != id {
		t.Fatalf("after the rename: %d users, want the resync's %s renamed", len(found), id)
	}
}

func TestMain(m *testing.M) {
	// Commands that keep state write under XDG_STATE_HOME: never the
	// user's own during tests.
	dir, err := os.MkdirTemp("", "scimsync-state")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_STATE_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

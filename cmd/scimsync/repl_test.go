package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/engine/source/ldaptest"
	"github.com/scimsync/scimsync/lang"
	"github.com/scimsync/scimsync/lang/repl"
)

// TestReplPiped runs `scimsync repl` with lines on standard input, as a
// script would: no prompt, the output of each line, exit status 1 when a
// line failed.
func TestReplPiped(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		input  string
		code   int
		stdout string // exactly, when set
		has    []string
		stderr []string
	}{
		{name: "demo", args: []string{"repl"}, code: 0,
			input: ":entry uid=praman,ou=People,dc=example,dc=com\nlower(first(mail))\nmap(mail,\n  upper(#))\n:type first(sn)\n:lookup\n",
			stdout: `[4/30] add uid=praman,ou=People,dc=example,dc=com
"priya.raman@example.com" : string
["PRIYA.RAMAN@EXAMPLE.COM"] : list<string>
string
userName eq "praman"
`,
			stderr: []string{"running the embedded demo pipe"}},
		{name: "a shipped script and entries", args: []string{"repl", "../../scripts/demo.pipe", "--entries", "../../testdata/cli/failing.ldif"},
			input: ":show\n:quit\nfirst(mail)\n", code: 0, has: []string{"[1/", "dn: "}},
		{name: "a failing line sets the status", args: []string{"repl"}, input: "lowr(1)\n1 + 1\n", code: 1,
			has: []string{"<input>:1:1: unknown function lowr", "^^^^", "2 : int"}},
		{name: "input ends inside an expression", args: []string{"repl"}, input: "first(mail\n", code: 1,
			stderr: []string{"the input ends inside an expression"}},
		{name: "a script that does not load", args: []string{"repl", "../../testdata/diag/unknown-function.pipe"}, input: "1\n", code: 1,
			has: []string{"unknown-function.pipe:26:36: unknown function lowr", "error: no pipe loaded: fix ../../testdata/diag/unknown-function.pipe and :load it"}},
		{name: "an LDAP pipe without entries", args: []string{"repl", "../../scripts/openldap-to-scim.pipe"}, input: ":show\n1 + 1\n", code: 0,
			has: []string{"no entries: read some with :entries FILE.ldif", "2 : int"}, stderr: []string{"name sample entries with --entries FILE.ldif, or read them from the directory with --ldap"}},
		{name: "--ldap on an LDIF pipe", args: []string{"repl", "--ldap"}, input: ":fetch uid=x,dc=example,dc=com\n", code: 1,
			has: []string{"error: the pipe's ldif source names no LDAP server"}, stderr: []string{"the pipe reads an LDIF file, not a directory"}},
		{name: "help", args: []string{"repl", "--help"}, code: 0, has: []string{"Usage: scimsync repl [PIPE]", "--entries"}},
		{name: "two scripts", args: []string{"repl", "a.pipe", "b.pipe"}, code: 2, stderr: []string{"name one pipe script"}},
		{name: "bad mode", args: []string{"repl", "--mode", "x"}, code: 2, stderr: []string{"--mode is realtime or resync"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SCIM_TOKEN", "")
			var out, errb bytes.Buffer
			code := run(tt.args, strings.NewReader(tt.input), &out, &errb)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out.String(), errb.String())
			}
			if tt.stdout != "" && out.String() != tt.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", out.String(), tt.stdout)
			}
			for _, s := range tt.has {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, out.String())
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(errb.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, errb.String())
				}
			}
		})
	}
}

// TestReplTerminal drives the real terminal UI in tmux: Tab completes a
// command, an expression is evaluated, Up recalls it from the history, and
// the history outlives the session (it is kept in a file).
func TestReplTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and drives it in tmux")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("SCIMSYNC_REQUIRE_SERVERS") == "1" {
			t.Fatal("tmux is not installed, and SCIMSYNC_REQUIRE_SERVERS=1: install it (apt-get install tmux; .ci/test.sh does)")
		}
		t.Skip("tmux is not installed: the terminal UI test needs it (apt-get install tmux; .ci/test.sh does)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "scimsync")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	state := filepath.Join(dir, "state")
	tm := &tmux{t: t, socket: fmt.Sprintf("scimsync-test-%d", os.Getpid())}
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", tm.socket, "kill-server").Run() })

	// The command runs through the shell of tmux's default-command: set the
	// environment there, so that the history goes to the temporary folder.
	cmd := fmt.Sprintf("cd %q && TERM=xterm XDG_STATE_HOME=%q SCIM_TOKEN= exec %q repl", dir, state, bin)
	tm.run("-f", "/dev/null", "new-session", "-d", "-s", "repl", "-x", "120", "-y", "40", cmd)
	tm.waitFor("the banner", func(s string) bool { return strings.Contains(s, ":help lists the commands") })

	tm.run("send-keys", "-t", "repl", ":fu", "Tab")
	tm.waitFor("Tab to complete :fu to :funcs", func(s string) bool { return lastLine(s) == "> :funcs" })
	tm.run("send-keys", "-t", "repl", "Enter")
	tm.waitFor(":funcs to list the functions", func(s string) bool { return strings.Contains(s, "expr's builtins:") })

	tm.run("send-keys", "-t", "repl", "-l", `lower("HeLLo") + "!"`)
	tm.run("send-keys", "-t", "repl", "Enter")
	tm.waitFor("the expression's value", func(s string) bool { return strings.Count(s, `"hello!" : string`) == 1 })

	tm.run("send-keys", "-t", "repl", "Up")
	tm.waitFor("Up to recall the expression", func(s string) bool { return lastLine(s) == `> lower("HeLLo") + "!"` })
	tm.run("send-keys", "-t", "repl", "Enter")
	tm.waitFor("the recalled expression's value", func(s string) bool { return strings.Count(s, `"hello!" : string`) == 2 })

	tm.run("send-keys", "-t", "repl", "C-d")
	hist := filepath.Join(state, "scimsync", "repl_history")
	waitUntil(t, "Ctrl-D to end the session", func() bool {
		return exec.Command("tmux", "-L", tm.socket, "has-session", "-t", "repl").Run() != nil
	})
	data, err := os.ReadFile(hist)
	if err != nil || !strings.Contains(string(data), `lower("HeLLo") + "!"`) || !strings.Contains(string(data), ":funcs") {
		t.Fatalf("history file %s: %v\n%s", hist, err, data)
	}

	// A new session recalls the last line from the file.
	tm.run("-f", "/dev/null", "new-session", "-d", "-s", "repl", "-x", "120", "-y", "40", cmd)
	tm.waitFor("the banner", func(s string) bool { return strings.Contains(s, ":help lists the commands") })
	tm.run("send-keys", "-t", "repl", "Up")
	tm.waitFor("Up to recall the previous session's last line", func(s string) bool { return lastLine(s) == `> lower("HeLLo") + "!"` })
	tm.run("send-keys", "-t", "repl", "C-u", ":quit", "Enter")
	waitUntil(t, ":quit to end the session", func() bool {
		return exec.Command("tmux", "-L", tm.socket, "has-session", "-t", "repl").Run() != nil
	})
}

// TestReplWorkbench drives the mapping workbench in tmux, as a person
// would: Tab completes a DN after :entry, a mapping line typed over two
// lines is tried on the entry and is one history entry, :map --all shows
// it on every entry, :save writes it into the script, and the file has the
// typed line in place of the script's, every other line as it was.
func TestReplWorkbench(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and drives it in tmux")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("SCIMSYNC_REQUIRE_SERVERS") == "1" {
			t.Fatal("tmux is not installed, and SCIMSYNC_REQUIRE_SERVERS=1: install it (apt-get install tmux; .ci/test.sh does)")
		}
		t.Skip("tmux is not installed: the terminal UI test needs it (apt-get install tmux; .ci/test.sh does)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "scimsync")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	orig, err := os.ReadFile("../../scripts/demo.pipe")
	if err != nil {
		t.Fatal(err)
	}
	people, err := os.ReadFile("../../scripts/demo/people.ldif")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "demo"), 0o755); err != nil {
		t.Fatal(err)
	}
	pipe := filepath.Join(dir, "demo.pipe")
	for name, data := range map[string][]byte{pipe: orig, filepath.Join(dir, "demo", "people.ldif"): people} {
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tm := &tmux{t: t, socket: fmt.Sprintf("scimsync-wb-%d", os.Getpid())}
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", tm.socket, "kill-server").Run() })
	cmd := fmt.Sprintf("cd %q && TERM=xterm XDG_STATE_HOME=%q SCIM_TOKEN= exec %q repl demo.pipe", dir, filepath.Join(dir, "state"), bin)
	tm.run("-f", "/dev/null", "new-session", "-d", "-s", "repl", "-x", "160", "-y", "50", cmd)
	tm.waitFor("the banner", func(s string) bool { return strings.Contains(s, ":help lists the commands") })

	tm.run("send-keys", "-t", "repl", "-l", ":entry uid=pr")
	tm.run("send-keys", "-t", "repl", "Tab")
	tm.waitFor("Tab to complete the DN", func(s string) bool { return lastLine(s) == "> :entry uid=praman,ou=People,dc=example,dc=com" })
	tm.run("send-keys", "-t", "repl", "Enter")
	tm.waitFor(":entry to move", func(s string) bool { return strings.Contains(s, "[4/30] add uid=praman") })

	tm.run("send-keys", "-t", "repl", "-l", "displayName = upper(")
	tm.run("send-keys", "-t", "repl", "Enter")
	tm.waitFor("the continuation prompt", func(s string) bool { return lastLine(s) == "..." })
	tm.run("send-keys", "-t", "repl", "-l", "first(cn))")
	tm.run("send-keys", "-t", "repl", "Enter")
	tm.waitFor("the mapping line's new and old value", func(s string) bool {
		return strings.Contains(s, `people.displayName: "PRIYA RAMAN" (was "Priya Raman")`)
	})

	tm.run("send-keys", "-t", "repl", "Up")
	tm.waitFor("Up to recall the two lines as one", func(s string) bool { return lastLine(s) == "> displayName = upper( first(cn))" })
	tm.run("send-keys", "-t", "repl", "C-u")

	tm.run("send-keys", "-t", "repl", "-l", ":map --all displayName")
	tm.run("send-keys", "-t", "repl", "Enter")
	tm.waitFor("the table", func(s string) bool {
		return strings.Contains(s, `people  Users     "JOSÉ MÜLLER"`) && strings.Contains(s, "30 entries")
	})

	tm.run("send-keys", "-t", "repl", "-l", ":save")
	tm.run("send-keys", "-t", "repl", "Enter")
	tm.waitFor(":save to write the script", func(s string) bool { return strings.Contains(s, "wrote demo.pipe (1 override), and it loads") })
	tm.run("send-keys", "-t", "repl", "C-d")
	waitUntil(t, "Ctrl-D to end the session", func() bool {
		return exec.Command("tmux", "-L", tm.socket, "has-session", "-t", "repl").Run() != nil
	})

	got, err := os.ReadFile(pipe)
	if err != nil {
		t.Fatal(err)
	}
	old := "displayName                  = first(displayName) ?? first(cn)"
	want := strings.Replace(string(orig), old, "displayName = upper(\nfirst(cn))", 1)
	if !strings.Contains(string(orig), old) || string(got) != want {
		t.Errorf("the saved script:\n%s\nwant:\n%s", got, want)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"check", pipe}, strings.NewReader(""), &out, &errb); code != exitOK {
		t.Errorf("check of the saved script: exit %d\n%s%s", code, out.String(), errb.String())
	}
}

// tmux drives a tmux server of its own (its own socket).
type tmux struct {
	t      *testing.T
	socket string
	last   string // the last capture
}

func (tm *tmux) run(args ...string) {
	tm.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", tm.socket}, args...)...).CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// waitFor polls the pane until ok holds, for at most 5 seconds.
func (tm *tmux) waitFor(what string, ok func(pane string) bool) {
	tm.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := exec.Command("tmux", "-L", tm.socket, "capture-pane", "-p", "-t", "repl").Output()
		if err == nil {
			tm.last = string(out)
			if ok(tm.last) {
				return
			}
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("waited 5s for %s; the pane shows:\n%s", what, tm.last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 5s for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lastLine is the last non-empty line of a pane, without trailing blanks.
func lastLine(pane string) string {
	lines := strings.Split(strings.TrimRight(pane, " \n"), "\n")
	return strings.TrimRight(lines[len(lines)-1], " ")
}

// TestReplLDAP reads sample entries from the real OpenLDAP test server with
// --ldap (:fetch, :search), through the shipped syncrepl pipe.
func TestReplLDAP(t *testing.T) {
	srv := ldaptest.OpenLDAP(t)
	c := srv.Dial(t)
	uid := ldaptest.Unique("repl")
	dn := srv.AddUser(t, c, uid, map[string][]string{"mail": {"Repl.User@Example.com"}, "givenName": {"Repl"}})
	t.Setenv("LDAP_URL", srv.URL)
	t.Setenv("LDAP_BASE", srv.Base)
	t.Setenv("LDAP_BIND_DN", srv.BindDN)
	t.Setenv("LDAP_BIND_PW", srv.BindPW)
	t.Setenv("SCIM_TOKEN", "")

	input := strings.Join([]string{
		":fetch " + dn,
		"lower(first(mail))",
		"len(first(entryUUID))",
		":class",
		":lookup",
		":fetch uid=nobody-" + uid + ",ou=People," + srv.Base,
		":search (uid=" + uid + ")",
		":search (uid=" + uid,
	}, "\n") + "\n"
	var out, errb bytes.Buffer
	code := run([]string{"repl", "../../scripts/openldap-to-scim.pipe", "--ldap"}, strings.NewReader(input), &out, &errb)
	got := out.String()
	for _, s := range []string{
		"1 entry read for " + dn + "\n[1/1] add " + dn + "\n",
		`"repl.user@example.com" : string`,
		"36 : int",
		"people  yes: endpoint Users (/Users)",
		`userName eq "` + uid + `"`,
		"error: no entry at uid=nobody-",
		"1 entry read for (uid=" + uid + ")\n[2/2] add " + dn + "\n",
		"error: filter (uid=" + uid + ": ",
	} {
		if !strings.Contains(got, s) {
			t.Errorf("stdout lacks %q:\n%s", s, got)
		}
	}
	if code != exitFail { // the missing entry and the bad filter fail
		t.Errorf("exit %d, want %d", code, exitFail)
	}
	if errb.Len() != 0 {
		t.Errorf("stderr: %s", errb.String())
	}
	if strings.Contains(got+errb.String(), srv.BindPW) && len(srv.BindPW) > 3 {
		t.Error("the bind password is in the output")
	}

	// :search reads every entry, past a page and past the 100 it used to
	// stop at, and says how many.
	many := ldaptest.Unique("replmany")
	const n = 130
	for i := range n {
		srv.AddUser(t, c, fmt.Sprintf("%s-%03d", many, i), nil)
	}
	out.Reset()
	errb.Reset()
	code = run([]string{"repl", "../../scripts/openldap-to-scim.pipe", "--ldap"}, strings.NewReader(":search (uid="+many+"-*)\n"), &out, &errb)
	if want := fmt.Sprintf("%d entries read for (uid=%s-*)\n[1/%d] add ", n, many, n); code != exitOK || !strings.Contains(out.String(), want) {
		t.Errorf(":search: exit %d, want %q in:\n%s%s", code, want, out.String(), errb.String())
	}

	// A wrong password is reported at start, without the password.
	t.Setenv("LDAP_BIND_PW", "wrong-password-for-the-test")
	out.Reset()
	errb.Reset()
	run([]string{"repl", "../../scripts/openldap-to-scim.pipe", "--ldap"}, strings.NewReader(":fetch "+dn+"\n"), &out, &errb)
	if !strings.Contains(errb.String(), "--ldap: ") || !strings.Contains(errb.String(), "Invalid Credentials") || strings.Contains(out.String()+errb.String(), "wrong-password") {
		t.Errorf("stderr:\n%s\nstdout:\n%s", errb.String(), out.String())
	}
}

// TestReplLive reads the current resource from the real SCIM test server:
// :get finds it by the lookup, :patch shows the requests a sync would send
// (a PATCH against what the service holds, with the typed mapping line; a
// POST for an entry the service lacks), and :apply writes nothing without a
// yes on a terminal: it refuses on piped input, "no" sends nothing, and
// only "yes" sends the PATCH.
func TestReplLive(t *testing.T) {
	env := scimtest.Server(t)
	ctx := context.Background()
	c, err := scim.NewClient(scim.Config{URL: env.URL, Auth: scim.AuthBearer, Token: secret.New(env.Token)})
	must(t, err)
	uid, absent := scimtest.Unique("repl-live"), scimtest.Unique("repl-absent")
	created, err := c.Create(ctx, "/Users", []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+uid+`","displayName":"Old Name"}`))
	must(t, err)
	id := gjson.GetBytes(created, "id").String()
	t.Cleanup(func() { _ = c.Delete(context.Background(), "/Users", id) })

	dir := t.TempDir()
	pipe := filepath.Join(dir, "live.pipe")
	script := `pipe "live"
source ldif { file = "people.ldif" }
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
    userName    = first(uid)
    displayName = first(cn)
  }
}
`
	ldif := "dn: uid=" + uid + ",dc=x\nuid: " + uid + "\ncn: New Name\n\ndn: uid=" + absent + ",dc=x\nuid: " + absent + "\ncn: Nobody\n"
	must(t, os.WriteFile(pipe, []byte(script), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "people.ldif"), []byte(ldif), 0o644))
	t.Setenv("SCIM_URL", env.URL)
	t.Setenv("SCIM_TOKEN", env.Token)

	input := ":get\n:patch\ndisplayName = upper(first(cn))\n:patch\n:apply\n:next\n:get\n:patch\n"
	var out, errb bytes.Buffer
	code := run([]string{"repl", pipe}, strings.NewReader(input), &out, &errb)
	got := out.String()
	for _, s := range []string{
		"/Users/" + id + `, found by the lookup userName eq "` + uid + `":`,
		`"displayName": "Old Name"`,
		"what a sync would send (nothing is sent):\nPATCH /Users/" + id + "\n",
		`"value": "New Name"`,
		`people.displayName: "NEW NAME" (was "New Name")`,
		`"value": "NEW NAME"`,
		"error: not applied: :apply writes to the SCIM service and asks first, and standard input is not a terminal",
		"/Users has no resource for this entry (by the lookup userName eq \"" + absent + "\"): a sync would create it",
		"POST /Users\n",
		`"userName": "` + absent + `"`,
	} {
		if !strings.Contains(got, s) {
			t.Errorf("stdout lacks %q:\n%s", s, got)
		}
	}
	if code != exitFail || strings.Contains(got+errb.String(), env.Token) {
		t.Errorf("exit %d, want %d (the refused :apply); the token must not show\n%s", code, exitFail, errb.String())
	}
	unchanged := func(want string) {
		t.Helper()
		body, err := c.Get(ctx, "/Users/"+id)
		must(t, err)
		if got := gjson.GetBytes(body, "displayName").String(); got != want {
			t.Errorf("displayName on the service: %q, want %q", got, want)
		}
		if _, n, err := c.Search(ctx, "/Users", `userName eq "`+absent+`"`, false); err != nil || n != 0 {
			t.Errorf("%s was created (%d, %v)", absent, n, err)
		}
	}
	unchanged("Old Name")

	// On a terminal, :apply asks: no sends nothing, yes sends the PATCH.
	t.Chdir(dir)
	for _, yes := range []bool{false, true} {
		out.Reset()
		svc := &scimService{}
		r := repl.New(&out, repl.Options{Pipe: "live.pipe", Service: svc, Confirm: func(q string) bool {
			fmt.Fprintf(&out, "%s%v\n", q, yes)
			return yes
		}, Load: lang.LoadOptions{}})
		svc.pipe = r.Pipe
		for _, line := range []string{"displayName = upper(first(cn))", ":apply"} {
			if _, err := r.OneShot(line); err != nil {
				t.Fatalf("%s: %v\n%s", line, err, out.String())
			}
		}
		ask := "send 1 request to " + env.URL + "? [y/N] "
		if !strings.Contains(out.String(), ask) {
			t.Errorf("no question %q:\n%s", ask, out.String())
		}
		if !yes {
			if !strings.Contains(out.String(), "\nnot applied\n") {
				t.Errorf("no: %s", out.String())
			}
			unchanged("Old Name")
			continue
		}
		if !strings.Contains(out.String(), "updated /Users/"+id+" (1 request sent)") {
			t.Errorf("yes: %s", out.String())
		}
		unchanged("NEW NAME")
		out.Reset()
		if _, err := r.OneShot(":patch"); err != nil || !strings.Contains(out.String(), "no change needed") {
			t.Errorf(":patch after :apply: %v\n%s", err, out.String())
		}
	}
}

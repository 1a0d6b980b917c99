package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/engine/source/ldaptest"
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

	// A wrong password is reported at start, without the password.
	t.Setenv("LDAP_BIND_PW", "wrong-password-for-the-test")
	out.Reset()
	errb.Reset()
	run([]string{"repl", "../../scripts/openldap-to-scim.pipe", "--ldap"}, strings.NewReader(":fetch "+dn+"\n"), &out, &errb)
	if !strings.Contains(errb.String(), "--ldap: ") || !strings.Contains(errb.String(), "Invalid Credentials") || strings.Contains(out.String()+errb.String(), "wrong-password") {
		t.Errorf("stderr:\n%s\nstdout:\n%s", errb.String(), out.String())
	}
}

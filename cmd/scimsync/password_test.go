package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/secret"
)

// passwordSyncPipe sends the clear-text userPassword an LDIF record sets,
// through newPassword (lang/password_change.go).
const passwordSyncPipe = `pipe "pwsync"
source ldif { file = "%s" }
scim {
  url   = env("SCIM_URL")
  token = env("SCIM_TOKEN")
  maxAttempts = 1
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
    password    = newPassword
    title       = hasSuffix(first(uid), "-bad") ? string(int(newPassword)) : nil
  }
}
`

// TestNoNewPasswordInAnyOutput: the clear-text passwords an LDIF source's
// changes carry (newPassword) appear in no output of check, map, the REPL,
// resync (whose entries carry none), run and failed, against the real SCIM
// server and one that echoes every request into its error, nor in any
// state file; map shows them as (withheld), and an expression that fails
// on newPassword has its message withheld.
func TestNoNewPasswordInAnyOutput(t *testing.T) {
	env := scimtest.Server(t)
	dir := t.TempDir()
	prefix := scimtest.Unique("npw")
	passwords := []string{"New-Pw-" + prefix + "-1!", "New-Pw-" + prefix + "-2 \"q\"/+", "New-Pw-" + prefix + "-3"}
	ldifPath := filepath.Join(dir, "s.ldif")
	var b strings.Builder
	for i, uid := range []string{prefix + "-ok", prefix + "-bad"} {
		fmt.Fprintf(&b, "dn: uid=%s,ou=People,dc=example,dc=com\nuid: %s\ncn: User %d\nuserPassword:: %s\n\n", uid, uid, i, b64(passwords[i]))
	}
	fmt.Fprintf(&b, "dn: uid=%s-ok,ou=People,dc=example,dc=com\nchangetype: modify\nreplace: userPassword\nuserPassword:: %s\n-\n\n", prefix, b64(passwords[2]))
	must(t, os.WriteFile(ldifPath, []byte(b.String()), 0o600))
	pipePath := filepath.Join(dir, "s.pipe")
	must(t, os.WriteFile(pipePath, []byte(fmt.Sprintf(passwordSyncPipe, ldifPath)), 0o600))
	realState, hostileState := filepath.Join(dir, "state-real"), filepath.Join(dir, "state-hostile")
	hostile := hostileSCIM(t)
	steps := []struct {
		name  string
		url   string
		args  []string
		stdin string
	}{
		{name: "check", args: []string{"check", pipePath}},
		{name: "map", args: []string{"map", pipePath}},
		{name: "map --json", args: []string{"map", "--json", pipePath}},
		{name: "repl", args: []string{"repl", pipePath}, stdin: ":show\nnewPassword\n:map\n:map --all\n:next\nnewPassword\n:map\n"},
		{name: "resync --dry-run", args: []string{"resync", "--dry-run", "--state-dir", realState, pipePath}},
		{name: "run", args: []string{"run", "--once", "--state-dir", realState, pipePath}},
		{name: "failed list", args: []string{"failed", "list", "--state-dir", realState, pipePath}},
		{name: "hostile run", url: hostile, args: []string{"run", "--once", "--state-dir", hostileState, pipePath}},
		{name: "hostile failed list", url: hostile, args: []string{"failed", "list", "--state-dir", hostileState, pipePath}},
	}
	var outputs strings.Builder
	for _, s := range steps {
		url := env.URL
		if s.url != "" {
			url = s.url
		}
		t.Setenv("SCIM_URL", url)
		t.Setenv("SCIM_TOKEN", env.Token)
		var out, errb bytes.Buffer
		code := run(s.args, strings.NewReader(s.stdin), &out, &errb)
		fmt.Fprintf(&outputs, "== %s (exit %d)\n%s%s", s.name, code, out.String(), errb.String())
	}
	for _, d := range []string{realState, hostileState} {
		_ = filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.Type().IsRegular() {
				data, _ := os.ReadFile(p)
				fmt.Fprintf(&outputs, "== file %s\n%s", p, data)
			}
			return nil
		})
	}
	all := outputs.String()
	for _, s := range passwords {
		for _, f := range secret.Forms(s) {
			if i := strings.Index(all, f); i >= 0 {
				t.Errorf("password %q found as %q near: %q", s, f, all[max(0, i-300):min(len(all), i+100)])
			}
		}
	}
	for _, want := range []string{"(withheld)", "the message is withheld", "rejected"} {
		if !strings.Contains(all, want) {
			t.Errorf("the output lacks %q, so the test proves less than it says", want)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("all output:\n%s", all)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/scimsync/scimsync/engine/logsafe"
)

// controlPipe fails on every entry whose uid ends in -bad, in an
// expression whose error quotes the uid (strconv's "parsing …").
const controlPipe = `pipe "controls"
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
    title       = hasSuffix(first(uid), "-bad") ? string(int(first(uid))) : nil
  }
}
`

// terminalAttack is what an LDAP value or a SCIM answer may carry to a
// terminal: clear the screen, set the window title, ring the bell, an
// 8-bit CSI, a right-to-left override, a byte that is not UTF-8, and a
// forged log line.
const terminalAttack = "\x1b[2J\x1b]0;owned\x07\u009b31m\u202eevil\xff\r\nlevel=ERROR msg=forged"

// hostileControlsSCIM refuses every lookup of the entry "ok…" with a 400
// whose scimType and detail carry terminalAttack, the detail 8 KB long;
// it finds nothing else and takes every create (an answer to a POST that
// fails would make run wait before sending it again). With bulk, it
// advertises Bulk and refuses each operation of a POST /Bulk with such a
// 400, so that resync's creates (in Bulk requests by default) meet the
// attack in the Bulk answer.
func hostileControlsSCIM(t *testing.T, bulk bool) string {
	t.Helper()
	attack := strings.ReplaceAll(terminalAttack, "\xff", "") // JSON is UTF-8
	refusal := map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:Error"},
		"status": "400", "scimType": "invalidFilter" + attack, "detail": attack + strings.Repeat("d", 8<<10)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/scim+json")
		switch {
		case bulk && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/ServiceProviderConfig"):
			io.WriteString(w, `{"bulk":{"supported":true,"maxOperations":100,"maxPayloadSize":1048576}}`)
		case bulk && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/Bulk"):
			var req struct{ Operations []struct{ BulkID string } }
			_ = json.Unmarshal(body, &req)
			var ops []map[string]any
			for _, op := range req.Operations {
				ops = append(ops, map[string]any{"method": "POST", "bulkId": op.BulkID, "status": "400", "response": refusal})
			}
			json.NewEncoder(w).Encode(map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:BulkResponse"}, "Operations": ops})
		case r.Method == http.MethodPost:
			w.WriteHeader(201)
			io.WriteString(w, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"id-1","userName":"x"}`)
		case strings.Contains(r.URL.Query().Get("filter"), `"ok`):
			w.WriteHeader(400)
			json.NewEncoder(w).Encode(refusal)
		default:
			io.WriteString(w, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0,"Resources":[]}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestNoControlCharactersInAnyOutput runs every command that prints, with
// terminal escapes in the LDAP data (DNs and values), in a mapping's
// error and in the SCIM answers, and a 100 KB uid: no output holds a
// control character raw (issue 13 #10), and no line of stderr (logs,
// errors) is longer than a few KB (#11). Before, check and map printed
// the values raw, JSON logs carried C1 controls and bidi overrides, and
// a failing 100 KB uid made 100 KB log lines.
func TestNoControlCharactersInAnyOutput(t *testing.T) {
	dir := t.TempDir()
	huge := strings.Repeat("u", 100<<10)
	dnAttack := strings.NewReplacer(",", "", "=", "", "\xff", "").Replace(terminalAttack) // a DN is UTF-8
	ldifPath := filepath.Join(dir, "c.ldif")
	var b strings.Builder
	for i, uid := range []string{"ok" + terminalAttack, "esc" + terminalAttack + "-bad", huge + "-bad", "plain"} {
		fmt.Fprintf(&b, "dn:: %s\nuid:: %s\ncn:: %s\n\n",
			b64(fmt.Sprintf("uid=u%d%s,ou=People,dc=example,dc=com", i, dnAttack)),
			b64(uid), b64("User "+terminalAttack))
	}
	must(t, os.WriteFile(ldifPath, []byte(b.String()), 0o600))
	pipePath := filepath.Join(dir, "c.pipe")
	must(t, os.WriteFile(pipePath, []byte(fmt.Sprintf(controlPipe, ldifPath)), 0o600))
	state := filepath.Join(dir, "state")
	single, bulk := hostileControlsSCIM(t, false), hostileControlsSCIM(t, true)
	t.Setenv("SCIM_TOKEN", "t0ken-for-the-hostile-server")

	steps := []struct {
		name  string
		args  []string
		stdin string
		url   string // "": the server without Bulk
	}{
		{"check", []string{"check", pipePath}, "", ""},
		{"map", []string{"map", pipePath}, "", ""},
		{"map --json", []string{"map", "--json", pipePath}, "", ""},
		{"resync --dry-run", []string{"resync", "--dry-run", "--state-dir", state, pipePath}, "", ""},
		{"resync", []string{"resync", "--state-dir", state + "-resync", pipePath}, "", ""},
		{"resync --dry-run, Bulk", []string{"resync", "--dry-run", "--state-dir", state + "-bulk", pipePath}, "", bulk},
		{"resync, Bulk", []string{"resync", "--state-dir", state + "-bulk", pipePath}, "", bulk},
		{"run", []string{"run", "--once", "--state-dir", state, pipePath}, "", ""},
		{"failed list", []string{"failed", "list", "--state-dir", state, pipePath}, "", ""},
		{"failed retry", []string{"failed", "retry", "--state-dir", state, pipePath}, "", ""},
		{"repl", []string{"repl", pipePath}, ":show\nfirst(uid)\ncn\n:map\n:next\n:show\n:map\nint(first(uid))\n:class\n", ""},
	}
	sawAttack := false
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			url := single
			if s.url != "" {
				url = s.url
			}
			t.Setenv("SCIM_URL", url)
			var out, errb bytes.Buffer
			code := run(s.args, strings.NewReader(s.stdin), &out, &errb)
			all := out.String() + errb.String()
			sawAttack = sawAttack || strings.Contains(all, `\u001b`)
			for i, r := range all {
				if r == utf8.RuneError && !strings.HasPrefix(all[i:], "\uFFFD") || r != '\n' && r != '\t' && logsafe.Unsafe(r) {
					t.Errorf("exit %d: raw %U near %q", code, r, all[max(0, i-80):min(len(all), i+20)])
					break
				}
			}
			// A line break in a value (the DN's, the uid's) is escaped like
			// the rest: output lets its own line breaks through, so one
			// from the data would start a forged line.
			if i := strings.Index(all, "\nlevel=ERROR msg=forged"); i >= 0 {
				t.Errorf("exit %d: a forged line: %q", code, all[max(0, i-120):min(len(all), i+30)])
			}
			for _, line := range strings.Split(errb.String(), "\n") {
				if len(line) > logsafe.MaxMessage+4*logsafe.MaxValue {
					t.Errorf("exit %d: a stderr line of %d bytes: %.200q", code, len(line), line)
				}
			}
			if s.url == bulk && !strings.Contains(all, "POST /Bulk") && !strings.Contains(all, "invalidFilter") {
				t.Errorf("exit %d: neither a Bulk request shown nor the Bulk answer's refusal: the step proves nothing", code)
			}
			if t.Failed() || testing.Verbose() {
				t.Logf("stdout:\n%.3000s\nstderr:\n%.3000s", out.String(), errb.String())
			}
		})
	}
	if !sawAttack {
		t.Error("no escaped ESC in any output: the attack never reached an output, so the test proves nothing")
	}
}

package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/secret"
)

// secretsPipe maps a password, and fails on the entry "bad" in an
// expression that reaches userPassword through $env, whose message would
// quote it.
const secretsPipe = `pipe "secrets"
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
    password    = first(userPassword)
    title       = hasSuffix(first(uid), "-bad") ? string(int($env["userpassword"][0])) : nil
  }
}
`

// hostileSCIM answers every search with no match and every write with a
// 400 that quotes the request: its body and its Authorization header. It
// advertises Bulk, and answers each operation of a POST /Bulk with such a
// 400 quoting the operation, so that resync's creates (sent in Bulk
// requests by default) meet the same echo as single requests.
func hostileSCIM(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/scim+json")
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/ServiceProviderConfig"):
			io.WriteString(w, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],"bulk":{"supported":true,"maxOperations":100,"maxPayloadSize":1048576}}`)
			return
		case r.Method == http.MethodGet:
			io.WriteString(w, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0,"Resources":[]}`)
			return
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/Bulk"):
			var req struct{ Operations []map[string]json.RawMessage }
			_ = json.Unmarshal(body, &req)
			var ops []map[string]any
			for _, op := range req.Operations {
				var bulkID string
				_ = json.Unmarshal(op["bulkId"], &bulkID)
				ops = append(ops, map[string]any{"method": "POST", "bulkId": bulkID, "status": "400",
					"response": map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:Error"}, "status": "400",
						"detail": "rejected " + r.Header.Get("Authorization") + " " + string(op["data"])}})
			}
			json.NewEncoder(w).Encode(map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:BulkResponse"}, "Operations": ops})
			return
		}
		w.WriteHeader(400)
		fmt.Fprintf(w, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","detail":%q}`,
			"rejected "+r.Header.Get("Authorization")+" "+string(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestNoSecretInAnyOutput runs every command that prints, against the
// real SCIM server and against one that echoes requests, with known
// secrets in the environment (the token), in the LDAP data (userPassword)
// and in the SCIM answers (echoed), and greps all their output, logs and
// state files for each secret in plain, JSON-escaped, base64 and
// URL-escaped forms: none may be found. Both servers advertise Bulk, so
// resync sends its creates in Bulk requests (their dry runs show them, the
// password withheld, and the echoing server quotes each operation); the
// resyncs with bulk = "off" send them one POST each.
func TestNoSecretInAnyOutput(t *testing.T) {
	env := scimtest.Server(t)
	dir := t.TempDir()
	prefix := scimtest.Unique("sec")
	passwords := []string{"Ldif-Pw-" + prefix + "-1!", "Ldif-Pw-" + prefix + "-2 \"q\"/+"}
	const hostileToken = "Hostile-Token-abcdefghijklmnop"
	ldifPath := filepath.Join(dir, "s.ldif")
	var b strings.Builder
	for i, uid := range []string{prefix + "-ok", prefix + "-bad"} {
		fmt.Fprintf(&b, "dn: uid=%s,ou=People,dc=example,dc=com\nuid: %s\ncn: User %d\nuserPassword:: %s\n\n",
			uid, uid, i, b64(passwords[i]))
	}
	must(t, os.WriteFile(ldifPath, []byte(b.String()), 0o600))
	pipePath := filepath.Join(dir, "s.pipe")
	must(t, os.WriteFile(pipePath, []byte(fmt.Sprintf(secretsPipe, ldifPath)), 0o600))
	// The same pipe with Bulk off: resync's creates one POST each, as
	// before Bulk was the default.
	singlePath := filepath.Join(dir, "single.pipe")
	must(t, os.WriteFile(singlePath, []byte(strings.Replace(fmt.Sprintf(secretsPipe, ldifPath), "scim {\n", "scim {\n  bulk = \"off\"\n", 1)), 0o600))
	current := filepath.Join(dir, "current.json")
	must(t, os.WriteFile(current, []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"1","userName":"x"}`), 0o600))
	realState, hostileState := filepath.Join(dir, "state-real"), filepath.Join(dir, "state-hostile")
	hostile := hostileSCIM(t)

	type step struct {
		name     string
		url, tok string
		args     []string
		stdin    string
	}
	steps := []step{
		{name: "check", args: []string{"check", pipePath}},
		{name: "map", args: []string{"map", pipePath}},
		{name: "map --json", args: []string{"map", "--json", pipePath}},
		{name: "map --current", args: []string{"map", "--current", current, pipePath}},
		{name: "map --current --json", args: []string{"map", "--json", "--current", current, pipePath}},
		{name: "resync --dry-run", args: []string{"resync", "--dry-run", "--state-dir", realState, pipePath}},
		{name: "resync", args: []string{"resync", "--state-dir", realState, pipePath}},
		{name: "run", args: []string{"run", "--once", "--state-dir", realState, pipePath}},
		{name: "failed list", args: []string{"failed", "list", "--state-dir", realState, pipePath}},
		{name: "status", args: []string{"status", "--state-dir", realState, pipePath}},
		{name: "status --json", args: []string{"status", "--json", "--state-dir", realState, pipePath}},
		{name: "verify", args: []string{"verify", "--state-dir", realState, pipePath}},
		{name: "verify --json", args: []string{"verify", "--json", "--state-dir", realState, pipePath}},
		{name: "repl", args: []string{"repl", pipePath}, stdin: ":show\nfirst(userPassword)\nuserPassword\n$env[\"userpassword\"]\n:map\n:map --all\n:next\n:show\n:map\nfirst(userPassword)\n"},
		{name: "hostile resync --dry-run", url: hostile, tok: hostileToken, args: []string{"resync", "--dry-run", "--state-dir", hostileState, pipePath}},
		{name: "hostile run", url: hostile, tok: hostileToken, args: []string{"run", "--once", "--state-dir", hostileState, pipePath}},
		{name: "hostile failed list", url: hostile, tok: hostileToken, args: []string{"failed", "list", "--state-dir", hostileState, pipePath}},
		{name: "hostile failed retry", url: hostile, tok: hostileToken, args: []string{"failed", "retry", "--state-dir", hostileState, pipePath}},
		{name: "hostile resync", url: hostile, tok: hostileToken, args: []string{"resync", "--state-dir", hostileState, pipePath}},
		{name: "hostile resync --dry-run, bulk off", url: hostile, tok: hostileToken, args: []string{"resync", "--dry-run", "--state-dir", hostileState, singlePath}},
		{name: "hostile resync, bulk off", url: hostile, tok: hostileToken, args: []string{"resync", "--state-dir", hostileState, singlePath}},
	}
	secrets := append([]string{env.Token, hostileToken}, passwords...)
	var outputs strings.Builder
	for _, s := range steps {
		url, tok := env.URL, env.Token
		if s.url != "" {
			url, tok = s.url, s.tok
		}
		t.Setenv("SCIM_URL", url)
		t.Setenv("SCIM_TOKEN", tok)
		var out, errb bytes.Buffer
		code := run(s.args, strings.NewReader(s.stdin), &out, &errb)
		fmt.Fprintf(&outputs, "== %s (exit %d)\n%s%s", s.name, code, out.String(), errb.String())
		if !strings.Contains(out.String()+errb.String(), "(withheld)") && !strings.Contains(out.String()+errb.String(), "withheld") &&
			(strings.HasPrefix(s.name, "map") || s.name == "repl" || strings.Contains(s.name, "dry-run")) {
			t.Errorf("%s shows no (withheld) placeholder:\n%s%s", s.name, out.String(), errb.String())
		}
		// The dry runs show which way the creates go: the check above
		// covers the Bulk request and the single POSTs alike.
		if bulk := !strings.HasSuffix(s.name, "bulk off"); strings.Contains(s.name, "dry-run") &&
			(strings.Contains(out.String(), "POST /Bulk\n") != bulk || strings.Contains(out.String(), "POST /Users\n") == bulk) {
			t.Errorf("%s: the creates are not shown in %s:\n%s", s.name, map[bool]string{true: "a Bulk request", false: "single POSTs"}[bulk], out.String())
		}
	}
	// every file the commands left: state stores, backups
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
	for _, s := range secrets {
		for _, f := range secret.Forms(s) {
			if i := strings.Index(all, f); i >= 0 {
				t.Errorf("secret %q found as %q near: %q", s, f, all[max(0, i-300):min(len(all), i+100)])
			}
		}
	}
	if !strings.Contains(all, "rejected") || !strings.Contains(all, secret.Redacted) {
		t.Errorf("the hostile server's echo did not reach the output, so the test proves nothing:\n%s", all)
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("all output:\n%s", all)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

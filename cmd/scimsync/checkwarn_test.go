package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckWarnsInsecure: check says when a script turns TLS certificate
// verification off, for the LDAP source as for the SCIM service, as run
// does when it connects; the script still checks ok (exit 0). Before,
// check printed "ok" and nothing else.
func TestCheckWarnsInsecure(t *testing.T) {
	const script = `pipe "w"
source %s
scim {
  url = "https://scim.example.com/v2"
  token = "t"
  %s
}
endpoint Users {
  path    = "/Users"
  schemas = ["urn:ietf:params:scim:schemas:core:2.0:User"]
}
class people {
  endpoint = Users
  map {
    userName = first(uid)
  }
}
`
	const ldapSource = `syncrepl {
  url = "ldaps://ldap.example.com"
  bindDN = "cn=sync,dc=example,dc=com"
  password = "p"
  base = "dc=example,dc=com"
  %s
}`
	tests := []struct {
		name         string
		source, scim string
		want         []string // in stderr; none when empty
	}{
		{"ldap insecure", fmt.Sprintf(ldapSource, "insecure = true"), "", []string{"w.pipe:2:1: warning: source: insecure = true"}},
		{"scim insecure", fmt.Sprintf(ldapSource, ""), "insecure = true", []string{"w.pipe: warning: scim: insecure = true"}},
		{"both", fmt.Sprintf(ldapSource, "insecure = true"), "insecure = true", []string{"source: insecure", "scim: insecure"}},
		{"verified", fmt.Sprintf(ldapSource, "insecure = false"), "insecure = false", nil},
		{"ldif has no connection", `ldif { file = "x.ldif" }`, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "w.pipe")
			must(t, os.WriteFile(path, []byte(fmt.Sprintf(script, tt.source, tt.scim)), 0o600))
			for _, quiet := range []bool{false, true} {
				args := []string{"check", path}
				if quiet {
					args = []string{"check", "-q", path}
				}
				code, _, stderr := runCLI(t, args...)
				if code != exitOK {
					t.Fatalf("exit %d: %s", code, stderr)
				}
				if len(tt.want) == 0 && stderr != "" {
					t.Errorf("stderr: %s", stderr)
				}
				for _, w := range tt.want {
					if !strings.Contains(stderr, strings.ReplaceAll(w, "w.pipe", path)) {
						t.Errorf("quiet=%v: stderr %q, want %q", quiet, stderr, w)
					}
				}
			}
		})
	}
}

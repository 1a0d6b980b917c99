package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/engine/scim/scimtest"
)

// TestResyncListSetting: the script's scim { list = false } makes resync
// look every entry up, as --no-list does, and the flag wins when given
// (--no-list=false lists, --no-list does not), against a private SCIM
// server holding the users already: a listed resync reads the endpoint's
// pages (GET with startIndex) and looks nothing up, one that is not
// listed sends one lookup (GET with a filter) per entry and no page.
func TestResyncListSetting(t *testing.T) {
	const users = 5
	env := scimtest.Private(t)
	t.Setenv("SCIM_URL", env.URL)
	t.Setenv("SCIM_TOKEN", env.Token)
	dir := t.TempDir()
	var ldif strings.Builder
	for i := range users {
		fmt.Fprintf(&ldif, "dn: uid=ls%d,ou=People,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: ls%d\ncn: User %d\nsn: %d\n\n", i, i, i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "people.ldif"), []byte(ldif.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	script := func(list string) string {
		path := filepath.Join(dir, "list-"+list+".pipe")
		text := `pipe "list-setting"
source ldif { file = "people.ldif" }
scim {
  url   = env("SCIM_URL")
  token = env("SCIM_TOKEN")
  bulk  = "off"
` + list + `
}
endpoint Users {
  path    = "/Users"
  schemas = ["urn:ietf:params:scim:schemas:core:2.0:User"]
  lookup  = "userName eq " + scimQuote(first(uid))
}
class people {
  base     = "ou=People,dc=example,dc=com"
  endpoint = Users
  map {
    userName    = first(uid)
    displayName = first(cn)
  }
}
`
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// reads counts the list pages and the lookups logged after seq.
	type logged struct {
		Seq    int            `json:"seq"`
		Method string         `json:"method"`
		Path   string         `json:"path"`
		Query  map[string]any `json:"query"`
	}
	seq := 0
	reads := func() (pages, lookups int) {
		t.Helper()
		resp, err := http.Get(strings.TrimRight(env.ControlURL, "/") + "/requests")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var log []logged
		if err := json.Unmarshal(body, &log); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		last := seq
		for _, r := range log {
			last = max(last, r.Seq)
			if r.Seq <= seq || r.Method != http.MethodGet || r.Path != "/Users" {
				continue
			}
			if _, ok := r.Query["filter"]; ok {
				lookups++
			} else if _, ok := r.Query["startIndex"]; ok {
				pages++
			}
		}
		seq = last
		return pages, lookups
	}
	state := t.TempDir()
	if code, _, stderr := runCLI(t, "resync", "--progress-interval", "0", "--state-dir", state, script("")); code != exitOK {
		t.Fatalf("the first resync: exit %d\n%s", code, stderr)
	}
	reads()
	tests := []struct {
		name   string
		list   string // the scim block's list line
		args   []string
		listed bool
	}{
		{"default", "", nil, true},
		{"list = true", "  list = true", nil, true},
		{"list = false", "  list = false", nil, false},
		{"list = false, --no-list=false", "  list = false", []string{"--no-list=false"}, true},
		{"list = true, --no-list", "  list = true", []string{"--no-list"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"resync", "--progress-interval", "0", "--state-dir", state}, tt.args...)
			code, _, stderr := runCLI(t, append(args, script(tt.list))...)
			if code != exitOK || !strings.Contains(stderr, fmt.Sprintf("%d unchanged", users)) {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			pages, lookups := reads()
			if tt.listed && (pages != 1 || lookups != 0) || !tt.listed && (pages != 0 || lookups != users) {
				t.Fatalf("%d list pages and %d lookups, listed %v", pages, lookups, tt.listed)
			}
		})
	}
}

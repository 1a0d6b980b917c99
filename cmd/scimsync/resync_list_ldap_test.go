package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/source/ldaptest"
)

// TestResyncListsLDAP (issue 15 #3): `scimsync resync` of the shipped
// scripts/openldap-to-scim.pipe from a private slapd (250 users, two groups
// of 150 and 100) into a private SCIM server. Listed (the default), a
// resync where nothing differs sends the service configuration and the
// list pages only (4 requests for 252 entries: 0.016 per entry), and one
// into an empty service one create per entry, in 4 Bulk requests (the
// service advertises Bulk: 3 for the users, 100 a request, 1 for the
// groups), and the 3 requests of the empty listing; the service
// configuration is read once. With --no-list, each entry is looked up, and
// the SCIM state is the same as the listed resync's. With --list-max below the endpoint's
// size, the endpoint is not listed, with a warning, and looked up entry by
// entry.
func TestResyncListsLDAP(t *testing.T) {
	const users = 250
	var seed strings.Builder
	seed.WriteString("dn: ou=People,dc=example,dc=com\nobjectClass: organizationalUnit\nou: People\n\n")
	seed.WriteString("dn: ou=Groups,dc=example,dc=com\nobjectClass: organizationalUnit\nou: Groups\n\n")
	var dns []string
	for i := range users {
		uid := fmt.Sprintf("lu%03d", i)
		dn := "uid=" + uid + ",ou=People,dc=example,dc=com"
		dns = append(dns, dn)
		fmt.Fprintf(&seed, "dn: %s\nobjectClass: inetOrgPerson\nuid: %s\ncn: User %d\nsn: Number %d\nmail: %s@example.com\n\n", dn, uid, i, i, uid)
	}
	group := func(name string, members []string) {
		fmt.Fprintf(&seed, "dn: cn=%s,ou=Groups,dc=example,dc=com\nobjectClass: groupOfNames\ncn: %s\n", name, name)
		for _, m := range members {
			fmt.Fprintf(&seed, "member: %s\n", m)
		}
		seed.WriteString("\n")
	}
	group("first", dns[:150])
	group("last", dns[150:])
	seedFile := filepath.Join(t.TempDir(), "seed.ldif")
	if err := os.WriteFile(seedFile, []byte(seed.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ldapSrv := ldaptest.StartOpenLDAP(t, "OPENLDAP_SEED_LDIF="+seedFile)
	env := scimtest.Private(t)
	for k, v := range map[string]string{"LDAP_URL": ldapSrv.URL, "LDAP_BASE": ldapSrv.Base, "LDAP_BIND_DN": ldapSrv.BindDN,
		"LDAP_BIND_PW": ldapSrv.BindPW, "SCIM_URL": env.URL, "SCIM_TOKEN": env.Token, "SCIM_CA_FILE": ""} {
		t.Setenv(k, v)
	}
	pipe, err := filepath.Abs("../../scripts/openldap-to-scim.pipe")
	if err != nil {
		t.Fatal(err)
	}
	control := func(method, path string) []byte {
		t.Helper()
		req, _ := http.NewRequest(method, strings.TrimRight(env.ControlURL, "/")+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %s", method, path, resp.Status)
		}
		return body
	}
	// seq is the number of SCIM requests the private server has logged so
	// far (its sequence numbers: exact even when its log is cut).
	type logged struct {
		Seq    int    `json:"seq"`
		Method string `json:"method"`
		Path   string `json:"path"`
		Body   struct {
			Operations []json.RawMessage `json:"Operations"`
		} `json:"body"`
	}
	// requests counts the reads, the writes (each operation of a POST
	// /Bulk one: the resources the service was asked to write) and the
	// write requests since the request numbered since.
	requests := func(since int) (reads, writes, writeRequests, last int) {
		t.Helper()
		var log []logged
		if err := json.Unmarshal(control(http.MethodGet, "/requests"), &log); err != nil {
			t.Fatal(err)
		}
		last = since
		for _, r := range log {
			last = max(last, r.Seq)
			if r.Seq <= since {
				continue
			}
			switch {
			case r.Method == http.MethodGet:
				reads++
			case r.Path == "/Bulk":
				writes += len(r.Body.Operations)
				writeRequests++
			default:
				writes++
				writeRequests++
			}
		}
		return reads, writes, writeRequests, last
	}
	// state is the store without ids and meta, members by name, sorted.
	state := func() string {
		t.Helper()
		var dump map[string][]map[string]any
		if err := json.Unmarshal(control(http.MethodGet, "/dump"), &dump); err != nil {
			t.Fatal(err)
		}
		names := map[string]string{}
		for _, r := range dump["Users"] {
			names[fmt.Sprint(r["id"])] = fmt.Sprint(r["userName"])
		}
		for _, r := range dump["Groups"] {
			names[fmt.Sprint(r["id"])] = fmt.Sprint(r["displayName"])
		}
		var out []string
		for kind, rs := range dump {
			for _, r := range rs {
				delete(r, "id")
				delete(r, "meta")
				delete(r, "externalId") // the entryUUID: the same in both
				if ms, ok := r["members"].([]any); ok {
					var vals []string
					for _, m := range ms {
						mm, _ := m.(map[string]any)
						vals = append(vals, names[fmt.Sprint(mm["value"])])
					}
					sort.Strings(vals)
					r["members"] = vals
				}
				b, _ := json.Marshal(r)
				out = append(out, kind+" "+string(b))
			}
		}
		sort.Strings(out)
		return strings.Join(out, "\n")
	}
	const entries = users + 2
	var seq int
	var states []string
	for _, r := range []struct {
		name     string
		args     []string
		reset    bool
		maxReads int // at most
		minReads int
		writes   int
		requests int // write requests
		stderr   string
	}{
		{"listed, into an empty service", nil, true, 3 + 2, 3, entries, 4, "252 created"},
		{"listed, nothing differs", nil, false, 4, 4, 0, 0, "252 unchanged"},
		{"--no-list, into an empty service", []string{"--no-list"}, true, 2*entries + 2, entries, entries, 4, "252 created"},
		{"--no-list, nothing differs", []string{"--no-list"}, false, entries + 2, entries, 0, 0, "252 unchanged"},
		{"--list-max 200, nothing differs", []string{"--list-max", "200"}, false, users + 4, users, 0, 0, "more resources than a listing may hold"},
	} {
		if r.reset {
			control(http.MethodPost, "/reset")
			seq = 0
		}
		args := append([]string{"resync", "--progress-interval", "0", "--state-dir", t.TempDir()}, r.args...)
		code, _, stderr := runCLI(t, append(args, pipe)...)
		reads, writes, writeRequests, last := requests(seq)
		seq = last
		t.Logf("%s: %d reads, %d writes in %d requests for %d entries (%.3f requests per entry)", r.name, reads, writes, writeRequests, entries,
			float64(reads+writeRequests)/entries)
		if code != exitOK || !strings.Contains(stderr, r.stderr) {
			t.Fatalf("%s: exit %d\n%s", r.name, code, stderr)
		}
		if reads < r.minReads || reads > r.maxReads || writes != r.writes || writeRequests != r.requests {
			t.Errorf("%s: %d reads and %d writes in %d requests, want %d to %d reads and %d writes in %d", r.name, reads, writes, writeRequests,
				r.minReads, r.maxReads, r.writes, r.requests)
		}
		states = append(states, state())
	}
	if strings.Count(states[0], `"userName":"lu`) != users || strings.Count(states[0], `"lu249"`) != 2 {
		t.Fatalf("listed resync: not every user and member is there:\n%.2000s", states[0])
	}
	for i := 1; i < len(states); i++ {
		if states[i] != states[0] {
			t.Errorf("round %d left another state than the listed resync into an empty service:\n%.2000s\nwant:\n%.2000s", i, states[i], states[0])
		}
	}
}

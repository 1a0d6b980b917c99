package ldif

import (
	"bufio"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

const demoFile = "../../scripts/demo/people.ldif"

// values returns the values of the attribute named name in r.
func values(r *Record, name string) []string {
	for _, a := range r.Attrs {
		if strings.EqualFold(a.Name, name) {
			return a.Values
		}
	}
	return nil
}

func hasValue(r *Record, name, v string) bool {
	for _, x := range values(r, name) {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// TestDemoDirectory reads the demo directory shipped in scripts/demo and
// checks the properties the demos rely on.
func TestDemoDirectory(t *testing.T) {
	f, err := os.Open(demoFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := NewReader(f)
	var users, groups []*Record
	dns := map[string]bool{}
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.IsChange() {
			t.Errorf("%s: change record in a content file", rec.DN)
		}
		dns[strings.ToLower(rec.DN)] = true
		for _, a := range rec.Attrs {
			for _, v := range a.Values {
				if !utf8.ValidString(v) {
					t.Errorf("%s: %s value %q is not UTF-8", rec.DN, a.Name, v)
				}
			}
		}
		switch {
		case hasValue(rec, "objectClass", "inetOrgPerson"):
			users = append(users, rec)
		case hasValue(rec, "objectClass", "groupOfNames"):
			groups = append(groups, rec)
		}
	}
	if r.Version() != 1 {
		t.Errorf("Version() = %d, want 1", r.Version())
	}
	if len(users) < 22 {
		t.Errorf("%d users, want at least 22", len(users))
	}
	if len(groups) != 3 {
		t.Errorf("%d groups, want 3", len(groups))
	}

	uuidRE := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	uuids := map[string]string{}
	checkUUID := func(rec *Record) {
		v := values(rec, "entryUUID")
		if len(v) != 1 || !uuidRE.MatchString(v[0]) {
			t.Errorf("%s: entryUUID %q", rec.DN, v)
			return
		}
		if other, dup := uuids[v[0]]; dup {
			t.Errorf("%s: entryUUID %s also used by %s", rec.DN, v[0], other)
		}
		uuids[v[0]] = rec.DN
	}

	counts := map[string]int{}
	for _, u := range users {
		checkUUID(u)
		if !strings.HasPrefix(u.DN, "uid="+firstValue(u, "uid")+",ou=People,dc=example,dc=com") {
			t.Errorf("%s: DN does not use uid as RDN under ou=People", u.DN)
		}
		for _, a := range []string{"cn", "sn", "givenName", "displayName", "mail", "uid", "employeeNumber",
			"employeeType", "title", "departmentNumber", "telephoneNumber"} {
			if len(values(u, a)) == 0 {
				t.Errorf("%s: no %s", u.DN, a)
			}
		}
		for _, m := range values(u, "manager") {
			if !dns[strings.ToLower(m)] || m == u.DN {
				t.Errorf("%s: manager %q is not another entry of the file", u.DN, m)
			}
			counts["manager"]++
		}
		counts["type "+firstValue(u, "employeeType")]++
		counts["dept "+firstValue(u, "departmentNumber")]++
		if hasValue(u, "nsAccountLock", "true") {
			counts["locked"]++
		}
		if len(values(u, "mail")) == 2 {
			counts["two mails"]++
		}
		if strings.Contains(firstValue(u, "displayName")+firstValue(u, "title"), `"`) {
			counts["quote"]++
		}
		if strings.Contains(firstValue(u, "description"), `\`) {
			counts["backslash"]++
		}
		if firstValue(u, "preferredLanguage") != "" {
			counts["language"]++
		}
		if firstValue(u, "mobile") != "" {
			counts["mobile"]++
		}
	}
	for _, c := range []struct {
		what     string
		min, max int
	}{
		{"manager", len(users) / 2, len(users)},
		{"type employee", len(users) - 2, len(users) - 2},
		{"type contractor", 2, 2},
		{"locked", 1, 1},
		{"two mails", 1, 1},
		{"quote", 1, len(users)},
		{"backslash", 1, len(users)},
		{"language", 1, len(users) - 1},
		{"mobile", 1, len(users) - 1},
		{"dept Engineering", 1, len(users)},
		{"dept Sales", 1, len(users)},
		{"dept Finance", 1, len(users)},
		{"dept Support", 1, len(users)},
	} {
		if n := counts[c.what]; n < c.min || n > c.max {
			t.Errorf("%s: %d users, want %d..%d", c.what, n, c.min, c.max)
		}
	}

	members := map[string]int{}
	for _, g := range groups {
		checkUUID(g)
		for _, m := range values(g, "member") {
			if !dns[strings.ToLower(m)] {
				t.Errorf("%s: member %q is not an entry of the file", g.DN, m)
			}
		}
		members[firstValue(g, "cn")] = len(values(g, "member"))
	}
	if members["engineering"] < 8 || members["sales"] < 5 || members["admins"] != 3 {
		t.Errorf("group sizes %v, want engineering >= 8, sales >= 5, admins = 3", members)
	}
	var admins *Record
	for _, g := range groups {
		if firstValue(g, "cn") == "admins" {
			admins = g
		}
	}
	if admins == nil || !hasValue(admins, "member", "cn=sales,ou=Groups,dc=example,dc=com") {
		t.Error("admins does not have the sales group as a nested member")
	}

	// Non-ASCII names are written in base64, as RFC 2849 requires, and
	// decode to the expected UTF-8.
	names := map[string]bool{}
	for _, u := range users {
		names[firstValue(u, "cn")] = true
	}
	for _, n := range []string{"José Müller", "Zoë Ångström"} {
		if !names[n] {
			t.Errorf("no user named %q", n)
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	base64Lines := 0
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if strings.HasPrefix(text, "#") || strings.HasPrefix(text, " ") {
			continue
		}
		if i := strings.Index(text, ":"); i >= 0 && strings.HasPrefix(text[i:], "::") {
			base64Lines++
			continue
		}
		for _, c := range []byte(text) {
			if c >= 0x80 {
				t.Errorf("line %d: non-ASCII plain value %q (use base64)", line, text)
				break
			}
		}
	}
	if base64Lines < 8 {
		t.Errorf("%d base64 lines, want at least 8 (two users with non-ASCII names)", base64Lines)
	}
}

func firstValue(r *Record, name string) string {
	if v := values(r, name); len(v) > 0 {
		return v[0]
	}
	return ""
}

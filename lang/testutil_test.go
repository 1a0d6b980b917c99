package lang_test

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// archive is a txtar-style file: a comment, then `-- name --` sections.
type archive struct {
	comment string
	files   map[string]string
	order   []string
}

func readArchive(t *testing.T, path string) *archive {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a := &archive{files: map[string]string{}}
	name := ""
	var b strings.Builder
	flush := func() {
		if name == "" {
			a.comment = b.String()
		} else {
			a.files[name] = b.String()
			a.order = append(a.order, name)
		}
		b.Reset()
	}
	for _, line := range strings.SplitAfter(string(data), "\n") {
		trimmed := strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(trimmed, "-- ") && strings.HasSuffix(trimmed, " --") && len(trimmed) > 6 {
			flush()
			name = strings.TrimSpace(trimmed[3 : len(trimmed)-3])
			continue
		}
		b.WriteString(line)
	}
	flush()
	return a
}

func (a *archive) format() string {
	var b strings.Builder
	b.WriteString(a.comment)
	for _, n := range a.order {
		b.WriteString("-- " + n + " --\n")
		s := a.files[n]
		b.WriteString(s)
		if s != "" && !strings.HasSuffix(s, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

func (a *archive) set(name, content string) {
	if _, ok := a.files[name]; !ok {
		a.order = append(a.order, name)
	}
	a.files[name] = content
}

// fakeEnv is the environment golden and diagnostic scripts see.
func fakeEnv(name string) (string, bool) {
	v, ok := map[string]string{
		"SCIM_URL":     "https://scim.example.com/scim/v2",
		"SCIM_TOKEN":   "s3cr3t-token-value",
		"LDAP_URL":     "ldap://127.0.0.1:3890",
		"LDAP_BASE":    "dc=example,dc=com",
		"LDAP_BIND_DN": "cn=admin,dc=example,dc=com",
		"LDAP_BIND_PW": "s3cr3t-bind-password",
	}[name]
	return v, ok
}

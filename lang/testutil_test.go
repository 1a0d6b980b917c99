package lang_test

import (
	"flag"
	"testing"

	"github.com/scimsync/scimsync/internal/txtar"
)

var update = flag.Bool("update", false, "rewrite golden files")

// readArchive reads a test-case archive.
func readArchive(t *testing.T, path string) *txtar.Archive {
	t.Helper()
	a, err := txtar.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// section returns a file of an archive, "" when absent.
func section(a *txtar.Archive, name string) string {
	d, _ := a.Get(name)
	return d
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

package scripts_test

import (
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/scimsync/scimsync/lang"
	"github.com/scimsync/scimsync/scripts"
)

// serverEnv is what the project's server scripts print (testdata/servers,
// .ci/scim.sh): every shipped pipe reads its connections from these names.
var serverEnv = map[string]string{
	"LDAP_URL":     "ldap://127.0.0.1:3890",
	"LDAP_BASE":    "dc=example,dc=com",
	"LDAP_BIND_DN": "cn=admin,dc=example,dc=com",
	"LDAP_BIND_PW": "secret",
	"SCIM_URL":     "https://127.0.0.1:8881/scim/v2",
	"SCIM_TOKEN":   "token",
	"SCIM_CA_FILE": "/tmp/ca.pem",
}

// TestShippedScripts compiles every scripts/*.pipe twice: with the
// environment the server scripts set, and with none (their defaults).
func TestShippedScripts(t *testing.T) {
	pipes, err := filepath.Glob("*.pipe")
	if err != nil || len(pipes) < 4 {
		t.Fatalf("want the shipped pipes, found %v (%v)", pipes, err)
	}
	envs := map[string]func(string) (string, bool){
		"server-env": func(k string) (string, bool) { v, ok := serverEnv[k]; return v, ok },
		"no-env":     func(string) (string, bool) { return "", false },
	}
	for _, path := range pipes {
		for name, env := range envs {
			t.Run(path+"/"+name, func(t *testing.T) {
				p, err := lang.LoadFile(path, lang.LoadOptions{LookupEnv: env})
				if err != nil {
					t.Fatalf("%v", err)
				}
				if len(p.Classes) == 0 || len(p.Endpoints) == 0 {
					t.Fatalf("%s declares no class or endpoint", path)
				}
				if name == "server-env" && p.Source.Kind != "ldif" && p.Source.URLs[0] != serverEnv["LDAP_URL"] {
					t.Errorf("%s does not read LDAP_URL: url = %v", path, p.Source.URLs)
				}
				if name == "server-env" && p.SCIM.URL != serverEnv["SCIM_URL"] {
					t.Errorf("%s does not read SCIM_URL: url = %s", path, p.SCIM.URL)
				}
			})
		}
	}
}

// TestEmbeddedDemo loads the demo the binary embeds, reading its LDIF file
// from the embedded files as the CLI does.
func TestEmbeddedDemo(t *testing.T) {
	p, err := lang.LoadFile(scripts.DemoPipe, lang.LoadOptions{
		ReadFile:  func(name string) ([]byte, error) { return fs.ReadFile(scripts.Demo, name) },
		LookupEnv: func(string) (string, bool) { return "", false },
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.Source.Kind != "ldif" || p.Source.File != "demo/people.ldif" {
		t.Fatalf("demo source = %s %q", p.Source.Kind, p.Source.File)
	}
	if _, err := fs.ReadFile(scripts.Demo, p.Source.File); err != nil {
		t.Fatalf("the demo's LDIF is not embedded: %v", err)
	}
}

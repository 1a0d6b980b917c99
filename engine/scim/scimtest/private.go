package scimtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// Private starts a SCIM test server of the test's own with start-scim.sh in a
// temporary directory, stopped when the test ends, and returns its Env. A
// test that needs to know the whole collection (paging, counting) uses one,
// since the shared server holds every other test's resources. It skips or
// fails as Server does when the shared server is not configured (no node).
func Private(t testing.TB) Env {
	t.Helper()
	Server(t)
	dir, err := os.MkdirTemp("", "scimsync-private-scim.")
	if err != nil {
		t.Fatal(err)
	}
	_, file, _, _ := runtime.Caller(0)
	servers := filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "servers")
	t.Cleanup(func() {
		if out, err := exec.Command(filepath.Join(servers, "stop-scim.sh"), dir, "--rm").CombinedOutput(); err != nil {
			t.Logf("stopping the private SCIM server: %v: %s", err, out)
		}
	})
	cmd := exec.Command(filepath.Join(servers, "start-scim.sh"), dir)
	// start-scim.sh takes the next free ports from SCIM_PORT; the pid spreads
	// test binaries that start theirs at the same time.
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "SCIM_") }),
		fmt.Sprintf("SCIM_PORT=%d", 40000+os.Getpid()%10000))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("start-scim.sh: %v", err) // its output holds credentials: not shown
	}
	v := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, val, ok := strings.Cut(line, "="); ok {
			v[k] = strings.Trim(val, "'")
		}
	}
	e := Env{
		URL: v["SCIM_URL"], HTTPSURL: v["SCIM_HTTPS_URL"], MTLSURL: v["SCIM_MTLS_URL"], ControlURL: v["SCIM_CONTROL_URL"],
		Token: v["SCIM_TOKEN"], BasicUser: v["SCIM_BASIC_USER"], BasicPassword: v["SCIM_BASIC_PASSWORD"],
		OAuthTokenURL: v["SCIM_OAUTH_TOKEN_URL"], OAuthClientID: v["SCIM_OAUTH_CLIENT_ID"], OAuthClientSecret: v["SCIM_OAUTH_CLIENT_SECRET"],
		CAFile: v["SCIM_CA_FILE"], ClientCertFile: v["SCIM_CLIENT_CERT_FILE"], ClientKeyFile: v["SCIM_CLIENT_KEY_FILE"],
	}
	if e.URL == "" || e.ControlURL == "" {
		t.Fatal("start-scim.sh printed no SCIM_URL")
	}
	return e
}

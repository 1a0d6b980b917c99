package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/engine/scim/scimtest"
)

// runCLI runs the program in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCLI(t *testing.T) {
	t.Setenv("SCIM_URL", "https://scim.example.com/scim/v2")
	t.Setenv("SCIM_TOKEN", "cli-test-secret-token")
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     []string // substrings
		stderr     []string
		notInAny   []string
		jsonOutput bool
	}{
		{name: "no arguments", args: nil, code: 2, stderr: []string{"Usage:", "check", "map"}},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: []string{`unknown command "frobnicate"`}},
		{name: "help", args: []string{"help"}, code: 0, stdout: []string{"Commands:", "check", "map", "version"}},
		{name: "version", args: []string{"version"}, code: 0, stdout: []string{"scimsync "}},
		{name: "--version", args: []string{"--version"}, code: 0, stdout: []string{"scimsync "}},
		{name: "check --help", args: []string{"check", "--help"}, code: 0, stdout: []string{"Usage: scimsync check PIPE...", "--quiet"}},
		{name: "map --help", args: []string{"map", "--help"}, code: 0, stdout: []string{"--entries", "--json"}},
		{name: "bad flag", args: []string{"map", "--nope"}, code: 2, stderr: []string{"unknown flag: --nope"}},
		{name: "check needs a script", args: []string{"check"}, code: 2, stderr: []string{"name at least one pipe script"}},
		{name: "check missing file", args: []string{"check", "nope.pipe"}, code: 1, stderr: []string{"nope.pipe: no such file"}},
		{name: "check shipped scripts", args: append([]string{"check"}, shipped(t)...), code: 0,
			stdout: []string{"demo.pipe: ok", "openldap-to-scim.pipe: ok", "ad-to-scim.pipe: ok"}},
		{name: "check a broken script", args: []string{"check", "../../testdata/diag/unknown-function.pipe"}, code: 1,
			stderr: []string{"unknown-function.pipe:26:36: unknown function lowr (did you mean lower?)", "26 |", "^^^^"}},
		{name: "check reports a missing variable", args: []string{"check", "../../testdata/diag/missing-env.pipe"}, code: 1,
			stderr: []string{"missing-env.pipe:9:11: environment variable SCIM_TOKEN_FOR_PROD is not set"}},
		{name: "check never prints a secret", args: []string{"check", "../../testdata/diag/secret-not-a-duration.pipe"}, code: 1,
			stderr: []string{"timeout: want a duration"}, notInAny: []string{"cli-test-secret-token"}},
		{name: "map the demo", args: []string{"map", "../../scripts/demo.pipe"}, code: 0,
			stdout: []string{
				"uid=praman,ou=People,dc=example,dc=com",
				`"type": "work"`,
				`"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {`,
				`"employeeNumber": "1001"`,
				`"value": "(id of uid=praman,ou=People,dc=example,dc=com)"`,
				`lookup    userName eq "rtables"`,
				`"displayName": "Robert \"Bob\" Tables"`,
				"José Müller",
				"30 records: 25 mapped, 5 out of scope, 0 failed",
			}},
		{name: "map the embedded demo", args: []string{"map"}, code: 0,
			stdout: []string{"30 records: 25 mapped"}, stderr: []string{"running the embedded demo pipe"}},
		{name: "map as JSON", args: []string{"map", "--json", "../../scripts/demo.pipe"}, code: 0, jsonOutput: true,
			stdout: []string{`"class":"people"`, `"op":"create"`}},
		{name: "map in resync mode", args: []string{"map", "--mode", "resync", "../../scripts/demo.pipe"}, code: 0},
		{name: "map bad mode", args: []string{"map", "--mode", "sometimes", "../../scripts/demo.pipe"}, code: 2, stderr: []string{"--mode is realtime or resync"}},
		{name: "map failing entries", args: []string{"map", "../../scripts/demo.pipe", "--entries", "../../testdata/cli/failing.ldif"}, code: 1,
			stdout: []string{"error: ../../scripts/demo.pipe:", "1 mapped, 0 out of scope, 1 failed"}},
		{name: "map with a current resource shows the PATCH", args: []string{"map", "../../scripts/demo.pipe", "--entries", "../../testdata/cli/praman.ldif", "--current", "../../testdata/cli/current-praman.json"}, code: 0,
			stdout: []string{"  patch:\n", `"path": "name.familyName"`, `"path": "phoneNumbers"`,
				`"path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"`},
			notInAny: []string{`"path": "userName"`, "nickName", "p@home.example"}},
		{name: "map --current must be JSON", args: []string{"map", "../../scripts/demo.pipe", "--current", "../../testdata/cli/failing.ldif"}, code: 1,
			stderr: []string{"is not a JSON object"}},
		{name: "resync --help", args: []string{"resync", "--help"}, code: 0, stdout: []string{"--dry-run", "--failed-dns", "--rate-file", "--exclude-attr"}},
		{name: "resync exclusive flags", args: []string{"resync", "--creates-only", "--updates-only"}, code: 2, stderr: []string{"exclude each other"}},
		{name: "run needs a pipe: the demo never writes", args: []string{"run"}, code: 2, stderr: []string{"scimsync run: name one pipe script"}},
		{name: "run --once needs a pipe", args: []string{"run", "--once"}, code: 2, stderr: []string{"scimsync run: name one pipe script"}},
		{name: "failed list needs a pipe", args: []string{"failed", "list"}, code: 2, stderr: []string{"scimsync failed list: name one pipe script"}},
		{name: "failed retry needs a pipe", args: []string{"failed", "retry"}, code: 2, stderr: []string{"scimsync failed retry: name one pipe script"}},
		{name: "run --help", args: []string{"run", "--help"}, code: 0, stdout: []string{"--once", "--rate", "--startup-timeout"}},
		{name: "run --rate must not be negative", args: []string{"run", "--rate", "-1", "x.pipe"}, code: 2, stderr: []string{"--rate must be 0 or more"}},
		{name: "run --startup-timeout must not be negative", args: []string{"run", "--startup-timeout", "-1s", "x.pipe"}, code: 2,
			stderr: []string{"--startup-timeout must be 0 or more"}},
		{name: "map an LDAP pipe needs entries", args: []string{"map", "../../scripts/openldap-to-scim.pipe"}, code: 2,
			stderr: []string{"name sample entries with --entries"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
			for _, s := range tt.notInAny {
				if strings.Contains(stdout+stderr, s) {
					t.Errorf("output contains %q", s)
				}
			}
			if tt.jsonOutput {
				for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
					if !json.Valid([]byte(line)) {
						t.Errorf("not a JSON line: %s", line)
					}
				}
			}
		})
	}
}

func shipped(t *testing.T) []string {
	t.Helper()
	pipes, err := filepath.Glob("../../scripts/*.pipe")
	if err != nil || len(pipes) == 0 {
		t.Fatalf("no shipped scripts: %v", err)
	}
	return pipes
}

// TestBinary builds the command and runs the README's first command with
// it, from a folder with no scripts in it: the demo is embedded.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "scimsync")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "map")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "SCIM_TOKEN=")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scimsync map: %v", err)
	}
	if !strings.Contains(string(out), "30 records: 25 mapped, 5 out of scope, 0 failed") {
		t.Errorf("unexpected output:\n%s", out)
	}
}

// TestResyncDryRunOffline is the README's first command: the embedded demo,
// dry run, with no SCIM service reachable: every entry is shown as a create.
func TestResyncDryRunOffline(t *testing.T) {
	t.Setenv("SCIM_URL", "http://127.0.0.1:1/scim/v2") // nothing listens on port 1
	t.Setenv("SCIM_TOKEN", "")
	code, stdout, stderr := runCLI(t, "resync", "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if n := strings.Count(stdout, "POST /Users\n"); n != 22 {
		t.Errorf("%d user creates shown, want 22", n)
	}
	if n := strings.Count(stdout, "POST /Groups\n"); n != 3 {
		t.Errorf("%d group creates shown, want 3", n)
	}
	// Groups come after every user they refer to.
	if strings.LastIndex(stdout, "POST /Users\n") > strings.Index(stdout, "POST /Groups\n") {
		t.Error("a group is shown before a user")
	}
	for _, want := range []string{"every entry shown as a create; the demo never contacts a service",
		"25 created, 0 updated, 0 unchanged, 0 skipped, 5 out of scope, 0 failed",
		"dry run: nothing was sent"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "ServiceProviderConfig") {
		t.Errorf("the offline demo reports a ServiceProviderConfig it never asked for:\n%s", stderr)
	}
}

// TestResyncFailedDNs: an entry that fails is listed on stderr and written
// to --failed-dns; --dn-file with that file resyncs just it; exit status 1
// while anything fails.
func TestResyncFailedDNs(t *testing.T) {
	t.Setenv("SCIM_URL", "http://127.0.0.1:1/scim/v2")
	t.Setenv("SCIM_TOKEN", "")
	dir := t.TempDir()
	demo, err := os.ReadFile("../../scripts/demo.pipe")
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs("../../testdata/cli/failing.ldif")
	pipe := filepath.Join(dir, "failing.pipe")
	script := strings.Replace(string(demo), `file = "demo/people.ldif"`, `file = "`+abs+`"`, 1)
	if err := os.WriteFile(pipe, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	failed := filepath.Join(dir, "failed.dns")
	code, _, stderr := runCLI(t, "resync", "--dry-run", pipe, "--failed-dns", failed)
	if code != 1 || !strings.Contains(stderr, "failed: cn=no-uid,ou=People,dc=example,dc=com:") || !strings.Contains(stderr, "1 created") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	data, err := os.ReadFile(failed)
	if err != nil || !strings.Contains(string(data), "dn: cn=no-uid,ou=People,dc=example,dc=com\n") {
		t.Fatalf("failed-dns file: %v\n%s", err, data)
	}
	code, stdout, stderr := runCLI(t, "resync", "--dry-run", pipe, "--dn-file", failed)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "resync: 1 entries") || !strings.Contains(stderr, " 1 failed") {
		t.Fatalf("re-feeding: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// TestResyncProgress: not on a terminal, progress is a log line every
// --progress-interval, then the summary. A dry run against the real
// server: lookups are sent (at --rate per second), nothing is written.
func TestResyncProgress(t *testing.T) {
	env := scimtest.Server(t)
	t.Setenv("SCIM_URL", env.URL)
	t.Setenv("SCIM_TOKEN", env.Token)
	code, _, stderr := runCLI(t, "resync", "--dry-run", "--rate", "60", "--progress-interval", "100ms", "../../scripts/demo.pipe")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "resync progress: ") || !strings.Contains(stderr, "/30 entries (") {
		t.Errorf("no progress line:\n%s", stderr)
	}
	if strings.Contains(stderr, "\r") || strings.Contains(stderr, "\033[") {
		t.Errorf("terminal codes written to a non-terminal:\n%q", stderr)
	}
	if !strings.Contains(stderr, "resync: 30 entries in ") {
		t.Errorf("no summary:\n%s", stderr)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/lang"
)

// TestLooseStateDirWarning: opening the state in a directory its group or
// everyone may write to warns, naming the directory and the cure; a
// private one (0700, 0750) does not. Before, any mode was taken silently.
func TestLooseStateDirWarning(t *testing.T) {
	t.Setenv("SCIM_URL", "https://scim.example.com/v2")
	t.Setenv("SCIM_TOKEN", "t0ken")
	p, err := lang.Load("t.pipe", fmt.Sprintf(controlPipe, "x.ldif"), lang.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		mode os.FileMode
		want string // "" for no warning
	}{
		{0o700, ""},
		{0o750, ""},
		{0o770, "writable by its group (mode 0770)"},
		{0o777, "writable by everyone (mode 0777)"},
		{0o1777, "writable by everyone (mode 0777)"}, // sticky, like /tmp
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%04o", tt.mode), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			must(t, os.Mkdir(dir, 0o700))
			must(t, os.Chmod(dir, tt.mode))
			var buf bytes.Buffer
			stateDirWarnings = &buf
			defer func() { stateDirWarnings = os.Stderr }()
			st, err := openState(dir, p)
			must(t, err)
			must(t, st.Close())
			got := buf.String()
			if tt.want == "" {
				if got != "" {
					t.Errorf("warned: %s", got)
				}
				return
			}
			if !strings.Contains(got, tt.want) || !strings.Contains(got, dir) || !strings.Contains(got, "chmod 700") {
				t.Errorf("warning %q, want %q about %s", got, tt.want, dir)
			}
		})
	}
}

// TestFailedDNsFileMode: resync --failed-dns writes its file 0600, also
// over a file that was there with a looser mode (before: 0666 less the
// umask, usually 0644, and an existing file kept its mode).
func TestFailedDNsFileMode(t *testing.T) {
	dir := t.TempDir()
	ldifPath := filepath.Join(dir, "f.ldif")
	must(t, os.WriteFile(ldifPath, []byte("dn: uid=x-bad,dc=example,dc=com\nuid: x-bad\ncn: X\n\n"), 0o600))
	pipePath := filepath.Join(dir, "f.pipe")
	must(t, os.WriteFile(pipePath, []byte(fmt.Sprintf(controlPipe, ldifPath)), 0o600))
	t.Setenv("SCIM_URL", hostileControlsSCIM(t, false))
	t.Setenv("SCIM_TOKEN", "t0ken")
	for _, existing := range []bool{false, true} {
		t.Run(fmt.Sprintf("existing=%v", existing), func(t *testing.T) {
			failed := filepath.Join(t.TempDir(), "failed.dns")
			if existing {
				must(t, os.WriteFile(failed, []byte("old\n"), 0o666))
				must(t, os.Chmod(failed, 0o666))
			}
			code, _, stderr := runCLI(t, "resync", "--state-dir", filepath.Join(t.TempDir(), "st"), "--failed-dns", failed, pipePath)
			data, err := os.ReadFile(failed)
			must(t, err)
			if code == 0 || !strings.Contains(string(data), "uid=x-bad") {
				t.Fatalf("exit %d, file %q: %s", code, data, stderr)
			}
			fi, err := os.Stat(failed)
			must(t, err)
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %04o, want 0600", fi.Mode().Perm())
			}
		})
	}
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProfiles: SCIMSYNC_CPUPROFILE and SCIMSYNC_MEMPROFILE each give a
// profile (gzipped protocol buffers, as go tool pprof reads) once the stop
// function has run; a profile that cannot be written is reported on stderr,
// and nothing is written without the variables.
func TestProfiles(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		cpu     string
		mem     string
		wantErr string // on stderr
	}{
		{"none", "", "", ""},
		{"cpu", filepath.Join(dir, "cpu.pprof"), "", ""},
		{"allocs", "", filepath.Join(dir, "allocs.pprof"), ""},
		{"both", filepath.Join(dir, "cpu2.pprof"), filepath.Join(dir, "allocs2.pprof"), ""},
		{"unwritable", filepath.Join(dir, "no", "cpu.pprof"), filepath.Join(dir, "no", "allocs.pprof"), cpuProfileEnv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(cpuProfileEnv, tt.cpu)
			t.Setenv(memProfileEnv, tt.mem)
			var stderr bytes.Buffer
			stop := startProfile(&stderr)
			_ = run([]string{"version"}, nil, &bytes.Buffer{}, &stderr)
			stop()
			if strings.Contains(stderr.String(), "already in use") {
				t.Skip("the test binary is profiled already")
			}
			if tt.wantErr != "" {
				if !strings.Contains(stderr.String(), tt.wantErr) || !strings.Contains(stderr.String(), memProfileEnv) {
					t.Errorf("stderr %q, want both variables named", stderr.String())
				}
				return
			}
			if stderr.Len() > 0 {
				t.Errorf("stderr %q", stderr.String())
			}
			for _, path := range []string{tt.cpu, tt.mem} {
				if path == "" {
					continue
				}
				b, err := os.ReadFile(path)
				if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
					t.Errorf("%s: %d bytes, %v; want a gzipped profile", path, len(b), err)
				}
			}
		})
	}
}

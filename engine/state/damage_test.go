package state

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// damageUser opens the store named by the environment and does what
// `run` and `failed list` do with it, printing "ok" or the error. It runs
// in a child process, so that a panic or a SIGBUS shows as such.
func damageUser(dir string) {
	s, err := Open(dir, "pipe")
	if err != nil {
		fmt.Println("error:", err)
		var de *DamagedError
		if errors.As(err, &de) {
			fmt.Println("damaged")
		}
		return
	}
	defer s.Close()
	_, err1 := s.Checkpoint()
	_, err2 := s.ListParked()
	err3 := s.Range(func(string, Mapping) bool { return true })
	err4 := s.Put("new", Mapping{Endpoint: "users", SCIMID: "n"})
	_, err5 := s.Park(Parked{Key: "k", DN: "uid=k"})
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("ok")
}

// goodState writes a store with enough records for several pages.
func goodState(t *testing.T, dir string) string {
	t.Helper()
	s, err := Open(dir, "pipe")
	must(t, err)
	must(t, s.SetCheckpoint("changelog:77"))
	for i := range 2000 {
		must(t, s.Put(fmt.Sprintf("id-%05d", i), Mapping{Endpoint: "users", SCIMID: fmt.Sprint(i), DN: fmt.Sprintf("uid=u%d,dc=x", i)}))
	}
	for i := range 50 {
		_, err := s.Park(Parked{Key: fmt.Sprintf("id-%05d", i), DN: "uid=p", Error: "409"})
		must(t, err)
	}
	must(t, s.Close())
	return s.Path()
}

// TestDamagedStateIsAnError: a state file cut short, emptied, or with
// pages overwritten makes every command that opens it fail with an error
// naming the file and saying what to do, never a panic or a crash; it is
// never silently replaced by a fresh store.
func TestDamagedStateIsAnError(t *testing.T) {
	if dir := os.Getenv("SCIMSYNC_STATE_DAMAGE_DIR"); dir != "" {
		damageUser(dir)
		return
	}
	src := t.TempDir()
	path := goodState(t, src)
	good, err := os.ReadFile(path)
	must(t, err)
	const page = 4096
	if len(good)%page != 0 || len(good) < 8*page {
		t.Fatalf("state file of %d bytes: the cases below assume 4 KiB pages and more than 8 of them", len(good))
	}
	overwrite := func(off, n int) func([]byte) []byte {
		return func(b []byte) []byte {
			for i := off; i < off+n && i < len(b); i++ {
				b[i] = byte(i*131 + 7)
			}
			return b
		}
	}
	tests := []struct {
		name    string
		damage  func([]byte) []byte // nil: the file is removed
		damaged bool                // must be refused; otherwise either refused or read without harm
		noBak   bool
	}{
		{"zero bytes", func([]byte) []byte { return nil }, true, false},
		{"zero bytes, no backup", func([]byte) []byte { return nil }, true, true},
		{"cut to half", func(b []byte) []byte { return b[:len(b)/2/page*page] }, true, false},
		{"cut mid-page", func(b []byte) []byte { return b[:len(b)-page-100] }, true, false},
		{"cut to one page", func(b []byte) []byte { return b[:page] }, true, false},
		{"cut to 100 bytes", func(b []byte) []byte { return b[:100] }, true, false},
		{"both meta pages overwritten", overwrite(0, 2*page), true, false},
		{"meta page 0 overwritten", overwrite(0, page), false, false},
		{"page 2 overwritten", overwrite(2*page, page), false, false},
		{"page 3 overwritten", overwrite(3*page, page), false, false},
		{"middle overwritten", func(b []byte) []byte { return overwrite(len(b)/2, 3*page)(b) }, false, false},
		{"last page overwritten", func(b []byte) []byte { return overwrite(len(b)-page, page)(b) }, false, false},
		{"every page header overwritten", func(b []byte) []byte {
			for off := 2 * page; off < len(b); off += page {
				overwrite(off, 16)(b)
			}
			return b
		}, true, false},
		{"missing, backup there", nil, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "pipe.state")
			if tt.damage != nil {
				must(t, os.WriteFile(p, tt.damage(bytes.Clone(good)), 0o600))
			}
			if !tt.noBak {
				must(t, os.WriteFile(p+".bak", good, 0o600))
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestDamagedStateIsAnError$", "-test.count=1")
			cmd.Env = append(os.Environ(), "SCIMSYNC_STATE_DAMAGE_DIR="+dir)
			out, err := cmd.CombinedOutput()
			o := string(out)
			if err != nil || strings.Contains(o, "panic") || strings.Contains(o, "goroutine ") || strings.Contains(o, "SIGBUS") {
				t.Fatalf("the command crashed (%v):\n%s", err, o)
			}
			switch {
			case strings.Contains(o, "\nok\n") || strings.HasPrefix(o, "ok\n"):
				if tt.damaged {
					t.Fatalf("the damaged file was used:\n%s", o)
				}
			case strings.Contains(o, "damaged\n"):
				if !strings.Contains(o, "state file "+p+" is damaged") || !strings.Contains(o, "scimsync resync") {
					t.Errorf("the error does not name the file or the way out:\n%s", o)
				}
				if !tt.noBak && !strings.Contains(o, p+".bak") {
					t.Errorf("the error does not name the backup:\n%s", o)
				}
			default:
				if tt.damaged {
					t.Fatalf("not reported as damage:\n%s", o)
				}
				t.Logf("refused with an error of its own: %s", o)
			}
			if fi, err := os.Stat(p); tt.damaged && err == nil && fi.Size() == 0 {
				// the empty file stays empty: nothing was initialized in it
			} else if tt.damaged && tt.damage != nil && err != nil {
				t.Errorf("the damaged file was removed: %v", err)
			}
		})
	}
}

// TestBackupRestores: the backup kept at Open is a whole, usable store
// holding the checkpoint and id map of that moment.
func TestBackupRestores(t *testing.T) {
	dir := t.TempDir()
	path := goodState(t, dir)
	s, err := Open(dir, "pipe") // keeps the backup of the state above
	must(t, err)
	must(t, s.SetCheckpoint("changelog:99"))
	must(t, s.Close())
	if fi, err := os.Stat(path + ".bak"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup: %v %v", fi, err)
	}
	restored := t.TempDir()
	data, err := os.ReadFile(path + ".bak")
	must(t, err)
	must(t, os.WriteFile(filepath.Join(restored, "pipe.state"), data, 0o600))
	r, err := Open(restored, "pipe")
	must(t, err)
	defer r.Close()
	if pos, _ := r.Checkpoint(); pos != "changelog:77" {
		t.Errorf("restored checkpoint %q", pos)
	}
	if m, ok, _ := r.Get("id-01999"); !ok || m.SCIMID != "1999" {
		t.Errorf("restored id map: %v %v", m, ok)
	}
}

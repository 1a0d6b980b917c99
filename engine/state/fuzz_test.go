package state

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen writes arbitrary bytes as a pipe's state file and opens it as
// every command does: Open either fails (a *DamagedError for damage) or
// gives a store whose reads and writes return errors at worst. A panic or
// a fault (SIGBUS) fails the fuzzer. Seeds: a good state file, emptied,
// cut short and with pages overwritten.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	s, err := Open(dir, "seed")
	if err != nil {
		f.Fatal(err)
	}
	_ = s.SetCheckpoint("changelog:5")
	for _, id := range []string{"a", "b", "c"} {
		_ = s.Put(id, Mapping{Endpoint: "users", SCIMID: id, DN: "uid=" + id})
	}
	_, _ = s.Park(Parked{Key: "a", DN: "uid=a", Error: "409"})
	_ = s.Close()
	good, err := os.ReadFile(s.Path())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{})
	f.Add(good[:len(good)/2])
	f.Add(good[:4096])
	for _, off := range []int{2 * 4096, 3 * 4096} {
		b := append([]byte(nil), good...)
		for i := off; i < off+64 && i < len(b); i++ {
			b[i] ^= 0x5a
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "p.state"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir, "p")
		if err != nil {
			var de *DamagedError
			if len(data) == 0 && !errors.As(err, &de) {
				t.Fatalf("an empty file is not reported as damage: %v", err)
			}
			return
		}
		defer s.Close()
		_, _ = s.Checkpoint()
		_, _ = s.ListParked()
		_ = s.Range(func(string, Mapping) bool { return true })
		_, _, _ = s.Get("a")
		_ = s.Put("new", Mapping{Endpoint: "users", SCIMID: "n"})
		_, _ = s.Park(Parked{Key: "k"})
		_ = s.SetCheckpoint("changelog:6")
	})
}

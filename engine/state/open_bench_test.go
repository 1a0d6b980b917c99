package state

import (
	"fmt"
	"os"
	"testing"
)

// benchStore writes a store of n mappings shaped as run's (an entryUUID
// key, a SCIM id, a DN) and returns its directory and file.
func benchStore(b *testing.B, n int) (dir, path string) {
	b.Helper()
	dir = b.TempDir()
	s, err := Open(dir, "bench")
	if err != nil {
		b.Fatal(err)
	}
	err = s.Update(func(tx *Tx) error {
		for i := range n {
			id := fmt.Sprintf("%08x-7f76-453a-919d-%012x", i, i)
			m := Mapping{Endpoint: "users", SCIMID: "2819c223-" + id[9:], DN: fmt.Sprintf("uid=bench-u%06d,ou=People,dc=example,dc=org", i), Class: "people"}
			if err := tx.Put(id, m); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = s.Close()
	}
	if err != nil {
		b.Fatal(err)
	}
	return dir, s.Path()
}

// BenchmarkOpenCheck measures Open's page check (precheck: every page of
// the file read once) over a store of 100 000 mappings: its allocations
// are flat (a buffer per tree level, a bit per page), not a buffer per
// page.
func BenchmarkOpenCheck(b *testing.B) {
	_, path := benchStore(b, 100000)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	for b.Loop() {
		if err := precheck(path); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen measures Open (check, backup, the opening transaction)
// and Close over the same store, and reports how much of the file is
// resident in the process through bbolt's map after Open (mapped-KiB):
// what Open leaves in run's RSS.
func BenchmarkOpen(b *testing.B) {
	dir, path := benchStore(b, 100000)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var rss int64
	for b.Loop() {
		s, err := Open(dir, "bench")
		if err != nil {
			b.Fatal(err)
		}
		rss = mappedRSS(b, path)
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rss)/1024, "mapped-KiB")
	b.ReportMetric(float64(fi.Size())/1024, "file-KiB")
}

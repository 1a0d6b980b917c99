package state

import (
	"fmt"
	"os"
	"testing"
)

// TestReleaseMemory: after a read of the whole id map has made the state
// file resident in the process, ReleaseMemory gives those pages back, and
// what the store holds reads the same after it.
func TestReleaseMemory(t *testing.T) {
	if _, err := os.Stat("/proc/self/smaps"); err != nil {
		t.Skip("no /proc/self/smaps")
	}
	dir := t.TempDir()
	s, err := Open(dir, "pipe")
	must(t, err)
	defer s.Close()
	const n = 40000
	must(t, s.Update(func(tx *Tx) error {
		for i := range n {
			id := fmt.Sprintf("%08x-7f76-453a-919d-%012x", i, i)
			if err := tx.Put(id, Mapping{Endpoint: "users", SCIMID: "s-" + id, DN: fmt.Sprintf("uid=u%06d,ou=people,dc=example,dc=org", i)}); err != nil {
				return err
			}
		}
		return nil
	}))
	read := func() (count int, last Mapping) {
		must(t, s.Range(func(_ string, m Mapping) bool { count++; last = m; return true }))
		return count, last
	}
	count, last := read()
	before := mappedRSS(t, s.Path())
	must(t, s.ReleaseMemory())
	after := mappedRSS(t, s.Path())
	t.Logf("resident through the map: %d KiB after reading the id map, %d KiB after ReleaseMemory", before>>10, after>>10)
	if before < 4<<20 {
		t.Fatalf("reading the id map left only %d KiB resident: the case needs a larger store", before>>10)
	}
	if after > before/16 {
		t.Errorf("%d KiB still resident after ReleaseMemory (%d KiB before)", after>>10, before>>10)
	}
	if c, l := read(); c != count || l.SCIMID != last.SCIMID || l.DN != last.DN {
		t.Errorf("after ReleaseMemory the id map reads %d mappings, last %+v; before %d, %+v", c, l, count, last)
	}
	// Within a read: the pages read so far are given back as it goes, and
	// every record still reads whole.
	c, resident := 0, int64(0)
	must(t, s.View(func(tx *Tx) error {
		return tx.Range(func(id string, m Mapping) bool {
			if c++; c%1000 == 0 {
				must(t, tx.ReleaseMemory())
			}
			if m.SCIMID != "s-"+id {
				t.Fatalf("%s read as %+v", id, m)
			}
			if c == count-1 {
				resident = mappedRSS(t, s.Path())
			}
			return true
		})
	}))
	t.Logf("resident through the map near the end of a read that gives pages back every 1000 records: %d KiB", resident>>10)
	if c != count || resident > before/8 {
		t.Errorf("read %d of %d mappings; %d KiB resident near its end (%d KiB after a read that keeps them)", c, count, resident>>10, before>>10)
	}
	must(t, s.Put("after", Mapping{Endpoint: "users", SCIMID: "x"}))
	if m, ok, err := s.Get("after"); err != nil || !ok || m.SCIMID != "x" {
		t.Errorf("a write after ReleaseMemory: %+v %v %v", m, ok, err)
	}
}

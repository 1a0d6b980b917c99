package state

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// fileLayout finds, in the bytes of a good state file with 4 KiB pages,
// the root page of the file and the root page of a top-level bucket.
type fileLayout struct {
	b    []byte
	root uint64
}

const testPage = 4096

func layout(t *testing.T, b []byte) fileLayout {
	t.Helper()
	m := readMeta(bytes.NewReader(b), 0)
	if m1 := readMeta(bytes.NewReader(b), testPage); m1 != nil && (m == nil || m1.txid > m.txid) {
		m = m1
	}
	if m == nil || m.pageSize != testPage {
		t.Fatalf("no valid meta with 4 KiB pages: %+v", m)
	}
	return fileLayout{b: b, root: m.root}
}

// page returns page id's bytes (no overflow).
func (l fileLayout) page(id uint64) []byte { return l.b[id*testPage : (id+1)*testPage] }

// elem returns the offset (in the file) of leaf element i of page id, its
// key and its value.
func (l fileLayout) elem(id uint64, i int) (off int, k, v []byte) {
	p := l.page(id)
	le := binary.LittleEndian
	e := pageHeader + i*elemSize
	pos, ks, vs := int(le.Uint32(p[e+4:])), int(le.Uint32(p[e+8:])), int(le.Uint32(p[e+12:]))
	return int(id)*testPage + e, p[e+pos : e+pos+ks], p[e+pos+ks : e+pos+ks+vs]
}

// bucketRoot returns the root page of the top-level bucket name.
func (l fileLayout) bucketRoot(t *testing.T, name string) uint64 {
	t.Helper()
	p := l.page(l.root)
	for i := range int(binary.LittleEndian.Uint16(p[10:])) {
		if _, k, v := l.elem(l.root, i); string(k) == name {
			return binary.LittleEndian.Uint64(v)
		}
	}
	t.Fatalf("no top-level bucket %q", name)
	return 0
}

// TestOpenCheckFinds: the damage Open's check refuses, beyond what
// TestDamagedStateIsAnError overwrites at random. Each case is a good file
// with one precise change; each is refused as damage (a *DamagedError),
// never used. The first and the last were refused before the check read
// the file with ordinary reads (by bbolt's own walk through the map); the
// emptied branch was not: bbolt's cursors read past its end and went on
// with the first child only, so every entry under the others was missing
// from the id map without an error.
func TestOpenCheckFinds(t *testing.T) {
	src := t.TempDir()
	good, err := os.ReadFile(goodState(t, src))
	must(t, err)
	tests := []struct {
		name   string
		damage func(t *testing.T, l fileLayout)
	}{
		{"a top-level value that is not a bucket", func(t *testing.T, l fileLayout) {
			off, _, _ := l.elem(l.root, 0)
			l.b[off] &^= bucketLeaf // the element's flags
		}},
		{"a branch page with no elements", func(t *testing.T, l fileLayout) {
			id := l.bucketRoot(t, "ids")
			p := l.page(id)
			if binary.LittleEndian.Uint16(p[8:]) != branchPage {
				t.Fatalf("the ids bucket's root page %d is not a branch: the case needs more mappings", id)
			}
			binary.LittleEndian.PutUint16(p[10:], 0)
		}},
		{"a bucket's root page that names another page", func(t *testing.T, l fileLayout) {
			id := l.bucketRoot(t, "ids")
			binary.LittleEndian.PutUint64(l.page(id), id+1)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bytes.Clone(good)
			tt.damage(t, layout(t, b))
			dir := t.TempDir()
			must(t, os.WriteFile(filepath.Join(dir, "pipe.state"), b, 0o600))
			s, err := Open(dir, "pipe")
			if err == nil {
				s.Close()
				t.Fatal("the damaged file was opened")
			}
			if de := (*DamagedError)(nil); !errors.As(err, &de) {
				t.Fatalf("not reported as damage: %v", err)
			}
		})
	}

	// Buckets nested deeper than the store makes them: made with bbolt.
	t.Run("buckets nested nine deep", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "pipe.state")
		must(t, os.WriteFile(p, good, 0o600))
		db, err := bolt.Open(p, 0o600, nil)
		must(t, err)
		must(t, db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketMeta)
			for i := range 9 {
				var err error
				if b, err = b.CreateBucket(fmt.Appendf(nil, "n%d", i)); err != nil {
					return err
				}
			}
			return b.Put([]byte("k"), []byte("v"))
		}))
		must(t, db.Close())
		s, err := Open(dir, "pipe")
		if err == nil {
			s.Close()
			t.Fatal("the file was opened")
		}
		if de := (*DamagedError)(nil); !errors.As(err, &de) || !strings.Contains(err.Error(), "nest deeper") {
			t.Fatalf("not reported as damage: %v", err)
		}
	})
}

// mappedRSS returns how much of the file path is resident in this
// process's memory through its mappings (the Rss of its lines in
// /proc/self/smaps), in bytes.
func mappedRSS(t testing.TB, path string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer f.Close()
	var rss int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if fields := strings.Fields(line); len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && fields[len(fields)-1] == path
			continue
		}
		if in && strings.HasPrefix(line, "Rss:") {
			kb, err := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			rss += kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rss
}

// TestOpenLeavesTheFileOut: Open checks every page of the state file, but
// with ordinary reads, so the pages of bbolt's memory map that count in
// the process's RSS after Open are a handful (meta, freelist, the top
// level and what Open writes), not the file: over a large id map the
// mapped file was most of run's memory.
func TestOpenLeavesTheFileOut(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, "pipe")
	must(t, err)
	must(t, s.Update(func(tx *Tx) error {
		for i := range 40000 {
			id := fmt.Sprintf("%08x-7f76-453a-919d-%012x", i, i)
			if err := tx.Put(id, Mapping{Endpoint: "users", SCIMID: "s-" + id, DN: fmt.Sprintf("uid=u%06d,ou=people,dc=example,dc=org", i)}); err != nil {
				return err
			}
		}
		return nil
	}))
	must(t, s.Close())
	fi, err := os.Stat(s.Path())
	must(t, err)
	if fi.Size() < 8<<20 {
		t.Fatalf("the state file is %d bytes: the case needs a larger one", fi.Size())
	}
	s, err = Open(dir, "pipe")
	must(t, err)
	defer s.Close()
	rss := mappedRSS(t, s.Path())
	t.Logf("state file %d KiB, resident through the map after Open: %d KiB", fi.Size()>>10, rss>>10)
	if rss > 256<<10 {
		t.Errorf("after Open %d KiB of the %d KiB state file are resident in the process", rss>>10, fi.Size()>>10)
	}
}

package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
)

// DamagedError is a state file that cannot be trusted: empty, cut short,
// or with overwritten pages. Its message names the file and what to do.
type DamagedError struct {
	Path   string // the state file
	Reason string // what is wrong, for people
	Err    error  // the cause, when there is one
}

func (e *DamagedError) Error() string {
	bak := e.Path + ".bak"
	restore := ""
	if _, err := os.Stat(bak); err == nil {
		restore = fmt.Sprintf("restore the copy kept at the last good start (mv %s %s.damaged && cp %s %s), "+
			"which sends again what changed since; or ", e.Path, e.Path, bak, e.Path)
	}
	return fmt.Sprintf("state file %s is damaged: %s; scimsync will not use it, as the checkpoint and id map it "+
		"holds would be lost: %smove it aside and rebuild: `scimsync resync PIPE` fills the id map again from the "+
		"SCIM service and `scimsync set-startpoint PIPE` says where `run` starts", e.Path, e.Reason, restore)
}

// Unwrap returns the cause.
func (e *DamagedError) Unwrap() error { return e.Err }

func damaged(path string, err error) *DamagedError {
	var de *DamagedError
	if errors.As(err, &de) {
		return de
	}
	return &DamagedError{Path: path, Reason: err.Error(), Err: err}
}

// The bbolt file format (go.etcd.io/bbolt/internal/common): a 16-byte
// page header, then in pages 0 and 1 a meta of magic, version, page size,
// flags, root bucket (page, sequence), freelist page, high-water page,
// txid and an FNV-64a checksum of the bytes before it.
const (
	pageHeader     = 16
	metaMagic      = 0xED0CDAED
	metaVersion    = 2
	metaChecksumAt = 56 // offset of the checksum within the meta
	noFreelist     = ^uint64(0)
)

type meta struct {
	pageSize           uint32
	root, freelist, hw uint64
	txid               uint64
}

// readMeta reads and validates the meta at offset off of f, or returns nil.
func readMeta(f io.ReaderAt, off int64) *meta {
	buf := make([]byte, pageHeader+metaChecksumAt+8)
	if _, err := f.ReadAt(buf, off); err != nil {
		return nil
	}
	m := buf[pageHeader:]
	le := binary.LittleEndian
	if le.Uint32(m[0:]) != metaMagic || le.Uint32(m[4:]) != metaVersion {
		return nil
	}
	h := fnv.New64a()
	h.Write(m[:metaChecksumAt])
	if h.Sum64() != le.Uint64(m[metaChecksumAt:]) {
		return nil
	}
	return &meta{pageSize: le.Uint32(m[8:]), root: le.Uint64(m[16:]), freelist: le.Uint64(m[32:]),
		hw: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}
}

// precheck refuses a state file that bbolt would crash on or silently
// reinitialize: empty (bbolt makes a fresh database of a 0-byte file, and
// the checkpoint and id map are forgotten), without a valid meta page, or
// shorter than its high-water mark says (bbolt maps the missing pages and
// reading them is a SIGBUS). A missing file is fine: it is a first start.
func precheck(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		if _, berr := os.Stat(path + ".bak"); berr == nil {
			return &DamagedError{Path: path, Reason: "the file is missing, but the backup kept at its last good start is there; " +
				"to start with an empty state on purpose, delete " + path + ".bak too"}
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("state %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("state %s: %w", path, err)
	}
	size := fi.Size()
	if size == 0 {
		return &DamagedError{Path: path, Reason: "the file is empty (0 bytes), so it holds no checkpoint and no id map " +
			"(a disk that filled up, or a copy cut short); to start with an empty state on purpose, delete it and its .bak"}
	}
	var metas []*meta
	if m := readMeta(f, 0); m != nil {
		metas = append(metas, m)
		if m1 := readMeta(f, int64(m.pageSize)); m1 != nil {
			metas = append(metas, m1)
		}
	} else {
		for _, ps := range []int64{4096, int64(os.Getpagesize()), 16384, 65536} {
			if m1 := readMeta(f, ps); m1 != nil && int64(m1.pageSize) == ps {
				metas = append(metas, m1)
				break
			}
		}
	}
	if len(metas) == 0 {
		return &DamagedError{Path: path, Reason: "neither of its two header (meta) pages is valid: it is not a scimsync state file, or its start was overwritten"}
	}
	// bbolt uses the valid meta of the highest transaction.
	m := metas[0]
	if len(metas) == 2 && metas[1].txid > m.txid {
		m = metas[1]
	}
	switch {
	case m.pageSize < 512 || m.pageSize > 1<<20 || m.pageSize&(m.pageSize-1) != 0:
		return &DamagedError{Path: path, Reason: fmt.Sprintf("its page size %d is not possible", m.pageSize)}
	case m.hw < 2 || m.root >= m.hw || m.freelist >= m.hw && m.freelist != noFreelist:
		return &DamagedError{Path: path, Reason: "its header (meta) page points outside the file"}
	case size%int64(m.pageSize) != 0:
		return &DamagedError{Path: path, Reason: fmt.Sprintf("it is cut short: %d bytes, not a whole number of %d-byte pages",
			size, m.pageSize)}
	case m.hw > uint64(size)/uint64(m.pageSize):
		return &DamagedError{Path: path, Reason: fmt.Sprintf("it is cut short: %d bytes, where its header says %d pages of %d bytes",
			size, m.hw, m.pageSize)}
	}
	c := &treeCheck{f: f, pageSize: int64(m.pageSize), hw: m.hw, seen: make([]uint64, (m.hw+63)/64)}
	if m.freelist != noFreelist {
		if err := c.freelist(m.freelist); err != nil {
			return &DamagedError{Path: path, Reason: err.Error()}
		}
	}
	rp, err := c.page(m.root, 0)
	if err == nil {
		err = c.node(m.root, rp, 0, topLevel)
	}
	if err != nil {
		return &DamagedError{Path: path, Reason: err.Error()}
	}
	return nil
}

// callerPanic carries a panic of the caller's own function through guard,
// which must not take it for damage.
type callerPanic struct{ v any }

// storePanic is a panic of bbolt (or a fault) inside one of Tx's methods,
// called from the caller's function: damage, not the caller's bug.
type storePanic struct{ v any }

// storeOp, deferred by every Tx method that reads or writes pages, marks a
// panic on the way as the store's.
func storeOp() {
	if r := recover(); r != nil {
		if _, ok := r.(storePanic); ok {
			panic(r)
		}
		panic(storePanic{r})
	}
}

// callerFn runs the caller's transaction function, marking its own panics
// (those that are not the store's).
func callerFn(fn func(*Tx) error, t *Tx) error {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(storePanic); ok {
				panic(r)
			}
			panic(callerPanic{r})
		}
	}()
	return fn(t)
}

// guard runs fn, which reads the mapped file, so that damage is an error:
// bbolt panics on a page that is not what its parent says it is, and
// reading a page past the end of a file cut short faults (SIGBUS), which
// SetPanicOnFault turns into a panic of this goroutine. Either becomes a
// *DamagedError; a panic of the caller's own code goes on.
func guard(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if cp, ok := r.(callerPanic); ok {
			panic(cp.v)
		}
		if sp, ok := r.(storePanic); ok {
			r = sp.v
		}
		err = &DamagedError{Path: path, Reason: fmt.Sprintf("reading it failed: %v", r)}
	}()
	return fn()
}

// verifyTop is the part of Open's check that asks bbolt itself: every
// element of the file's top level is a bucket that bbolt finds by its
// name (a seek, which relies on the keys being in order). precheck has
// already read every page below them with ordinary reads (treeCheck), and
// refused what bbolt could not read; this reads only the top level's
// pages through the mapping, so the check leaves the file's pages out of
// the process's memory (RSS): a state file of 100 000 mappings is about
// 50 MiB, and reading it all through the map made every page resident
// for the life of the process.
func (s *Store) verifyTop() error {
	err := guard(s.path, func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
				if b == nil {
					return fmt.Errorf("its top level holds %q, which bbolt cannot open as a bucket", name)
				}
				return nil
			})
		})
	})
	if err != nil {
		return damaged(s.path, err)
	}
	return nil
}

// Backup writes a consistent copy of the store to its path plus ".bak"
// (mode 0600), through a temporary file renamed into place, so that the
// copy is always whole. Open calls it after each good open.
func (s *Store) Backup() error {
	bak := s.path + ".bak"
	tmp := bak + ".tmp"
	err := s.View(func(t *Tx) error { return t.tx.CopyFile(tmp, 0o600) })
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, bak)
}

// Page flags and element sizes of the bbolt format.
const (
	branchPage   = 0x01
	leafPage     = 0x02
	freelistPage = 0x10
	bucketLeaf   = 0x01
	elemSize     = 16
	maxTreeDepth = 64
)

// treeCheck walks the B+tree of a state file as bbolt would, reading the
// file with ordinary reads (not through bbolt's memory map, whose pages
// would stay in the process's memory), so that damage bbolt does not check
// for is found before bbolt meets it: a page id past the high-water mark,
// a page whose header is not the page its parent names, a page reached
// twice (a cycle would make bbolt's cursors loop for ever), element
// offsets outside their page (bbolt would read outside the mapping), a
// branch page with no elements or an inline bucket whose page is a branch
// (bbolt's cursor would read an element that is not there, and follow
// what it finds), buckets nested deeper than this store makes them, and a
// top-level element that is not a bucket.
//
// It is the whole page check of Open: every page any read of the store
// can reach is read here once. Its memory is flat: one buffer per tree
// level, reused, and one bit per page.
type treeCheck struct {
	f        io.ReaderAt
	pageSize int64
	hw       uint64
	seen     []uint64 // a bit per page id: reached already
	bufs     [][]byte // bufs[d]: the page being read at depth d
}

// topLevel is the bucket depth of the root tree's elements: the buckets
// they name are at depth 0.
const topLevel = -1

// maxBucketDepth is how deep buckets nest at most (the store nests none;
// the bound is the one Open has always applied).
const maxBucketDepth = 8

func (c *treeCheck) reached(id uint64) bool { return c.seen[id/64]&(1<<(id%64)) != 0 }
func (c *treeCheck) reach(id uint64)        { c.seen[id/64] |= 1 << (id % 64) }

// page reads page id (and its overflow pages) into the buffer of depth
// depth, which stays valid until the next page read at that depth.
func (c *treeCheck) page(id uint64, depth int) ([]byte, error) {
	if id < 2 || id >= c.hw {
		return nil, fmt.Errorf("page %d is outside the file's %d pages", id, c.hw)
	}
	if c.reached(id) {
		return nil, fmt.Errorf("page %d is reached twice", id)
	}
	c.reach(id)
	for len(c.bufs) <= depth {
		c.bufs = append(c.bufs, nil)
	}
	buf := c.bufs[depth]
	if int64(cap(buf)) < c.pageSize {
		buf = make([]byte, c.pageSize)
	}
	buf = buf[:c.pageSize]
	if _, err := c.f.ReadAt(buf, int64(id)*c.pageSize); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	le := binary.LittleEndian
	if le.Uint64(buf) != id {
		return nil, fmt.Errorf("page %d has the header of page %d", id, le.Uint64(buf))
	}
	over := uint64(le.Uint32(buf[12:]))
	if id+over >= c.hw {
		return nil, fmt.Errorf("page %d overflows past the file's %d pages", id, c.hw)
	}
	for i := id + 1; i <= id+over; i++ {
		c.reach(i)
	}
	if over > 0 {
		size := int64(over+1) * c.pageSize
		if int64(cap(buf)) < size {
			buf = append(buf[:cap(buf)], make([]byte, size-int64(cap(buf)))...)
		}
		buf = buf[:size]
		if _, err := c.f.ReadAt(buf[c.pageSize:], int64(id+1)*c.pageSize); err != nil {
			return nil, fmt.Errorf("page %d: %w", id, err)
		}
	}
	c.bufs[depth] = buf
	return buf, nil
}

// node checks a branch or leaf page (p, whose id is id, or an inline
// bucket's page when id is 0), read at tree depth depth, of a bucket at
// nesting depth bucket (topLevel for the root tree), and what it leads to.
func (c *treeCheck) node(id uint64, p []byte, depth, bucket int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("the tree is deeper than %d levels", maxTreeDepth)
	}
	le := binary.LittleEndian
	if len(p) < pageHeader {
		return fmt.Errorf("page %d is too short", id)
	}
	flags, count := le.Uint16(p[8:]), int(le.Uint16(p[10:]))
	if flags != branchPage && flags != leafPage {
		return fmt.Errorf("page %d is of no known type (flags %#x)", id, flags)
	}
	if flags == branchPage && id == 0 {
		return errors.New("an inline bucket has a branch page")
	}
	if flags == branchPage && count == 0 {
		return fmt.Errorf("page %d is a branch with no elements", id)
	}
	if pageHeader+count*elemSize > len(p) {
		return fmt.Errorf("page %d: %d elements do not fit", id, count)
	}
	for i := range count {
		e := pageHeader + i*elemSize
		switch flags {
		case branchPage:
			pos, ksize, child := int(le.Uint32(p[e:])), int(le.Uint32(p[e+4:])), le.Uint64(p[e+8:])
			if e+pos+ksize > len(p) || e+pos+ksize < e {
				return fmt.Errorf("page %d: element %d is outside the page", id, i)
			}
			cp, err := c.page(child, depth+1)
			if err != nil {
				return err
			}
			if err := c.node(child, cp, depth+1, bucket); err != nil {
				return err
			}
		case leafPage:
			eflags, pos, ksize, vsize := le.Uint32(p[e:]), int(le.Uint32(p[e+4:])), int(le.Uint32(p[e+8:])), int(le.Uint32(p[e+12:]))
			end := e + pos + ksize + vsize
			if end > len(p) || end < e || pos < 0 || ksize < 0 || vsize < 0 {
				return fmt.Errorf("page %d: element %d is outside the page", id, i)
			}
			if eflags&bucketLeaf == 0 {
				if bucket == topLevel {
					return fmt.Errorf("page %d: element %d of the top level is not a bucket", id, i)
				}
				continue
			}
			if bucket+1 > maxBucketDepth {
				return errors.New("buckets nest deeper than this store makes them")
			}
			v := p[e+pos+ksize : end]
			if len(v) < 16 {
				return fmt.Errorf("page %d: element %d is a bucket too short to be one", id, i)
			}
			if root := le.Uint64(v); root != 0 {
				rp, err := c.page(root, depth+1)
				if err != nil {
					return err
				}
				if err := c.node(root, rp, depth+1, bucket+1); err != nil {
					return err
				}
			} else if err := c.node(0, v[16:], depth+1, bucket+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// freelist checks the freelist page.
func (c *treeCheck) freelist(id uint64) error {
	p, err := c.page(id, 0)
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	if le.Uint16(p[8:]) != freelistPage {
		return fmt.Errorf("page %d is not the freelist", id)
	}
	n, start := uint64(le.Uint16(p[10:])), pageHeader
	if n == 0xFFFF {
		n, start = le.Uint64(p[pageHeader:]), pageHeader+8
	}
	if n > uint64(len(p)-start)/8 {
		return fmt.Errorf("the freelist says %d pages, more than it holds", n)
	}
	for i := range int(n) {
		if f := le.Uint64(p[start+8*i:]); f < 2 || f >= c.hw {
			return fmt.Errorf("the freelist names page %d, outside the file", f)
		}
	}
	return nil
}

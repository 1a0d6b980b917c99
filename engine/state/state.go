// Package state is a pipe's durable memory between runs: the source
// checkpoint, the id map (source identity → endpoint, SCIM id, last DN),
// the failed-changes record (parked changes) and the shadows of the SCIM
// resources (shadow.go).
//
// One file per pipe, DIR/PIPE.state, holds all three in a bbolt database
// (go.etcd.io/bbolt). Why bbolt rather than JSON files written with fsync and
// an atomic rename:
//
//   - Atomicity across the three parts. Applying a change updates the id
//     map and advances the checkpoint together (Update): after a crash either
//     both are on disk or neither, so the checkpoint never runs ahead of the
//     id map. Files would need a write-ahead journal of their own to get that.
//   - Size. The id map has one record per synchronized entry (100 000s in a
//     real directory); a whole-file rewrite per change is O(size) per change,
//     bbolt writes the touched pages only.
//   - Crash safety is bbolt's: copy-on-write B+tree pages and two meta pages
//     with checksums, fsync on every commit; a process killed at any point
//     reopens at the last committed transaction (tested in this package by
//     killing a writer process with SIGKILL).
//   - One process per pipe: bbolt takes an exclusive flock on the file, so a
//     second `scimsync run` of the same pipe fails at Open (ErrLocked)
//     instead of interleaving checkpoints.
//
// It is one small, pure-Go, widely used dependency (etcd's storage), with
// only golang.org/x/sys below it.
//
// Values are JSON; keys are the identity (id map), a big-endian sequence
// number (parked changes) and fixed names (meta). The package imports
// nothing of scimsync: a parked change is stored as the JSON the engine
// gives it.
package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrLocked means another process has the pipe's state open.
var ErrLocked = errors.New("the pipe's state is in use by another process")

var (
	bucketMeta   = []byte("meta")
	bucketIDs    = []byte("ids")
	bucketParked = []byte("parked")
	keyPos       = []byte("checkpoint")
	keyVersion   = []byte("version")
	keyPipe      = []byte("pipe")
)

const formatVersion = "1"

// DefaultDir is the state directory when none is given:
// $XDG_STATE_HOME/scimsync, else ~/.local/state/scimsync.
func DefaultDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "scimsync"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no state directory: set --state-dir or XDG_STATE_HOME: %w", err)
	}
	return filepath.Join(home, ".local", "state", "scimsync"), nil
}

// Store is one pipe's state. Its methods are safe for concurrent use.
type Store struct {
	db     *bolt.DB
	path   string
	c      *committer // the grouped writes (commit.go)
	shadow shadowState
	sent   sentMark // when writes were last sent (sent.go)
}

// Mapping is what the id map remembers of one source entry.
type Mapping struct {
	Endpoint string `json:"endpoint"`        // the endpoint's name in the pipe script
	SCIMID   string `json:"scimId"`          // the resource's id at the SCIM service
	DN       string `json:"dn"`              // the entry's DN when last applied
	Class    string `json:"class,omitempty"` // the sync class that took it last
	// Pending holds, while a create of the entry's resource is sent and not
	// confirmed (SCIMID is then ""), the SCIM filters that find it: after a
	// crash or an unanswered POST the resource is looked up by them before a
	// second create is sent.
	Pending    []string  `json:"pending,omitempty"`
	CreateSent time.Time `json:"createSent,omitzero"` // when that create was sent
}

// Parked is an entry whose last change failed and waits in the
// failed-changes record. It is a pointer to the entry, not a copy of the
// change: whatever retries it reads the entry as it is then, so a retry
// never writes values older than a later change already wrote. One record
// per entry (Key).
type Parked struct {
	ID       uint64    `json:"-"`        // set by Park; the key for Unpark
	Key      string    `json:"key"`      // the entry's id-map key: its identity, or "dn:" and its DN
	Identity string    `json:"identity"` // the source identity, "" if none
	DN       string    `json:"dn"`       // the entry's DN when it failed
	Op       string    `json:"op"`       // the change that failed: add, modify, modrdn, delete
	Class    string    `json:"class"`    // the sync class that took it
	Error    string    `json:"error"`    // the last error, without secret values
	Attempts int       `json:"attempts"` // tries so far
	Time     time.Time `json:"time"`     // when it was (last) parked
	NextTry  time.Time `json:"nextTry"`  // when run tries it again by itself
	Position string    `json:"position"` // the source position of the change
	// PasswordAt is the source position of a change whose new password has
	// not been sent yet, never the password: a retry reads it again there
	// (source.PasswordReader); "" when none is pending.
	PasswordAt string `json:"passwordAt,omitempty"`
}

// Path returns the file of a pipe's state in dir.
func Path(dir, pipe string) string {
	name := strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 {
			return '_'
		}
		return r
	}, pipe)
	return filepath.Join(dir, name+".state")
}

// Open opens (creating if needed) the state of pipe under dir, creating dir
// with mode 0700. It fails with ErrLocked after a second if another process
// holds it.
//
// A state file that is there but cannot be trusted is an error, never a
// crash and never a silent fresh start, as the checkpoint and the id map
// would be lost: an empty (0-byte) file, one cut short, one whose pages
// are overwritten (a *DamagedError, which says how to recover). Open reads
// the whole file once to check it, with ordinary reads rather than through
// bbolt's memory map, so that the check does not leave the file's pages in
// the process's memory (damage.go). After a good open it keeps a copy of
// the state as it is then, PATH.bak (see Backup), from which a damaged
// file is restored.
func Open(dir, pipe string) (*Store, error) {
	if pipe == "" {
		return nil, errors.New("state: empty pipe name")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	path := Path(dir, pipe)
	if err := precheck(path); err != nil {
		return nil, err
	}
	var db *bolt.DB
	err := guard(path, func() (err error) {
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
		return err
	})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("%s: %w", path, ErrLocked)
		}
		var de *DamagedError
		if errors.As(err, &de) || errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrChecksum) ||
			errors.Is(err, bolterrors.ErrVersionMismatch) || errors.Is(err, bolterrors.ErrInvalidMapping) {
			return nil, damaged(path, err)
		}
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	s := &Store{db: db, path: path}
	s.readSent() // under the lock: the previous process is gone
	if err := s.verifyTop(); err != nil {
		db.Close()
		return nil, err
	}
	err = guard(path, func() error {
		return db.Update(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bucketMeta, bucketIDs, bucketParked} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			m := tx.Bucket(bucketMeta)
			v := m.Get(keyVersion)
			if v == nil {
				if err := m.Put(keyVersion, []byte(formatVersion)); err != nil {
					return err
				}
				if err := m.Put(keyPipe, []byte(pipe)); err != nil {
					return err
				}
			} else if string(v) != formatVersion {
				return fmt.Errorf("state format %s, this scimsync reads %s", v, formatVersion)
			}
			return s.openShadows(tx, v != nil) // shadow.go
		})
	})
	if err != nil {
		db.Close()
		var de *DamagedError
		if errors.As(err, &de) {
			return nil, err
		}
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	if err := s.Backup(); err != nil {
		db.Close()
		return nil, fmt.Errorf("state %s: keeping a backup: %w", path, err)
	}
	s.startCommitter()
	return s, nil
}

// Path returns the store's file.
func (s *Store) Path() string { return s.path }

// Close closes the store once the writes under way are committed;
// committed changes are on disk already. Writes after Close fail. It marks
// the shadows clean when this process kept them (shadow.go).
func (s *Store) Close() error {
	s.stopCommitter()
	err := s.closeShadows()
	if cerr := s.closeSent(); err == nil {
		err = cerr
	}
	if cerr := s.db.Close(); err == nil {
		err = cerr
	}
	return err
}

// Tx is one atomic set of reads and writes (see Update and View).
type Tx struct{ tx *bolt.Tx }

// Update runs fn in one read-write transaction, committed (and fsynced)
// when fn returns nil, rolled back otherwise. Damage met on the way is a
// *DamagedError (see guard).
func (s *Store) Update(fn func(*Tx) error) error {
	return guard(s.path, func() error {
		return s.db.Update(func(tx *bolt.Tx) error { return callerFn(fn, &Tx{tx}) })
	})
}

// View runs fn in a read-only transaction. Damage met on the way is a
// *DamagedError (see guard).
func (s *Store) View(fn func(*Tx) error) error {
	return guard(s.path, func() error {
		return s.db.View(func(tx *bolt.Tx) error { return callerFn(fn, &Tx{tx}) })
	})
}

// Checkpoint returns the saved source position, "" when none.
func (t *Tx) Checkpoint() string {
	defer storeOp()
	return string(t.tx.Bucket(bucketMeta).Get(keyPos))
}

// SetCheckpoint saves the source position.
func (t *Tx) SetCheckpoint(pos string) error {
	defer storeOp()
	return t.tx.Bucket(bucketMeta).Put(keyPos, []byte(pos))
}

// Get returns the mapping of a source identity.
func (t *Tx) Get(identity string) (Mapping, bool, error) {
	defer storeOp()
	v := t.tx.Bucket(bucketIDs).Get([]byte(identity))
	if v == nil {
		return Mapping{}, false, nil
	}
	var m Mapping
	if err := json.Unmarshal(v, &m); err != nil {
		return Mapping{}, false, fmt.Errorf("state: id map entry %q: %w", identity, err)
	}
	return m, true, nil
}

// Put sets the mapping of a source identity.
func (t *Tx) Put(identity string, m Mapping) error {
	defer storeOp()
	if identity == "" {
		return errors.New("state: empty identity")
	}
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return t.tx.Bucket(bucketIDs).Put([]byte(identity), v)
}

// Delete removes the mapping of a source identity (no error if absent).
func (t *Tx) Delete(identity string) error {
	defer storeOp()
	return t.tx.Bucket(bucketIDs).Delete([]byte(identity))
}

// Range calls fn for each mapping in identity order until fn returns false.
func (t *Tx) Range(fn func(identity string, m Mapping) bool) error {
	return t.eachID(func(k, v []byte) (bool, error) {
		var m Mapping
		if err := json.Unmarshal(v, &m); err != nil {
			return false, fmt.Errorf("state: id map entry %q: %w", k, err)
		}
		return fn(string(k), m), nil
	})
}

// eachID calls fn with each raw id-map record, in key order, until it
// returns false or an error. The store's reads are marked as such
// (storeOp), fn's own code is not.
func (t *Tx) eachID(fn func(k, v []byte) (bool, error)) error {
	var c *bolt.Cursor
	step := func(first bool) ([]byte, []byte) {
		defer storeOp()
		if first {
			c = t.tx.Bucket(bucketIDs).Cursor()
			return c.First()
		}
		return c.Next()
	}
	for k, v := step(true); k != nil; k, v = step(false) {
		if more, err := fn(k, v); err != nil || !more {
			return err
		}
	}
	return nil
}

// CountMapped counts the id map's entries that hold a SCIM id, by
// endpoint. It reads only those two fields of each record: /metrics asks
// at its scrapes, and decoding every record of a 100 000-entry map takes
// about a second.
func (t *Tx) CountMapped() (map[string]int, error) {
	out := map[string]int{}
	err := t.eachID(func(k, v []byte) (bool, error) {
		if !gjson.ValidBytes(v) {
			return false, fmt.Errorf("state: id map entry %q: not JSON", k)
		}
		r := gjson.GetManyBytes(v, "endpoint", "scimId")
		if r[1].Str != "" {
			out[r[0].Str]++
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CountMapped is Tx.CountMapped in a read transaction of its own.
func (s *Store) CountMapped() (counts map[string]int, err error) {
	err = s.View(func(t *Tx) error { counts, err = t.CountMapped(); return err })
	return counts, err
}

// Park adds a change to the failed-changes record, or replaces it when p.ID
// names one already there (a retry that failed again), and returns its ID.
func (t *Tx) Park(p Parked) (uint64, error) {
	defer storeOp()
	b := t.tx.Bucket(bucketParked)
	if p.ID == 0 {
		seq, err := b.NextSequence()
		if err != nil {
			return 0, err
		}
		p.ID = seq
	}
	if p.Time.IsZero() {
		p.Time = time.Now().UTC()
	}
	v, err := json.Marshal(p)
	if err != nil {
		return 0, err
	}
	return p.ID, b.Put(idKey(p.ID), v)
}

// Unpark removes a change from the failed-changes record.
func (t *Tx) Unpark(id uint64) error {
	defer storeOp()
	return t.tx.Bucket(bucketParked).Delete(idKey(id))
}

// ParkedKey returns the parked record of an entry's key, if any.
func (t *Tx) ParkedKey(key string) (Parked, bool, error) {
	ps, err := t.Parked()
	if err != nil {
		return Parked{}, false, err
	}
	for _, p := range ps {
		if p.Key == key {
			return p, true, nil
		}
	}
	return Parked{}, false, nil
}

// Parked returns the failed-changes record, oldest first.
func (t *Tx) Parked() ([]Parked, error) {
	defer storeOp()
	var out []Parked
	c := t.tx.Bucket(bucketParked).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var p Parked
		if err := json.Unmarshal(v, &p); err != nil {
			return nil, fmt.Errorf("state: parked change %d: %w", binary.BigEndian.Uint64(k), err)
		}
		p.ID = binary.BigEndian.Uint64(k)
		out = append(out, p)
	}
	return out, nil
}

func idKey(id uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, id)
	return k
}

// The Store methods below are one-operation transactions. Those that write
// are group-committed (commit.go): each returns once its write is on disk,
// in a transaction it may share with other goroutines' writes.

// Checkpoint returns the saved source position, "" when none.
func (s *Store) Checkpoint() (pos string, err error) {
	err = s.View(func(t *Tx) error { pos = t.Checkpoint(); return nil })
	return pos, err
}

// SetCheckpoint saves the source position durably.
func (s *Store) SetCheckpoint(pos string) error {
	return s.write(func(t *Tx) error { return t.SetCheckpoint(pos) })
}

// Get returns the mapping of a source identity.
func (s *Store) Get(identity string) (m Mapping, ok bool, err error) {
	err = s.View(func(t *Tx) error { m, ok, err = t.Get(identity); return err })
	return m, ok, err
}

// Put sets the mapping of a source identity durably.
func (s *Store) Put(identity string, m Mapping) error {
	return s.write(func(t *Tx) error { return t.Put(identity, m) })
}

// Delete removes the mapping of a source identity durably.
func (s *Store) Delete(identity string) error {
	return s.write(func(t *Tx) error { return t.Delete(identity) })
}

// Range calls fn for each mapping in identity order until fn returns false.
// fn must not write to the store (it runs inside a read transaction).
func (s *Store) Range(fn func(identity string, m Mapping) bool) error {
	return s.View(func(t *Tx) error { return t.Range(fn) })
}

// Park adds (or, with p.ID set, replaces) a parked change durably.
func (s *Store) Park(p Parked) (id uint64, err error) {
	err = s.write(func(t *Tx) error { id, err = t.Park(p); return err })
	return id, err
}

// ListParked returns the parked changes, oldest first.
func (s *Store) ListParked() (ps []Parked, err error) {
	err = s.View(func(t *Tx) error { ps, err = t.Parked(); return err })
	return ps, err
}

// Unpark removes a parked change durably.
func (s *Store) Unpark(id uint64) error {
	return s.write(func(t *Tx) error { return t.Unpark(id) })
}

// KnownDN returns the last DN of an identity, or false: the shape of
// source.Options.KnownDN.
func (s *Store) KnownDN(identity string) (string, bool) {
	m, ok, err := s.Get(identity)
	if err != nil || !ok {
		return "", false
	}
	return m.DN, true
}

package state

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Shadows: what the engine last knew a SCIM resource to hold, so that `run`
// can PATCH without reading the resource first (engine/shadow.go says what
// a shadow holds, when it is written, and when it is trusted). This file
// is the storage side: one record per resource in the "shadows" bucket,
// each with a checksum, and one rule that makes a process that dies with a
// write in flight leave no shadow behind to be trusted.
//
// The rule. The meta key "shadows" says "clean" only while no process has
// the store open, and only when the last one closed it with every shadow
// it wrote in step with the service (KeepShadows, nothing failed, nothing
// in doubt: ShadowsInDoubtUntil). Open sets it to "open" in the
// transaction that opens the store, which is durable before the process
// sends anything to the service; and when Open finds it anything but
// "clean" — a process killed (kill -9, power loss) with a write sent and
// its shadow not yet updated, a process that wrote to SCIM without keeping
// shadows (it never called KeepShadows), a state file restored from its
// backup, a file older than shadows — it deletes every shadow in the same
// transaction. So "in doubt" is marked durably before any write is sent,
// for all of a process's writes at once, at a cost of no write per change:
// a shadow record itself need not be durable before the engine relies on
// it in the same process (the engine keeps what it queued in memory until
// it is committed), and a record that did not reach the disk before a
// crash is dropped with the rest at the next Open.
//
// A record whose checksum does not match (a torn or overwritten value that
// bbolt's page checks cannot see) is reported as ErrShadowDamaged, never
// returned: the engine drops it and reads the resource.

// ErrShadowDamaged is a shadow record that fails its checksum.
var ErrShadowDamaged = errors.New("state: shadow record damaged")

var (
	bucketShadows = []byte("shadows")
	keyShadows    = []byte("shadows") // in meta: shadowsClean or shadowsOpen
)

const (
	shadowsClean = "clean"
	shadowsOpen  = "open"
)

// castagnoli is the CRC-32C table of the records' checksums.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// shadowState is the store's side of the rule above.
type shadowState struct {
	dropped bool        // Open deleted the shadows of a store that had been used before
	keep    atomic.Bool // KeepShadows was called
	broken  atomic.Bool // a shadow write failed: the records on disk may be behind
	mu      sync.Mutex
	doubt   time.Time // ShadowsInDoubtUntil
}

// openShadows applies the rule at Open, in Open's transaction: the shadows
// of a store not closed clean are deleted, and the marker says "open".
// existed tells a store used before from a new one.
func (s *Store) openShadows(tx *bolt.Tx, existed bool) error {
	m := tx.Bucket(bucketMeta)
	if string(m.Get(keyShadows)) != shadowsClean {
		if tx.Bucket(bucketShadows) != nil {
			if err := tx.DeleteBucket(bucketShadows); err != nil {
				return err
			}
		}
		s.shadow.dropped = existed
	}
	if _, err := tx.CreateBucketIfNotExists(bucketShadows); err != nil {
		return err
	}
	return m.Put(keyShadows, []byte(shadowsOpen))
}

// closeShadows marks the shadows clean when this process kept them (see
// the rule above). It runs after the committer has stopped.
func (s *Store) closeShadows() error {
	st := &s.shadow
	st.mu.Lock()
	doubt := st.doubt
	st.mu.Unlock()
	if !st.keep.Load() || st.broken.Load() || time.Now().Before(doubt) {
		return nil // left "open": the next Open deletes them
	}
	return guard(s.path, func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keyShadows, []byte(shadowsClean))
		})
	})
}

// KeepShadows declares that this process keeps the shadows in step with
// the service: each of its SCIM writes updates or drops the shadow of the
// resource it writes (an engine.Destination with Shadows set), or it
// writes nothing to SCIM. Without it, Close leaves the shadows to be
// deleted by the next Open.
func (s *Store) KeepShadows() { s.shadow.keep.Store(true) }

// ShadowsDropped reports whether Open deleted the shadows of a store used
// before (it was not closed clean): a write the last process sent may
// still reach the service, and the engine waits that long before it
// records shadows again.
func (s *Store) ShadowsDropped() bool { return s.shadow.dropped }

// ShadowsInDoubtUntil says that a write whose outcome is unknown may be
// carried out by the service until t: a Close before then leaves the
// shadows to be deleted by the next Open.
func (s *Store) ShadowsInDoubtUntil(t time.Time) {
	st := &s.shadow
	st.mu.Lock()
	if t.After(st.doubt) {
		st.doubt = t
	}
	st.mu.Unlock()
}

// Shadow returns the shadow record of key: ok false when there is none,
// and ErrShadowDamaged when the record fails its checksum.
func (t *Tx) Shadow(key string) ([]byte, bool, error) {
	defer storeOp()
	b := t.tx.Bucket(bucketShadows)
	if b == nil {
		return nil, false, nil
	}
	v := b.Get([]byte(key))
	if v == nil {
		return nil, false, nil
	}
	if len(v) < 4 || binary.BigEndian.Uint32(v) != crc32.Checksum(v[4:], castagnoli) {
		return nil, false, ErrShadowDamaged
	}
	return append([]byte(nil), v[4:]...), true, nil
}

// PutShadow sets the shadow record of key.
func (t *Tx) PutShadow(key string, val []byte) error {
	defer storeOp()
	if key == "" {
		return errors.New("state: empty shadow key")
	}
	v := make([]byte, 4+len(val))
	binary.BigEndian.PutUint32(v, crc32.Checksum(val, castagnoli))
	copy(v[4:], val)
	return t.tx.Bucket(bucketShadows).Put([]byte(key), v)
}

// DropShadow removes the shadow record of key (no error if absent).
func (t *Tx) DropShadow(key string) error {
	defer storeOp()
	return t.tx.Bucket(bucketShadows).Delete([]byte(key))
}

// Shadows returns how many shadow records there are.
func (t *Tx) Shadows() int {
	defer storeOp()
	return t.tx.Bucket(bucketShadows).Stats().KeyN
}

// Shadow returns the shadow record of key (see Tx.Shadow).
func (s *Store) Shadow(key string) (val []byte, ok bool, err error) {
	err = s.View(func(t *Tx) error { val, ok, err = t.Shadow(key); return err })
	return val, ok, err
}

// PutShadowAsync queues the shadow record of key and returns at once;
// done is called as writeAsync says. A write that fails marks the shadows
// broken: Close leaves them to be deleted by the next Open.
func (s *Store) PutShadowAsync(key string, val []byte, done func(error)) {
	s.writeAsync(func(t *Tx) error { return t.PutShadow(key, val) }, s.shadowDone(done))
}

// DropShadowAsync queues the removal of key's shadow record (see
// PutShadowAsync).
func (s *Store) DropShadowAsync(key string, done func(error)) {
	s.writeAsync(func(t *Tx) error { return t.DropShadow(key) }, s.shadowDone(done))
}

func (s *Store) shadowDone(done func(error)) func(error) {
	return func(err error) {
		if err != nil {
			s.shadow.broken.Store(true)
		}
		if done != nil {
			done(err)
		}
	}
}

// ShadowCount returns how many shadow records the store holds.
func (s *Store) ShadowCount() (n int, err error) {
	err = s.View(func(t *Tx) error { n = t.Shadows(); return nil })
	return n, err
}

package state

import (
	"encoding/binary"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Writes a process left in flight.
//
// A process killed with a SCIM write on its way (held by a proxy, queued
// in the service) may have it carried out after its successor has read the
// resource again; the engine waits until such a write can no longer land
// before it updates anything (engine/doubt.go). How long depends on when
// the dead process last sent a write, which is what this file keeps: a
// time no write was sent after, in a small file beside the state file
// (PATH.sent, 8 bytes: Unix nanoseconds, big-endian). NoteSending moves it
// a second ahead of the clock before a write is sent when the time kept
// is less than a tenth of a second ahead, so it costs one pwrite a second
// while writes go out and nothing while the process is idle — a process
// that died idle leaves nothing to wait for. It is not fsynced: what a
// kill -9 leaves in the page cache survives; a power loss may lose the
// last second, and the engine then trusts the time the file held before.
// When the file cannot be read, the time is unknown and the engine waits
// from Open.

// sentMark is the store's side of the above.
type sentMark struct {
	prev      time.Time // what the file held at Open
	prevKnown bool
	until     atomic.Int64 // Unix nanoseconds kept in the file by this process

	mu     sync.Mutex
	f      *os.File
	broken bool // a write failed: the file was emptied, the time is unknown
}

// sentPath is the file beside the state file.
func sentPath(path string) string { return path + ".sent" }

// readSent reads the previous process's mark at Open.
func (s *Store) readSent() {
	b, err := os.ReadFile(sentPath(s.path))
	if err != nil || len(b) != 8 {
		return
	}
	n := int64(binary.BigEndian.Uint64(b))
	if n <= 0 {
		return
	}
	s.sent.prev, s.sent.prevKnown = time.Unix(0, n), true
}

// LastSent returns the time no write of the processes before this one was
// sent after; known is false when it cannot be told (no file, a damaged
// one, a process that could not keep it).
func (s *Store) LastSent() (t time.Time, known bool) { return s.sent.prev, s.sent.prevKnown }

// NoteSending declares that a write to the SCIM service is about to be
// sent at now: the time kept moves past it first.
func (s *Store) NoteSending(now time.Time) {
	m := &s.sent
	if now.UnixNano()+int64(100*time.Millisecond) < m.until.Load() {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.broken || now.UnixNano()+int64(100*time.Millisecond) < m.until.Load() {
		return
	}
	if m.f == nil {
		f, err := os.OpenFile(sentPath(s.path), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			_ = os.Remove(sentPath(s.path)) // an older time must not be trusted
			m.broken = true
			return
		}
		m.f = f
	}
	until := now.Add(time.Second).UnixNano()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(until))
	if _, err := m.f.WriteAt(b[:], 0); err != nil {
		m.fail()
		return
	}
	m.until.Store(until)
}

// fail empties the file, so that the next process does not trust a time
// this one went past, and stops keeping it (under mu).
func (m *sentMark) fail() {
	m.broken = true
	if m.f != nil {
		_ = m.f.Truncate(0)
	}
}

// closeSent closes the file.
func (s *Store) closeSent() error {
	m := &s.sent
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return nil
	}
	err := m.f.Close()
	m.f = nil
	return err
}

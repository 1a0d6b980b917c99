package state

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// putShadow writes a shadow and waits until it is durable.
func putShadow(t *testing.T, s *Store, key, val string) {
	t.Helper()
	done := make(chan error, 1)
	s.PutShadowAsync(key, []byte(val), func(err error) { done <- err })
	must(t, <-done)
}

// TestShadowRecords: a record reads back as written, a dropped one is
// gone, and one whose bytes were damaged on disk is reported as damaged,
// never returned.
func TestShadowRecords(t *testing.T) {
	s, err := Open(t.TempDir(), "p")
	must(t, err)
	defer s.Close()
	putShadow(t, s, "Users\x00a", `{"title":"A"}`)
	putShadow(t, s, "Users\x00b", `{"title":"B"}`)
	if v, ok, err := s.Shadow("Users\x00a"); err != nil || !ok || string(v) != `{"title":"A"}` {
		t.Fatalf("a = %q %v %v", v, ok, err)
	}
	done := make(chan error, 1)
	s.DropShadowAsync("Users\x00a", func(err error) { done <- err })
	must(t, <-done)
	if _, ok, err := s.Shadow("Users\x00a"); ok || err != nil {
		t.Fatalf("dropped a: %v %v", ok, err)
	}
	// One byte of b's value changed, as a torn write would leave it.
	must(t, s.Update(func(tx *Tx) error {
		b := tx.tx.Bucket(bucketShadows)
		v := append([]byte(nil), b.Get([]byte("Users\x00b"))...)
		v[len(v)-3] ^= 0x20
		return b.Put([]byte("Users\x00b"), v)
	}))
	if v, ok, err := s.Shadow("Users\x00b"); ok || !errors.Is(err, ErrShadowDamaged) {
		t.Fatalf("damaged b = %q %v %v", v, ok, err)
	}
	if n, err := s.ShadowCount(); err != nil || n != 1 {
		t.Fatalf("%d shadows, %v", n, err)
	}
}

// TestShadowsSurviveOnlyACleanClose: the shadows are still there at the
// next Open only when the process that wrote them kept them (KeepShadows),
// no write of theirs failed and none was in doubt when it closed;
// otherwise Open deletes them all and says so (ShadowsDropped).
func TestShadowsSurviveOnlyACleanClose(t *testing.T) {
	tests := []struct {
		name string
		use  func(t *testing.T, s *Store)
		kept bool
	}{
		{"kept", func(t *testing.T, s *Store) { s.KeepShadows() }, true},
		{"not kept (a process that writes to SCIM without shadows)", func(t *testing.T, s *Store) {}, false},
		{"a shadow write failed", func(t *testing.T, s *Store) {
			s.KeepShadows()
			done := make(chan error, 1)
			s.PutShadowAsync("", []byte("x"), func(err error) { done <- err })
			if err := <-done; err == nil {
				t.Fatal("a shadow with an empty key was stored")
			}
		}, false},
		{"a write in doubt", func(t *testing.T, s *Store) {
			s.KeepShadows()
			s.ShadowsInDoubtUntil(time.Now().Add(time.Hour))
		}, false},
		{"a doubt that has passed", func(t *testing.T, s *Store) {
			s.KeepShadows()
			s.ShadowsInDoubtUntil(time.Now().Add(-time.Second))
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, "p")
			must(t, err)
			if s.ShadowsDropped() {
				t.Error("a new store reports its shadows dropped")
			}
			putShadow(t, s, "Users\x00a", "{}")
			tt.use(t, s)
			must(t, s.Close())
			s, err = Open(dir, "p")
			must(t, err)
			defer s.Close()
			_, ok, err := s.Shadow("Users\x00a")
			must(t, err)
			if ok != tt.kept || s.ShadowsDropped() == tt.kept {
				t.Errorf("shadow there: %v, dropped: %v; want there: %v", ok, s.ShadowsDropped(), tt.kept)
			}
		})
	}
}

// TestShadowsAfterKill: a process killed with SIGKILL while writing
// shadows (and so, in the engine, with SCIM writes in flight) leaves none
// to be trusted: the next Open deletes them all, and the backup kept at
// the start (which a damaged file is restored from) holds none either
// once opened.
func TestShadowsAfterKill(t *testing.T) {
	if dir := os.Getenv("SCIMSYNC_SHADOW_KILL_DIR"); dir != "" {
		shadowWriter(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestShadowsAfterKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SCIMSYNC_SHADOW_KILL_DIR="+dir)
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "written\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("writer did not start: %q %v", line, err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	// The records are on disk, and the marker says a process had them open.
	db, err := bolt.Open(Path(dir, "p"), 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	must(t, err)
	n, marker := 0, ""
	must(t, db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketShadows).Stats().KeyN
		marker = string(tx.Bucket(bucketMeta).Get(keyShadows))
		return nil
	}))
	must(t, db.Close())
	if n == 0 || marker != shadowsOpen {
		t.Fatalf("before reopening: %d shadows, marker %q", n, marker)
	}
	s, err := Open(dir, "p")
	must(t, err)
	defer s.Close()
	if c, err := s.ShadowCount(); err != nil || c != 0 || !s.ShadowsDropped() {
		t.Fatalf("after reopening: %d shadows (%v), dropped %v", c, err, s.ShadowsDropped())
	}
}

func shadowWriter(dir string) {
	s, err := Open(dir, "p")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	s.KeepShadows()
	for i := 0; ; i++ {
		done := make(chan error, 1)
		s.PutShadowAsync(fmt.Sprintf("Users\x00%08d", i), []byte(`{"title":"x"}`), func(err error) { done <- err })
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if i == 10 {
			fmt.Println("written")
		}
	}
}

// TestShadowWriteAfterClose: a shadow queued after Close fails (its done
// is told, on another goroutine) and marks the shadows broken.
func TestShadowWriteAfterClose(t *testing.T) {
	s, err := Open(t.TempDir(), "p")
	must(t, err)
	must(t, s.Close())
	done := make(chan error, 1)
	s.PutShadowAsync("Users\x00a", []byte("{}"), func(err error) { done <- err })
	if err := <-done; err == nil {
		t.Fatal("a shadow was stored after Close")
	}
	if !s.shadow.broken.Load() {
		t.Error("a failed shadow write did not mark the shadows broken")
	}
}

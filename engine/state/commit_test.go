package state

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestCommitGroupFailure commits groups, each in one transaction, in which
// one write fails or panics: that write alone gets its error (a panic comes
// back as fnPanic, which write raises in the writer's goroutine) and
// changes nothing; every other write of the group is committed.
func TestCommitGroupFailure(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		bad  func(*Tx) error
		want func(error) bool
	}{
		{"error", func(tx *Tx) error { _ = tx.Put("bad", Mapping{SCIMID: "x"}); return boom },
			func(err error) bool { return errors.Is(err, boom) }},
		{"empty identity", func(tx *Tx) error { return tx.Put("", Mapping{}) },
			func(err error) bool { return err != nil && strings.Contains(err.Error(), "empty identity") }},
		{"panic", func(tx *Tx) error { _ = tx.Put("bad", Mapping{SCIMID: "x"}); panic("oops") },
			func(err error) bool { p, ok := err.(fnPanic); return ok && p.v == "oops" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.TempDir(), "p")
			must(t, err)
			defer s.Close()
			put := func(id string) *request {
				return &request{fn: func(tx *Tx) error { return tx.Put(id, Mapping{SCIMID: id}) }, done: make(chan error, 1)}
			}
			bad := &request{fn: tt.bad, done: make(chan error, 1)}
			group := []*request{put("a"), put("b"), bad, put("c")}
			s.commitGroup(group)
			if err := <-bad.done; !tt.want(err) {
				t.Errorf("failing write: %v", err)
			}
			for i, r := range group {
				if r == bad {
					continue
				}
				if err := <-r.done; err != nil {
					t.Errorf("write %d: %v", i, err)
				}
			}
			for _, id := range []string{"a", "b", "c"} {
				if m, ok, err := s.Get(id); err != nil || !ok || m.SCIMID != id {
					t.Errorf("%s = %+v %v %v", id, m, ok, err)
				}
			}
			if _, ok, _ := s.Get("bad"); ok {
				t.Error("the failed write's Put was committed")
			}
		})
	}
}

// TestAsyncWritesJoinTheNext: asynchronous writes (shadow records) that
// linger for company are committed, in the order they were queued, with
// the next write a writer waits for, or when the store closes, or once
// asyncMaxGroup of them wait, or when their linger is over: none is left
// behind. Except in the last case the linger is made too long to end
// within the test.
func TestAsyncWritesJoinTheNext(t *testing.T) {
	tests := []struct {
		name   string
		async  int
		linger time.Duration
		then   func(t *testing.T, s *Store) // what makes them go
	}{
		{"a Put", 3, time.Hour, func(t *testing.T, s *Store) { must(t, s.Put("a", Mapping{SCIMID: "1"})) }},
		{"a checkpoint", 3, time.Hour, func(t *testing.T, s *Store) { must(t, s.SetCheckpoint("cn=9")) }},
		{"Close", 3, time.Hour, func(t *testing.T, s *Store) { must(t, s.Close()) }},
		{"a full group", asyncMaxGroup - 1, time.Hour, func(*testing.T, *Store) {}}, // with the drop below
		{"the linger's end", 3, asyncLinger, func(*testing.T, *Store) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.TempDir(), "p")
			must(t, err)
			defer s.Close()
			s.KeepShadows()
			s.c.mu.Lock()
			s.c.linger = tt.linger
			s.c.mu.Unlock()
			type answer struct {
				i   int
				err error
			}
			done := make(chan answer, tt.async+1) // answered on the committer's goroutine, which must not block
			for i := range tt.async {
				s.PutShadowAsync(fmt.Sprintf("Users\x00u%d", i), []byte(`{"title":"B"}`), func(err error) { done <- answer{i, err} })
			}
			// The first dropped after it was put: it must end up dropped.
			s.DropShadowAsync("Users\x00u0", func(err error) { done <- answer{tt.async, err} })
			tt.then(t, s)
			for want := range tt.async + 1 {
				var got answer
				select {
				case got = <-done:
				case <-time.After(time.Minute): // a hang, not a timing: the linger is an hour
					t.Fatalf("write %d was left behind", want)
				}
				if got.err != nil || got.i != want {
					t.Fatalf("answer %d: write %d, %v; want write %d, nil", want, got.i, got.err, want)
				}
			}
			if tt.name == "Close" {
				return
			}
			if n, err := s.ShadowCount(); err != nil || n != tt.async-1 {
				t.Errorf("%d shadows (%v), want %d", n, err, tt.async-1)
			}
		})
	}
}

// TestWriteAfterClose: a write after Close fails instead of hanging.
func TestWriteAfterClose(t *testing.T) {
	s, err := Open(t.TempDir(), "p")
	must(t, err)
	must(t, s.Close())
	if err := s.Put("a", Mapping{}); err == nil {
		t.Fatal("Put after Close succeeded")
	}
}

// TestGroupCommitCrash runs 8 writers in a child process, each putting its
// entries 1, 2, 3, … one after the other with Put (group-committed) and
// telling the parent each one that returned (as run sends a POST once the
// create marker is written), and a checkpointer that saves with
// SetCheckpoint how many puts of each writer had returned; it kills the
// process with SIGKILL mid-way. Reopened, the store must hold, for each
// writer, entries 1..n with no gap, n at least what the parent was told and
// what the checkpoint says: a write that returned is on disk.
func TestGroupCommitCrash(t *testing.T) {
	if dir := os.Getenv("SCIMSYNC_STATE_GROUP_CRASH_DIR"); dir != "" {
		groupCrashWriter(dir)
		return
	}
	const writers = 8
	dir := t.TempDir()
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestGroupCommitCrash$", "-test.count=1")
		cmd.Env = append(os.Environ(), "SCIMSYNC_STATE_GROUP_CRASH_DIR="+dir)
		out, err := cmd.StdoutPipe()
		must(t, err)
		must(t, cmd.Start())
		rd := bufio.NewReader(out)
		var told [writers]int // the last put of each writer that returned, as the child said
		started, read := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(read)
			first := true
			for {
				line, err := rd.ReadString('\n')
				if err != nil {
					return
				}
				var w, i int
				if _, err := fmt.Sscanf(line, "%d %d", &w, &i); err == nil && w >= 0 && w < writers {
					told[w] = max(told[w], i)
				}
				if first {
					close(started)
					first = false
				}
			}
		}()
		select {
		case <-started:
		case <-read:
			_ = cmd.Wait()
			t.Fatal("the writer ended before its first put")
		}
		time.Sleep(time.Duration(50+150*round) * time.Millisecond)
		_ = cmd.Process.Kill()
		<-read
		_ = cmd.Wait()

		s, err := Open(dir, "crash")
		if err != nil {
			t.Fatalf("reopen after kill: %v", err)
		}
		pos, err := s.Checkpoint()
		must(t, err)
		var acked [writers]int
		if err := json.Unmarshal([]byte(pos), &acked); err != nil {
			t.Fatalf("checkpoint %q: %v", pos, err)
		}
		have := map[string]bool{}
		must(t, s.Range(func(id string, _ Mapping) bool { have[id] = true; return true }))
		total := 0
		for w := range writers {
			n := 0
			for have[groupKey(w, n+1)] {
				n++
			}
			total += n
			if n < acked[w] {
				t.Errorf("round %d: writer %d: checkpoint says %d puts returned, only %d are on disk", round, w, acked[w], n)
			}
			if n < told[w] {
				t.Errorf("round %d: writer %d: %d puts returned, only %d are on disk", round, w, told[w], n)
			}
		}
		if total != len(have) {
			t.Errorf("round %d: %d entries, %d of them in gap-free runs", round, len(have), total)
		}
		t.Logf("round %d: %d entries on disk, checkpoint %v", round, total, acked)
		must(t, s.Close())
	}
}

func groupKey(w, i int) string { return fmt.Sprintf("w%d-%08d", w, i) }

func groupCrashWriter(dir string) {
	s, err := Open(dir, "crash")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fail := func(err error) { fmt.Fprintln(os.Stderr, err); os.Exit(2) }
	const writers = 8
	var acked [writers]atomic.Int64
	have := map[string]bool{}
	if err := s.Range(func(id string, _ Mapping) bool { have[id] = true; return true }); err != nil {
		fail(err)
	}
	for w := range writers {
		n := 0
		for have[groupKey(w, n+1)] {
			n++
		}
		acked[w].Store(int64(n))
		go func() {
			for i := n + 1; ; i++ {
				if err := s.Put(groupKey(w, i), Mapping{Endpoint: "users", SCIMID: groupKey(w, i)}); err != nil {
					fail(err)
				}
				acked[w].Store(int64(i))
				fmt.Fprintf(os.Stdout, "%d %d\n", w, i) // unbuffered: one write(2) per line
			}
		}()
	}
	for {
		var cp [writers]int64
		for w := range cp {
			cp[w] = acked[w].Load()
		}
		b, _ := json.Marshal(cp)
		if err := s.SetCheckpoint(string(b)); err != nil {
			fail(err)
		}
	}
}

package state

import (
	"os"
	"testing"
	"time"
)

// TestNoteSending: the time kept moves a second past a write about to be
// sent, at most once in 0.9 s, and the next process reads it; a file that
// is missing or damaged tells nothing.
func TestNoteSending(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, "sent")
	if err != nil {
		t.Fatal(err)
	}
	if _, known := s.LastSent(); known {
		t.Error("a new store knows when writes were last sent")
	}
	t0 := time.Unix(1_800_000_000, 0)
	read := func() time.Time {
		t.Helper()
		s2 := &Store{path: s.path}
		s2.readSent()
		got, _ := s2.LastSent()
		return got
	}
	for _, step := range []struct {
		at   time.Duration // after t0
		want time.Duration // what the file holds after
	}{
		{0, time.Second},
		{50 * time.Millisecond, time.Second},                    // still well ahead: no write
		{950 * time.Millisecond, 1950 * time.Millisecond},       // less than 0.1 s ahead: moved
		{3 * time.Second, 4 * time.Second},                      // behind: moved
		{3*time.Second + 899*time.Millisecond, 4 * time.Second}, // 101 ms ahead
		{3*time.Second + 900*time.Millisecond, 4900 * time.Millisecond},
	} {
		s.NoteSending(t0.Add(step.at))
		if got := read(); !got.Equal(t0.Add(step.want)) {
			t.Errorf("after a write at t0+%v the file holds t0+%v, want t0+%v", step.at, got.Sub(t0), step.want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, "sent")
	if err != nil {
		t.Fatal(err)
	}
	if got, known := s.LastSent(); !known || !got.Equal(t0.Add(4900*time.Millisecond)) {
		t.Errorf("the next process reads %v (known %v), want t0+4.9s", got, known)
	}
	s.Close()
	if err := os.WriteFile(sentPath(s.path), []byte{1, 2, 3}, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, "sent")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, known := s.LastSent(); known {
		t.Error("a damaged file is trusted")
	}
}

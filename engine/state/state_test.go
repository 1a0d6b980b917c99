package state

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"testing"
	"time"
)

func TestStoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, "people.pipe")
	if err != nil {
		t.Fatal(err)
	}
	if pos, err := s.Checkpoint(); err != nil || pos != "" {
		t.Fatalf("fresh checkpoint %q, %v", pos, err)
	}
	must(t, s.SetCheckpoint("changelog:41"))
	must(t, s.Put("id-1", Mapping{Endpoint: "users", SCIMID: "s1", DN: "uid=a,dc=x"}))
	must(t, s.Put("id-2", Mapping{Endpoint: "groups", SCIMID: "s2", DN: "cn=g,dc=x"}))
	must(t, s.Put("id-3", Mapping{Endpoint: "users", SCIMID: "s3", DN: "uid=c,dc=x"}))
	must(t, s.Delete("id-3"))
	must(t, s.Delete("absent"))
	// one transaction: id map and checkpoint together
	must(t, s.Update(func(tx *Tx) error {
		if err := tx.Put("id-1", Mapping{Endpoint: "users", SCIMID: "s1", DN: "uid=b,dc=x"}); err != nil {
			return err
		}
		return tx.SetCheckpoint("changelog:42")
	}))
	// a failed transaction changes nothing
	boom := errors.New("boom")
	if err := s.Update(func(tx *Tx) error {
		_ = tx.SetCheckpoint("changelog:99")
		_ = tx.Delete("id-1")
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("Update error %v", err)
	}
	id, err := s.Park(Parked{Key: "id-2", Identity: "id-2", DN: "cn=g,dc=x", Op: "modify", Class: "groups", Error: "409 uniqueness", Attempts: 3,
		Position: "changelog:40"})
	must(t, err)
	id2, err := s.Park(Parked{DN: "uid=z,dc=x", Error: "expression error", Attempts: 1})
	must(t, err)
	must(t, s.Close())

	s, err = Open(dir, "people.pipe")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if pos, _ := s.Checkpoint(); pos != "changelog:42" {
		t.Errorf("checkpoint %q", pos)
	}
	if m, ok, _ := s.Get("id-1"); !ok || m.DN != "uid=b,dc=x" || m.SCIMID != "s1" {
		t.Errorf("id-1 = %+v %v", m, ok)
	}
	if dn, ok := s.KnownDN("id-2"); !ok || dn != "cn=g,dc=x" {
		t.Errorf("KnownDN = %q %v", dn, ok)
	}
	var ids []string
	must(t, s.Range(func(id string, m Mapping) bool { ids = append(ids, id+"="+m.SCIMID); return true }))
	if !reflect.DeepEqual(ids, []string{"id-1=s1", "id-2=s2"}) {
		t.Errorf("range %q", ids)
	}
	ps, err := s.ListParked()
	must(t, err)
	if len(ps) != 2 || ps[0].ID != id || ps[1].ID != id2 || ps[0].Attempts != 3 || ps[0].Op != "modify" || ps[0].Time.IsZero() {
		t.Fatalf("parked %+v", ps)
	}
	// a retry that fails again replaces the record
	ps[0].Attempts++
	if _, err := s.Park(ps[0]); err != nil {
		t.Fatal(err)
	}
	if p, ok, err := viewParkedKey(s, "id-2"); err != nil || !ok || p.ID != id {
		t.Errorf("ParkedKey(id-2) = %+v %v %v", p, ok, err)
	}
	must(t, s.Unpark(id2))
	ps, _ = s.ListParked()
	if len(ps) != 1 || ps[0].Attempts != 4 {
		t.Fatalf("after retry and unpark: %+v", ps)
	}
}

func TestStoreLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, "p")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// a second open (another `run` of the same pipe) is refused
	if _, err := Open(dir, "p"); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	if _, err := Open(dir, "other"); err != nil {
		t.Fatalf("another pipe: %v", err)
	}
}

func TestPathSanitized(t *testing.T) {
	if p := Path("/s", "../a/b"); p != "/s/.._a_b.state" {
		t.Errorf("Path = %q", p)
	}
}

// TestCrashSafety runs a writer in a child process that commits
// transactions (id map entry i and checkpoint i together) as fast as it can
// and kills it with SIGKILL mid-way, without Close; reopening must find a
// consistent store: the checkpoint names the last entry, and every entry up
// to it is there.
func TestCrashSafety(t *testing.T) {
	if dir := os.Getenv("SCIMSYNC_STATE_CRASH_DIR"); dir != "" {
		crashWriter(dir)
		return
	}
	dir := t.TempDir()
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashSafety$", "-test.count=1")
		cmd.Env = append(os.Environ(), "SCIMSYNC_STATE_CRASH_DIR="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// wait until the writer has committed once, then let it run a while
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || line != "committing\n" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("writer did not start: %q %v", line, err)
		}
		time.Sleep(time.Duration(50+150*round) * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()

		s, err := Open(dir, "crash")
		if err != nil {
			t.Fatalf("reopen after kill: %v", err)
		}
		pos, err := s.Checkpoint()
		must(t, err)
		n, _ := strconv.Atoi(pos)
		count := 0
		must(t, s.Range(func(string, Mapping) bool { count++; return true }))
		if _, ok, _ := s.Get(fmt.Sprintf("id-%08d", n)); n > 0 && !ok {
			t.Errorf("round %d: checkpoint %d but its id map entry is missing", round, n)
		}
		if _, ok, _ := s.Get(fmt.Sprintf("id-%08d", n+1)); ok {
			t.Errorf("round %d: id map entry %d is there but the checkpoint is %d", round, n+1, n)
		}
		if count != n {
			t.Errorf("round %d: %d id map entries, checkpoint %d", round, count, n)
		}
		t.Logf("round %d: killed after %d committed transactions", round, n)
		must(t, s.Close())
	}
}

func crashWriter(dir string) {
	s, err := Open(dir, "crash")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	pos, _ := s.Checkpoint()
	n, _ := strconv.Atoi(pos)
	first := true
	for {
		n++
		err := s.Update(func(tx *Tx) error {
			if err := tx.Put(fmt.Sprintf("id-%08d", n), Mapping{Endpoint: "users", SCIMID: strconv.Itoa(n), DN: "uid=x"}); err != nil {
				return err
			}
			return tx.SetCheckpoint(strconv.Itoa(n))
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if first {
			fmt.Println("committing")
			first = false
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func viewParkedKey(s *Store, key string) (p Parked, ok bool, err error) {
	err = s.View(func(t *Tx) error { p, ok, err = t.ParkedKey(key); return err })
	return p, ok, err
}

// TestCountMapped: the id map's entries with a SCIM id, by endpoint, as
// Range would count them; a pending create (no id yet) is not counted.
func TestCountMapped(t *testing.T) {
	s, err := Open(t.TempDir(), "count")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for id, m := range map[string]Mapping{
		"a": {Endpoint: "Users", SCIMID: "1", DN: "uid=a"},
		"b": {Endpoint: "Users", SCIMID: "2", DN: "uid=b"},
		"c": {Endpoint: "Users", DN: "uid=c", Pending: []string{`userName eq "c"`}},
		"g": {Endpoint: "Groups", SCIMID: "3", DN: "cn=g"},
		"q": {Endpoint: `Quo"ted`, SCIMID: "4", DN: "cn=q"},
	} {
		if err := s.Put(id, m); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.CountMapped()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	if err := s.Range(func(_ string, m Mapping) bool {
		if m.SCIMID != "" {
			want[m.Endpoint]++
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || got["Users"] != 2 || got[`Quo"ted`] != 1 {
		t.Errorf("CountMapped = %v, want %v (as Range counts)", got, want)
	}
}

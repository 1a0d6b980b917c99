package control

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scimsync/scimsync/engine/state"
)

// fakeBackend is a Backend with fixed answers, counting retry calls.
type fakeBackend struct {
	parked  []state.Parked
	err     error
	queued  int
	retries int
}

func (f *fakeBackend) Parked() ([]state.Parked, error) { return f.parked, f.err }
func (f *fakeBackend) RetryParked() int                { f.retries++; return f.queued }

func sockPath(t *testing.T) string {
	return SocketPath(state.Path(t.TempDir(), "p"))
}

func listen(t *testing.T, path string, b Backend) *Server {
	t.Helper()
	s, err := Listen(path, b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var when = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func TestParked(t *testing.T) {
	tests := []struct {
		name    string
		backend *fakeBackend
		want    []state.Parked
		wantErr string
	}{
		{name: "none", backend: &fakeBackend{}, want: []state.Parked{}},
		{name: "two", backend: &fakeBackend{parked: []state.Parked{
			{ID: 3, Key: "0b1e", Identity: "0b1e", DN: "uid=a,ou=People,dc=example,dc=com", Op: "add", Class: "people", Error: "no uid",
				Attempts: 2, Time: when, NextTry: when.Add(time.Hour), Position: "ldif:4"},
			{ID: 9, Key: "dn:cn=g,ou=groups,dc=example,dc=com", DN: "cn=g,ou=Groups,dc=example,dc=com", Op: "modify", Class: "groups",
				Error: "scim: POST /Groups: 400", Attempts: 1, Time: when.Add(time.Minute)},
		}}},
		{name: "store error", backend: &fakeBackend{err: errors.New("state: parked change 4: bad JSON")},
			wantErr: "the running scimsync: state: parked change 4: bad JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := sockPath(t)
			listen(t, path, tt.backend)
			got, err := NewClient(path).Parked(context.Background())
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == nil {
				tt.want = tt.backend.parked
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d parked, want %d: %+v", len(got), len(tt.want), got)
			}
			for i := range got {
				if !reflect.DeepEqual(got[i], tt.want[i]) {
					t.Errorf("parked %d:\n got %+v\nwant %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestRetryParked(t *testing.T) {
	tests := []struct {
		name    string
		queued  int
		wantErr error
	}{
		{name: "none parked", queued: 0},
		{name: "three queued", queued: 3},
		{name: "cannot retry while running", queued: -1, wantErr: ErrCannotRetry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := sockPath(t)
			b := &fakeBackend{queued: tt.queued}
			listen(t, path, b)
			n, err := NewClient(path).RetryParked(context.Background())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && n != tt.queued {
				t.Errorf("queued %d, want %d", n, tt.queued)
			}
			if b.retries != 1 {
				t.Errorf("backend asked %d times, want once", b.retries)
			}
		})
	}
}

// TestMethods: reading is GET only, retrying POST only (a retry is not
// something a stray GET may trigger).
func TestMethods(t *testing.T) {
	path := sockPath(t)
	b := &fakeBackend{queued: 1}
	listen(t, path, b)
	hc := NewClient(path).hc
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/failed", 200},
		{http.MethodPost, "/failed", 405},
		{http.MethodGet, "/failed/retry", 405},
		{http.MethodPost, "/failed/retry", 200},
		{http.MethodGet, "/nothing", 404},
	} {
		req, _ := http.NewRequest(tt.method, "http://scimsync"+tt.path, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, resp.StatusCode, tt.status)
		}
	}
	if b.retries != 1 {
		t.Errorf("%d retries, want 1", b.retries)
	}
}

// TestSocketMode: the socket is 0600 whatever the umask, so only the user
// running the sync can ask it anything.
func TestSocketMode(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	path := sockPath(t)
	listen(t, path, &fakeBackend{})
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want a socket with 0600", fi.Mode())
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".sock-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestStaleSocket: a socket left by a run killed with SIGKILL (nobody
// answers on it) is replaced.
func TestStaleSocket(t *testing.T) {
	path := sockPath(t)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := NewClient(path).Parked(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("a stale socket: %v, want ErrNotRunning", err)
	}
	listen(t, path, &fakeBackend{parked: []state.Parked{{ID: 1, DN: "uid=a"}}})
	got, err := NewClient(path).Parked(context.Background())
	if err != nil || len(got) != 1 {
		t.Fatalf("after replacing the stale socket: %v, %v", got, err)
	}
}

// TestLiveSocketKept: a socket another process answers on is not taken
// over; that process goes on serving.
func TestLiveSocketKept(t *testing.T) {
	path := sockPath(t)
	listen(t, path, &fakeBackend{queued: 7})
	if s, err := Listen(path, &fakeBackend{}); err == nil {
		s.Close()
		t.Fatal("a second server took over a live socket")
	} else if !strings.Contains(err.Error(), "another process is serving it") {
		t.Errorf("error %v", err)
	}
	if n, err := NewClient(path).RetryParked(context.Background()); err != nil || n != 7 {
		t.Errorf("the first server after the attempt: %d, %v", n, err)
	}
}

// TestNotASocket: a regular file in the way is not removed.
func TestNotASocket(t *testing.T) {
	path := sockPath(t)
	if err := os.WriteFile(path, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Listen(path, &fakeBackend{}); err == nil {
		s.Close()
		t.Fatal("Listen replaced a regular file")
	} else if !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("error %v", err)
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != "mine" {
		t.Errorf("the file was touched: %q, %v", data, err)
	}
}

// TestCloseRemoves: Close removes the socket; a client then finds no
// process, as it does when none was ever started.
func TestCloseRemoves(t *testing.T) {
	path := sockPath(t)
	s, err := Listen(path, &fakeBackend{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there after Close: %v", err)
	}
	if _, err := NewClient(path).Parked(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Errorf("after Close: %v, want ErrNotRunning", err)
	}
}

// TestCloseKeepsReplacement: a server whose socket was replaced by another
// process's (after it was taken for stale) does not remove the new one.
func TestCloseKeepsReplacement(t *testing.T) {
	path := sockPath(t)
	s, err := Listen(path, &fakeBackend{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	listen(t, path, &fakeBackend{queued: 2})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := NewClient(path).RetryParked(context.Background()); err != nil || n != 2 {
		t.Errorf("the replacement after the first Close: %d, %v", n, err)
	}
}

// statusBackend is a fakeBackend that reports a Status.
type statusBackend struct {
	fakeBackend
	st  Status
	err error
}

func (s *statusBackend) Status() (Status, error) { return s.st, s.err }

// TestStatus: GET /status returns the backend's Status as it is; a backend
// without StatusBackend answers 501, and a failing one its error.
func TestStatus(t *testing.T) {
	full := Status{PID: 42, Since: when, Checkpoint: "cookie", IDMap: map[string]int{"Users": 5, "Groups": 1},
		Parked: 2, OldestParked: when.Add(time.Minute), LastApplied: when.Add(time.Hour), LastError: "scim: 400",
		Outage: "the SCIM service", OutageSince: when.Add(2 * time.Hour), Counters: map[string]int64{"applied": 7}}
	tests := []struct {
		name    string
		backend Backend
		want    Status
		wantErr string
	}{
		{name: "full", backend: &statusBackend{st: full}, want: full},
		{name: "not reported", backend: &fakeBackend{}, wantErr: "does not report its status"},
		{name: "error", backend: &statusBackend{err: errors.New("state: closed")}, wantErr: "state: closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := sockPath(t)
			listen(t, path, tt.backend)
			got, err := NewClient(path).Status(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

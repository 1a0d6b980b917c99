// Package control lets other scimsync commands talk to a running
// `scimsync run`: a small HTTP API on a unix socket next to the pipe's state
// file.
//
// Why a socket: `run` holds the bbolt state file's exclusive lock for as
// long as it runs (state.ErrLocked), so `failed list` and `failed retry`
// cannot open the store themselves. Rather than stop the sync to look at
// its failures, they ask the process that holds the store. The socket is
// created with mode 0600 (only the user who runs the sync may use it),
// removed when the run stops, and replaced when a run killed with SIGKILL
// left it behind.
//
// Endpoints:
//
//	GET  /failed        -> 200 {"failed":[{"id":N, the state.Parked fields...}, ...]}
//	POST /failed/retry  -> 200 {"queued":N}; 501 when the process cannot retry while it runs
//	GET  /status        -> 200 Status; 501 when the process does not report it (StatusBackend)
//
// Errors are {"error":"..."} with a 4xx or 5xx status.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/scimsync/scimsync/engine/state"
)

// SocketPath returns the control socket of the pipe whose state file is
// statePath (state.Path or Store.Path): the same name plus ".sock".
func SocketPath(statePath string) string { return statePath + ".sock" }

// Backend is what the server asks the running process.
type Backend interface {
	// Parked returns the parked changes, oldest first (the runner's
	// store.ListParked).
	Parked() ([]state.Parked, error)
	// RetryParked queues every parked change for a retry now and returns
	// how many; a negative count means this process cannot retry parked
	// changes while it runs (the server then answers 501).
	RetryParked() int
}

// StatusBackend is a Backend that also reports the process's state for
// `scimsync status` (GET /status). It is a separate interface so that a
// backend without it still serves the rest of the API.
type StatusBackend interface {
	Status() (Status, error)
}

// Status is what a running process reports about itself: enough for an
// operator to tell whether it is running, keeping up and healthy.
type Status struct {
	PID        int       `json:"pid"`
	Since      time.Time `json:"since"`      // when the process started
	Checkpoint string    `json:"checkpoint"` // the source position saved
	// CheckpointAt is when the checkpoint last moved (zero: not in this run).
	CheckpointAt time.Time      `json:"checkpointAt,omitzero"`
	IDMap        map[string]int `json:"idMap"` // resources in the id map, per endpoint name
	Parked       int            `json:"parked"`
	OldestParked time.Time      `json:"oldestParked,omitzero"`
	// LastApplied is when a change last went through to the SCIM service.
	LastApplied time.Time `json:"lastApplied,omitzero"`
	// LastError is the latest error: the outage's, else the newest parked change's.
	LastError string `json:"lastError,omitempty"`
	// Outage names what is unavailable ("the SCIM service", "the directory"),
	// "" when nothing is; OutageSince is when it started.
	Outage      string    `json:"outage,omitempty"`
	OutageSince time.Time `json:"outageSince,omitzero"`
	// Counters are the run's totals so far (applied, unchanged, deleted,
	// out of scope, dropped, parked, healed).
	Counters map[string]int64 `json:"counters,omitempty"`
	// Lag is how far the checkpoint is behind the directory's newest
	// change, measured from the directory when the status was asked; nil
	// when it cannot be told, LagUnknown then says why.
	Lag        *Lag   `json:"lag,omitempty"`
	LagUnknown string `json:"lagUnknown,omitempty"`
}

// Lag is a measured lag (engine/source.Lag): Changes is nil when the
// source tells the seconds but cannot count the changes (syncrepl without
// a readable accesslog).
type Lag struct {
	Changes *int64  `json:"changes"`
	Seconds float64 `json:"seconds"`
}

// ErrNotRunning means no process answers on the socket: none was started,
// or the one that held the state is gone (or is a command that does not
// serve the socket, such as resync).
var ErrNotRunning = errors.New("no running scimsync answers on the control socket")

// ErrCannotRetry is what Client.RetryParked returns when the running
// process cannot retry parked changes while it runs.
var ErrCannotRetry = errors.New("the running scimsync cannot retry parked changes while it runs")

// Failed is a parked change as the API shows it: state.Parked with its ID
// (which the store keeps out of the record's JSON, being its key).
type Failed struct {
	ID uint64 `json:"id"`
	state.Parked
}

// Server serves the API on a unix socket until Close.
type Server struct {
	path string
	ln   net.Listener
	srv  *http.Server
	info os.FileInfo // the socket file as created: Close removes only that one
	done chan struct{}
}

// Listen creates the socket at path with mode 0600 and serves b on it.
//
// A file already at path is handled so that a SIGKILL never blocks the
// next run: a socket nobody answers on (left by a killed run) is replaced;
// a socket a process answers on is left alone and Listen fails, as it does
// for anything that is not a socket (it is not ours to remove).
//
// The socket is made in a private 0700 directory beside path, given its
// mode there, then renamed into place, so it is never reachable with a
// wider mode, even for an instant, whatever the umask.
func Listen(path string, b Backend) (*Server, error) {
	if err := clearStale(path); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".sock-")
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	defer os.RemoveAll(tmp)
	tmpSock := filepath.Join(tmp, "s")
	ln, err := net.Listen("unix", tmpSock)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// The socket file moves away from the name Go would unlink on Close;
	// Server.Close removes it by its final name.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(tmpSock, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Rename(tmpSock, path); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	info, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	s := &Server{path: path, ln: ln, info: info, done: make(chan struct{})}
	s.srv = &http.Server{Handler: handler(b), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// clearStale removes a socket at path that no process answers on.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("control socket %s: the file exists and is not a socket; remove it", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("control socket %s: another process is serving it", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("control socket: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("control socket: removing the stale socket: %w", err)
	}
	return nil
}

// Path returns the socket's file.
func (s *Server) Path() string { return s.path }

// Close stops serving, waits (up to 5 s) for the requests in progress, and
// removes the socket file unless another process has replaced it since.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	if fi, serr := os.Lstat(s.path); serr == nil && os.SameFile(fi, s.info) {
		if rerr := os.Remove(s.path); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

func handler(b Backend) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /failed", func(w http.ResponseWriter, _ *http.Request) {
		ps, err := b.Parked()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, errorBody{err.Error()})
			return
		}
		out := listBody{Failed: make([]Failed, 0, len(ps))}
		for _, p := range ps {
			out.Failed = append(out.Failed, Failed{ID: p.ID, Parked: p})
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /failed/retry", func(w http.ResponseWriter, _ *http.Request) {
		n := b.RetryParked()
		if n < 0 {
			writeJSON(w, http.StatusNotImplemented, errorBody{ErrCannotRetry.Error()})
			return
		}
		writeJSON(w, http.StatusOK, retryBody{Queued: n})
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		sb, ok := b.(StatusBackend)
		if !ok {
			writeJSON(w, http.StatusNotImplemented, errorBody{"the running scimsync does not report its status"})
			return
		}
		st, err := sb.Status()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, errorBody{err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	return mux
}

type listBody struct {
	Failed []Failed `json:"failed"`
}

type retryBody struct {
	Queued int `json:"queued"`
}

type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Client calls the API of the process serving a socket.
type Client struct {
	path string
	hc   *http.Client
}

// NewClient returns a client of the socket at path. It connects on each
// call; a socket with no process behind it gives ErrNotRunning.
func NewClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}
	return &Client{path: path, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// Parked returns the running process's parked changes, oldest first.
func (c *Client) Parked(ctx context.Context) ([]state.Parked, error) {
	var body listBody
	if err := c.call(ctx, http.MethodGet, "/failed", &body); err != nil {
		return nil, err
	}
	out := make([]state.Parked, 0, len(body.Failed))
	for _, f := range body.Failed {
		f.Parked.ID = f.ID
		out = append(out, f.Parked)
	}
	return out, nil
}

// RetryParked asks the running process to retry its parked changes now and
// returns how many it queued (ErrCannotRetry when it cannot).
func (c *Client) RetryParked(ctx context.Context) (int, error) {
	var body retryBody
	if err := c.call(ctx, http.MethodPost, "/failed/retry", &body); err != nil {
		return 0, err
	}
	return body.Queued, nil
}

// Status returns the running process's Status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.call(ctx, http.MethodGet, "/status", &st)
	return st, err
}

func (c *Client) call(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://scimsync"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("%s: %w", c.path, ErrNotRunning)
		}
		return fmt.Errorf("control socket %s: %w", c.path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("control socket %s: %w", c.path, err)
	}
	if resp.StatusCode == http.StatusNotImplemented && path == "/failed/retry" {
		return ErrCannotRetry
	}
	if resp.StatusCode != http.StatusOK {
		var e errorBody
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("the running scimsync: %s", e.Error)
		}
		return fmt.Errorf("the running scimsync: %s %s: %s", method, path, resp.Status)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("the running scimsync: %s %s: %w", method, path, err)
	}
	return nil
}

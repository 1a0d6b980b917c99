package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/scimsync/scimsync/engine/control"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/engine/state"
)

// init adds the command's help text, kept beside the command.
func init() {
	helpText["status"] = `status PIPE [--json]

Shows whether ` + "`scimsync run`" + ` is running for the pipe (pid, since when), the checkpoint,
the resources in the id map per endpoint, the parked changes (count and oldest), when a
change was last applied, the last error, and whether the SCIM service or the directory
is in an outage. While run runs it answers through run's control socket; otherwise it
reads the pipe's state file. Exit status 0, or 2 when the state cannot be read.

The lag is how far the checkpoint is behind the directory's newest change, read
from the directory (a changelog's lastChangeNumber; a syncrepl cookie's CSN against
OpenLDAP's accesslog or contextCSN, or 389-ds's change number): "N changes, S s
behind", where S is the age of the oldest change not applied yet, or "unknown" and
why (a dirsync or ldif source, no checkpoint yet, the directory not answering).
While run runs, a source whose connection to the directory dropped shows as an
outage of "the source" until it has reconnected.`
}

// processStart is when this process started: what status reports as the
// running sync's "since".
var processStart = time.Now()

// pipeStatus is the status command's report: control.Status plus whether
// run is running.
type pipeStatus struct {
	Running bool `json:"running"`
	control.Status
}

func runStatus(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("status", "PIPE", stderr)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	stateDir := stateDirFlag(fs)
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "scimsync status: name one pipe script")
		return exitUsage
	}
	p, _, ok := loadPipe(fs.Arg(0), stderr)
	if !ok {
		return exitUsage
	}
	dir, err := stateDirOf(*stateDir)
	if err != nil {
		fmt.Fprintf(stderr, "scimsync status: %v\n", err)
		return exitUsage
	}
	path := state.Path(dir, p.Name)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out pipeStatus
	st, err := control.NewClient(control.SocketPath(path)).Status(ctx)
	switch {
	case err == nil:
		out = pipeStatus{Running: true, Status: st}
	case errors.Is(err, control.ErrNotRunning):
		if _, serr := os.Stat(path); errors.Is(serr, os.ErrNotExist) {
			fmt.Fprintf(stderr, "scimsync status: no state for pipe %q in %s: it was never run or resynced here\n", p.Name, dir)
			return exitUsage
		}
		store, err := openState(*stateDir, p)
		if err != nil {
			if errors.Is(err, state.ErrLocked) {
				err = fmt.Errorf("%w (a resync or verify of this pipe is running; run serves its status over its control socket)", err)
			}
			fmt.Fprintf(stderr, "scimsync status: %v\n", err)
			return exitUsage
		}
		defer store.Close()
		store.KeepShadows() // status writes nothing to SCIM: run's shadows stay good
		s, err := storeStatus(store)
		if err != nil {
			fmt.Fprintf(stderr, "scimsync status: %v\n", err)
			return exitUsage
		}
		// run is not running: measure the checkpoint on a connection of
		// our own (a few seconds at most; "unknown" when it does not answer)
		lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
		lag, lerr := source.MeasureLag(lctx, p.Source, s.Checkpoint, source.Options{})
		setLag(&s, lag, lerr)
		lcancel()
		out = pipeStatus{Status: s}
	default:
		fmt.Fprintf(stderr, "scimsync status: %v\n", err)
		return exitUsage
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return exitOK
	}
	printStatus(stdout, out)
	return exitOK
}

// storeStatus reads what the state store knows: the checkpoint, the id map
// per endpoint, the parked changes. The running run's backend adds its
// process and health to it.
func storeStatus(s *state.Store) (control.Status, error) {
	var st control.Status
	var err error
	if st.Checkpoint, err = s.Checkpoint(); err != nil {
		return st, err
	}
	st.IDMap = map[string]int{}
	if err := s.Range(func(_ string, m state.Mapping) bool {
		if m.SCIMID != "" {
			st.IDMap[m.Endpoint]++
		}
		return true
	}); err != nil {
		return st, err
	}
	parked, err := s.ListParked()
	if err != nil {
		return st, err
	}
	st.Parked = len(parked)
	var newest time.Time
	for _, p := range parked {
		if st.OldestParked.IsZero() || p.Time.Before(st.OldestParked) {
			st.OldestParked = p.Time
		}
		if p.Time.After(newest) {
			newest, st.LastError = p.Time, p.Error
		}
	}
	return st, nil
}

// Status implements control.StatusBackend for a running run: the store's
// view through its own open store, plus the process and its health.
func (b runnerBackend) Status() (control.Status, error) {
	st, err := storeStatus(b.r.Store)
	if err != nil {
		return st, err
	}
	st.PID, st.Since = os.Getpid(), processStart
	h := b.r.Health()
	st.LastApplied, st.Outage, st.OutageSince = h.LastApplied, h.Outage, h.OutageSince
	if h.Outage != "" {
		st.LastError = h.Outage + " unavailable since " + h.OutageSince.Format(time.RFC3339)
		if h.OutageErr != "" {
			st.LastError += ": " + h.OutageErr
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	lag, lerr := runnerLag(ctx, b.r)
	setLag(&st, lag, lerr)
	cancel()
	s := &b.r.Stats
	st.Counters = map[string]int64{"applied": s.Applied.Load(), "unchanged": s.Unchanged.Load(), "deleted": s.Deleted.Load(),
		"outOfScope": s.OutOfScope.Load(), "dropped": s.Dropped.Load(), "parked": s.Parked.Load(), "healed": s.Healed.Load()}
	return st, nil
}

var _ control.StatusBackend = runnerBackend{}

// setLag puts a measured lag, or why there is none, in st.
func setLag(st *control.Status, lag source.Lag, err error) {
	if err != nil {
		st.LagUnknown = err.Error()
		return
	}
	st.Lag = &control.Lag{Seconds: lag.Seconds}
	if lag.Changes != source.LagUnknown {
		n := lag.Changes
		st.Lag.Changes = &n
	}
}

// lagLine is the lag as status prints it: "N changes, S s behind",
// "changes unknown, S s behind", or "unknown (why)".
func lagLine(s control.Status) string {
	if s.Lag == nil {
		if s.LagUnknown == "" {
			return "unknown"
		}
		return "unknown (" + s.LagUnknown + ")"
	}
	changes := "changes unknown"
	if s.Lag.Changes != nil {
		changes = fmt.Sprintf("%d changes", *s.Lag.Changes)
		if *s.Lag.Changes == 1 {
			changes = "1 change"
		}
	}
	return fmt.Sprintf("%s, %s s behind", changes, strconv.FormatFloat(s.Lag.Seconds, 'f', 1, 64))
}

func printStatus(w io.Writer, s pipeStatus) {
	ago := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return fmt.Sprintf("%s (%s ago)", t.Format(time.RFC3339), time.Since(t).Round(time.Second))
	}
	if s.Running {
		fmt.Fprintf(w, "run:          running, pid %d, since %s\n", s.PID, ago(s.Since))
	} else {
		fmt.Fprintln(w, "run:          not running")
	}
	cp := s.Checkpoint
	if cp == "" {
		cp = "(none: run starts where set-startpoint says, else at the end)"
	}
	fmt.Fprintf(w, "checkpoint:   %s\n", cp)
	fmt.Fprintf(w, "lag:          %s\n", lagLine(s.Status))
	names := make([]string, 0, len(s.IDMap))
	for n := range s.IDMap {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %d", n, s.IDMap[n]))
	}
	fmt.Fprintf(w, "id map:       %s\n", strings.Join(parts, ", "))
	if s.Parked > 0 {
		fmt.Fprintf(w, "parked:       %d, oldest %s\n", s.Parked, ago(s.OldestParked))
	} else {
		fmt.Fprintln(w, "parked:       0")
	}
	if s.Running {
		fmt.Fprintf(w, "last applied: %s\n", ago(s.LastApplied))
		if s.Outage != "" {
			fmt.Fprintf(w, "outage:       %s unavailable since %s\n", s.Outage, ago(s.OutageSince))
		} else {
			fmt.Fprintln(w, "outage:       none")
		}
	}
	if s.LastError != "" {
		fmt.Fprintf(w, "last error:   %s\n", s.LastError)
	}
}

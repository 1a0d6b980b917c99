package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/scimsync/scimsync/engine"
	"github.com/scimsync/scimsync/engine/control"
	"github.com/scimsync/scimsync/engine/logsafe"
	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/state"
	"github.com/scimsync/scimsync/lang"
)

func runFailed(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "list" && args[0] != "retry" {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			fmt.Fprintf(stdout, "Usage: scimsync %s\n", helpText["failed"])
			return exitOK
		}
		fmt.Fprintln(stderr, "scimsync failed: want list or retry: scimsync failed list PIPE, scimsync failed retry PIPE")
		return exitUsage
	}
	verb := args[0]
	fs := newFlags("failed", "list|retry PIPE", stderr)
	stateDir := stateDirFlag(fs)
	logf := logFlags(fs)
	if code, done := parseFlags(fs, args[1:], stdout); done {
		return code
	}
	log, err := logf.logger(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "scimsync failed: %v\n", err)
		return exitUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "scimsync failed %s: name one pipe script\n", verb)
		return exitUsage
	}
	p, _, ok := loadPipe(fs.Arg(0), stderr)
	if !ok {
		return exitFail
	}
	dir, err := stateDirOf(*stateDir)
	if err != nil {
		fmt.Fprintf(stderr, "scimsync failed: %v\n", err)
		return exitFail
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The store is locked while `run` runs: then its control socket answers
	// instead. A run that stops between the two attempts releases the store,
	// so the store is tried once more.
	sock := control.SocketPath(state.Path(dir, p.Name))
	for attempt := 1; ; attempt++ {
		st, err := openState(dir, p)
		if err == nil {
			defer st.Close()
			if verb == "list" {
				st.KeepShadows() // it writes nothing to SCIM: the shadows stay trusted
				return failedList(stdout, stderr, st.ListParked)
			}
			return failedRetry(ctx, p, st, log, stdout, stderr)
		}
		if !errors.Is(err, state.ErrLocked) {
			fmt.Fprintf(stderr, "scimsync failed: %v\n", err)
			return exitFail
		}
		c := control.NewClient(sock)
		code := exitNotRunning
		if verb == "list" {
			code = failedList(stdout, stderr, func() ([]state.Parked, error) { return c.Parked(ctx) })
		} else if n, err := c.RetryParked(ctx); !errors.Is(err, control.ErrNotRunning) {
			code = failedRetried(n, err, stdout, stderr)
		}
		if code != exitNotRunning {
			return code
		}
		if attempt == 2 {
			fmt.Fprintf(stderr, "scimsync failed %s: %s: %v, and no running `scimsync run` answers on %s: "+
				"another command (resync, set-startpoint) has it open; try again when it is done\n",
				verb, state.Path(dir, p.Name), state.ErrLocked, sock)
			return exitFail
		}
	}
}

// exitNotRunning means a control socket nobody answers on; it is never
// an exit status.
const exitNotRunning = -1

// failedList prints the parked changes, read from the store or from the
// running process: the same output either way.
func failedList(stdout, stderr io.Writer, list func() ([]state.Parked, error)) int {
	parked, err := list()
	if errors.Is(err, control.ErrNotRunning) {
		return exitNotRunning
	}
	if err != nil {
		fmt.Fprintf(stderr, "scimsync failed list: %v\n", err)
		return exitFail
	}
	for _, pk := range parked {
		fmt.Fprintf(stdout, "%s\t%s\tclass %s\t%d attempts\t%s\n", pk.Time.Format(time.RFC3339),
			logsafe.Cap(pk.DN, logsafe.MaxValue), pk.Class, pk.Attempts, logsafe.Cap(pk.Error, logsafe.MaxValue))
	}
	fmt.Fprintf(stdout, "%d failed changes\n", len(parked))
	return exitOK
}

// failedRetry applies the parked changes itself, the store being free.
func failedRetry(ctx context.Context, p *lang.Pipe, st *state.Store, log *slog.Logger, stdout, stderr io.Writer) int {
	client, err := scim.NewClient(p.SCIM, scim.WithLogger(log))
	if err != nil {
		fmt.Fprintf(stderr, "scimsync failed: %v\n", err)
		return exitFail
	}
	entries, err := sourceEntries(ctx, p, log)
	if err != nil {
		// the parked entries cannot be read again: they fail again, for later
		log.Warn("cannot read the source's entries: parked entries stay parked", "error", err.Error())
		entries = entryReaders{close: func() {}}
	}
	defer entries.close()
	r := &engine.Runner{Pipe: p, Dest: &engine.Destination{Client: client, Pipe: p, Log: log, Shadows: engine.NewShadows(st)},
		Store: st, Log: log, Entry: entries.byDN, EntryByID: entries.byID}
	okN, failedN, err := r.RetryParked(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "scimsync failed retry: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "%d applied, %d still failing\n", okN, failedN)
	if failedN > 0 {
		return exitFail
	}
	return exitOK
}

// failedRetried reports the answer of a running `run` asked to retry its
// parked changes: it applies them itself, as its own workers, so that the
// retries keep their entries' order with the changes it is applying.
func failedRetried(n int, err error, stdout, stderr io.Writer) int {
	if errors.Is(err, control.ErrCannotRetry) {
		fmt.Fprintln(stderr, "scimsync failed retry: the running `scimsync run` cannot retry parked changes while it runs: stop it, then run `scimsync failed retry` again")
		return exitFail
	}
	if err != nil {
		fmt.Fprintf(stderr, "scimsync failed retry: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "%d parked changes queued for a retry by the running `scimsync run`: its log says how each goes; `scimsync failed list` shows what still fails\n", n)
	return exitOK
}

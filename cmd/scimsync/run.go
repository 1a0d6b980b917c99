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

	"github.com/spf13/pflag"

	"github.com/scimsync/scimsync/engine"
	"github.com/scimsync/scimsync/engine/control"
	"github.com/scimsync/scimsync/engine/logsafe"
	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/engine/state"
	"github.com/scimsync/scimsync/lang"
)

// stateDirFlag adds --state-dir.
func stateDirFlag(fs *pflag.FlagSet) *string {
	return fs.String("state-dir", "", "where the pipe's checkpoint, id map and failed changes are kept (default $XDG_STATE_HOME/scimsync, or ~/.local/state/scimsync)")
}

// stateDirOf is the state directory: --state-dir, or the default.
func stateDirOf(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	return state.DefaultDir()
}

// openState opens the pipe's state store.
func openState(dir string, p *lang.Pipe) (*state.Store, error) {
	dir, err := stateDirOf(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	warnLooseStateDir(dir) // statedir.go
	return state.Open(dir, p.Name)
}

// loadWithState loads a pipe script and opens its state store, reporting
// problems to stderr as the command named cmd.
func loadWithState(cmd, path, stateDir string, stderr io.Writer) (*lang.Pipe, *state.Store, bool) {
	p, _, ok := loadPipe(path, stderr)
	if !ok {
		return nil, nil, false
	}
	st, err := openState(stateDir, p)
	if err != nil {
		fmt.Fprintf(stderr, "scimsync %s: %v\n", cmd, err)
		return nil, nil, false
	}
	return p, st, true
}

// newLogger logs text on a terminal and JSON otherwise.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if f, ok := logsafe.File(w); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return slog.New(logsafe.NewHandler(slog.NewTextHandler(w, opts)))
		}
	}
	return slog.New(logsafe.NewHandler(slog.NewJSONHandler(w, opts)))
}

func runRun(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("run", "PIPE", stderr)
	once := fs.Bool("once", false, "apply every change available now, then exit (exit status 1 when changes remain parked)")
	workers := fs.Int("workers", 4, "entries applied in parallel (changes to one entry stay in order)")
	rate := fs.Float64("rate", 0, "at most this many requests per second to the SCIM service (0: no limit)")
	shadows := fs.Bool("shadows", true, "PATCH from what this engine last wrote to each resource, without reading it first: one request per change (--shadows=false reads each resource before changing it)")
	startupTimeout := fs.Duration("startup-timeout", 0, "how long to wait for a directory that is down at start-up (0: as long as it takes; default 5m with --once)")
	stateDir := stateDirFlag(fs)
	verbose := fs.BoolP("verbose", "v", false, "also log out-of-scope changes (--log-level debug)")
	logf := logFlags(fs)
	listen := listenFlag(fs)
	guardf := runGuardFlags(fs)
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "scimsync run: name one pipe script (the embedded demo never writes to a SCIM service)")
		return exitUsage
	}
	if *rate < 0 {
		fmt.Fprintln(stderr, "scimsync run: --rate must be 0 or more")
		return exitUsage
	}
	if *startupTimeout < 0 {
		fmt.Fprintln(stderr, "scimsync run: --startup-timeout must be 0 or more")
		return exitUsage
	}
	if err := guardf.check(); err != nil {
		fmt.Fprintf(stderr, "scimsync run: %v\n", err)
		return exitUsage
	}
	if !fs.Changed("startup-timeout") && *once {
		// A one-shot run is usually scheduled: bounded, so that a directory
		// down for good fails the job instead of piling runs up.
		*startupTimeout = defaultOnceStartupTimeout
	}
	p, st, ok := loadWithState("run", fs.Arg(0), *stateDir, stderr)
	if !ok {
		return exitFail
	}
	defer st.Close()
	if *verbose {
		*logf.level = "debug"
	}
	log, err := logf.logger(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "scimsync run: %v\n", err)
		return exitUsage
	}
	mon, err := startMonitor(*listen, st, log)
	if err != nil {
		fmt.Fprintf(stderr, "scimsync run: %v\n", err)
		return exitFail
	}
	defer mon.close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start, err := st.Checkpoint()
	if err != nil {
		fmt.Fprintf(stderr, "scimsync run: %v\n", err)
		return exitFail
	}
	if fs.Changed("rate") {
		p.SCIM.Rate = *rate // over the script's rate; the client paces every worker together
	}
	client, err := scim.NewClient(p.SCIM, append(mon.clientOptions(), scim.WithLogger(log))...)
	if err != nil {
		fmt.Fprintf(stderr, "scimsync run: %v\n", err)
		return exitFail
	}
	// The shadows are kept right whether or not they are read (--shadows).
	dest := &engine.Destination{Client: client, Pipe: p, Log: log, Shadows: engine.NewShadows(st)}

	// The directory may be down at start-up: wait for it, as a running
	// source waits when the connection drops.
	wait := newSourceWait(log, *startupTimeout)
	var src source.Source
	err = wait.do(ctx, func(ctx context.Context) (err error) {
		src, err = source.Open(ctx, p.Source, start, source.Options{Logger: log, Once: *once, KnownDN: st.KnownDN})
		return err
	})
	if err != nil {
		return startupFailed(stderr, err)
	}
	defer src.Close()
	var entries entryReaders
	err = wait.do(ctx, func(ctx context.Context) (err error) {
		entries, err = sourceEntries(ctx, p, log)
		return err
	})
	if err != nil {
		return startupFailed(stderr, err)
	}
	defer entries.close()
	r := &engine.Runner{Pipe: p, Dest: dest, Store: st, Source: src, Workers: *workers, Log: log,
		Entry: entries.byDN, EntryByID: entries.byID, Deletes: guardf.window(p, st), ReadShadows: *shadows}
	mon.started(r, client)

	// failed list and failed retry reach this run through its control
	// socket while it holds the store. Without one the sync still runs.
	if srv, err := control.Listen(control.SocketPath(st.Path()), runnerBackend{r}); err != nil {
		log.Warn("no control socket: `scimsync failed` cannot reach this run while it runs", "error", err.Error())
	} else {
		defer srv.Close()
	}

	began := time.Now()
	err = r.Run(ctx)
	log.Info("stopped", "applied", r.Stats.Applied.Load(), "unchanged", r.Stats.Unchanged.Load(),
		"deleted", r.Stats.Deleted.Load(), "outOfScope", r.Stats.OutOfScope.Load(), "dropped", r.Stats.Dropped.Load(),
		"parked", r.Stats.Parked.Load(), "seconds", time.Since(began).Seconds())
	if err != nil {
		fmt.Fprintf(stderr, "scimsync run: %v\n", err)
		if errors.Is(err, engine.ErrTooManyDeletes) {
			return exitDeletesHeld
		}
		if errors.Is(err, source.ErrTrimmed) {
			fmt.Fprintln(stderr, "scimsync run: run `scimsync resync` to load everything again, then `scimsync set-startpoint --end`")
		}
		return exitFail
	}
	if *once && ctx.Err() == nil {
		// A scheduled --once run must not look successful while changes
		// wait for someone to notice them.
		parked, err := st.ListParked()
		if err != nil {
			fmt.Fprintf(stderr, "scimsync run: %v\n", err)
			return exitFail
		}
		if n := len(parked); n > 0 {
			what := "changes remain"
			if n == 1 {
				what = "change remains"
			}
			fmt.Fprintf(stderr, "scimsync run: %d %s parked; see `scimsync failed list %s`\n", n, what, fs.Arg(0))
			return exitFail
		}
	}
	return exitOK
}

// defaultOnceStartupTimeout bounds how long `run --once` waits for a
// directory that is down at start-up, unless --startup-timeout says.
const defaultOnceStartupTimeout = 5 * time.Minute

// startupFailed reports why run could not open its source.
func startupFailed(stderr io.Writer, err error) int {
	if errors.Is(err, context.Canceled) {
		return exitOK // stopped (SIGINT/SIGTERM) while waiting for the source
	}
	fmt.Fprintf(stderr, "scimsync run: %v\n", err)
	return exitFail
}

func runSetStartpoint(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("set-startpoint", "PIPE", stderr)
	beginning := fs.Bool("beginning", false, "from the oldest change the source still has")
	end := fs.Bool("end", false, "from the next change made (the usual choice before a resync)")
	number := fs.Int64("change-number", 0, "from change number N on (changelog; LDIF record N)")
	rewind := fs.String("rewind", "", "from changes made in the last duration, e.g. 2h30m, 90s, 1d (changelog)")
	stateDir := stateDirFlag(fs)
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "scimsync set-startpoint: name one pipe script")
		return exitUsage
	}
	var spec source.StartSpec
	n := 0
	if *beginning {
		spec.Kind, n = source.StartBeginning, n+1
	}
	if *end {
		spec.Kind, n = source.StartEnd, n+1
	}
	if fs.Changed("change-number") {
		if *number < 1 {
			fmt.Fprintln(stderr, "scimsync set-startpoint: --change-number must be 1 or more")
			return exitUsage
		}
		spec.Kind, spec.ChangeNumber, n = source.StartChangeNumber, *number, n+1
	}
	if *rewind != "" {
		d, err := parseRewind(*rewind)
		if err != nil {
			fmt.Fprintf(stderr, "scimsync set-startpoint: --rewind: %v\n", err)
			return exitUsage
		}
		spec.Kind, spec.Rewind, n = source.StartRewind, d, n+1
	}
	if n != 1 {
		fmt.Fprintln(stderr, "scimsync set-startpoint: give exactly one of --beginning, --end, --change-number N, --rewind DURATION")
		return exitUsage
	}
	p, st, ok := loadWithState("set-startpoint", fs.Arg(0), *stateDir, stderr)
	if !ok {
		return exitFail
	}
	defer st.Close()
	st.KeepShadows() // it writes nothing to SCIM: the shadows stay trusted
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pos, err := source.StartPoint(ctx, p.Source, spec, source.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "scimsync set-startpoint: %v\n", err)
		return exitFail
	}
	if err := st.SetCheckpoint(pos); err != nil {
		fmt.Fprintf(stderr, "scimsync set-startpoint: %v\n", err)
		return exitFail
	}
	shown := pos
	if shown == "" {
		shown = "the beginning"
	}
	fmt.Fprintf(stdout, "%s: start point set to %s (state in %s)\n", p.Name, shown, st.Path())
	return exitOK
}

// parseRewind reads a duration as PingDataSync's --startpoint-rewind takes
// it: Go durations, plus d for days (2h30m, 90s, 1d12h, 500ms).
func parseRewind(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("empty duration: want one such as 2h30m or 1d")
	}
	var days time.Duration
	if i := indexDays(s); i >= 0 {
		var n int
		if _, err := fmt.Sscanf(s[:i], "%d", &n); err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a duration such as 2h30m or 1d", s)
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
	}
	if s == "" {
		return days, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration such as 2h30m or 1d", s)
	}
	return days + d, nil
}

func indexDays(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == 'd' {
			return i
		}
		if s[i] < '0' || s[i] > '9' {
			return -1
		}
	}
	return -1
}

// entryReaders are how `run` and `failed retry` read entries from the
// source, beside its change stream.
type entryReaders struct {
	// byDN reads the entries that references (group members, managers)
	// name and that the id map does not know, and parked entries of a
	// source without identities.
	byDN func(ctx context.Context, dn string) (*lang.Entry, error)
	// byID reads an entry by its source identity wherever it is now (a
	// parked entry read again); nil for an LDIF source.
	byID  func(ctx context.Context, id string) (*lang.Entry, error)
	close func()
}

// sourceEntries returns the entryReaders of a pipe's source: an LDIF
// source's file in its final state, or the source's directory, read
// through a source.Reader (entries outside the source's bases are left out
// when read by DN). Each entry's class then says whether it is in scope,
// and its lookup finds it in SCIM. Call close when done.
func sourceEntries(ctx context.Context, p *lang.Pipe, log *slog.Logger) (entryReaders, error) {
	if p.Source.Kind == "ldif" {
		f, err := os.Open(p.Source.File)
		if err != nil {
			return entryReaders{}, err
		}
		_, dir, err := source.ReadLDIF(f)
		f.Close()
		if err != nil {
			return entryReaders{}, fmt.Errorf("%s:%v", p.Source.File, err)
		}
		return entryReaders{byDN: func(_ context.Context, dn string) (*lang.Entry, error) { return dir.Get(dn), nil }, close: func() {}}, nil
	}
	rd, err := source.OpenReader(ctx, p.Source, source.Options{Logger: log})
	if err != nil {
		return entryReaders{}, err
	}
	return entryReaders{
		byDN: func(ctx context.Context, dn string) (*lang.Entry, error) {
			if !rd.InScope(dn) {
				return nil, nil
			}
			return rd.Entry(ctx, dn)
		},
		byID:  rd.EntryByID,
		close: func() { rd.Close() },
	}, nil
}

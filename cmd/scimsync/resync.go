package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tidwall/pretty"

	"github.com/scimsync/scimsync/engine"
	"github.com/scimsync/scimsync/engine/logsafe"
	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/engine/state"
	"github.com/scimsync/scimsync/lang"
)

func runResync(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("resync", "[PIPE]", stderr)
	dryRun := fs.Bool("dry-run", false, "send nothing: print each request that would be sent, then the summary")
	stateDir := stateDirFlag(fs)
	dnFile := fs.String("dn-file", "", "resync only the DNs listed in this file (dn: lines; the --failed-dns format)")
	filterFlag := fs.String("filter", "", "resync only the entries that match this LDAP filter (RFC 4515), e.g. '(departmentNumber=42)'")
	failedFile := fs.String("failed-dns", "", "write the DNs that failed to this file, in the --dn-file format")
	rate := fs.Float64("rate", 0, "at most this many requests per second (0: no limit)")
	rateFile := fs.String("rate-file", "", "a file holding the rate limit, re-read every second while running")
	createsOnly := fs.Bool("creates-only", false, "create missing resources; leave existing ones alone")
	updatesOnly := fs.Bool("updates-only", false, "update existing resources; create none")
	exclude := fs.StringArray("exclude-attr", nil, "leave this SCIM attribute out (repeatable), e.g. password")
	workers := fs.Int("workers", 4, "entries processed in parallel")
	noList := fs.Bool("no-list", false, "look each entry up at the SCIM service instead of listing the endpoints first (the script's scim { list = false } does too; the flag wins when given)")
	listMax := fs.Int("list-max", engine.DefaultListMax, "do not list an endpoint holding more resources than this (each is held in memory): look its entries up instead")
	progressEvery := fs.Duration("progress-interval", 10*time.Second, "how often a progress line is logged when not on a terminal")
	logf := logFlags(fs)
	guardf := guardFlags(fs, "the resources of the id map that the source's entries cannot account for are")
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(stderr, "scimsync resync: name one pipe script")
		return exitUsage
	}
	if *createsOnly && *updatesOnly {
		fmt.Fprintln(stderr, "scimsync resync: --creates-only and --updates-only exclude each other")
		return exitUsage
	}
	if *rate < 0 {
		fmt.Fprintln(stderr, "scimsync resync: --rate must be 0 or more")
		return exitUsage
	}
	if err := guardf.check(); err != nil {
		fmt.Fprintf(stderr, "scimsync resync: %v\n", err)
		return exitUsage
	}
	if *listMax < 1 {
		fmt.Fprintln(stderr, "scimsync resync: --list-max must be 1 or more (--no-list lists nothing)")
		return exitUsage
	}
	// resync reports through its summary: only warnings are logged unless
	// --log-level says otherwise, as text unless --log-format does.
	if !fs.Changed("log-level") {
		*logf.level = "warn"
	}
	if !fs.Changed("log-format") {
		*logf.format = "text"
	}
	logger, err := logf.logger(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "scimsync resync: %v\n", err)
		return exitUsage
	}
	path := fs.Arg(0)
	demo := path == ""
	if demo {
		// The demo's SCIM block reads SCIM_URL and SCIM_TOKEN: set for a
		// real service, a resync of it would load 22 demo users into it.
		// It sends nothing at all, not even a lookup: the same output on
		// every machine, whatever listens on the demo's URL.
		*dryRun = true
		fmt.Fprintln(stderr, "scimsync resync: no pipe script named: a dry run of the embedded demo pipe (scripts/demo.pipe), every entry shown as a create; the demo never contacts a service: name a pipe script to send requests")
	}
	p, opts, ok := loadPipe(path, stderr)
	if !ok {
		return exitFail
	}
	filter := strings.TrimSpace(*filterFlag)
	if _, err := engine.SearchFilter(filter); err != nil {
		fmt.Fprintf(stderr, "scimsync resync: --filter: %v\n", err)
		return exitUsage
	}
	sigCtx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// ctx is also cancelled by the first answer that refuses the
	// credentials: every other entry would be refused the same way.
	ctx, cancel := context.WithCancel(sigCtx)
	defer cancel()
	var authErr error // the first 401 or 403, under outMu

	// --dn-file: only the listed entries.
	var dns []string
	if *dnFile != "" {
		df, err := os.Open(*dnFile)
		if err != nil {
			fmt.Fprintf(stderr, "scimsync resync: %v\n", err)
			return exitFail
		}
		dns, err = engine.ReadDNFile(df)
		df.Close()
		if err != nil {
			fmt.Fprintf(stderr, "scimsync resync: %s: %v\n", *dnFile, err)
			return exitFail
		}
		if dns == nil {
			dns = []string{}
		}
	}

	// The source: an LDIF file read into memory and applied in order, or
	// the directory itself, searched page by page.
	var entries engine.Entries
	if p.Source.Kind == "ldif" {
		f, err := openFile(opts, p.Source.File)
		if err != nil {
			fmt.Fprintf(stderr, "scimsync resync: %v\n", err)
			return exitFail
		}
		_, dir, err := source.ReadLDIF(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "scimsync resync: %s:%v\n", p.Source.File, err)
			return exitFail
		}
		entries = &engine.DirectoryEntries{Dir: dir, DNs: dns}
		if filter != "" {
			match, err := engine.MatchFilter(filter)
			if err != nil {
				fmt.Fprintf(stderr, "scimsync resync: --filter: %v\n", err)
				return exitUsage
			}
			entries = &engine.FilteredEntries{Src: entries, Match: match}
		}
	} else {
		le, err := engine.NewLDAPEntries(ctx, p, engine.LDAPOptions{Filter: filter, DNs: dns, Logger: logger,
			Source: source.Options{Logger: logger}})
		if err != nil {
			fmt.Fprintf(stderr, "scimsync resync: the %s source: %v\n", p.Source.Kind, err)
			return exitFail
		}
		defer le.Close()
		entries = le
	}

	// The destination.
	// Every request sent, reads and retries included, for the summary
	// (Stats.Requests counts the writes).
	var sent atomic.Int64
	client, err := scim.NewClient(p.SCIM, scim.WithLogger(logger),
		scim.WithObserver(func(string, int, time.Duration) { sent.Add(1) }))
	if err != nil {
		fmt.Fprintf(stderr, "scimsync resync: %v\n", err)
		return exitFail
	}
	dest := &engine.Destination{Client: client, Pipe: p, SkipCreates: *updatesOnly, SkipUpdates: *createsOnly, Log: logger}
	var curRate atomic.Value
	curRate.Store(*rate)
	if *rateFile != "" {
		if err := readRate(*rateFile, &curRate); err != nil {
			fmt.Fprintf(stderr, "scimsync resync: --rate-file: %v\n", err)
			return exitUsage
		}
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if err := readRate(*rateFile, &curRate); err != nil {
						logger.Warn("resync: --rate-file unreadable; keeping the last rate", "err", err)
					}
				}
			}
		}()
	}
	dest.Limiter = &engine.RateLimiter{Rate: func() float64 { return curRate.Load().(float64) }}
	var outMu sync.Mutex
	if *dryRun {
		dest.DryRun = func(method, path string, body []byte) {
			outMu.Lock()
			defer outMu.Unlock()
			fmt.Fprintf(stdout, "%s %s\n", method, path)
			if len(body) > 0 {
				// The request carries the password; the output shows (withheld).
				stdout.Write(pretty.Pretty(scim.Withhold(body, secret.Scrubber{})))
			}
			fmt.Fprintln(stdout)
		}
		if demo {
			dest.Offline = true
		} else if !reachable(ctx, p.SCIM) {
			fmt.Fprintf(stderr, "scimsync resync: dry run: the SCIM service at %s is not reachable: every entry is shown as a create\n", p.SCIM.URL)
			dest.Offline = true
		}
	}
	refs := &engine.RefResolver{Ctx: ctx, Pipe: p, Dest: dest, Mode: lang.Resync, Placeholder: *dryRun,
		Entry: entries.Get}

	var failedW io.Writer
	if *failedFile != "" {
		// 0600: the DNs that failed are the directory's data, for the operator only.
		ff, err := os.OpenFile(*failedFile, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err == nil {
			if err = ff.Chmod(0o600); err != nil { // a file that was already there keeps no looser mode
				ff.Close()
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "scimsync resync: %v\n", err)
			return exitFail
		}
		defer ff.Close()
		failedW = ff
	}
	stats := engine.NewStats(entries)
	prog := newProgress(stderr, *progressEvery)
	var tally classTally
	ropts := engine.ResyncOptions{
		Stats:   stats,
		Workers: *workers,
		Exclude: *exclude,
		Refs:    refs,
		Failed: func(dn string, err error) {
			outMu.Lock()
			defer outMu.Unlock()
			if authErr != nil {
				return // stopping: the entries in flight fail for that reason
			}
			if authRefused(err) {
				authErr = err
				cancel()
				return
			}
			prog.clear()
			// The DN escaped: one with a line break in it (LDAP allows
			// any character in a value) must not forge a second line.
			fmt.Fprintf(stderr, "failed: %s: %v\n", logsafe.Escape(dn), err)
			if failedW != nil {
				_ = engine.WriteDN(failedW, dn, err.Error())
			}
		},
	}
	if !*dryRun {
		// The id map: what each entry became, so that a later run finds
		// renamed and deleted entries' resources.
		store, err := openState(*stateDir, p)
		if err != nil {
			fmt.Fprintf(stderr, "scimsync resync: %v\n", err)
			return exitFail
		}
		defer store.Close()
		// What resync writes keeps the shadows run PATCHes from right
		// (engine/shadow.go): they survive it instead of being dropped.
		dest.Shadows = engine.NewShadows(store)
		if filter == "" && dns == nil && !guardf.guard(p).Allow {
			// A whole resync: a source that lost most of its entries (a
			// base DN pointed at an empty subtree) stops it here.
			if err := engine.ResyncPrecheck(guardf.guard(p), entries.Count(), store); err != nil {
				fmt.Fprintf(stderr, "scimsync resync: %v\n", err)
				return exitFail
			}
		}
		ropts.Applied = func(e *lang.Entry, class string, a engine.Applied) {
			tally.add(class, a.Outcome)
			if a.ID == "" || a.Endpoint == nil {
				return
			}
			key := source.Identity(e, p.Source)
			if key == "" {
				key = "dn:" + source.NormalizeDN(e.DN)
			}
			m := state.Mapping{Endpoint: a.Endpoint.Name, SCIMID: a.ID, DN: e.DN, Class: class}
			if err := store.Put(key, m); err != nil {
				outMu.Lock()
				fmt.Fprintf(stderr, "scimsync resync: saving the id map: %v\n", err)
				outMu.Unlock()
			}
		}
	}
	if ropts.Applied == nil {
		ropts.Applied = func(_ *lang.Entry, class string, a engine.Applied) { tally.add(class, a.Outcome) }
	}
	// Writes a killed process may have left in flight land before SCIM is
	// read (engine/doubt.go); resync itself waits again, for nothing.
	if err := dest.Settle(ctx); err != nil {
		summary(stderr, stats, sent.Load(), *dryRun, "resync interrupted")
		return 130
	}
	list := !p.NoList // scim { list = false }
	if fs.Changed("no-list") {
		list = !*noList
	}
	if list && !dest.Offline {
		// Each endpoint written to is read first, in pages (one request
		// per page of up to 200), and lookups are answered from it: a
		// resync where nothing differs then sends little beyond the pages.
		// An endpoint that cannot be listed, or larger than --list-max,
		// or whose pages would outnumber the entries, is looked up per entry.
		// Each listed resource is held without what no reader uses (meta,
		// schemas, the attributes the pipe does not manage).
		ls, err := dest.ListAll(ctx, writtenEndpoints(p), engine.ListOptions{Max: *listMax, Want: stats.Total, Log: logger, Who: "resync"})
		if authRefused(err) {
			fmt.Fprintf(stderr, "scimsync resync: %s\n", authAdvice(p.SCIM, err))
			summary(stderr, stats, sent.Load(), *dryRun, "resync stopped")
			return exitFail
		}
		if err != nil {
			summary(stderr, stats, sent.Load(), *dryRun, "resync interrupted")
			return 130
		}
		dest.Listings = ls
	}
	done := make(chan struct{})
	var st *engine.Stats
	go func() {
		defer close(done)
		st, err = engine.Resync(ctx, p, dest, entries, ropts)
	}()
	prog.run(done, stats, &outMu)
	<-done
	outMu.Lock()
	refused := authErr
	outMu.Unlock()
	if refused != nil {
		prog.clear()
		fmt.Fprintf(stderr, "scimsync resync: %s\n", authAdvice(p.SCIM, refused))
		summary(stderr, st, sent.Load(), *dryRun, "resync stopped")
		return exitFail
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "scimsync resync: %v\n", err)
	}
	what := "resync"
	if sigCtx.Err() != nil {
		what = "resync interrupted"
	}
	summary(stderr, st, sent.Load(), *dryRun, what)
	tally.print(stderr, classNames(p))
	if st.Failed.Load() > 0 || (err != nil && !errors.Is(err, context.Canceled)) {
		return exitFail
	}
	if sigCtx.Err() != nil {
		return 130
	}
	return exitOK
}

// writtenEndpoints are the endpoints some class sends to, in the script's order.
func writtenEndpoints(p *lang.Pipe) []*lang.Endpoint {
	var out []*lang.Endpoint
	for _, ep := range p.Endpoints {
		for _, cl := range p.Classes {
			if slices.Contains(cl.Endpoints(p), ep) {
				out = append(out, ep)
				break
			}
		}
	}
	return out
}

// authRefused reports whether err is the SCIM service refusing the
// credentials (401) or their rights (403): a resync then stops at once,
// since every other request would be refused too.
func authRefused(err error) bool {
	return scim.IsStatus(err, http.StatusUnauthorized) || scim.IsStatus(err, http.StatusForbidden)
}

// authAdvice is the one message a resync stopped by a 401 or 403 prints:
// what was refused and what to check. It names no secret: not the token,
// not the password, not the request's filter.
func authAdvice(cfg scim.Config, err error) string {
	status := http.StatusUnauthorized
	if scim.IsStatus(err, http.StatusForbidden) {
		status = http.StatusForbidden
	}
	head := fmt.Sprintf("stopped: the SCIM service at %s answered %d %s", cfg.URL, status, http.StatusText(status))
	var creds string
	switch cfg.Auth {
	case scim.AuthBearer:
		creds = "the token"
	case scim.AuthBasic:
		creds = "the user name and password"
	case scim.AuthOAuth2:
		creds = "the OAuth2 client id, secret and scopes"
	default:
		return head + ": it wants credentials and the pipe's scim block sends none; give it a token (or user and password, or an OAuth2 client) and its auth setting"
	}
	if status == http.StatusForbidden {
		return fmt.Sprintf("%s: the credentials were accepted but may not do this; check the rights granted to %s (auth = %q in the pipe's scim block)",
			head, creds, cfg.Auth)
	}
	return fmt.Sprintf("%s: it refused the credentials; check %s (and the environment variables the pipe's scim block reads them from) and the auth setting (auth = %q)",
		head, creds, cfg.Auth)
}

// reachable asks the SCIM service for its configuration, briefly: a
// connection error means a dry run goes on without it.
func reachable(ctx context.Context, cfg scim.Config) bool {
	cfg.MaxAttempts = 1
	c, err := scim.NewClient(cfg, scim.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err = c.Do(ctx, http.MethodGet, "/ServiceProviderConfig", nil)
	var te *scim.TransportError
	var re *scim.RetryError
	return !errors.As(err, &te) && !(errors.As(err, &re) && errors.As(re.Err, &te)) && !errors.Is(err, context.DeadlineExceeded)
}

// readRate reads a --rate-file: one number, requests per second.
func readRate(path string, into *atomic.Value) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	r, err := strconv.ParseFloat(strings.TrimSpace(string(data)), 64)
	if err != nil || r < 0 {
		return fmt.Errorf("%s: want one number of requests per second", path)
	}
	into.Store(r)
	return nil
}

// summary prints the last line of a resync; what is "resync", "resync
// interrupted" or "resync stopped"; sent counts every request sent, the
// reads (listing pages, lookups) included.
func summary(w io.Writer, st *engine.Stats, sent int64, dryRun bool, what string) {
	el := time.Since(st.Start)
	done := st.Done.Load()
	rate := float64(done) / el.Seconds()
	fmt.Fprintf(w, "%s: %d entries in %s (%.0f/s): %d created, %d updated, %d unchanged, %d skipped, %d out of scope, %d failed; %d write requests",
		what, done, el.Round(time.Millisecond), rate, st.Created.Load(), st.Updated.Load(), st.Unchanged.Load(),
		st.Skipped.Load(), st.OutOfScope.Load(), st.Failed.Load(), st.Requests.Load())
	if dryRun {
		fmt.Fprint(w, " shown (dry run: nothing was sent)")
	} else {
		fmt.Fprintf(w, ", %d requests in all", sent)
	}
	fmt.Fprintln(w)
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/scimsync/scimsync/engine"
	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/lang"
)

// init adds the command's help text, kept beside the command.
func init() {
	helpText["verify"] = `verify PIPE [--json] [--repair] [--endpoint NAME] [--max-deletes N]

Compares what the SCIM service holds with the mapping of every entry of the
directory, per endpoint, and reports:
  missing    entries in scope with no resource
  differing  resources whose managed attributes differ (with the PATCH that fixes it;
             group members missing and extra)
  orphans    resources the pipe created or adopted (its id map) whose entry is gone or out of scope
  unmanaged  resources the pipe does not know: counted (listed with --json), never touched
Only managed attributes count. The SCIM side is read by listing each endpoint in pages,
not one lookup per entry (lookups where the service does not list).
--repair applies the fixes as run would (orphans per the class's onDelete / onLeave),
after the mass-delete guard allows the deletes.
Exit status: 0 in sync, 1 drift found (after --repair: drift left), 2 errors.`
}

// verifyShown is how many items of each kind the human report shows.
const verifyShown = 10

func runVerify(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("verify", "PIPE", stderr)
	asJSON := fs.Bool("json", false, "print the whole report as JSON: every item, for scripts and dashboards")
	repair := fs.Bool("repair", false, "apply the fixes: create the missing, PATCH the differing, delete or deactivate the orphans")
	endpoints := fs.StringArray("endpoint", nil, "verify only this endpoint (by its name in the script; repeatable)")
	maxDeletes := fs.Int("max-deletes", 0, fmt.Sprintf("with --repair, stop before deleting when more than this many orphans would go (default %d; -1: no count limit)", engine.DefaultMaxDeletes))
	maxPercent := fs.Float64("max-deletes-percent", 0, fmt.Sprintf("with --repair, stop when the deletes are more than this share of the id map (default %g; -1: none)", engine.DefaultMaxDeletesPercent))
	allow := fs.Bool("allow-deletes", false, "let --repair delete however many orphans there are")
	show := fs.Int("show", verifyShown, "items of each kind shown in the human report")
	pageSize := fs.Int("page-size", 200, "resources per listing page")
	stateDir := stateDirFlag(fs)
	logf := logFlags(fs)
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "scimsync verify: name one pipe script")
		return exitUsage
	}
	log, err := logf.logger(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "scimsync verify: %v\n", err)
		return exitUsage
	}
	p, st, ok := loadWithState("verify", fs.Arg(0), *stateDir, stderr)
	if !ok {
		return exitUsage
	}
	defer st.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	entries, closeEntries, err := verifyEntries(ctx, p, log)
	if err != nil {
		fmt.Fprintf(stderr, "scimsync verify: the %s source: %v\n", p.Source.Kind, err)
		return exitUsage
	}
	defer closeEntries()
	client, err := scim.NewClient(p.SCIM, scim.WithLogger(log))
	if err != nil {
		fmt.Fprintf(stderr, "scimsync verify: %v\n", err)
		return exitUsage
	}
	// --repair's writes keep run's shadows right (engine/shadow.go).
	dest := &engine.Destination{Client: client, Pipe: p, Log: log, Shadows: engine.NewShadows(st)}
	rep, err := engine.Verify(ctx, p, dest, entries, engine.VerifyOptions{
		Endpoints: *endpoints, PageSize: *pageSize, Store: st, Repair: *repair, Log: log,
		Guard: flagsOverScript(fs, p, *maxDeletes, *maxPercent, *allow),
	})
	if err != nil && rep == nil {
		fmt.Fprintf(stderr, "scimsync verify: %v\n", err)
		return exitUsage
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		printVerify(stdout, rep, *show)
	}
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "scimsync verify: %v\n", err)
		return exitUsage
	case len(rep.Errors) > 0:
		for i, e := range rep.Errors {
			if i == *show {
				fmt.Fprintf(stderr, "scimsync verify: … and %d more errors\n", len(rep.Errors)-i)
				break
			}
			fmt.Fprintf(stderr, "scimsync verify: %s\n", e)
		}
		return exitUsage
	case rep.Drifted():
		return exitFail
	}
	return exitOK
}

// verifyEntries reads the source as resync does: an LDIF file in memory, or
// the directory in pages.
func verifyEntries(ctx context.Context, p *lang.Pipe, log *slog.Logger) (engine.Entries, func(), error) {
	if p.Source.Kind == "ldif" {
		f, err := os.Open(p.Source.File)
		if err != nil {
			return nil, nil, err
		}
		_, dir, err := source.ReadLDIF(f)
		f.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("%s:%v", p.Source.File, err)
		}
		return &engine.DirectoryEntries{Dir: dir}, func() {}, nil
	}
	le, err := engine.NewLDAPEntries(ctx, p, engine.LDAPOptions{Logger: log, CountFor: -1, Source: source.Options{Logger: log}})
	if err != nil {
		return nil, nil, err
	}
	return le, func() { le.Close() }, nil
}

// printVerify writes the summary table and the first n items of each kind.
func printVerify(w io.Writer, rep *engine.VerifyReport, n int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "endpoint\tentries\tresources\tin sync\tmissing\tdiffering\torphans\tkept\tunmanaged\t")
	for _, e := range rep.Endpoints {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t\n", e.Name, e.Entries, engine.FormatCount(e.Resources),
			e.InSync, e.Missing, e.Differing, e.Orphans, e.Kept, engine.FormatCount(e.Unmanaged))
	}
	tw.Flush()
	byKind := map[engine.DriftKind][]*engine.Drift{}
	for _, it := range rep.Items {
		byKind[it.Kind] = append(byKind[it.Kind], it)
	}
	for _, k := range []engine.DriftKind{engine.Missing, engine.Differing, engine.Orphan, engine.Unmanaged} {
		items := byKind[k]
		if len(items) == 0 || k == engine.Unmanaged {
			continue
		}
		fmt.Fprintf(w, "\n%s (%d):\n", k, len(items))
		for i, it := range items {
			if i == n {
				fmt.Fprintf(w, "  … %d more (--json lists every item)\n", len(items)-n)
				break
			}
			fmt.Fprintf(w, "  %s\n", verifyLine(it))
		}
	}
	var un int
	for _, e := range rep.Endpoints {
		un += max(e.Unmanaged, 0)
	}
	if un > 0 {
		fmt.Fprintf(w, "\n%d unmanaged resources (not drift; --json lists them)\n", un)
	}
	what := "verify"
	if rep.Repaired {
		what = "verify --repair"
	}
	perEntry := 0.0
	if rep.Entries > 0 {
		perEntry = float64(rep.Requests) / float64(rep.Entries)
	}
	fmt.Fprintf(w, "\n%s: %d entries in %.1fs, %d SCIM requests to compare (%.3f per entry)\n", what, rep.Entries, rep.Seconds, rep.Requests, perEntry)
}

// verifyLine is one item of the human report.
func verifyLine(it *engine.Drift) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", it.Endpoint)
	if it.ID != "" {
		fmt.Fprintf(&b, "/%s", it.ID)
	}
	if it.Name != "" {
		fmt.Fprintf(&b, " (%s)", it.Name)
	}
	if it.DN != "" {
		fmt.Fprintf(&b, " %s", it.DN)
	}
	switch it.Kind {
	case engine.Differing:
		fmt.Fprintf(&b, ": %s", strings.Join(it.Attributes, ", "))
		if len(it.MembersMissing) > 0 {
			fmt.Fprintf(&b, "; members missing: %s", strings.Join(it.MembersMissing, ", "))
		}
		if len(it.MembersExtra) > 0 {
			fmt.Fprintf(&b, "; members extra: %s", strings.Join(it.MembersExtra, ", "))
		}
		for _, p := range it.Patch {
			fmt.Fprintf(&b, "\n    PATCH %s", compactJSON(p))
		}
	case engine.Orphan:
		fmt.Fprintf(&b, ": entry %s; %s", it.Reason, it.Action)
	}
	switch {
	case it.Repaired:
		b.WriteString(" [repaired]")
	case it.Error != "":
		fmt.Fprintf(&b, " [repair failed: %s]", it.Error)
	}
	return b.String()
}

func compactJSON(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/scimsync/scimsync/engine"
	"github.com/scimsync/scimsync/engine/state"
	"github.com/scimsync/scimsync/lang"
)

// exitDeletesHeld is run's exit status when the mass-delete guard stopped
// it: a service manager must not restart it (RestartPreventExitStatus=3 in
// testdata/systemd/scimsync@.service), since a person has to look first.
const exitDeletesHeld = 3

// guardFlagSet is the mass-delete guard's flags: --max-deletes,
// --max-deletes-percent and --allow-deletes, over the script's maxDeletes
// and maxDeletesPercent (scim block).
type guardFlagSet struct {
	fs      *pflag.FlagSet
	max     *int
	percent *float64
	allow   *bool
	windowF *string // run only
}

// guardFlags adds the guard's flags; what is the command's deletes, for
// the help text.
func guardFlags(fs *pflag.FlagSet, what string) *guardFlagSet {
	return &guardFlagSet{
		fs:      fs,
		max:     fs.Int("max-deletes", 0, fmt.Sprintf("stop when %s more than this many resources (default: the script's maxDeletes, else %d)", what, engine.DefaultMaxDeletes)),
		percent: fs.Float64("max-deletes-percent", 0, fmt.Sprintf("stop when %s more than this share of the resources the pipe manages, from %d deletes on (default: the script's maxDeletesPercent, else %g; none for run)", what, engine.DefaultMinForPercent, engine.DefaultMaxDeletesPercent)),
		allow:   fs.Bool("allow-deletes", false, "let the deletes through however many there are (a one-off: the script's limits stay)"),
	}
}

// runGuardFlags is guardFlags for run, with --delete-window.
func runGuardFlags(fs *pflag.FlagSet) *guardFlagSet {
	g := guardFlags(fs, "the deletes and deactivations within --delete-window are")
	g.windowF = fs.String("delete-window", "", fmt.Sprintf("the window over which run counts deletes (default: the script's deleteWindow, else %s)", engine.DefaultDeleteWindow))
	return g
}

// guard is the DeleteGuard the flags and the script ask for: a flag given
// wins over the script's setting, which wins over the default.
func (g *guardFlagSet) guard(p *lang.Pipe) engine.DeleteGuard {
	dg := engine.DeleteGuard{Max: p.MaxDeletes, Percent: float64(p.MaxDeletesPercent), Allow: *g.allow}
	if g.fs.Changed("max-deletes") {
		dg.Max = *g.max
	}
	if g.fs.Changed("max-deletes-percent") {
		dg.Percent = *g.percent
	}
	return dg
}

// window is run's DeleteWindow, with its marker beside the state file.
func (g *guardFlagSet) window(p *lang.Pipe, st *state.Store) *engine.DeleteWindow {
	w := &engine.DeleteWindow{Guard: g.guard(p), Window: p.DeleteWindow, Marker: deletesHeldPath(st)}
	if w.Guard.Percent == 0 {
		// In a stream the share of a small id map is noisy (deleting 10 of
		// 40 users in a morning is ordinary): run counts deletes, as Entra
		// ID's accidental-deletion threshold does, unless the script or
		// --max-deletes-percent asks for a share too.
		w.Guard.Percent = -1
	}
	if g.windowF != nil && *g.windowF != "" {
		w.Window, _ = parseRewind(*g.windowF) // checked by check
	}
	return w
}

// check reports a flag value that makes no sense.
func (g *guardFlagSet) check() error {
	if g.fs.Changed("max-deletes") && *g.max < 1 && *g.max != -1 {
		return fmt.Errorf("--max-deletes: want 1 or more (or -1 for no count limit)")
	}
	if g.fs.Changed("max-deletes-percent") && (*g.percent <= 0 || *g.percent > 100) && *g.percent != -1 {
		return fmt.Errorf("--max-deletes-percent: want more than 0 and at most 100 (or -1 for no percentage limit)")
	}
	if g.windowF != nil && *g.windowF != "" {
		if d, err := parseRewind(*g.windowF); err != nil || d <= 0 {
			return fmt.Errorf("--delete-window %q: want a duration such as 10m or 1h", *g.windowF)
		}
	}
	return nil
}

// deletesHeldPath is the marker file of a run stopped by the mass-delete
// guard: PIPE.state.deletes-held, beside the state file.
func deletesHeldPath(st *state.Store) string {
	return filepath.Clean(st.Path() + ".deletes-held")
}

// flagsOverScript is verify's DeleteGuard: its --max-deletes and
// --max-deletes-percent over the script's maxDeletes and maxDeletesPercent.
func flagsOverScript(fs *pflag.FlagSet, p *lang.Pipe, max int, percent float64, allow bool) engine.DeleteGuard {
	g := engine.DeleteGuard{Max: p.MaxDeletes, Percent: float64(p.MaxDeletesPercent), Allow: allow}
	if fs.Changed("max-deletes") {
		g.Max = max
	}
	if fs.Changed("max-deletes-percent") {
		g.Percent = percent
	}
	return g
}

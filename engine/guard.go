package engine

import (
	"errors"
	"fmt"
	"time"
)

// DeleteGuard stops a command that would delete (or deactivate) more
// resources than an operator would expect, before it deletes any: a base
// DN pointed at an empty subtree, a filter that matches nothing, a
// directory restored from the wrong backup all look, to a sync, like
// everyone left. Entra ID provisioning and Google Cloud Directory Sync
// refuse such runs the same way.
//
// A run of n deletes is stopped when n is more than Max, or when n is at
// least MinForPercent and more than Percent per cent of the id map (the
// resources the pipe manages). The percentage needs a floor: deleting 2 of
// 5 users is 40 % and entirely ordinary.
type DeleteGuard struct {
	Max           int     // deletes allowed in one command; 0: DefaultMaxDeletes; negative: no count limit
	Percent       float64 // of the id map; 0: DefaultMaxDeletesPercent; negative: no percentage limit
	MinForPercent int     // the percentage applies from this many deletes on; 0: DefaultMinForPercent
	Allow         bool    // the operator said these deletes are meant (--allow-deletes)
}

// The guard's defaults.
const (
	DefaultMaxDeletes        = 500
	DefaultMaxDeletesPercent = 20.0
	DefaultMinForPercent     = 10
)

// ErrTooManyDeletes is what a stopped command's error wraps.
var ErrTooManyDeletes = errors.New("too many deletes")

// TooManyDeletesError says how many deletes were held back and why.
type TooManyDeletesError struct {
	Deletes int     // deletes and deactivations the command would send
	Mapped  int     // resources in the id map
	Limit   string  // which limit: "at most 500" or "at most 20% of the 1200 managed resources"
	Percent float64 // Deletes as a percentage of Mapped
	// Window, for run, is the time over which Deletes were counted; 0 for
	// one command.
	Window time.Duration
}

func (e *TooManyDeletesError) Error() string {
	if e.Window > 0 {
		return fmt.Sprintf("stopped at delete %d within %s (%.0f%% of the %d resources this pipe manages): more than the mass-delete guard allows (%s); "+
			"the checkpoint stays before this delete and nothing after it is applied; check the source's base DN, filter and credentials; "+
			"if these deletes are meant, run again with --allow-deletes (or raise --max-deletes, or maxDeletes in the scim block)",
			e.Deletes, e.Window, e.Percent, e.Mapped, e.Limit)
	}
	return fmt.Sprintf("stopped before deleting anything: %d deletes or deactivations (%.0f%% of the %d resources this pipe manages) is more than the guard allows (%s); "+
		"check the source's base DN, filter and credentials; if these deletes are meant, run again with --allow-deletes (or raise --max-deletes)",
		e.Deletes, e.Percent, e.Mapped, e.Limit)
}

// Unwrap lets errors.Is find ErrTooManyDeletes.
func (e *TooManyDeletesError) Unwrap() error { return ErrTooManyDeletes }

// Check returns a *TooManyDeletesError when deletes out of mapped resources
// are more than the guard allows; nil when they may go.
func (g DeleteGuard) Check(deletes, mapped int) error {
	if g.Allow || deletes == 0 {
		return nil
	}
	max, pct, floor := g.Max, g.Percent, g.MinForPercent
	if max == 0 {
		max = DefaultMaxDeletes
	}
	if pct == 0 {
		pct = DefaultMaxDeletesPercent
	}
	if floor <= 0 {
		floor = DefaultMinForPercent
	}
	share := 100.0
	if mapped > 0 {
		share = float64(deletes) * 100 / float64(mapped)
	}
	e := &TooManyDeletesError{Deletes: deletes, Mapped: mapped, Percent: share}
	switch {
	case max >= 0 && deletes > max:
		e.Limit = fmt.Sprintf("at most %d", max)
	case pct >= 0 && deletes >= floor && share > pct:
		e.Limit = fmt.Sprintf("at most %g%% of the managed resources once there are %d or more", pct, floor)
	default:
		return nil
	}
	return e
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// DefaultDeleteWindow is the window over which run counts deletes.
const DefaultDeleteWindow = 10 * time.Minute

// DeleteWindow is the mass-delete guard of `run`: it counts the deletes and
// deactivations sent within a sliding window, and stops the run when they
// are more than its DeleteGuard allows (a count, or a share of the id map).
// A change stream has no end to count up to, as verify --repair and resync
// have: a base DN pointed at an empty subtree shows up as a burst of
// deletes, and the window turns that burst into a stop, with the
// checkpoint left before the delete that was refused, so that nothing is
// lost: the next run reads it again.
//
// A stop is written to Marker (when set): every later run then stops at
// its first delete too, until the operator runs with --allow-deletes
// (Guard.Allow), which removes the marker. Without it, a service manager
// restarting the run would let one window's worth of deletes through at
// each restart.
type DeleteWindow struct {
	Guard  DeleteGuard
	Window time.Duration // DefaultDeleteWindow when 0
	Marker string        // a file recording a stop; "" for none
	Now    func() time.Time

	mu      sync.Mutex
	loaded  bool
	times   []time.Time // deletes admitted within the window, oldest first
	stopped error       // once stopped, every later delete is refused
}

// Admit counts one delete or deactivation among mapped managed resources
// and returns nil when it may be sent, or a *TooManyDeletesError when the
// guard stops it (and every later one).
func (w *DeleteWindow) Admit(mapped int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.load()
	if w.stopped != nil {
		return w.stopped
	}
	now := time.Now()
	if w.Now != nil {
		now = w.Now()
	}
	window := w.Window
	if window <= 0 {
		window = DefaultDeleteWindow
	}
	i := 0
	for i < len(w.times) && now.Sub(w.times[i]) >= window {
		i++
	}
	w.times = w.times[i:]
	if err := w.Guard.Check(len(w.times)+1, mapped); err != nil {
		var tm *TooManyDeletesError
		if errors.As(err, &tm) {
			tm.Window = window
		}
		w.stopped = err
		if w.Marker != "" {
			_ = os.WriteFile(w.Marker, []byte(err.Error()+"\n"), 0o600)
		}
		return err
	}
	w.times = append(w.times, now)
	return nil
}

// load reads the marker of an earlier stop, once (or removes it when the
// operator allows the deletes).
func (w *DeleteWindow) load() {
	if w.loaded || w.Marker == "" {
		w.loaded = true
		return
	}
	w.loaded = true
	if w.Guard.Allow {
		_ = os.Remove(w.Marker)
		return
	}
	b, err := os.ReadFile(w.Marker)
	if err != nil {
		return
	}
	w.stopped = &HeldDeletesError{Marker: w.Marker, Reason: strings.TrimSpace(string(b))}
}

// HeldDeletesError is a run stopped at its first delete because an earlier
// run was stopped by the mass-delete guard and no one has allowed the
// deletes since.
type HeldDeletesError struct {
	Marker string
	Reason string // the earlier stop's message
}

func (e *HeldDeletesError) Error() string {
	return fmt.Sprintf("stopped before deleting anything: an earlier run was stopped by the mass-delete guard (%s records it: %s); "+
		"check the source, then run with --allow-deletes to let the deletes through", e.Marker, e.Reason)
}

// Unwrap lets errors.Is find ErrTooManyDeletes.
func (e *HeldDeletesError) Unwrap() error { return ErrTooManyDeletes }

// admitDelete asks the run's mass-delete guard whether one more delete or
// deactivation may go; on a stop it halts the run.
func (r *Runner) admitDelete() error {
	if r.Deletes == nil {
		return nil
	}
	r.mu.Lock()
	mapped := r.dns.count()
	r.mu.Unlock()
	if err := r.Deletes.Admit(mapped); err != nil {
		r.halted(err)
		return err
	}
	return nil
}

// halted stops the run with err as its result: the reading of changes ends,
// workers leave their queued changes undone, the checkpoint stays before
// them.
func (r *Runner) halted(err error) {
	if r.halt != nil {
		r.halt(err)
	}
}

// haltCause is the error a halted run returns, or nil.
func haltCause(ctx context.Context) error {
	if c := context.Cause(ctx); errors.Is(c, ErrTooManyDeletes) {
		return c
	}
	return nil
}

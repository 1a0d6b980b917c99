package main

import (
	"github.com/scimsync/scimsync/engine"
	"github.com/scimsync/scimsync/engine/control"
	"github.com/scimsync/scimsync/engine/state"
)

// runnerBackend answers the control socket of a running `run` (engine/control)
// from its Runner: `failed list` and `failed retry` then work without
// stopping the sync, although the run holds the state file's lock.
type runnerBackend struct{ r *engine.Runner }

var _ control.Backend = runnerBackend{}

// Parked reads the failed-changes record through the run's own store.
func (b runnerBackend) Parked() ([]state.Parked, error) { return b.r.Store.ListParked() }

// RetryParked makes every parked entry of the run due for a retry now; the
// run's workers retry them, each in order with its entry's changes.
func (b runnerBackend) RetryParked() int { return b.r.RetryParkedSoon() }

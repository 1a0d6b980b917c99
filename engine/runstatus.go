package engine

import (
	"time"

	"github.com/scimsync/scimsync/engine/source"
)

// SourceOutage is RunHealth.Outage while the source has lost its
// connection to the directory and is reconnecting.
const SourceOutage = "the source"

// RunHealth is what a running Runner knows of its services, for `scimsync
// status` and readiness probes.
type RunHealth struct {
	// Outage names what is unavailable ("the SCIM service", "the
	// directory", SourceOutage); "" when nothing is.
	Outage      string
	OutageSince time.Time
	// OutageErr is why, where known: the error that took the source's
	// connection down (never a value read from the directory).
	OutageErr string
	// LastApplied is when a change last went through.
	LastApplied time.Time
}

// Health reports the runner's outage state and when a change last went
// through. It is safe to call while Run runs.
//
// Besides the outages the workers see (a change that cannot be applied
// because the SCIM service or the directory fails), it reports the
// source's own connection (source.LinkOf): a change stream that dropped
// and is reconnecting (a syncrepl persistent search, the changelog's or
// DirSync's poll connection) delivers nothing and fails nothing, so only
// the source can tell that changes are not arriving. The workers' outage
// is reported first when both are down.
func (r *Runner) Health() RunHealth {
	r.health.mu.Lock()
	h := RunHealth{LastApplied: r.health.answered}
	if !r.health.since.IsZero() {
		h.Outage, h.OutageSince = r.health.what, r.health.since
	}
	r.health.mu.Unlock()
	if h.Outage == "" && r.Source != nil {
		if l, ok := source.LinkOf(r.Source); ok && l.Down {
			h.Outage, h.OutageSince, h.OutageErr = SourceOutage, l.Since, l.Err
		}
	}
	return h
}

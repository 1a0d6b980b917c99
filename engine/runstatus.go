package engine

import "time"

// RunHealth is what a running Runner knows of its services, for `scimsync
// status` and readiness probes.
type RunHealth struct {
	// Outage names what is unavailable ("the SCIM service", "the
	// directory"); "" when nothing is.
	Outage      string
	OutageSince time.Time
	// LastApplied is when a change last went through.
	LastApplied time.Time
}

// Health reports the runner's outage state and when a change last went
// through. It is safe to call while Run runs.
func (r *Runner) Health() RunHealth {
	r.health.mu.Lock()
	defer r.health.mu.Unlock()
	h := RunHealth{LastApplied: r.health.answered}
	if !r.health.since.IsZero() {
		h.Outage, h.OutageSince = r.health.what, r.health.since
	}
	return h
}

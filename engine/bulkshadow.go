package engine

import "time"

// Shadows of the resources a BulkRequest patches (resyncbulkupdate.go).
// A PATCH sent as an operation of a BulkRequest does not go through
// Destination.write, which keeps every other write's shadow right: these
// two do for it what write does for a request of its own, with the same
// session (shadow.go). The session is opened before the request is sent,
// so that an update of the same resource meanwhile (another session) reads
// no shadow and records none, and ended with the operation's outcome: the
// shadow is dropped (no answer is recorded from, as for a 204), and an
// outcome in doubt (a 5xx, no answer, an operation left out of the answer)
// marks the resource so for the quiet time, as for a lost single PATCH.

// bulkShadowBegin opens a session on endpointPath/id for a PATCH about to
// be sent in a BulkRequest; nil when the destination keeps no shadows.
func (d *Destination) bulkShadowBegin(endpointPath, id string) *shadowSession {
	return d.shadowBegin(endpointPath, id, time.Now())
}

// endBulk ends the session of a PATCH sent in a BulkRequest with err, the
// operation's failure or the request's (nil: carried out). The shadow is
// dropped whatever the outcome.
func (s *shadowSession) endBulk(err error) {
	if s == nil {
		return
	}
	s.note(nil, err)
	s.end()
}

package engine

import (
	"fmt"

	"github.com/scimsync/scimsync/engine/state"
)

// ScopeShrunkError is a resync stopped before it began: the source holds
// far fewer entries than the id map knows resources. A resync itself
// deletes nothing, but it would report success over an empty subtree, and
// every resource the pipe manages would then look orphaned to the next
// `verify --repair` and to run: the moment to ask is before anything moves.
type ScopeShrunkError struct {
	Entries int64 // entries the source holds under its base DNs
	TooManyDeletesError
}

func (e *ScopeShrunkError) Error() string {
	return fmt.Sprintf("stopped before reading anything: the source holds %d entries under its base DNs, but the id map knows %d resources this pipe manages: "+
		"%d of them (%.0f%%) would have no entry, more than the mass-delete guard allows (%s); "+
		"check the source's base DN, filter and credentials (a base DN pointed at an empty subtree looks like everyone left); "+
		"if the directory really shrank, run again with --allow-deletes (or raise --max-deletes)",
		e.Entries, e.Mapped, e.Deletes, e.Percent, e.Limit)
}

// Unwrap lets errors.Is find ErrTooManyDeletes.
func (e *ScopeShrunkError) Unwrap() error { return ErrTooManyDeletes }

// ResyncPrecheck is the mass-delete guard of resync: entries is the count
// of entries the source holds under its base DNs (every entry, in scope or
// not: so the check errs on the side of letting the resync go), and the
// resources the id map knows that many entries cannot account for are the
// deletes the guard weighs. A *ScopeShrunkError stops the resync.
func ResyncPrecheck(g DeleteGuard, entries int64, st *state.Store) error {
	mapped := 0
	if err := st.Range(func(_ string, m state.Mapping) bool {
		if m.SCIMID != "" {
			mapped++
		}
		return true
	}); err != nil {
		return err
	}
	gone := int64(mapped) - entries
	if gone <= 0 {
		return nil
	}
	err := g.Check(int(gone), mapped)
	if tm, ok := err.(*TooManyDeletesError); ok {
		return &ScopeShrunkError{Entries: entries, TooManyDeletesError: *tm}
	}
	return err
}

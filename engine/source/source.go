package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/scimsync/scimsync/lang"
)

// EventKind says what an Event reports.
type EventKind uint8

// The kinds of Event.
const (
	// EventChange is a change to apply: Change, Identity and Position are set.
	EventChange EventKind = iota + 1
	// EventDropped is a change the source read but that must not be applied,
	// because the directory has moved on since (a modify whose entry is gone,
	// a delete whose entry exists again). Change says what it was, Dropped
	// why. The caller counts and logs it, and saves Position like any other.
	EventDropped
	// EventPresentSet ends an RFC 4533 present phase (and a full reload):
	// Identities are every entry of the synchronized scope that still exists;
	// every identity the caller knows of that is not among them was deleted.
	EventPresentSet
	// EventCheckpoint only moves the position: the source read something that
	// is not a change to apply (changelog records outside the bases, a sync
	// cookie update), and saving Position avoids reading it again.
	EventCheckpoint
)

var eventKindNames = [...]string{EventChange: "change", EventDropped: "dropped", EventPresentSet: "present-set", EventCheckpoint: "checkpoint"}

// String returns the kind's name: change, dropped, present-set or checkpoint.
func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && k > 0 {
		return eventKindNames[k]
	}
	return "unknown"
}

// Event is one thing a source reports. A source reports events in the order
// the directory made the changes (see each kind's file for exactly which
// order), and each Event's Position is a checkpoint that, given back to
// Open, makes the source go on with the events after this one.
//
// Delivery is at-least-once: after a reconnect or when resuming from an
// earlier Position, events may be reported again, so applying one must be
// idempotent (the engine diffs against the current SCIM resource).
type Event struct {
	Kind EventKind

	// Change is the change, for EventChange and EventDropped. Its Entry is
	// the entry as the directory holds it NOW, fetched when the event is
	// read (so stale changelog data is never applied), for Add, Modify and
	// ModRDN; for Delete it holds what the source record carried (often only
	// the DN). Changed lists the changed attribute names where the source
	// tells them (changelog, DirSync, LDIF), without operational attributes;
	// nil when it does not (syncrepl).
	Change *lang.Change

	// Identity is the entry's stable identity, the same for the entry's
	// whole life whatever its DN: entryUUID, 389-ds's nsUniqueId or AD's
	// objectGUID, written as a lower-case UUID
	// (8-4-4-4-12 hex; nsUniqueId's 8-8-8-8 form is rewritten to it, so a
	// 389-ds entry has the same identity read by changelog or by syncrepl).
	// "" when the source cannot tell (an LDIF file, a changelog that does not
	// record it for a delete): the caller then matches by DN.
	Identity string

	// Identities is the present set of an EventPresentSet.
	Identities []string

	// Position is the opaque checkpoint after this event; save it once the
	// event is applied (or durably parked). It starts with the source kind
	// ("changelog:", "syncrepl:", "dirsync:", "ldif:").
	Position string

	// Dropped says why an EventDropped is not applied.
	Dropped string
}

// Source is a stream of directory changes. Every source kind implements it:
// the 389-ds/draft-good-ldap-changelog cn=changelog (changelog.go), RFC 4533
// syncrepl (syncrepl.go), Active Directory DirSync (dirsync.go) and an LDIF
// file (ldiffile.go). A Source is used by one goroutine at a time.
type Source interface {
	// Next returns the next event. It blocks until there is one, ctx is
	// done (it then returns ctx.Err()), or a fatal error. A dropped
	// connection is not fatal: the source reconnects with exponential
	// backoff (trying cfg.URLs in order) and goes on from the last position
	// it reported. With Options.Once, or for an LDIF file, Next returns
	// io.EOF once every change available when the source was opened has been
	// reported. Errors that need the user (ErrTrimmed, ErrAuth, a bad
	// script setting) are returned as they are; calling Next again after a
	// fatal error returns the same error.
	Next(ctx context.Context) (*Event, error)
	// Close ends the connections; Next then returns ErrClosed. It is safe
	// to call more than once.
	Close() error
}

// Options tune a source beyond what the script's source block says.
type Options struct {
	// Logger receives connection events (connected, lost, retrying) and
	// nothing else; never a value read from the directory. Nil: discard.
	Logger *slog.Logger
	// Once makes Next return io.EOF when the changes available at Open have
	// all been reported, instead of waiting for more (run --once).
	Once bool
	// KnownDN returns the last DN the caller saw for an identity (from its
	// id map), so that a rename that syncrepl or DirSync reports as a
	// modify of a new DN becomes a ModRDN with OldDN even across restarts.
	// Nil: only renames seen by this source instance are detected.
	KnownDN func(identity string) (dn string, ok bool)
	// MinBackoff and MaxBackoff bound the reconnect delay, which doubles
	// from MinBackoff on each failed attempt (defaults 250ms and 30s).
	MinBackoff, MaxBackoff time.Duration
	// NoWakeup turns off the changelog's persistent-search wake-up, so
	// that only the poll interval paces reading.
	NoWakeup bool
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// Errors a source returns. Test them with errors.Is; the concrete errors
// carry details.
var (
	// ErrTrimmed means the changes after the checkpoint are no longer in the
	// directory's changelog (trimmed by age or size, or the changelog was
	// reset): changes would be lost, so the source stops. The user must
	// resync (a full reload), then set a new start point.
	ErrTrimmed = errors.New("changelog trimmed past the checkpoint: changes were lost, a resync is needed")
	// ErrBadPosition means a checkpoint was not made by this kind of
	// source (the script's source block changed kind) or is corrupt.
	ErrBadPosition = errors.New("checkpoint does not belong to this source")
	// ErrAuth means the directory refused the bind DN and password.
	ErrAuth = errors.New("directory refused the credentials")
	// ErrClosed is returned by Next after Close.
	ErrClosed = errors.New("source closed")
	// ErrUnsupportedStart means a start point (StartSpec) that this kind
	// of source cannot give.
	ErrUnsupportedStart = errors.New("start point not supported by this source kind")
)

// TrimmedError is the ErrTrimmed of a changelog: the checkpoint and the
// oldest change number still available.
type TrimmedError struct {
	Checkpoint int64 // last change number applied
	First      int64 // oldest change number the changelog still holds (0: unknown)
	Missing    int64 // the first change number that is missing
}

func (e *TrimmedError) Error() string {
	return fmt.Sprintf("changelog trimmed past the checkpoint: change %d is gone (checkpoint %d, oldest available %d); resync, then set a new start point",
		e.Missing, e.Checkpoint, e.First)
}

// Is makes errors.Is(err, ErrTrimmed) true.
func (e *TrimmedError) Is(target error) bool { return target == ErrTrimmed }

// Open returns the source the script's source block describes, positioned
// after start (a Position from an Event or from StartPoint; "" = from the
// beginning: a changelog's oldest change, a full syncrepl or DirSync
// refresh, an LDIF file's first record). For LDAP sources it connects before
// returning, so a wrong URL, certificate or password is reported at once.
func Open(ctx context.Context, cfg lang.SourceConfig, start string, opts Options) (Source, error) {
	switch cfg.Kind {
	case "ldif":
		return OpenLDIFFile(cfg.File, start)
	case "changelog":
		return OpenChangelog(ctx, cfg, start, opts)
	case "syncrepl":
		return OpenSyncrepl(ctx, cfg, start, opts)
	case "dirsync":
		return OpenDirSync(ctx, cfg, start, opts)
	}
	return nil, fmt.Errorf("unknown source kind %q (want ldif, changelog, syncrepl or dirsync)", cfg.Kind)
}

// StartKind says which start point a StartSpec asks for.
type StartKind uint8

// The start points of `scimsync set-startpoint`.
const (
	StartBeginning    StartKind = iota + 1 // --beginning: every change the source still has
	StartEnd                               // --end: only changes made from now on
	StartChangeNumber                      // --change-number N: from change N on (changelog; LDIF record N)
	StartRewind                            // --rewind D: changes made in the last D (changelog)
)

// StartSpec is a requested start point.
type StartSpec struct {
	Kind         StartKind
	ChangeNumber int64         // StartChangeNumber: the first change to report (1-based)
	Rewind       time.Duration // StartRewind
}

// StartPoint returns the Position that makes Open start where spec says.
// Which kinds support what:
//
//	             --beginning  --end  --change-number  --rewind
//	changelog        yes       yes        yes           yes (by changeTime)
//	syncrepl         yes       yes        no            no
//	dirsync          yes       yes        no            no
//	ldif             yes       yes        yes (record)  no
//
// An unsupported combination returns an error wrapping ErrUnsupportedStart.
// For syncrepl and DirSync, --end reads the whole scope once (identities
// only) to obtain the current cookie.
func StartPoint(ctx context.Context, cfg lang.SourceConfig, spec StartSpec, opts Options) (string, error) {
	if spec.Kind == StartBeginning {
		return "", nil
	}
	switch cfg.Kind {
	case "ldif":
		return ldifStartPoint(cfg.File, spec)
	case "changelog":
		return changelogStartPoint(ctx, cfg, spec, opts)
	case "syncrepl":
		return syncreplStartPoint(ctx, cfg, spec, opts)
	case "dirsync":
		return dirsyncStartPoint(ctx, cfg, spec, opts)
	}
	return "", fmt.Errorf("unknown source kind %q (want ldif, changelog, syncrepl or dirsync)", cfg.Kind)
}

func unsupported(kind string, spec StartSpec) error {
	names := map[StartKind]string{StartBeginning: "--beginning", StartEnd: "--end", StartChangeNumber: "--change-number", StartRewind: "--rewind"}
	return fmt.Errorf("%w: a %s source has no %s start point", ErrUnsupportedStart, kind, names[spec.Kind])
}

// splitPosition checks a Position's kind prefix and returns the rest.
func splitPosition(kind, pos string) (string, error) {
	if pos == "" {
		return "", nil
	}
	rest, ok := strings.CutPrefix(pos, kind+":")
	if !ok {
		k, _, _ := strings.Cut(pos, ":")
		return "", fmt.Errorf("%w: it is a %q checkpoint and the source is %s", ErrBadPosition, k, kind)
	}
	return rest, nil
}

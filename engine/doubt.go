package engine

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scimsync/scimsync/engine/scim"
)

// Writes in doubt.
//
// A PATCH or PUT whose answer did not come (a timeout, a dropped
// connection, a 5xx but 503: scim.InDoubt) may have been carried out, or
// may still be: a proxy
// or a load balancer can hold a request past the client's timeout and
// forward it later, and a service can queue it. Sent again at once, or
// followed at once by a GET and a re-diff that cannot see it yet, the
// first attempt lands after the second: an "add" of a member applied twice
// (some services, SCIMMY among them, then hold the value twice), or a late
// "remove" that undoes a later "add". The SCIM client therefore never
// resends a write it may have sent (scim.Client.Do), and the destination
// remembers the resource as in doubt for its quiet time — three times the
// client's timeout, the bound the engine already relies on for creates
// (CreateGrace). An update of a resource in doubt waits until the quiet
// time has passed before it reads the resource (ApplyKnown); a write that
// finds its resource in doubt waits too and then fails with ErrInDoubt, so
// that the change is read and diffed again rather than sent from a read
// the late request may have overtaken.
//
// A process killed with writes in flight leaves them in doubt for its
// successor, which cannot know which resources they were for: when the
// state store says the last process did not close cleanly (its shadows
// were dropped, engine/state/shadow.go), every update waits until the
// quiet time after that process last sent a write has passed (the store
// keeps that time, engine/state/sent.go; when it cannot tell, the quiet
// time after Open). A process killed while idle leaves nothing to wait for.

// ErrInDoubt is a write not sent because an earlier write of the same
// resource may still be carried out by the service: the change is tried
// again, reading the resource anew, once it no longer can (a temporary
// failure, tried again at once: the wait is over when it is returned).
var ErrInDoubt = errors.New("not sent: an earlier write of this resource may still reach the service; read again")

// doubts are the resources of a Destination whose writes are in doubt.
// A Destination holds a pointer, made on first use under doubtsMade, so
// that Destination stays a plain value that can be copied.
type doubts struct {
	mu    sync.Mutex
	until map[string]time.Time // shadowKey -> end of the quiet time
	// logged is set once the wait for a process that died is logged.
	logged bool
	// waiting counts the settle calls waiting now (Waiting).
	waiting atomic.Int64
}

// Waiting reports whether a change is waiting out a write in doubt: the
// run does not give up on changes that wait for it meanwhile (a group
// whose member is that change's resource).
func (d *Destination) Waiting() bool { return d.doubts().waiting.Load() > 0 }

var doubtsMade sync.Mutex

// doubts returns the destination's doubts, made on first use.
func (d *Destination) doubts() *doubts {
	doubtsMade.Lock()
	defer doubtsMade.Unlock()
	if d.doubt == nil {
		d.doubt = &doubts{until: map[string]time.Time{}}
	}
	return d.doubt
}

// writeQuiet is how long a request the client gave up on may still be
// carried out: CreateGrace when set, else three times the client's
// per-request timeout.
func (d *Destination) writeQuiet() time.Duration {
	if d.CreateGrace > 0 {
		return d.CreateGrace
	}
	t := scim.DefaultTimeout
	if d.Pipe != nil && d.Pipe.SCIM.Timeout > 0 {
		t = d.Pipe.SCIM.Timeout
	}
	return 3 * t
}

// doubtUntil returns when the writes in doubt of endpoint/id can no longer
// land (zero or past: none).
func (d *Destination) doubtUntil(endpoint, id string) time.Time {
	t := d.deadUntil()
	if id == "" {
		return t
	}
	if sh := d.Shadows; sh != nil {
		// The shadows' own mark of the write (set when its session ends).
		sh.mu.Lock()
		if sl := sh.slots[shadowKey(endpoint, id)]; sl != nil && sl.taint.After(t) {
			t = sl.taint
		}
		sh.mu.Unlock()
	}
	ds := d.doubts()
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if u := ds.until[shadowKey(endpoint, id)]; u.After(t) {
		t = u
	}
	return t
}

// deadUntil is when no write a process that died can have left in flight
// can land any more: the quiet time after it last sent one (from Open when
// that cannot be told); zero when the last process closed the store
// cleanly.
func (d *Destination) deadUntil() time.Time { return d.Shadows.deadUntil(d.writeQuiet()) }

// sending declares a write about to be sent (state.Store.NoteSending).
func (d *Destination) sending() {
	if d.Shadows != nil {
		d.Shadows.store.NoteSending(time.Now())
	}
}

// noteDoubt records that a write of endpoint/id that failed with err may
// still be carried out.
func (d *Destination) noteDoubt(method, endpoint, id string, err error) {
	if id == "" || method == http.MethodPost || method == http.MethodDelete || !scim.InDoubt(method, err) {
		// A create is in doubt by its own rules (Known.CreateSent); a
		// resource deleted late is gone all the same.
		return
	}
	until := time.Now().Add(d.writeQuiet())
	ds := d.doubts()
	ds.mu.Lock()
	defer ds.mu.Unlock()
	now := time.Now()
	if len(ds.until) >= 1024 {
		for k, u := range ds.until {
			if !u.After(now) {
				delete(ds.until, k)
			}
		}
	}
	k := shadowKey(endpoint, id)
	if until.After(ds.until[k]) {
		ds.until[k] = until
	}
}

// Settle waits until no write of a process that died can still land (see
// above): resync calls it before it reads anything it may write back.
func (d *Destination) Settle(ctx context.Context) error {
	_, err := d.settle(ctx, "", "")
	return err
}

// settle waits until no write of endpoint/id is in doubt. waited reports
// whether it had to.
func (d *Destination) settle(ctx context.Context, endpoint, id string) (waited bool, err error) {
	if d.DryRun != nil || d.Offline {
		return false, nil
	}
	until := d.doubtUntil(endpoint, id)
	wait := time.Until(until)
	if wait <= 0 {
		return false, nil
	}
	if dead := d.deadUntil(); !dead.IsZero() && !until.After(dead) {
		ds := d.doubts()
		ds.mu.Lock()
		first := !ds.logged
		ds.logged = true
		ds.mu.Unlock()
		if first {
			d.log().Info("the last process did not close the state store cleanly: a write it sent may still reach the SCIM service, so updates wait for the quiet time before they read and write",
				"until", until.Format(time.RFC3339), "quiet", d.writeQuiet().String())
		}
	}
	ds := d.doubts()
	ds.waiting.Add(1)
	defer ds.waiting.Add(-1)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true, nil
	case <-ctx.Done():
		return true, context.Cause(ctx)
	}
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/engine/state"
	"github.com/scimsync/scimsync/lang"
)

// Runner is real-time sync: it reads a source's changes, maps each with
// the pipe, applies it through the destination, and saves the checkpoint
// and the id map in the state store.
//
// Changes to one entry are applied in order (they go to one worker, chosen
// by the entry's identity); different entries are applied in parallel. The
// checkpoint only moves past a change once it and every change before it
// are applied or parked, so a crash at any instant loses nothing: on
// restart the source reports again what may not have been applied, and
// applying twice is harmless because updates diff against the current
// resource.
//
// Failures are of two kinds. A temporary one (the SCIM service or the
// directory unreachable, a timeout, 408, 429, 5xx, an unconfirmed create)
// is waited out: the worker tries the change again with exponential backoff
// and jitter (up to MaxBackoff) for as long as it takes, its later changes
// waiting behind it and the checkpoint staying where it is; the outage is
// logged once when it starts and once when it ends. A permanent one (an
// expression error on that entry, a 4xx that a fresh read and diff do not
// cure) parks the entry: the failed-changes record keeps a pointer to it
// (key, DN, what failed), never the values. Parked entries heal by
// themselves: run tries each again with a backoff per entry (up to
// ParkedBackoff), reading the entry as it is then, and at once when a later
// change of the entry arrives; a later change applied whole clears the
// record.
type Runner struct {
	Pipe    *lang.Pipe
	Dest    *Destination
	Store   *state.Store
	Source  source.Source
	Workers int          // default 4
	Log     *slog.Logger // one line per applied, dropped or parked change; never a value
	// Entry reads an entry by DN for references the id map does not know
	// (nil: such references wait until the entry is synced) and for
	// retrying parked entries of a source without identities (LDIF).
	Entry func(ctx context.Context, dn string) (*lang.Entry, error)
	// EntryByID reads an entry by its source identity wherever it is now
	// (nil, nil when it is gone): how a parked entry is read again.
	EntryByID func(ctx context.Context, identity string) (*lang.Entry, error)

	// MaxBackoff caps the wait between tries of a change that failed for a
	// temporary reason (default one minute).
	MaxBackoff time.Duration
	// ParkedBackoff caps the wait between automatic retries of a parked
	// entry (default one hour); the first comes after ParkedFirst (default
	// five seconds) and the wait doubles each time.
	ParkedBackoff, ParkedFirst time.Duration
	// StuckAfter parks a change that has failed for a temporary reason this
	// long while the service answered other requests (it is this change,
	// not the service, that fails; default ten minutes). During an outage
	// nothing is parked, however long it lasts.
	StuckAfter time.Duration

	Stats RunStats
	// Observe, when set, is told what became of each change (applied,
	// dropped, parked, healed): the metrics of `run --listen`. It is
	// called from the workers and must not block.
	Observe func(ChangeRecord)
	// Deletes, when set, is asked before each delete or deactivation is
	// sent: the mass-delete guard of run (DeleteWindow).
	Deletes *DeleteWindow
	// ReadShadows makes updates PATCH from the resource's shadow, without
	// reading it first, where Dest keeps shadows and one can be trusted
	// (shadow.go): one request per change instead of two.
	ReadShadows bool

	mu    sync.Mutex
	dns   *dnIndex // DN -> the resource it became (from the id map), and the SCIM ids the id map holds; under mu
	refs  *RefResolver
	order *orderTracker

	stop    <-chan struct{}         // closed when the run is asked to stop
	halt    context.CancelCauseFunc // stops the run with an error (the mass-delete guard)
	health  health
	parkMu  sync.Mutex
	parked  map[string]*parkedState // entry key -> its automatic retry schedule
	queues  []chan job
	queueMu sync.RWMutex // held for reading while sending to queues; closing takes it for writing
	closed  bool

	// unconfirmed are the id-map keys of creates sent and not confirmed
	// when the run started (loadIndex), for loadParked; under parkMu.
	unconfirmed []string

	scopeOnce sync.Once
	scope     source.Scope // the source's base DNs
}

// RunStats counts what a run did.
type RunStats struct {
	Applied, Unchanged, OutOfScope, Dropped, Parked, Deleted, Healed, Waits atomic.Int64
}

type dnRef struct {
	endpoint string
	id       string
}

// job is one event for a worker, or a retry of a parked entry (retry set,
// seq 0: the checkpoint does not wait for it).
type job struct {
	seq   int64
	ev    *source.Event
	key   string // the entry, for keeping its changes in order
	retry *state.Parked
}

// parkedState is the automatic retry schedule of one parked entry.
type parkedState struct {
	next     time.Time // when it is due (its wait doubles with the record's attempts)
	inFlight bool      // queued and not done yet
}

// maxRefWait is how long a change whose references are not in SCIM yet
// waits (its entry's later changes queued behind it) before it is parked.
const maxRefWait = 10 * time.Second

// waiting are the changes of one entry held back because a reference of
// the first is not in SCIM yet.
type waiting struct {
	jobs  []job
	since time.Time
	next  time.Time
	delay time.Duration
}

// status is what became of a job.
type status uint8

const (
	done      status = iota // applied or parked: the checkpoint may pass it
	held                    // a reference is not in SCIM yet: try again soon
	abandoned               // the run is stopping during an outage: left for the next run
)

// work applies a queue's changes in order. A change whose references are
// not in SCIM yet (a group before its members) is held, with the later
// changes of the same entry, and tried again while the other entries go
// on; after maxRefWait it is parked. When the run stops during an outage,
// the change being waited on and everything after it are left undone, for
// the next run to read again.
func (r *Runner) work(ctx context.Context, q chan job) {
	ev := r.Pipe.NewEvaluator()
	heldJobs := map[string]*waiting{}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	quitting := false
	for {
		select {
		case j, ok := <-q:
			if !ok {
				q = nil
				if len(heldJobs) == 0 || quitting {
					return
				}
				continue
			}
			if quitting {
				continue
			}
			if w := heldJobs[j.key]; w != nil {
				w.jobs = append(w.jobs, j)
				continue
			}
			switch r.try(ctx, ev, j, false) {
			case held:
				now := time.Now()
				heldJobs[j.key] = &waiting{jobs: []job{j}, since: now, next: now.Add(50 * time.Millisecond), delay: 50 * time.Millisecond}
			case abandoned:
				quitting = true
			}
		case now := <-tick.C:
			if quitting {
				if q == nil {
					return
				}
				continue
			}
			for k, w := range heldJobs {
				if now.Before(w.next) {
					continue
				}
				st := done
				for len(w.jobs) > 0 {
					// During an outage the members a change waits for cannot
					// arrive either: the wait starts again when it ends.
					// Nor while a change read before it is not done yet (a
					// member's add queued behind a slow one, tried again) or
					// a change waits out a write in doubt: it may be the
					// member waited for.
					if r.health.isDown() || r.Dest.Waiting() || (w.jobs[0].seq > 0 && r.order.firstUndone() < w.jobs[0].seq) {
						w.since = now
					}
					if st = r.try(ctx, ev, w.jobs[0], now.Sub(w.since) > maxRefWait); st != done {
						break
					}
					w.jobs, w.since = w.jobs[1:], now
				}
				if st == abandoned {
					quitting = true
					break
				}
				if len(w.jobs) == 0 {
					delete(heldJobs, k)
					continue
				}
				w.delay = min(2*w.delay, time.Second)
				w.next = now.Add(w.delay)
			}
			if q == nil && (len(heldJobs) == 0 || quitting) {
				return
			}
		}
	}
}

// try applies a job: a change (held when a reference is not in SCIM yet
// and final is false), or the retry of a parked entry.
func (r *Runner) try(ctx context.Context, ev *lang.Evaluator, j job, final bool) status {
	if j.retry != nil {
		r.retryParked(ctx, ev, j.retry)
		return done
	}
	e := j.ev
	ch := e.Change
	if e.Kind == source.EventDropped {
		r.Stats.Dropped.Add(1)
		r.Log.Info("dropped", "op", ch.Type.String(), "dn", ch.DN, "why", e.Dropped)
		r.observe(ChangeRecord{Op: ch.Type.String(), DN: ch.DN, Outcome: DroppedChange, Attempts: 1})
		r.order.done(j.seq)
		return done
	}
	start := time.Now()
	var firstFail time.Time
	wait := time.Duration(0)
	for attempt := 1; ; attempt++ {
		class, a, err := r.Apply(ctx, ev, e.Identity, ch)
		if errors.Is(err, ErrTooManyDeletes) {
			return abandoned // the run stops; the checkpoint stays before this change
		}
		if err == nil {
			r.health.up(r.Log)
			r.logApplied(ch, class, a, start, attempt)
			if a.Outcome != Untouched && !r.passwordPending(j.key, ch) {
				r.cleared(j.key)
			}
			r.order.done(j.seq)
			return done
		}
		if IsNotYet(err) && !final && ctx.Err() == nil {
			return held
		}
		if errors.Is(err, ErrInDoubt) && ctx.Err() == nil {
			// Not an outage: the write waited out an earlier one of the
			// same resource that may still land (doubt.go); read again.
			continue
		}
		if Temporary(err) {
			if firstFail.IsZero() {
				firstFail = time.Now()
			}
			r.health.down(r.Log, err)
			if !r.stuck(firstFail) {
				wait = r.backoff(wait)
				r.Stats.Waits.Add(1)
				if !r.sleep(wait) {
					return abandoned
				}
				continue
			}
		} else if attempt <= 2 && raced(err) {
			// A 400, 404 or 409 may come from a race with another entry's
			// change (a member deleted while its group was patched): read
			// and diff again before calling it permanent.
			if !r.sleep(time.Duration(attempt) * 250 * time.Millisecond) {
				return abandoned
			}
			continue
		}
		r.park(j.key, e.Identity, ch, class, e.Position, err)
		r.order.done(j.seq)
		return done
	}
}

// stuck reports whether a change failing temporarily since first should
// be parked: the service has been answering others for StuckAfter.
func (r *Runner) stuck(first time.Time) bool {
	limit := r.StuckAfter
	if limit <= 0 {
		limit = 10 * time.Minute
	}
	return time.Since(first) > limit && r.health.answeredSince(first)
}

// backoff returns the next wait after prev: exponential with full jitter
// between half and all of the ceiling, from 250 ms up to MaxBackoff.
func (r *Runner) backoff(prev time.Duration) time.Duration {
	limit := r.MaxBackoff
	if limit <= 0 {
		limit = time.Minute
	}
	next := min(max(2*prev, 250*time.Millisecond), limit)
	return next/2 + time.Duration(rand.Int64N(int64(next/2)+1))
}

// sleep waits d; false when the run is asked to stop first.
func (r *Runner) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.stop:
		return false
	}
}

// raced reports whether err is a refusal that a fresh read may cure.
func raced(err error) bool {
	return scim.IsStatus(err, http.StatusBadRequest) || scim.IsStatus(err, http.StatusNotFound) ||
		scim.IsStatus(err, http.StatusConflict) || scim.IsStatus(err, http.StatusPreconditionFailed)
}

// Temporary reports whether a change that failed with err may succeed when
// tried again later, unchanged: the SCIM service or the directory could not
// be reached or was overloaded (408, 429, 5xx, a timeout, a dropped
// connection), a create was sent and not confirmed, or a write waited out
// an earlier one of the same resource (ErrInDoubt). Anything else
// (a mapping error, a 4xx) is permanent for the change.
func Temporary(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrCreatePending) || errors.Is(err, ErrInDoubt) {
		return true
	}
	var se *scim.Error
	var te *scim.TransportError
	if errors.As(err, &se) || errors.As(err, &te) {
		return scim.IsTemporary(err) || scim.IsUncertain(err)
	}
	var ee *lang.EvalError
	if errors.As(err, &ee) {
		var be *lang.BudgetError
		if ee.Err == nil || errors.As(ee.Err, &be) {
			return false // a mapping error, or over the evaluation budget
		}
		err = ee.Err // judged by its cause, not by a message that holds DNs and values
	}
	if errors.Is(err, source.ErrAuth) {
		return false
	}
	return source.Temporary(err)
}

// health logs outages once: when the first temporary failure comes, and
// when a change goes through again.
type health struct {
	mu       sync.Mutex
	since    time.Time // the outage's start; zero when none
	what     string
	answered time.Time // the last change that went through
}

func (h *health) down(log *slog.Logger, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.since.IsZero() {
		return
	}
	h.since, h.what = time.Now(), "the directory"
	var se *scim.Error
	var te *scim.TransportError
	if errors.As(err, &se) || errors.As(err, &te) || errors.Is(err, ErrCreatePending) {
		h.what = "the SCIM service"
	}
	log.Warn(h.what+" unavailable: changes wait and are tried again with backoff; nothing is parked",
		"since", h.since.Format(time.RFC3339), "err", err.Error())
}

func (h *health) up(log *slog.Logger) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.answered = time.Now()
	if h.since.IsZero() {
		return
	}
	log.Info(h.what+" available again", "after", time.Since(h.since).Round(time.Millisecond).String())
	h.since = time.Time{}
}

func (h *health) isDown() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.since.IsZero()
}

func (h *health) answeredSince(t time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.answered.After(t)
}

// Run reads and applies changes until ctx is done, the source ends
// (io.EOF, with Options.Once) or fails. It always waits for the changes in
// flight and saves the checkpoint before returning. With Once, parked
// entries are tried once more before it returns.
func (r *Runner) Run(ctx context.Context) error {
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
	if r.Dest.Log == nil {
		r.Dest.Log = r.Log
	}
	workers := r.Workers
	if workers <= 0 {
		workers = 4
	}
	ctx, halt := context.WithCancelCause(ctx)
	defer halt(nil)
	r.halt = halt
	if err := r.loadIndex(); err != nil {
		return err
	}
	r.stop = ctx.Done()
	// Workers apply with a context that outlives ctx: a change in flight is
	// finished (or parked) when the run is stopped, not abandoned half-way,
	// references it reads included. Waits for an outage end at once.
	applyCtx, cancelApply := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelApply()
	r.initRefs(applyCtx)
	r.order = newOrderTracker(r.Store)
	r.queues = make([]chan job, workers)
	var wg sync.WaitGroup
	for i := range r.queues {
		r.queues[i] = make(chan job, 64)
		wg.Add(1)
		go func(q chan job) {
			defer wg.Done()
			r.work(applyCtx, q)
		}(r.queues[i])
	}
	if err := r.loadParked(); err != nil {
		return err
	}
	retryCtx, stopRetries := context.WithCancel(ctx)
	retriesDone := make(chan struct{})
	go func() {
		defer close(retriesDone)
		r.retryLoop(retryCtx)
	}()
	var seq int64
	var runErr error
	route := router{renamed: map[string]string{}}
	defer context.AfterFunc(ctx, r.order.stop)()
	stopped := false
	for !stopped {
		e, err := r.Source.Next(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				runErr = err
			}
			break
		}
		seq++
		r.order.start(seq, e.Position)
		switch e.Kind {
		case source.EventChange, source.EventDropped:
			w, k := route.route(e, workers)
			r.send(w, job{seq: seq, ev: e, key: k})
		case source.EventPresentSet:
			// Deletions of what is no longer present wait for every change
			// before them.
			if !r.order.wait(seq-1) || !r.present(applyCtx, e) {
				stopped = true
				break
			}
			r.order.done(seq)
		default:
			r.order.done(seq)
		}
	}
	if ctx.Err() == nil && runErr == nil && !stopped && r.order.wait(seq) {
		// The source ended (--once) and every change is done: every parked
		// entry once more (those parked in this run too), so that what
		// heals now is not left for the next run.
		r.RetryParkedSoon()
		r.retryDue(retryCtx, true)
	}
	stopRetries()
	<-retriesDone
	r.queueMu.Lock()
	r.closed = true
	for _, q := range r.queues {
		close(q)
	}
	r.queueMu.Unlock()
	wg.Wait()
	if err := r.order.flush(); err != nil && runErr == nil {
		runErr = fmt.Errorf("saving the checkpoint: %w", err)
	}
	if runErr == nil {
		runErr = haltCause(ctx)
	}
	return runErr
}

// send queues a job for worker w, unless the queues are closed.
func (r *Runner) send(w int, j job) {
	r.queueMu.RLock()
	defer r.queueMu.RUnlock()
	if !r.closed {
		r.queues[w] <- j
	}
}

// initRefs makes the reference resolver.
func (r *Runner) initRefs(ctx context.Context) {
	r.refs = &RefResolver{Ctx: ctx, Pipe: r.Pipe, Dest: r.Dest, Mode: lang.Realtime, Entry: func(dn string) (*lang.Entry, error) {
		if r.Entry == nil {
			return nil, nil
		}
		return r.Entry(ctx, dn)
	}}
}

// router picks the queue of an event's entry, so changes to one entry stay
// in order. Entries with a stable identity hash it; entries without one
// (LDIF) hash their DN, and a rename keeps the queue of the old DN for the
// new one, so a rename never overtakes the changes before it.
type router struct {
	renamed map[string]string // normalized new DN -> the entry's key, for identity-less renames
}

// route returns the queue of an event's entry and the entry's key.
func (rt *router) route(e *source.Event, n int) (int, string) {
	if e.Identity != "" {
		return hashQueue(e.Identity, n), e.Identity
	}
	dn := source.NormalizeDN(e.Change.DN)
	k := "dn:" + dn
	if e.Change.OldDN != "" {
		old := source.NormalizeDN(e.Change.OldDN)
		if k2, ok := rt.renamed[old]; ok {
			k = k2
		} else {
			k = "dn:" + old
		}
		delete(rt.renamed, old)
		rt.renamed[dn] = k
	} else if k2, ok := rt.renamed[dn]; ok {
		k = k2
	}
	return hashQueue(k, n), k
}

func hashQueue(k string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(k))
	return int(h.Sum32() % uint32(n))
}

// Untouched is a modify the owning class reads nothing of, or an
// operation the owning class does not synchronize: no request is sent.
const Untouched Outcome = "untouched"

// Apply maps and applies one change and updates the id map. It returns the
// class that took it ("" if none) for the failed-changes record.
//
// An entry the id map knows belongs to the class that made its resource:
// that class decides what a delete does (onDelete, or nothing when its
// operations leave deletes out), and a modify or rename it does not
// synchronize is not passed on to a later class.
func (r *Runner) Apply(ctx context.Context, ev *lang.Evaluator, identity string, ch *lang.Change) (string, Applied, error) {
	k := identity
	if k == "" {
		k = "dn:" + source.NormalizeDN(ch.DN)
	}
	m, known, err := r.Store.Get(k)
	if err != nil {
		return "", Applied{}, err
	}
	oldKey := ""
	if !known && identity == "" && ch.OldDN != "" {
		// A rename without a stable identity: the id map knows the old DN.
		oldKey = "dn:" + source.NormalizeDN(ch.OldDN)
		if m, known, err = r.Store.Get(oldKey); err != nil {
			return "", Applied{}, err
		}
	}
	ch = currentDN(ch, m, known)
	owner := (*lang.Class)(nil)
	if known && m.Class != "" {
		owner = r.Pipe.Class(m.Class)
	}
	if known && ch.Type == lang.Delete {
		return r.leave(ctx, k, oldKey, m, ch)
	}
	if owner != nil && (ch.Type == lang.Modify || ch.Type == lang.ModRDN) && !syncs(owner, "modify") {
		return owner.Name, Applied{Outcome: Untouched}, nil
	}
	if owner != nil && m.SCIMID != "" && ch.Type == lang.Modify && ch.OldDN == "" && ch.Changed != nil &&
		!owner.Reads(lang.Realtime, ch.Changed) {
		// Only attributes that no expression of the owning class (nor an
		// earlier class's when) reads changed: nothing to send, not even a
		// GET. The resource may be parked behind: not cleared (Untouched).
		return owner.Name, Applied{Outcome: Untouched, ID: m.SCIMID}, nil
	}
	if ch.Type != lang.Delete && !r.inSource(ch.DN) {
		// Moved outside the source's bases (DirSync and changelogs report
		// such a rename): out of scope, whatever the classes' bases say.
		if !known {
			return "", Applied{Outcome: OutOfScope}, nil
		}
		return r.leave(ctx, k, oldKey, m, ch)
	}
	res, err := ev.Eval(ch, lang.Realtime)
	if err != nil {
		return takenBy(ev, ch), Applied{}, err
	}
	if res.OutOfScope {
		if !known {
			return "", Applied{Outcome: OutOfScope}, nil
		}
		return r.leave(ctx, k, oldKey, m, ch)
	}
	kn := Known{Shadow: r.ReadShadows, Alive: r.alive}
	if known && m.Endpoint == res.Endpoint.Name {
		kn.ID, kn.Filters, kn.CreateSent = m.SCIMID, m.Pending, m.CreateSent
	}
	if !known || m.SCIMID == "" {
		kn.BeforeCreate = func(filters []string) error {
			return r.Store.Put(k, state.Mapping{Endpoint: res.Endpoint.Name, DN: ch.DN, Class: res.Class.Name,
				Pending: filters, CreateSent: time.Now().UTC()})
		}
		kn.CreateRefused = func() error { return r.Store.Delete(k) }
	}
	if ch.Type == lang.Delete {
		// An entry the id map does not know, found by its lookup filter.
		if err := r.admitDelete(); err != nil {
			return res.Class.Name, Applied{}, err
		}
	}
	a, err := r.Dest.ApplyKnown(ctx, res, kn, r.resolver())
	if err != nil {
		return res.Class.Name, a, err
	}
	if a.Outcome == Deactivated {
		if err := r.leaveGroups(ctx, res.Endpoint, a.ID); err != nil {
			return res.Class.Name, a, err
		}
	}
	switch {
	case ch.Type == lang.Delete:
		r.forget(k, oldKey, m, ch)
	case a.ID != "":
		if known && m.Endpoint != res.Endpoint.Name && m.SCIMID != "" {
			// The entry moved to another endpoint: the old resource goes.
			if old := r.Pipe.Endpoint(m.Endpoint); old != nil {
				if _, err := r.Dest.DeleteKnown(ctx, old, m.SCIMID, false); err != nil {
					return res.Class.Name, a, err
				}
			}
		}
		nm := state.Mapping{Endpoint: res.Endpoint.Name, SCIMID: a.ID, DN: ch.DN, Class: res.Class.Name}
		if !known || nm.Endpoint != m.Endpoint || nm.SCIMID != m.SCIMID || nm.DN != m.DN || nm.Class != m.Class || len(m.Pending) > 0 {
			if err := r.Store.Put(k, nm); err != nil {
				return res.Class.Name, a, err
			}
		}
		if oldKey != "" {
			_ = r.Store.Delete(oldKey)
		}
		r.remember(m, known, nm)
	}
	return res.Class.Name, a, nil
}

// takenBy names the class that took a change whose evaluation failed, for
// the failed-changes record ("" when the failure came before a class did).
func takenBy(ev *lang.Evaluator, ch *lang.Change) string {
	reports, err := ev.Explain(ch)
	if err != nil || len(reports) == 0 || !reports[len(reports)-1].Match {
		return ""
	}
	return reports[len(reports)-1].Class.Name
}

// inSource reports whether dn is under the source's base DNs.
func (r *Runner) inSource(dn string) bool {
	r.scopeOnce.Do(func() {
		var err error
		if r.scope, err = source.NewScope(r.Pipe.Source.Base); err != nil {
			r.scope, _ = source.NewScope(nil) // checked at load: cannot happen
		}
	})
	return r.scope.Contains(dn)
}

// currentDN judges a replayed or stale change by where its entry is now:
// the source fetched the entry as it is now, and its DN, not the one the
// change record carries, decides scope (an add replayed after the entry
// was moved into scope is an update there, not a delete and a create).
func currentDN(ch *lang.Change, m state.Mapping, known bool) *lang.Change {
	if ch.Type == lang.Delete || ch.Entry == nil || ch.Entry.DN == "" || ch.Entry.DN == ch.DN ||
		source.NormalizeDN(ch.Entry.DN) == source.NormalizeDN(ch.DN) { // (parsing both only when they are spelled apart)
		return ch
	}
	c := *ch
	c.DN = ch.Entry.DN
	if known && source.NormalizeDN(m.DN) != source.NormalizeDN(c.DN) && c.OldDN == "" {
		c.OldDN = m.DN
	}
	return &c
}

// syncs reports whether a class synchronizes an operation (create, modify
// or delete).
func syncs(cl *lang.Class, op string) bool {
	for _, o := range cl.Operations {
		if o == op {
			return true
		}
	}
	return false
}

// leave is the one decision for every path that takes an entry's resource
// away: a delete (from any source: changelog, syncrepl, DirSync tombstones,
// a present phase), or an entry that no class takes any more (moved out of
// its class's scope by a modify or rename). The class that owns the
// resource decides: for a delete, nothing when its operations leave deletes
// out, else onDelete; otherwise onLeave (delete, deactivate or keep).
func (r *Runner) leave(ctx context.Context, k, oldKey string, m state.Mapping, ch *lang.Change) (string, Applied, error) {
	ep := r.Pipe.Endpoint(m.Endpoint)
	if ep == nil {
		return "", Applied{}, fmt.Errorf("the id map names endpoint %q, which the script no longer has", m.Endpoint)
	}
	action := "delete"
	cl := r.Pipe.Class(m.Class)
	if cl != nil {
		action = cl.OnLeave
		if ch.Type == lang.Delete {
			action = cl.OnDelete
			if !syncs(cl, "delete") {
				action = "ignore"
			}
		}
	}
	if m.SCIMID == "" {
		// A create was sent and not confirmed: find out whether it landed.
		id, cur, err := r.Dest.FindAny(ctx, ep, m.Pending)
		if err != nil {
			return m.Class, Applied{}, err
		}
		if cur == nil {
			if !m.CreateSent.IsZero() && time.Since(m.CreateSent) < r.Dest.createGrace() {
				// Not there yet, but the create may still be on its way
				// (held by a proxy, queued at the service, sent just before
				// a kill -9): forgetting it now would leave the resource it
				// makes an orphan. Wait out the grace, as a second create
				// would, then look again.
				return m.Class, Applied{}, fmt.Errorf("%s at %s: %w", ch.Type, ep.Path, ErrCreatePending)
			}
			r.forget(k, oldKey, m, ch)
			return m.Class, Applied{Outcome: Absent, Endpoint: ep}, nil
		}
		m.SCIMID = id
	}
	switch action {
	case "ignore":
		r.forget(k, oldKey, m, ch)
		return m.Class, Applied{Outcome: Untouched, Endpoint: ep, ID: m.SCIMID}, nil
	case "keep":
		return m.Class, Applied{Outcome: OutOfScope, Endpoint: ep, ID: m.SCIMID}, nil
	case "deactivate":
		if err := r.admitDelete(); err != nil {
			return m.Class, Applied{}, err
		}
		a, err := r.Dest.DeleteKnown(ctx, ep, m.SCIMID, true)
		if err != nil {
			return m.Class, a, err
		}
		if err := r.leaveGroups(ctx, ep, m.SCIMID); err != nil {
			return m.Class, a, err
		}
		if ch.Type == lang.Delete {
			r.forget(k, oldKey, m, ch)
		}
		return m.Class, a, nil
	}
	if err := r.admitDelete(); err != nil {
		return m.Class, Applied{}, err
	}
	a, err := r.Dest.DeleteKnown(ctx, ep, m.SCIMID, false)
	if err != nil {
		return m.Class, a, err
	}
	r.forget(k, oldKey, m, ch)
	return m.Class, a, nil
}

// leaveGroups removes a deactivated resource from the groups this pipe
// manages (a SCIM service removes a deleted user from its groups itself,
// but keeps a deactivated one in them).
func (r *Runner) leaveGroups(ctx context.Context, ep *lang.Endpoint, id string) error {
	managed := map[string]string{} // SCIM id -> endpoint name, of what the pipe manages
	var groups []string            // the ids of the groups among them
	r.mu.Lock()
	r.dns.each(func(ref dnRef) {
		managed[ref.id] = ref.endpoint
		if e := r.Pipe.Endpoint(ref.endpoint); e != nil && e.Type == "Group" {
			groups = append(groups, ref.id)
		}
	})
	r.mu.Unlock()
	var groupEndpoints []*lang.Endpoint
	for _, e := range r.Pipe.Endpoints {
		if e.Type == "Group" {
			groupEndpoints = append(groupEndpoints, e)
		}
	}
	return r.Dest.LeaveGroups(ctx, ep, id, groupEndpoints, func(groupID string) *lang.Endpoint {
		if name, ok := managed[groupID]; ok {
			return r.Pipe.Endpoint(name)
		}
		return nil
	}, groups)
}

// forget removes an entry from the id map and the DN index.
func (r *Runner) forget(k, oldKey string, m state.Mapping, ch *lang.Change) {
	_ = r.Store.Delete(k)
	if oldKey != "" {
		_ = r.Store.Delete(oldKey)
	}
	r.mu.Lock()
	r.dns.remove(m.DN)
	r.dns.remove(ch.DN)
	r.mu.Unlock()
	if r.refs != nil {
		r.refs.Forget(m.DN)
		r.refs.Forget(ch.DN)
	}
}

// remember updates the DN index after a change was applied.
func (r *Runner) remember(old state.Mapping, known bool, m state.Mapping) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if known && !strings.EqualFold(old.DN, m.DN) {
		r.dns.remove(old.DN)
		if r.refs != nil {
			r.refs.Forget(old.DN)
		}
	}
	r.dns.add(m.DN, dnRef{endpoint: m.Endpoint, id: m.SCIMID})
}

// loadIndex reads the id map's DNs into the index (dnindex.go), and the
// keys of its creates not confirmed yet (for loadParked), in one read of
// the id map as the run starts.
func (r *Runner) loadIndex() error {
	x := newDNIndex()
	var pending []string
	err := r.scanIDMap(func(k string, m state.Mapping) {
		if m.SCIMID == "" {
			// A create not confirmed yet.
			if len(m.Pending) > 0 {
				pending = append(pending, k)
			}
			return
		}
		x.add(m.DN, dnRef{endpoint: m.Endpoint, id: m.SCIMID})
	})
	r.mu.Lock()
	r.dns = x
	r.mu.Unlock()
	r.parkMu.Lock()
	r.unconfirmed = pending
	r.parkMu.Unlock()
	return err
}

// scanIDMap calls fn with every mapping of the id map. The read goes
// through bbolt's map of the state file, where each page read stays
// resident in the process, and a run reads few of them again: they are
// given back as the read goes (state.Tx.ReleaseMemory), so that the whole
// id map (38 MiB of pages at 100 000 mappings) is never resident at once.
func (r *Runner) scanIDMap(fn func(key string, m state.Mapping)) error {
	const releaseEvery = 4096 // mappings, about 1.5 MiB of pages
	return r.Store.View(func(t *state.Tx) error {
		n := 0
		err := t.Range(func(k string, m state.Mapping) bool {
			if n++; n%releaseEvery == 0 {
				_ = t.ReleaseMemory()
			}
			fn(k, m)
			return true
		})
		if rerr := t.ReleaseMemory(); rerr != nil && r.Log != nil {
			r.Log.Debug("state: giving back the memory of the id map's pages failed", "err", rerr)
		}
		return err
	})
}

// alive reports whether the id map holds the resource id: a shadow that
// refers to another (a member this engine deleted, which the service took
// out of its groups by itself) is not used (Known.Alive).
func (r *Runner) alive(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dns.alive(id)
}

// resolver resolves references from the id map first, then through the
// source and a SCIM lookup.
func (r *Runner) resolver() lang.Resolver {
	return lang.ResolverFunc(func(dn string, eps []*lang.Endpoint) (lang.Ref, bool, error) {
		// As last seen, in any case (dnIndex.lookup, with the parsing out
		// of the lock).
		raw, plain := rawKey(dn)
		r.mu.Lock()
		ref, ok := r.dns.byRaw(raw)
		r.mu.Unlock()
		if !ok {
			// Spelled differently (spaces, case, escaping): compare parsed.
			norm := raw
			if !plain {
				norm = normKey(dn)
			}
			r.mu.Lock()
			ref, ok = r.dns.byNorm(norm)
			r.mu.Unlock()
		}
		if ok {
			for _, ep := range eps {
				if ep.Name == ref.endpoint {
					return lang.Ref{ID: ref.id, Type: ep.Type}, true, nil
				}
			}
			return lang.Ref{}, false, nil
		}
		if r.Entry == nil {
			// Without a way to read the entry, an unknown DN may be an entry
			// not synced yet: wait for it rather than drop it.
			return lang.Ref{}, false, &notYetError{dn: dn}
		}
		return r.refs.Resolve(dn, eps)
	})
}

// present handles the end of a syncrepl present phase: every entry the id
// map knows that is not in the present set was deleted, and goes the way
// of every delete (leave: its class's onDelete). It returns false when the
// run stopped during an outage before all were applied: the present set
// is then not passed, and the next run reads it again.
func (r *Runner) present(ctx context.Context, e *source.Event) bool {
	present := make(map[string]bool, len(e.Identities))
	for _, id := range e.Identities {
		present[id] = true
	}
	type gone struct {
		key string
		m   state.Mapping
	}
	var goners []gone
	_ = r.scanIDMap(func(k string, m state.Mapping) {
		if !strings.HasPrefix(k, "dn:") && !present[k] {
			goners = append(goners, gone{k, m})
		}
	})
	if len(goners) > 0 {
		r.Log.Info("present phase: entries the id map knows are not in the directory's present set", "count", len(goners))
	}
	ev := r.Pipe.NewEvaluator()
	for _, g := range goners {
		// Read again by identity: an entry outside the present set may have
		// moved out of the synchronized scope rather than been deleted.
		p := &state.Parked{Key: g.key, Identity: g.key, DN: g.m.DN, Op: lang.Delete.String(), Position: e.Position}
		var first time.Time
		var wait time.Duration
		for {
			start := time.Now()
			ch, class, a, err := r.applyCurrent(ctx, ev, g.key, p)
			if errors.Is(err, ErrTooManyDeletes) {
				return false
			}
			if err == nil {
				r.health.up(r.Log)
				r.cleared(g.key)
				r.logApplied(ch, class, a, start, 1)
				break
			}
			if Temporary(err) {
				if first.IsZero() {
					first = time.Now()
				}
				r.health.down(r.Log, err)
				if !r.stuck(first) {
					wait = r.backoff(wait)
					if !r.sleep(wait) {
						return false
					}
					continue
				}
			}
			r.park(g.key, g.key, ch, class, e.Position, err)
			break
		}
	}
	return true
}

// park records a failed change in the store: one record per entry, which
// replaces an earlier one of the same entry (its attempts counted on).
func (r *Runner) park(key, identity string, ch *lang.Change, class, pos string, cause error) {
	attempts := 1
	err := r.Store.Update(func(t *state.Tx) error {
		p, ok, err := t.ParkedKey(key)
		if err != nil {
			return err
		}
		if ok {
			attempts = p.Attempts + 1
			if class == "" {
				class = p.Class // a retry that failed before a class took it
			}
		}
		now := time.Now().UTC()
		p = state.Parked{ID: p.ID, Key: key, Identity: identity, DN: ch.DN, Op: ch.Type.String(), Class: class,
			Error: cause.Error(), Attempts: attempts, Time: now, NextTry: now.Add(r.parkedWait(attempts)), Position: pos,
			PasswordAt: passwordAt(p, ch, pos)}
		_, err = t.Park(p)
		return err
	})
	if err != nil {
		r.Log.Error("cannot park a change", "dn", ch.DN, "err", err)
		return
	}
	if attempts == 1 {
		r.Stats.Parked.Add(1) // entries newly parked; a parked entry failing again is not counted twice
	}
	r.schedule(key, attempts)
	r.Log.Warn("parked", "op", ch.Type.String(), "dn", ch.DN, "class", class, "attempts", attempts, "err", cause.Error())
	r.observe(ChangeRecord{Op: ch.Type.String(), DN: ch.DN, Class: class, Outcome: ParkedChange, Attempts: attempts})
}

// parkedWait is the wait before automatic retry number n of a parked entry.
func (r *Runner) parkedWait(n int) time.Duration {
	first, limit := r.ParkedFirst, r.ParkedBackoff
	if first <= 0 {
		first = 5 * time.Second
	}
	if limit <= 0 {
		limit = time.Hour
	}
	d := first
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// schedule sets a parked entry's next automatic retry.
func (r *Runner) schedule(key string, attempts int) {
	r.parkMu.Lock()
	defer r.parkMu.Unlock()
	if r.parked == nil {
		r.parked = map[string]*parkedState{}
	}
	ps := r.parked[key]
	if ps == nil {
		ps = &parkedState{}
		r.parked[key] = ps
	}
	ps.next, ps.inFlight = time.Now().Add(r.parkedWait(attempts)), false
}

// cleared forgets the parked record of an entry whose later change was
// applied whole: that change brought its resource up to date.
func (r *Runner) cleared(key string) {
	r.parkMu.Lock()
	_, ok := r.parked[key]
	delete(r.parked, key)
	r.parkMu.Unlock()
	if !ok {
		return
	}
	err := r.Store.Update(func(t *state.Tx) error {
		p, ok, err := t.ParkedKey(key)
		if err != nil || !ok {
			return err
		}
		return t.Unpark(p.ID)
	})
	if err != nil {
		r.Log.Error("cannot clear a parked change", "key", key, "err", err)
		return
	}
	r.Stats.Healed.Add(1)
	r.Log.Info("parked change cleared: a later change of the entry was applied", "key", key)
	r.observe(ChangeRecord{Outcome: HealedChange})
}

// loadParked reads the parked entries at start: each is tried again soon.
func (r *Runner) loadParked() error {
	ps, err := r.Store.ListParked()
	if err != nil {
		return err
	}
	r.parkMu.Lock()
	defer r.parkMu.Unlock()
	r.parked = map[string]*parkedState{}
	for _, p := range ps {
		r.parked[parkedKey(p)] = &parkedState{next: time.Now()}
	}
	// Creates that were sent and not confirmed when the last run stopped
	// (loadIndex found them): each entry is read again and its resource
	// looked up (leave, Apply).
	for _, k := range r.unconfirmed {
		if _, ok := r.parked[k]; !ok {
			r.parked[k] = &parkedState{next: time.Now()}
		}
	}
	r.unconfirmed = nil
	return nil
}

// parkedKey is a record's entry key (records written before keys were kept
// have only the identity or the DN).
func parkedKey(p state.Parked) string {
	switch {
	case p.Key != "":
		return p.Key
	case p.Identity != "":
		return p.Identity
	}
	return "dn:" + source.NormalizeDN(p.DN)
}

// RetryParkedSoon makes every parked entry due for a retry now (`failed
// retry` while run runs) and returns how many there are.
func (r *Runner) RetryParkedSoon() int {
	r.parkMu.Lock()
	defer r.parkMu.Unlock()
	now := time.Now()
	for _, ps := range r.parked {
		ps.next = now
	}
	return len(r.parked)
}

// retryLoop queues the parked entries that are due, every second.
func (r *Runner) retryLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		r.retryDue(ctx, false)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// retryDue queues a retry job for each parked entry that is due (all of
// them with force), through the entry's own queue so that it stays in
// order with the entry's changes.
func (r *Runner) retryDue(ctx context.Context, force bool) {
	now := time.Now()
	var due []string
	r.parkMu.Lock()
	for k, ps := range r.parked {
		if !ps.inFlight && (force || !now.Before(ps.next)) {
			ps.inFlight = true
			due = append(due, k)
		}
	}
	r.parkMu.Unlock()
	for _, k := range due {
		p := state.Parked{Key: k}
		if !strings.HasPrefix(k, "dn:") {
			p.Identity = k
		}
		if ctx.Err() != nil && !force {
			return
		}
		r.send(hashQueue(k, len(r.queues)), job{key: k, retry: &p})
	}
}

// retryParked tries a parked entry again (or a present-phase delete, or a
// create that was not confirmed), as it is now: it reads the entry from
// the directory (by identity, or by DN without one), and applies that state
// (a delete when it is gone). Success removes the record; failure keeps it,
// one more attempt counted, for a later retry. Nothing older than what the
// entry holds now is ever written.
func (r *Runner) retryParked(ctx context.Context, ev *lang.Evaluator, p *state.Parked) {
	key := parkedKey(*p)
	rec, hasRec := state.Parked{}, false
	_ = r.Store.View(func(t *state.Tx) error {
		var err error
		rec, hasRec, err = t.ParkedKey(key)
		return err
	})
	if hasRec {
		p = &rec
	}
	if !hasRec {
		if _, known, err := r.Store.Get(key); err == nil && !known && p.DN == "" {
			// Cleared meanwhile (a later change applied), and nothing to
			// check: no record, no unconfirmed create.
			r.parkMu.Lock()
			delete(r.parked, key)
			r.parkMu.Unlock()
			return
		}
	}
	start := time.Now()
	var (
		ch    *lang.Change
		class string
		a     Applied
		err   error
		first time.Time
		wait  time.Duration
	)
	for {
		// A temporary failure waits and tries again, as a live change
		// does (the service busy, an unanswered create's grace): a parked
		// entry is not kept parked for it — `run --once`'s last pass
		// would end with it still parked.
		ch, class, a, err = r.applyCurrent(ctx, ev, key, p)
		if err == nil || !Temporary(err) || errors.Is(err, ErrTooManyDeletes) {
			break
		}
		if first.IsZero() {
			first = time.Now()
		}
		r.health.down(r.Log, err)
		if r.stuck(first) {
			break
		}
		wait = r.backoff(wait)
		r.Stats.Waits.Add(1)
		if !r.sleep(wait) {
			break
		}
	}
	if errors.Is(err, ErrTooManyDeletes) {
		return // the run stops; the record stays as it was
	}
	if err == nil {
		r.health.up(r.Log)
		r.parkMu.Lock()
		delete(r.parked, key)
		r.parkMu.Unlock()
		if hasRec {
			if uerr := r.Store.Unpark(rec.ID); uerr != nil {
				r.Log.Error("cannot clear a parked change", "dn", ch.DN, "err", uerr)
			}
			r.Stats.Healed.Add(1)
			r.Log.Info("parked change healed", "op", ch.Type.String(), "dn", ch.DN, "class", class, "attempts", rec.Attempts+1)
			r.observe(ChangeRecord{Op: ch.Type.String(), DN: ch.DN, Class: class, Outcome: HealedChange, Attempts: rec.Attempts + 1})
		}
		r.logApplied(ch, class, a, start, rec.Attempts+1)
		return
	}
	if Temporary(err) {
		r.health.down(r.Log, err)
		if !hasRec {
			// Not parked (a present-phase delete, an unconfirmed create):
			// tried again soon, as the outage allows.
			r.parkMu.Lock()
			if r.parked == nil {
				r.parked = map[string]*parkedState{}
			}
			r.parked[key] = &parkedState{next: time.Now().Add(r.backoff(time.Second))}
			r.parkMu.Unlock()
			return
		}
	}
	r.park(key, p.Identity, ch, class, p.Position, err)
}

// applyCurrent applies the entry's state now (currentChange). The change
// it returns is never nil: on failure to read the entry it describes p.
func (r *Runner) applyCurrent(ctx context.Context, ev *lang.Evaluator, key string, p *state.Parked) (*lang.Change, string, Applied, error) {
	ch, err := r.currentChange(ctx, key, p)
	if err != nil {
		ch = &lang.Change{Type: lang.Modify, DN: p.DN, Entry: lang.NewEntry(p.DN, nil)}
		if t, ok := lang.ParseChangeType(p.Op); ok {
			ch.Type = t
		}
		return ch, "", Applied{}, err
	}
	pwErr := r.passwordAgain(ctx, p, ch)
	class, a, err := r.Apply(ctx, ev, p.Identity, ch)
	if err == nil && pwErr != nil {
		err = pwErr // the rest of the entry is synced; the password stays parked
	}
	return ch, class, a, err
}

// currentChange is the change that brings an entry's resource to the
// entry's state now: an add or a modify (a rename when its DN moved) of the
// entry as the directory holds it, or a delete when it is gone.
func (r *Runner) currentChange(ctx context.Context, key string, p *state.Parked) (*lang.Change, error) {
	m, known, err := r.Store.Get(key)
	if err != nil {
		return nil, err
	}
	dn := p.DN
	if known {
		dn = m.DN
	}
	var e *lang.Entry
	switch {
	case p.Op == "delete" && p.Identity == "" && key != "dn:"+source.NormalizeDN(dn):
	case p.Identity != "" && r.EntryByID != nil:
		e, err = r.EntryByID(ctx, p.Identity)
		if err == nil && e == nil && r.Entry != nil && dn != "" {
			// Not found by identity: make sure it is not at its DN either
			// before taking it for deleted.
			if e, err = r.Entry(ctx, dn); e != nil {
				if id := source.Identity(e, r.Pipe.Source); id != "" && id != p.Identity {
					e = nil // another entry now has that DN
				}
			}
		}
	case r.Entry != nil && dn != "":
		e, err = r.Entry(ctx, dn)
	default:
		return nil, errors.New("the entry cannot be read again: the source has no directory to read")
	}
	if err != nil {
		return nil, err
	}
	if e == nil {
		if dn == "" {
			dn = p.DN
		}
		return &lang.Change{Type: lang.Delete, DN: dn, Entry: lang.NewEntry(dn, nil)}, nil
	}
	ch := &lang.Change{Type: lang.Add, DN: e.DN, Entry: e}
	if known {
		ch.Type = lang.Modify
		if source.NormalizeDN(m.DN) != source.NormalizeDN(e.DN) {
			ch.Type, ch.OldDN = lang.ModRDN, m.DN
		}
	}
	return ch, nil
}

// RetryParked tries every parked entry again, as it is now (see
// retryParked), outside a run (`failed retry`). It returns how many healed
// and how many still fail.
func (r *Runner) RetryParked(ctx context.Context) (ok, failed int, err error) {
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
	if r.dns == nil {
		if err := r.loadIndex(); err != nil {
			return 0, 0, err
		}
	}
	if r.refs == nil {
		r.initRefs(ctx)
	}
	parked, err := r.Store.ListParked()
	if err != nil {
		return 0, 0, err
	}
	ev := r.Pipe.NewEvaluator()
	left := parked
	// Passes while they heal something: a group may wait for a member
	// parked after it (renamed while the run was stopped), healed in the
	// same pass.
	for pass := 0; pass < maxPasses && len(left) > 0; pass++ {
		for _, p := range left {
			r.retryParked(ctx, ev, &p)
		}
		before := len(left)
		if left, err = r.Store.ListParked(); err != nil {
			return 0, 0, err
		}
		if len(left) == before {
			break
		}
	}
	return len(parked) - len(left), len(left), nil
}

// orderTracker moves the checkpoint past changes that are done, in order.
type orderTracker struct {
	store    *state.Store
	mu       sync.Mutex
	cond     *sync.Cond
	pos      map[int64]string
	done_    map[int64]bool
	next     int64 // the lowest seq not yet done
	saved    string
	pending  string
	last     time.Time
	stopping bool
	later    bool // a save of pending is scheduled (done)
}

func newOrderTracker(s *state.Store) *orderTracker {
	t := &orderTracker{store: s, pos: map[int64]string{}, done_: map[int64]bool{}, next: 1}
	t.cond = sync.NewCond(&t.mu)
	return t
}

// firstUndone is the lowest seq not done yet.
func (t *orderTracker) firstUndone() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.next
}

func (t *orderTracker) start(seq int64, pos string) {
	t.mu.Lock()
	t.pos[seq] = pos
	t.mu.Unlock()
}

// done marks a change done and saves the checkpoint of the longest done
// prefix (at most every 100 ms; flush saves the rest).
func (t *orderTracker) done(seq int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done_[seq] = true
	for t.done_[t.next] {
		if p := t.pos[t.next]; p != "" {
			t.pending = p
		}
		delete(t.done_, t.next)
		delete(t.pos, t.next)
		t.next++
	}
	t.cond.Broadcast()
	if t.pending != t.saved && time.Since(t.last) > 100*time.Millisecond {
		if err := t.store.SetCheckpoint(t.pending); err == nil {
			t.saved, t.last = t.pending, time.Now()
		}
	}
	if t.pending != t.saved && !t.later {
		// Saved at most every 100 ms; the last of a burst is saved a
		// moment later rather than at the next change, which may be hours
		// away: until then status and the lag would count a change that
		// was applied long ago as not read.
		t.later = true
		time.AfterFunc(100*time.Millisecond, func() {
			t.mu.Lock()
			t.later = false
			t.mu.Unlock()
			_ = t.flush() // an error is the next save's to report
		})
	}
}

// wait blocks until every change up to seq is done; false when the run
// was asked to stop first (a worker may have left a change undone).
func (t *orderTracker) wait(seq int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.next <= seq && !t.stopping {
		t.cond.Wait()
	}
	return t.next > seq
}

// stop ends every wait.
func (t *orderTracker) stop() {
	t.mu.Lock()
	t.stopping = true
	t.cond.Broadcast()
	t.mu.Unlock()
}

func (t *orderTracker) flush() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending == t.saved {
		return nil
	}
	if err := t.store.SetCheckpoint(t.pending); err != nil {
		return err
	}
	t.saved, t.last = t.pending, time.Now()
	return nil
}

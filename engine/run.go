package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
// resource. A change that fails (an expression error on that entry, a SCIM
// error that is not temporary, retries exhausted) is parked in the store's
// failed-changes record and the pipe goes on.
type Runner struct {
	Pipe    *lang.Pipe
	Dest    *Destination
	Store   *state.Store
	Source  source.Source
	Workers int          // default 4
	Log     *slog.Logger // one line per applied, dropped or parked change; never a value
	// Entry reads an entry by DN for references the id map does not know
	// (nil: such references wait until the entry is synced).
	Entry func(ctx context.Context, dn string) (*lang.Entry, error)

	Stats RunStats

	mu    sync.Mutex
	byDN  map[string]dnRef // normalized DN -> the resource it became (from the id map)
	byRaw map[string]dnRef // the DN as last seen, lower-cased: a fast path that skips parsing
	refs  *RefResolver
	order *orderTracker
}

// RunStats counts what a run did.
type RunStats struct {
	Applied, Unchanged, OutOfScope, Dropped, Parked, Deleted atomic.Int64
}

type dnRef struct {
	endpoint string
	id       string
}

// job is one event for a worker.
type job struct {
	seq int64
	ev  *source.Event
	key string // the entry, for keeping its changes in order
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

// work applies a queue's changes in order. A change whose references are
// not in SCIM yet (a group before its members) is held, with the later
// changes of the same entry, and tried again while the other entries go
// on; after maxRefWait it is parked.
func (r *Runner) work(ctx context.Context, q chan job) {
	ev := r.Pipe.NewEvaluator()
	held := map[string]*waiting{}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case j, ok := <-q:
			if !ok {
				q = nil
				if len(held) == 0 {
					return
				}
				continue
			}
			if w := held[j.key]; w != nil {
				w.jobs = append(w.jobs, j)
				continue
			}
			if !r.try(ctx, ev, j, false) {
				now := time.Now()
				held[j.key] = &waiting{jobs: []job{j}, since: now, next: now.Add(50 * time.Millisecond), delay: 50 * time.Millisecond}
			}
		case now := <-tick.C:
			for k, w := range held {
				if now.Before(w.next) {
					continue
				}
				for len(w.jobs) > 0 && r.try(ctx, ev, w.jobs[0], now.Sub(w.since) > maxRefWait) {
					w.jobs, w.since = w.jobs[1:], now
				}
				if len(w.jobs) == 0 {
					delete(held, k)
					continue
				}
				w.delay = min(2*w.delay, time.Second)
				w.next = now.Add(w.delay)
			}
			if q == nil && len(held) == 0 {
				return
			}
		}
	}
}

// try applies a job. It returns false, leaving the job undone, when a
// reference is not in SCIM yet and final is false; otherwise the job is
// done: applied, or parked.
func (r *Runner) try(ctx context.Context, ev *lang.Evaluator, j job, final bool) bool {
	e := j.ev
	ch := e.Change
	if e.Kind == source.EventDropped {
		r.Stats.Dropped.Add(1)
		r.Log.Info("dropped", "op", ch.Type.String(), "dn", ch.DN, "why", e.Dropped)
		r.order.done(j.seq)
		return true
	}
	start := time.Now()
	class, a, err := r.Apply(ctx, ev, e.Identity, ch)
	if err != nil && IsNotYet(err) && !final && ctx.Err() == nil {
		return false
	}
	if err != nil {
		r.park(e.Identity, ch, class, e.Position, err, 1)
	} else {
		r.logApplied(ch, a, start)
	}
	r.order.done(j.seq)
	return true
}

// Run reads and applies changes until ctx is done, the source ends
// (io.EOF, with Options.Once) or fails. It always waits for the changes in
// flight and saves the checkpoint before returning.
func (r *Runner) Run(ctx context.Context) error {
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
	workers := r.Workers
	if workers <= 0 {
		workers = 4
	}
	if err := r.loadIndex(); err != nil {
		return err
	}
	// Workers apply with a context that outlives ctx: a change in flight is
	// finished (or parked) when the run is stopped, not abandoned half-way,
	// references it reads included.
	applyCtx, cancelApply := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelApply()
	r.refs = &RefResolver{Ctx: applyCtx, Pipe: r.Pipe, Dest: r.Dest, Mode: lang.Realtime, Entry: func(dn string) (*lang.Entry, error) {
		if r.Entry == nil {
			return nil, nil
		}
		return r.Entry(applyCtx, dn)
	}}
	r.order = newOrderTracker(r.Store)
	queues := make([]chan job, workers)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan job, 64)
		wg.Add(1)
		go func(q chan job) {
			defer wg.Done()
			r.work(applyCtx, q)
		}(queues[i])
	}
	var seq int64
	var runErr error
	route := router{renamed: map[string]string{}}
	for {
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
			queues[w] <- job{seq: seq, ev: e, key: k}
		case source.EventPresentSet:
			// Deletions of what is no longer present wait for every change
			// before them.
			r.order.wait(seq - 1)
			r.present(applyCtx, e)
			r.order.done(seq)
		default:
			r.order.done(seq)
		}
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	if err := r.order.flush(); err != nil && runErr == nil {
		runErr = fmt.Errorf("saving the checkpoint: %w", err)
	}
	return runErr
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

func (r *Runner) logApplied(ch *lang.Change, a Applied, start time.Time) {
	switch a.Outcome {
	case OutOfScope:
		r.Stats.OutOfScope.Add(1)
		r.Log.Debug("out of scope", "op", ch.Type.String(), "dn", ch.DN)
		return
	case Unchanged:
		r.Stats.Unchanged.Add(1)
	case Deleted, Deactivated, Absent:
		r.Stats.Deleted.Add(1)
	default:
		r.Stats.Applied.Add(1)
	}
	ep := ""
	if a.Endpoint != nil {
		ep = a.Endpoint.Name
	}
	r.Log.Info(string(a.Outcome), "op", ch.Type.String(), "dn", ch.DN, "endpoint", ep, "id", a.ID,
		"ms", time.Since(start).Milliseconds())
}

// Apply maps and applies one change and updates the id map. It returns the
// class that took it ("" if none) for the failed-changes record.
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
	res, err := ev.Eval(ch, lang.Realtime)
	if err != nil {
		return "", Applied{}, err
	}
	if res.OutOfScope {
		if !known {
			return "", Applied{Outcome: OutOfScope}, nil
		}
		return r.leave(ctx, k, oldKey, m, ch)
	}
	knownID := ""
	if known && m.Endpoint == res.Endpoint.Name {
		knownID = m.SCIMID
	}
	a, err := r.Dest.Apply(ctx, res, knownID, r.resolver())
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
		if err := r.Store.Put(k, nm); err != nil {
			return res.Class.Name, a, err
		}
		if oldKey != "" {
			_ = r.Store.Delete(oldKey)
		}
		r.remember(m, known, nm)
	}
	return res.Class.Name, a, nil
}

// leave handles a known entry that no class takes any more: deleted (the
// delete record carried nothing a class could match, so the id map finds
// the resource), or moved out of its class's scope by a modify or rename.
// The class it was in says what happens: onDelete for a delete, onLeave
// otherwise (delete, deactivate or keep).
func (r *Runner) leave(ctx context.Context, k, oldKey string, m state.Mapping, ch *lang.Change) (string, Applied, error) {
	ep := r.Pipe.Endpoint(m.Endpoint)
	if ep == nil {
		return "", Applied{}, fmt.Errorf("the id map names endpoint %q, which the script no longer has", m.Endpoint)
	}
	action := "delete"
	if cl := r.Pipe.Class(m.Class); cl != nil {
		action = cl.OnLeave
		if ch.Type == lang.Delete {
			action = cl.OnDelete
		}
	}
	switch action {
	case "keep":
		return m.Class, Applied{Outcome: OutOfScope, Endpoint: ep, ID: m.SCIMID}, nil
	case "deactivate":
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
	for _, ref := range r.byDN {
		managed[ref.id] = ref.endpoint
		if e := r.Pipe.Endpoint(ref.endpoint); e != nil && e.Type == "Group" {
			groups = append(groups, ref.id)
		}
	}
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
	delete(r.byDN, source.NormalizeDN(m.DN))
	delete(r.byDN, source.NormalizeDN(ch.DN))
	delete(r.byRaw, strings.ToLower(m.DN))
	delete(r.byRaw, strings.ToLower(ch.DN))
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
		delete(r.byDN, source.NormalizeDN(old.DN))
		delete(r.byRaw, strings.ToLower(old.DN))
		if r.refs != nil {
			r.refs.Forget(old.DN)
		}
	}
	ref := dnRef{endpoint: m.Endpoint, id: m.SCIMID}
	r.byDN[source.NormalizeDN(m.DN)] = ref
	r.byRaw[strings.ToLower(m.DN)] = ref
}

// loadIndex reads the id map's DNs.
func (r *Runner) loadIndex() error {
	r.byDN, r.byRaw = map[string]dnRef{}, map[string]dnRef{}
	return r.Store.Range(func(_ string, m state.Mapping) bool {
		ref := dnRef{endpoint: m.Endpoint, id: m.SCIMID}
		r.byDN[source.NormalizeDN(m.DN)] = ref
		r.byRaw[strings.ToLower(m.DN)] = ref
		return true
	})
}

// resolver resolves references from the id map first, then through the
// source and a SCIM lookup.
func (r *Runner) resolver() lang.Resolver {
	return lang.ResolverFunc(func(dn string, eps []*lang.Endpoint) (lang.Ref, bool, error) {
		r.mu.Lock()
		ref, ok := r.byRaw[strings.ToLower(dn)]
		r.mu.Unlock()
		if !ok {
			// Spelled differently (spaces, case, escaping): compare parsed.
			norm := source.NormalizeDN(dn)
			r.mu.Lock()
			ref, ok = r.byDN[norm]
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
// map knows that is not in the present set was deleted.
func (r *Runner) present(ctx context.Context, e *source.Event) {
	present := make(map[string]bool, len(e.Identities))
	for _, id := range e.Identities {
		present[id] = true
	}
	type gone struct {
		key string
		m   state.Mapping
	}
	var goners []gone
	_ = r.Store.Range(func(k string, m state.Mapping) bool {
		if !strings.HasPrefix(k, "dn:") && !present[k] {
			goners = append(goners, gone{k, m})
		}
		return true
	})
	for _, g := range goners {
		ch := &lang.Change{Type: lang.Delete, DN: g.m.DN, Entry: lang.NewEntry(g.m.DN, nil)}
		ep := r.Pipe.Endpoint(g.m.Endpoint)
		if ep == nil {
			r.park(g.key, ch, "", e.Position, fmt.Errorf("the id map names endpoint %q, which the script no longer has", g.m.Endpoint), 1)
			continue
		}
		start := time.Now()
		a, err := r.Dest.DeleteKnown(ctx, ep, g.m.SCIMID, false)
		if err != nil {
			r.park(g.key, ch, "", e.Position, err, 1)
			continue
		}
		r.forget(g.key, "", g.m, ch)
		r.logApplied(ch, a, start)
	}
}

// park records a failed change in the store.
func (r *Runner) park(identity string, ch *lang.Change, class, pos string, cause error, attempts int) {
	r.Stats.Parked.Add(1)
	data, err := EncodeChange(ch)
	if err != nil {
		r.Log.Error("cannot park a change", "dn", ch.DN, "err", err)
		return
	}
	if _, err := r.Store.Park(state.Parked{Identity: identity, DN: ch.DN, Class: class, Error: cause.Error(),
		Attempts: attempts, Time: time.Now(), Position: pos, Change: data}); err != nil {
		r.Log.Error("cannot park a change", "dn", ch.DN, "err", err)
		return
	}
	r.Log.Warn("parked", "op", ch.Type.String(), "dn", ch.DN, "class", class, "err", cause.Error())
}

// RetryParked re-applies every parked change; those that succeed leave the
// record, the others stay with one more attempt counted. It returns how many
// succeeded and how many still fail.
func (r *Runner) RetryParked(ctx context.Context) (ok, failed int, err error) {
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
	if r.byDN == nil {
		if err := r.loadIndex(); err != nil {
			return 0, 0, err
		}
	}
	if r.refs == nil {
		r.refs = &RefResolver{Ctx: ctx, Pipe: r.Pipe, Dest: r.Dest, Mode: lang.Realtime, Entry: func(dn string) (*lang.Entry, error) {
			if r.Entry == nil {
				return nil, nil
			}
			return r.Entry(ctx, dn)
		}}
	}
	parked, err := r.Store.ListParked()
	if err != nil {
		return 0, 0, err
	}
	ev := r.Pipe.NewEvaluator()
	for _, p := range parked {
		ch, err := DecodeChange(p.Change)
		if err != nil {
			return ok, failed, err
		}
		start := time.Now()
		class, a, aerr := r.Apply(ctx, ev, p.Identity, ch)
		if err := r.Store.Unpark(p.ID); err != nil {
			return ok, failed, err
		}
		if aerr != nil {
			failed++
			r.park(p.Identity, ch, class, p.Position, aerr, p.Attempts+1)
			continue
		}
		ok++
		r.logApplied(ch, a, start)
	}
	return ok, failed, nil
}

// orderTracker moves the checkpoint past changes that are done, in order.
type orderTracker struct {
	store   *state.Store
	mu      sync.Mutex
	cond    *sync.Cond
	pos     map[int64]string
	done_   map[int64]bool
	next    int64 // the lowest seq not yet done
	saved   string
	pending string
	last    time.Time
}

func newOrderTracker(s *state.Store) *orderTracker {
	t := &orderTracker{store: s, pos: map[int64]string{}, done_: map[int64]bool{}, next: 1}
	t.cond = sync.NewCond(&t.mu)
	return t
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
}

// wait blocks until every change up to seq is done.
func (t *orderTracker) wait(seq int64) {
	t.mu.Lock()
	for t.next <= seq {
		t.cond.Wait()
	}
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
	t.saved = t.pending
	return nil
}

package engine

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scimsync/scimsync/lang"
)

// Entries is what a resync reads: every entry of the source, streamed.
type Entries interface {
	// Count returns how many entries Each will give, or -1 when unknown.
	Count() int64
	// Each calls fn for each entry, in order, until fn or the source fails.
	Each(ctx context.Context, fn func(*lang.Entry) error) error
	// Get reads one entry by DN (nil when absent): references, and the
	// entries deferred to a second pass.
	Get(dn string) (*lang.Entry, error)
}

// Stats counts what a resync did. It is safe to read while it runs.
type Stats struct {
	Start      time.Time
	Total      int64 // entries the source will give; -1 when unknown
	Done       atomic.Int64
	Created    atomic.Int64
	Updated    atomic.Int64
	Unchanged  atomic.Int64
	Skipped    atomic.Int64
	OutOfScope atomic.Int64
	Failed     atomic.Int64
	Requests   atomic.Int64 // write requests sent (or, in a dry run, shown)
}

// NewStats starts the counts of a resync over src.
func NewStats(src Entries) *Stats {
	return &Stats{Start: time.Now(), Total: src.Count()}
}

// ResyncOptions tune Resync.
type ResyncOptions struct {
	Workers int      // parallel entries (default 4)
	Exclude []string // targets left out (resync --exclude-attr)
	Refs    lang.Resolver
	// Failed is called for each entry that failed, with the error.
	Failed func(dn string, err error)
	// Applied is called for each entry applied (not for failures), with
	// the class that took it: resync fills the id map from it.
	Applied func(e *lang.Entry, class string, a Applied)
	// Stats, when set (made by NewStats before Resync starts), is filled as
	// the resync goes, for progress reports.
	Stats *Stats
}

// Resync compares every entry of the source with the SCIM service and
// creates or updates what differs, in resync mode: the @resync mappings
// apply, and entries that refer to resources of other endpoints (groups'
// members, through ref(…)) go in a second pass, after those; a reference
// to a resource not created yet (a manager, a nested group) is retried in
// a further pass. Memory
// stays flat in the number of entries but for the DNs deferred to the
// second pass. A failing entry is counted and reported; the others go on.
// Cancelling ctx stops it cleanly with what was done so far.
func Resync(ctx context.Context, p *lang.Pipe, d *Destination, src Entries, opts ResyncOptions) (*Stats, error) {
	st := opts.Stats
	if st == nil {
		st = NewStats(src)
	}
	if err := d.Settle(ctx); err != nil { // writes a dead process left in flight (doubt.go)
		return st, err
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = 4
	}
	var (
		mu       sync.Mutex
		deferred []string // pass 1: entries that refer to others
		retry    []string // later passes: references not in SCIM yet
		bulk     *bulkSender
		curPass  atomic.Int32
	)
	if p.Bulk == "auto" || p.Bulk == "on" {
		if plan := PlanBulk(ctx, p, d); plan.On {
			bulk = newBulkSender(p, d, plan, st, opts, workers)
			bulk.retry = func(dn string) bool {
				if curPass.Load() >= maxPasses {
					return false
				}
				mu.Lock()
				retry = append(retry, dn)
				mu.Unlock()
				return true
			}
		}
	}
	run := func(pass int, feed func(chan<- *lang.Entry) error) error {
		curPass.Store(int32(pass))
		ch := make(chan *lang.Entry, workers*2)
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ev := p.NewEvaluator()
				ev.Exclude(opts.Exclude...)
				for e := range ch {
					c := &lang.Change{Type: lang.Add, DN: e.DN, Entry: e}
					res, err := ev.Eval(c, lang.Resync)
					if err == nil && pass == 1 && !res.OutOfScope && res.RefersElsewhere() {
						mu.Lock()
						deferred = append(deferred, e.DN)
						mu.Unlock()
						continue
					}
					st.Done.Add(1)
					if err != nil {
						st.fail(opts, e.DN, err)
						continue
					}
					var (
						a      Applied
						queued bool
					)
					if bulk != nil {
						// A create is queued for a Bulk request; its outcome
						// is counted and reported when the request is answered.
						a, queued, err = bulk.apply(ctx, e, res)
						if !queued {
							d.AfterApply(res, a, err, opts.Refs)
						}
					} else {
						a, err = d.Apply(ctx, res, "", opts.Refs)
						d.AfterApply(res, a, err, opts.Refs) // the listings learn what was written
					}
					st.Requests.Add(int64(a.Requests))
					if queued {
						continue
					}
					if err != nil && pass < maxPasses && IsNotYet(err) {
						// A member that is itself deferred (a nested group)
						// may be created later in this pass: try again.
						st.Done.Add(-1)
						mu.Lock()
						retry = append(retry, e.DN)
						mu.Unlock()
						continue
					}
					if err != nil {
						st.fail(opts, e.DN, err)
						continue
					}
					st.applied(opts, e, className(res), a)
				}
			}()
		}
		err := feed(ch)
		close(ch)
		wg.Wait()
		if bulk != nil {
			// The pass ends with its last Bulk request answered: the next
			// pass resolves references to what this one created.
			bulk.finish(ctx)
		}
		return err
	}
	err := run(1, func(ch chan<- *lang.Entry) error {
		return src.Each(ctx, func(e *lang.Entry) error {
			select {
			case ch <- e:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	})
	// References not in SCIM yet in pass 1 (a manager created later) go
	// first in pass 2, then the entries that refer to other endpoints.
	deferred, retry = append(retry, deferred...), nil
	for pass := 2; err == nil && len(deferred) > 0 && pass <= maxPasses; pass++ {
		dns := deferred
		err = run(pass, func(ch chan<- *lang.Entry) error {
			for _, dn := range dns {
				e, err := src.Get(dn)
				if err != nil {
					st.Done.Add(1)
					st.fail(opts, dn, err)
					continue
				}
				if e == nil {
					st.Done.Add(1)
					st.fail(opts, dn, errors.New("the entry is gone from the source"))
					continue
				}
				select {
				case ch <- e:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
		if len(retry) == len(dns) {
			// No progress: the references will not appear. One last pass
			// reports them as failures.
			deferred, retry = retry, nil
			err = run(maxPasses, func(ch chan<- *lang.Entry) error {
				for _, dn := range deferred {
					if e, _ := src.Get(dn); e != nil {
						ch <- e
					}
				}
				return nil
			})
			break
		}
		deferred, retry = retry, nil
	}
	if bulk != nil && ctx.Err() == nil {
		// Every Bulk request is answered: what they wrote is read back
		// for its shadows (listshadow.go).
		bulk.readBack(ctx)
	}
	return st, err
}

// knower is a reference resolver that can be told where an entry went
// (RefResolver.Know).
type knower interface {
	Know(dn string, ep *lang.Endpoint, id string)
}

// maxPasses bounds the passes over entries whose references are not in
// SCIM yet (nested groups): each pass can create one more level.
const maxPasses = 8

func (st *Stats) fail(opts ResyncOptions, dn string, err error) {
	st.Failed.Add(1)
	if opts.Failed != nil {
		opts.Failed(dn, err)
	}
}

// applied counts an entry applied as a, tells the resolver where it went
// and reports it to opts.Applied: the same for an entry applied by a
// single request and one created by a Bulk request.
func (st *Stats) applied(opts ResyncOptions, e *lang.Entry, class string, a Applied) {
	st.count(a.Outcome)
	if k, ok := opts.Refs.(knower); ok && a.ID != "" && a.ID != dryRunID && a.Endpoint != nil {
		// Group members synced in this resync resolve from here: no
		// directory read, no lookup per member.
		k.Know(e.DN, a.Endpoint, a.ID)
	}
	if opts.Applied != nil {
		opts.Applied(e, class, a)
	}
}

func (st *Stats) count(o Outcome) {
	switch o {
	case Created:
		st.Created.Add(1)
	case Updated:
		st.Updated.Add(1)
	case Unchanged:
		st.Unchanged.Add(1)
	case Skipped:
		st.Skipped.Add(1)
	case OutOfScope:
		st.OutOfScope.Add(1)
	}
}

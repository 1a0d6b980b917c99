package engine

import (
	"context"
	"errors"
	"sync"

	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/lang"
)

// RefResolver resolves ref(…) targets during a sync: the DN's entry is
// read from the source, mapped with its own class, and looked up at the
// SCIM service by that class's lookup filter. Results are cached (bounded).
// An entry that no class takes, or that maps to another endpoint, is left
// out; one in scope that SCIM does not have yet fails the change, to be
// retried, unless Placeholder is set (a dry run, where the member would
// have been created): it then reads "(id of DN)".
type RefResolver struct {
	Ctx         context.Context
	Pipe        *lang.Pipe
	Dest        *Destination
	Entry       func(dn string) (*lang.Entry, error) // nil entry: not in the directory
	Mode        lang.Mode
	Placeholder bool
	MaxCache    int // default 100 000

	mu    sync.Mutex
	ev    *lang.Evaluator
	cache map[string]cached
}

type cached struct {
	ref lang.Ref
	ep  *lang.Endpoint
	ok  bool
}

// Resolve implements lang.Resolver.
func (r *RefResolver) Resolve(dn string, endpoints []*lang.Endpoint) (lang.Ref, bool, error) {
	key := source.NormalizeDN(dn)
	r.mu.Lock()
	if c, hit := r.cache[key]; hit {
		r.mu.Unlock()
		return c.ref, c.ok && contains(endpoints, c.ep), nil
	}
	e, err := r.Entry(dn)
	if err != nil {
		r.mu.Unlock()
		return lang.Ref{}, false, err
	}
	if e == nil {
		r.store(key, cached{})
		r.mu.Unlock()
		return lang.Ref{}, false, nil
	}
	if r.ev == nil {
		r.ev = r.Pipe.NewEvaluator()
	}
	res, err := r.ev.Eval(&lang.Change{Type: lang.Add, DN: e.DN, Entry: e}, r.Mode)
	if err != nil || res.OutOfScope {
		r.store(key, cached{})
		r.mu.Unlock()
		return lang.Ref{}, false, nil
	}
	ep, filter := res.Endpoint, res.Filter
	r.mu.Unlock()
	if !contains(endpoints, ep) {
		return lang.Ref{}, false, nil
	}
	ctx := r.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	id, current, err := r.Dest.find(ctx, ep, filter, "")
	if err != nil {
		return lang.Ref{}, false, err
	}
	if current == nil {
		if r.Placeholder {
			return lang.Ref{ID: "(id of " + e.DN + ")", Type: ep.Type}, true, nil
		}
		return lang.Ref{}, false, &notYetError{dn: e.DN, endpoint: ep.Path}
	}
	ref := lang.Ref{ID: id, Type: ep.Type}
	r.mu.Lock()
	r.store(key, cached{ref: ref, ep: ep, ok: true})
	r.mu.Unlock()
	return ref, true, nil
}

// Forget drops a DN from the cache (after a rename or delete).
func (r *RefResolver) Forget(dn string) {
	r.mu.Lock()
	delete(r.cache, source.NormalizeDN(dn))
	r.mu.Unlock()
}

func (r *RefResolver) store(key string, c cached) {
	if r.cache == nil {
		r.cache = map[string]cached{}
	}
	limit := r.MaxCache
	if limit <= 0 {
		limit = 100000
	}
	if len(r.cache) >= limit {
		for k := range r.cache { // drop an arbitrary tenth: bounded memory
			delete(r.cache, k)
			if len(r.cache) < limit*9/10 {
				break
			}
		}
	}
	r.cache[key] = c
}

// notYetError is a reference to an entry in scope that the SCIM service
// does not have yet: the change is retried later.
type notYetError struct{ dn, endpoint string }

// IsNotYet reports whether err is a reference to an entry that is in scope
// but not in SCIM yet: retrying after that entry is synced will succeed.
func IsNotYet(err error) bool {
	var n *notYetError
	return errors.As(err, &n)
}

func (e *notYetError) Error() string {
	return "the referenced entry " + e.dn + " is not at " + e.endpoint + " yet"
}

func contains(eps []*lang.Endpoint, ep *lang.Endpoint) bool {
	for _, e := range eps {
		if e == ep {
			return true
		}
	}
	return false
}

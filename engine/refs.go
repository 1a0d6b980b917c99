package engine

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/lang"
)

// RefResolver resolves ref(…) targets during a sync: the DN's entry is
// read from the source, mapped with its own class, and looked up at the
// SCIM service by that class's lookup filter. Results are kept in a bounded
// LRU cache; Forget drops an entry after a rename or delete. An entry that
// no class takes, or that maps to another endpoint, is left out (counted
// in LeftOut); one in scope that SCIM does not have yet fails the change,
// to be retried, unless Placeholder is set (a dry run, where the member
// would have been created): it then reads "(id of DN)".
type RefResolver struct {
	Ctx         context.Context
	Pipe        *lang.Pipe
	Dest        *Destination
	Entry       func(dn string) (*lang.Entry, error) // nil entry: not in the directory
	Mode        lang.Mode
	Placeholder bool
	MaxCache    int // default 100 000

	LeftOut atomic.Int64 // references left out: not in the directory, or out of every class's scope

	mu    sync.Mutex
	ev    *lang.Evaluator
	cache *lru
	known map[string]cached // what Know recorded: not evicted
}

// Know records that the entry at dn became (or already was) resource id
// at ep: what a resync has just created or found, so that references to
// it need neither a directory read nor a lookup. Unlike the cache it is
// not bounded: a resync records each entry it applies once.
func (r *RefResolver) Know(dn string, ep *lang.Endpoint, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.known == nil {
		r.known = map[string]cached{}
	}
	r.known[source.NormalizeDN(dn)] = cached{ref: lang.Ref{ID: id, Type: ep.Type}, ep: ep, ok: true}
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
	if r.cache == nil {
		limit := r.MaxCache
		if limit <= 0 {
			limit = 100000
		}
		r.cache = newLRU(limit)
	}
	c, hit := r.known[key]
	if !hit {
		c, hit = r.cache.get(key)
	}
	if hit {
		r.mu.Unlock()
		if !c.ok || !contains(endpoints, c.ep) {
			r.LeftOut.Add(1)
			return lang.Ref{}, false, nil
		}
		return c.ref, true, nil
	}
	e, err := r.Entry(dn)
	if err != nil {
		r.mu.Unlock()
		return lang.Ref{}, false, err
	}
	if e == nil {
		r.cache.put(key, cached{})
		r.mu.Unlock()
		r.LeftOut.Add(1)
		return lang.Ref{}, false, nil
	}
	if r.ev == nil {
		r.ev = r.Pipe.NewEvaluator()
	}
	res, err := r.ev.Eval(&lang.Change{Type: lang.Add, DN: e.DN, Entry: e}, r.Mode)
	if err != nil || res.OutOfScope {
		r.cache.put(key, cached{})
		r.mu.Unlock()
		r.LeftOut.Add(1)
		return lang.Ref{}, false, nil
	}
	ep, filter := res.Endpoint, res.Filter
	r.mu.Unlock()
	if !contains(endpoints, ep) {
		r.LeftOut.Add(1)
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
	r.cache.put(key, cached{ref: ref, ep: ep, ok: true})
	r.mu.Unlock()
	return ref, true, nil
}

// Forget drops a DN from the cache (after a rename or delete).
func (r *RefResolver) Forget(dn string) {
	r.mu.Lock()
	if r.cache != nil {
		r.cache.remove(source.NormalizeDN(dn))
	}
	delete(r.known, source.NormalizeDN(dn))
	r.mu.Unlock()
}

// lru is a least-recently-used cache of resolved references.
type lru struct {
	limit int
	ll    *list.List // front: most recent; elements hold *lruItem
	items map[string]*list.Element
}

type lruItem struct {
	key string
	val cached
}

func newLRU(limit int) *lru {
	return &lru{limit: limit, ll: list.New(), items: map[string]*list.Element{}}
}

func (c *lru) get(key string) (cached, bool) {
	if el, ok := c.items[key]; ok {
		c.ll.MoveToFront(el)
		return el.Value.(*lruItem).val, true
	}
	return cached{}, false
}

func (c *lru) put(key string, v cached) {
	if el, ok := c.items[key]; ok {
		el.Value.(*lruItem).val = v
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(&lruItem{key: key, val: v})
	for c.ll.Len() > c.limit {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*lruItem).key)
	}
}

func (c *lru) remove(key string) {
	if el, ok := c.items[key]; ok {
		c.ll.Remove(el)
		delete(c.items, key)
	}
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
	if e.endpoint == "" {
		return "the referenced entry " + e.dn + " is not synced yet"
	}
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

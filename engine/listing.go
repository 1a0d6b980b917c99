package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/lang"
)

// DefaultListMax is the most resources a listing holds (ListOptions.Max):
// a listing keeps every resource of the endpoint in memory, compacted
// (keepSet): about 0.7 KiB live each, index included, for a user of a
// dozen attributes as the SCIM test server lists it (BenchmarkListingMemory;
// 2.8 KiB before the compact form), so 250 000 of them take about 180 MiB
// of heap — less than the 100 000 the bound used to be did. An endpoint
// larger than this is left to one lookup per entry, and a listing that
// grows past it while a resync writes (the resources it creates are
// recorded, about 0.35 KiB each: BenchmarkListingWrites) stops answering.
const DefaultListMax = 250000

// DefaultListPage is the count asked for per listing page, when the
// service's filter.maxResults does not cap it lower.
const DefaultListPage = 200

// ListOptions tune Destination.List.
type ListOptions struct {
	// PageSize is the count asked for per page (default DefaultListPage,
	// also capped by MaxResults).
	PageSize int
	// MaxResults is the service's filter.maxResults when the caller knows
	// it; 0: List reads /ServiceProviderConfig (one request per List);
	// negative: not advertised (read already), no cap.
	MaxResults int
	// Max bounds the resources held (default DefaultListMax; negative: no
	// bound): a larger endpoint is not listed.
	Max int
	// Want is how many lookups the listing is to save (the entries a
	// resync reads; 0 or less: unknown): an endpoint whose listing takes
	// more pages than that is not listed, since the lookups cost less.
	Want int64
	// Requests, when set, counts the requests List sends.
	Requests *atomic.Int64
	// Log receives why an endpoint was not listed; nil: discard.
	Log *slog.Logger
	// Who names the command in log lines ("verify", "resync").
	Who string
	// Whole keeps each resource as listed. By default a listing keeps of
	// each only what its readers use (keepSet: meta, schemas and what the
	// pipe does not manage go), when the destination's pipe says what
	// that is and does not update by PUT.
	Whole bool
	// Only, when set, holds only the resources whose id it accepts; the
	// others are counted, so that the paging checks hold, and not kept.
	// Such a listing answers no lookup (a filter would miss what it did
	// not keep): it is read by id (Peek), as resync reads back what its
	// Bulk requests wrote (listshadow.go).
	Only func(id string) bool
}

// Listing is one endpoint's resources as a listing of it in pages
// (GET /Users?startIndex=&count=) gave them: held in memory, indexed by id
// and, on demand, by the string attributes lookup filters compare, so that
// a lookup whose filter is equalities joined by "and" is answered without
// a request. It is a snapshot taken when the listing was read; what the
// process itself writes afterwards is told to it (Destination.AfterApply),
// and a resource written since the snapshot is never answered from it.
// It is safe for concurrent use.
type Listing struct {
	ep     *lang.Endpoint
	listed atomic.Bool
	reason string // why not listed
	max    int    // the most resources and answers held (0: no bound)
	log    *slog.Logger
	who    string
	total  int // the service's totalResults at the last page
	pages  int // pages read
	size   int // the count asked for per page
	// read is when the first page was asked for: nothing the listing
	// holds is older (a shadow taken from it is as old as that).
	read    time.Time
	partial bool // ListOptions.Only: it answers no lookup

	mu      sync.Mutex
	res     map[string]*listedRes
	snapped int                    // resources the listing gave (res also holds those written since)
	index   map[string]*attrIndex  // lower-cased attribute path → index, built on demand
	asked   map[string]bool        // questions answered "none" already: asked again, the service answers
	maybes  int                    // resources that may have been created without an id known
	writes  int                    // writes told (wrote)
	members bool                   // the endpoint's resources have members (Groups), and they are read
	norm    map[string]attrSupport // lower-cased attribute path → how it compares, cached
}

// listedRes is one resource of a listing.
type listedRes struct {
	// raw is the resource as listed, less what no reader uses (keepSet);
	// nil for one written by this process and not listed.
	raw []byte
	// out is set once this process has written the resource (or may have)
	// since the listing: what it holds now is the service's to say.
	out bool
	// pairs are what it may hold now, indexed beside raw so that a filter
	// its new values match is not answered "none" from the snapshot: the
	// comparable attributes of the bodies written to it, and the
	// equalities of the lookup filter it was written for (lower-cased
	// attribute path, folded value). Only these are kept of a body, not
	// the body: a resync into an empty service adds one per entry.
	pairs [][2]string
}

// attrIndex is a listing's index of one attribute: folded value → ids.
type attrIndex struct {
	vals    map[string][]string
	carried int // listed resources that carry the attribute
}

// attrSupport is how the listing compares an attribute path of a filter.
type attrSupport struct {
	ok        bool // a single-valued string: compared locally
	caseExact bool
}

// Listed reports whether the endpoint was read whole by listing it.
func (l *Listing) Listed() bool { return l != nil && l.listed.Load() }

// Reason says why an endpoint was not listed ("" when it was).
func (l *Listing) Reason() string {
	if l == nil {
		return "no listing"
	}
	return l.reason
}

// Len returns how many resources the listing gave.
func (l *Listing) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.snapped
}

// Pages returns how many list pages were read.
func (l *Listing) Pages() int {
	if l == nil {
		return 0
	}
	return l.pages
}

// Peek returns a listed resource by id as the listing gave it, whatever
// was written to it since (verify reads, never writes, while it compares).
func (l *Listing) Peek(id string) ([]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.res[id]; h != nil && h.raw != nil {
		return h.raw, true
	}
	return nil, false
}

// IDs returns the ids of the listed resources, sorted.
func (l *Listing) IDs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := make([]string, 0, len(l.res))
	for id, h := range l.res {
		if h.raw != nil {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// NewListing makes a listing of ep from resources already read (raw JSON,
// each with its id): for tests and for callers that list by other means.
func NewListing(ep *lang.Endpoint, resources ...[]byte) *Listing {
	l := newListing(ep)
	for _, r := range resources {
		if id := gjson.GetBytes(r, "id").String(); id != "" {
			l.res[strings.Clone(id)] = &listedRes{raw: r}
		}
	}
	l.snapped, l.total = len(l.res), len(l.res)
	l.read = time.Now()
	l.listed.Store(true)
	return l
}

func newListing(ep *lang.Endpoint) *Listing {
	l := &Listing{ep: ep, res: map[string]*listedRes{}, asked: map[string]bool{}, norm: map[string]attrSupport{}}
	if core := ep.CoreSchema(); core != nil && core.Attr("members") != nil {
		l.members = true
	}
	return l
}

// List reads ep's resources page by page (?startIndex=&count=) into a
// Listing. It returns a listing that is not Listed, with its Reason, when
// the endpoint cannot or should not be listed: the service refuses to list
// (400, 403, 404, 405, 501 on the first page), ignores startIndex (it
// answers the first page again), holds more than opts.Max resources, would
// take more pages than opts.Want lookups, or a later page fails after the
// client's own retries (a timeout, a 5xx) — the caller then looks each
// entry up, as without a listing. The error is ctx's when it is cancelled,
// or the first page's when the service failed it otherwise (an outage, a
// 401): the caller decides whether that stops it.
func (d *Destination) List(ctx context.Context, ep *lang.Endpoint, opts ListOptions) (*Listing, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	who := opts.Who
	if who == "" {
		who = "listing"
	}
	limit := opts.Max
	if limit == 0 {
		limit = DefaultListMax
	}
	count := func() {
		if opts.Requests != nil {
			opts.Requests.Add(1)
		}
	}
	size := opts.PageSize
	if size <= 0 {
		size = DefaultListPage
	}
	maxResults := opts.MaxResults
	if maxResults == 0 {
		count()
		maxResults = d.maxResults(ctx)
	}
	if maxResults > 0 && maxResults < size { // -1: unknown, read already
		size = maxResults
	}
	l := newListing(ep)
	var keep *keepSet // what is kept of each resource; nil: all of it
	if !opts.Whole {
		keep = keepFor(d.Pipe, ep)
		// Members the pipe does not manage are not kept, and no reader
		// needs them: a group listed without them is whole enough.
		l.members = l.members && keep.has("members")
	}
	notListed := func(reason string) *Listing {
		l.res, l.index, l.snapped, l.reason = map[string]*listedRes{}, nil, 0, reason
		return l
	}
	l.size, l.read, l.partial = size, time.Now(), opts.Only != nil
	start, total := 1, -1
	for total < 0 || start <= total {
		path := fmt.Sprintf("%s?startIndex=%d&count=%d", strings.TrimRight(ep.Path, "/"), start, size)
		if err := d.wait(ctx); err != nil {
			return notListed("cancelled"), err
		}
		count()
		body, err := d.Client.Get(ctx, path)
		if err != nil {
			if ctx.Err() != nil {
				return notListed("cancelled"), ctx.Err()
			}
			if start == 1 && cannotList(err) {
				log.Warn(who+": the service does not list the endpoint: each entry is looked up", "endpoint", ep.Path, "err", err.Error())
				return notListed("the service does not list it"), nil
			}
			if start == 1 {
				return notListed("its first page failed"), fmt.Errorf("listing %s: %w", ep.Path, err)
			}
			// The client has retried a temporary failure already; a page
			// that still fails leaves the endpoint to lookups rather than
			// failing the command for want of a shortcut.
			log.Warn(who+": a page of the endpoint's listing failed: each entry is looked up instead", "endpoint", ep.Path,
				"startIndex", start, "err", err.Error())
			return notListed("a page of its listing failed"), nil
		}
		l.pages++
		doc := gjson.ParseBytes(body)
		rs := doc.Get("Resources")
		if !rs.Exists() {
			rs = doc.Get("resources")
		}
		items := rs.Array()
		if si := doc.Get("startIndex"); start > 1 && (si.Exists() && int(si.Int()) != start || len(items) > 0 && l.seenAll(items)) {
			// The service ignores startIndex (it answers the first page
			// again): a listing would miss everything past it.
			log.Warn(who+": the service does not page the endpoint's listing (it ignores startIndex): each entry is looked up", "endpoint", ep.Path)
			return notListed("the service ignores startIndex"), nil
		}
		if t := doc.Get("totalResults"); t.Exists() {
			total = int(t.Int())
		} else if total < 0 {
			total = len(items)
		}
		if start == 1 {
			if limit > 0 && total > limit {
				log.Warn(who+": the endpoint holds more resources than a listing may hold in memory: each entry is looked up",
					"endpoint", ep.Path, "resources", total, "max", limit)
				return notListed(fmt.Sprintf("%d resources, more than %d", total, limit)), nil
			}
			if pages := (total + size - 1) / size; opts.Want > 0 && int64(pages) > opts.Want {
				log.Info(who+": listing the endpoint would cost more requests than looking each entry up",
					"endpoint", ep.Path, "resources", total, "pages", pages, "entries", opts.Want)
				return notListed(fmt.Sprintf("%d pages for %d entries", pages, opts.Want)), nil
			}
		}
		for _, r := range items {
			// The id and the kept JSON are copies: a substring of the
			// page would keep the whole page alive.
			id := r.Get("id").String()
			switch {
			case id == "":
			case opts.Only != nil && !opts.Only(id):
				if l.res[id] == nil {
					l.res[strings.Clone(id)] = &listedRes{} // counted, not kept
				}
			default:
				l.res[strings.Clone(id)] = &listedRes{raw: keep.compact(r.Raw)}
			}
		}
		if limit > 0 && len(l.res) > limit {
			log.Warn(who+": the endpoint holds more resources than a listing may hold in memory: each entry is looked up",
				"endpoint", ep.Path, "max", limit)
			return notListed(fmt.Sprintf("more than %d resources", limit)), nil
		}
		if len(items) == 0 {
			break // a service whose totalResults overstates: never loop
		}
		start += len(items)
	}
	if len(l.res) < total {
		// Pages that overlap (resources added while it was read shift
		// the later pages): something was skipped.
		log.Warn(who+": the endpoint changed while it was listed: each entry is looked up", "endpoint", ep.Path,
			"listed", len(l.res), "totalResults", total)
		return notListed("it changed while it was listed"), nil
	}
	l.total, l.snapped = total, len(l.res)
	l.max, l.log, l.who = limit, log, who
	l.listed.Store(true)
	return l, nil
}

// ListAll lists each of eps (List) for a run that writes to them, reading
// the ServiceProviderConfig once for all, and returns the listings of those
// that were listed, by endpoint name. An endpoint that cannot be listed,
// for whatever reason, is left to lookups with a warning. The errors are
// ctx's cancellation and a first page answered 401 Unauthorized: the
// service refuses the credentials, and would refuse every lookup too.
func (d *Destination) ListAll(ctx context.Context, eps []*lang.Endpoint, opts ListOptions) (map[string]*Listing, error) {
	out := map[string]*Listing{}
	if len(eps) == 0 {
		return out, nil
	}
	if opts.MaxResults == 0 {
		if opts.Requests != nil {
			opts.Requests.Add(1)
		}
		if opts.MaxResults = d.maxResults(ctx); opts.MaxResults == 0 {
			opts.MaxResults = -1 // unknown: not asked again per endpoint
		}
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, ep := range eps {
		l, err := d.List(ctx, ep, opts)
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		if scim.IsStatus(err, http.StatusUnauthorized) {
			return out, err
		}
		if err != nil {
			log.Warn(opts.Who+": the endpoint's listing failed: each entry is looked up", "endpoint", ep.Path, "err", err.Error())
			continue
		}
		if l.Listed() {
			log.Info(opts.Who+": listed the endpoint", "endpoint", ep.Path, "resources", l.Len(), "pages", l.Pages())
			out[ep.Name] = l
		}
	}
	return out, nil
}

// seenAll reports whether every item of a page was listed already.
func (l *Listing) seenAll(items []gjson.Result) bool {
	for _, r := range items {
		if _, ok := l.res[r.Get("id").String()]; !ok {
			return false
		}
	}
	return true
}

// maxResults is the ServiceProviderConfig's filter.maxResults (0 when
// unknown): a page larger than it would be cut short anyway. The client
// reads the document once (scim.Client.Discover), for the Bulk plan too.
func (d *Destination) maxResults(ctx context.Context) int {
	return d.Client.Discover(ctx).Filter.MaxResults
}

// cannotList reports whether err is a service saying it does not list.
func cannotList(err error) bool {
	for _, s := range []int{http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented} {
		if scim.IsStatus(err, s) {
			return true
		}
	}
	return false
}

// Match evaluates a lookup filter against the listed resources, as they
// were listed, when it is equalities joined by "and" on single-valued
// string attributes (userName eq "x", externalId eq "y", name.familyName
// eq "z"): ok is false for anything else, which the service then
// evaluates. Values compare as the schema says (caseExact), else without
// case, as SCIM does by default (RFC 7644 §3.4.2.2). An attribute that no
// listed resource carries is not compared either (ok false): a service
// that leaves it out of its listings may still hold it.
func (l *Listing) Match(filter string) (ids []string, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids, ok = l.match(filter)
	if !ok {
		return nil, false
	}
	listed := ids[:0]
	for _, id := range ids {
		if l.res[id].raw != nil {
			listed = append(listed, id)
		}
	}
	return listed, true
}

// match is Match over everything held (written resources too, by what
// may be in them now); l.mu is held.
func (l *Listing) match(filter string) ([]string, bool) {
	pairs, ok := l.equalities(filter)
	if !ok {
		return nil, false
	}
	var cand []string
	for i, p := range pairs {
		if l.index[p[0]] == nil && l.writes > 0 {
			// Not indexed before this process wrote: what it wrote of this
			// attribute was not kept (wrote).
			return nil, false
		}
		idx := l.indexed(p[0])
		if idx.carried == 0 && l.snapped > 0 {
			return nil, false
		}
		hits := idx.vals[p[1]]
		if i == 0 {
			cand = append([]string(nil), hits...)
			continue
		}
		next := cand[:0]
		for _, id := range cand {
			for _, h := range hits {
				if h == id {
					next = append(next, id)
					break
				}
			}
		}
		cand = next
	}
	sort.Strings(cand)
	return cand, true
}

// equalities parses a filter into (lower-cased attribute path, folded
// value) pairs when it is equalities joined by "and" on attributes the
// listing compares; ok is false otherwise.
func (l *Listing) equalities(filter string) (pairs [][2]string, ok bool) {
	f, err := scim.ParseFilter(filter)
	if err != nil {
		return nil, false
	}
	var walk func(x scim.Expr) bool
	walk = func(x scim.Expr) bool {
		switch x := x.(type) {
		case *scim.Compare:
			s, isStr := x.Value.(string)
			if x.Op != "eq" || x.Path.URN != "" || !isStr {
				return false
			}
			name := x.Path.Attr
			if x.Path.Sub != "" {
				name += "." + x.Path.Sub
			}
			sup := l.support(name)
			if !sup.ok {
				return false
			}
			pairs = append(pairs, [2]string{strings.ToLower(name), fold(sup, s)})
			return true
		case *scim.Logical:
			return x.Op == "and" && walk(x.Left) && walk(x.Right)
		}
		return false
	}
	if f.Expr == nil || !walk(f.Expr) || len(pairs) == 0 {
		return nil, false
	}
	return pairs, true
}

// support says whether an attribute path ("userName", "name.familyName")
// is compared locally, and how: id and externalId (caseExact, RFC 7643
// §3.1), and the core schema's single-valued string attributes and
// sub-attributes of single-valued complex ones. Multi-valued attributes
// (emails.value) and attributes the schema does not know are left to the
// service: their values are not one string to index.
func (l *Listing) support(name string) attrSupport {
	key := strings.ToLower(name)
	if s, ok := l.norm[key]; ok {
		return s
	}
	var s attrSupport
	top, sub, hasSub := strings.Cut(name, ".")
	switch {
	case strings.EqualFold(top, "id") || strings.EqualFold(top, "externalId"):
		s = attrSupport{ok: !hasSub, caseExact: true}
	default:
		a := l.ep.CoreSchema().Attr(top)
		if a != nil && !a.MultiValued && hasSub {
			a = a.Sub(sub)
		} else if hasSub {
			a = nil
		}
		if a != nil && !a.MultiValued && a.Type == scim.TypeString {
			s = attrSupport{ok: true, caseExact: a.CaseExact}
		}
	}
	l.norm[key] = s
	return s
}

// fold normalizes a value for comparison: as is for caseExact attributes,
// else lower-cased.
func fold(s attrSupport, v string) string {
	if s.caseExact {
		return v
	}
	return strings.ToLower(v)
}

// indexed returns the index of an attribute path over everything held:
// each listed resource by its listed form, each written one by every form
// it may have now. It is built the first time a filter names the
// attribute, and kept up to date by what is written afterwards. l.mu is
// held.
func (l *Listing) indexed(lname string) *attrIndex {
	if l.index == nil {
		l.index = map[string]*attrIndex{}
	}
	idx := l.index[lname]
	if idx == nil {
		idx = &attrIndex{vals: map[string][]string{}}
		for id, h := range l.res {
			l.indexHeld(lname, idx, id, h)
		}
		l.index[lname] = idx
	}
	return idx
}

func (l *Listing) indexHeld(lname string, idx *attrIndex, id string, h *listedRes) {
	if h.raw != nil {
		if v, ok := l.value(h.raw, lname); ok {
			idx.carried++
			idx.add(v, id)
		}
	}
	for _, p := range h.pairs {
		if p[0] == lname {
			idx.add(p[1], id)
		}
	}
}

// value reads an attribute path from a resource, folded; ok is false when
// it holds no string there. The value is a copy: a substring of the parsed
// document (getFold parses a copy of it) would keep that copy alive in the
// index.
func (l *Listing) value(doc []byte, lname string) (string, bool) {
	v := getFold(doc, lname)
	if v.Type != gjson.String {
		return "", false
	}
	return strings.Clone(fold(l.support(lname), v.Str)), true
}

func (idx *attrIndex) add(v, id string) {
	for _, x := range idx.vals[v] {
		if x == id {
			return
		}
	}
	idx.vals[v] = append(idx.vals[v], id)
}

// lookup answers Destination.find from the listing when it can: done is
// false when the service must answer (and gone, that knownID is known to
// be gone: only the filter is to be asked). The rules, so that the answer
// is the one the service would give:
//   - a resource written since the listing (by this process) is the
//     service's to say, and so is any filter it might match now;
//   - a known id absent from the listing is gone, the first time; so is a
//     filter that matches nothing. Asked a second time, the same question
//     goes to the service: the engine asks again only when something may
//     have changed it (a create whose answer was lost, a conflict).
func (l *Listing) lookup(filter, knownID string) (r localAnswer) {
	if !l.Listed() || l.partial {
		return r
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.listed.Load() {
		return r // dropped meanwhile (bound)
	}
	if knownID != "" {
		h := l.res[knownID]
		switch {
		case h != nil && l.usable(h):
			return localAnswer{done: true, id: knownID, current: h.raw}
		case h == nil && l.once("id\x00"+knownID):
			r.gone = true
		default:
			return r
		}
	}
	if filter == "" {
		r.done = r.gone
		return r
	}
	ids, ok := l.match(filter)
	if !ok {
		return r
	}
	for _, id := range ids {
		if !l.usable(l.res[id]) {
			return r
		}
	}
	switch len(ids) {
	case 0:
		if l.maybes > 0 || !l.once("filter\x00"+filter) {
			return r
		}
		return localAnswer{done: true}
	case 1:
		return localAnswer{done: true, id: ids[0], current: l.res[ids[0]].raw}
	}
	return localAnswer{done: true, err: &MultipleMatchError{Endpoint: l.ep.Path, Filter: filter, IDs: ids, Total: len(ids)}}
}

// localAnswer is what a listing answers for a lookup.
type localAnswer struct {
	done    bool // answered: id, current and err are the lookup's result
	gone    bool // not answered, but the known id is gone
	id      string
	current []byte
	err     error
}

// usable reports whether a held resource may be answered as listed: not
// written since, and whole (a group listed without its members — some
// services leave them out of listings — is read by id).
func (l *Listing) usable(h *listedRes) bool {
	return !h.out && h.raw != nil && l.whole(h.raw)
}

// asListed returns resource id as the listing gave it, and when the
// listing began to be read, when a lookup could be answered with it: it was
// listed, nothing has been written to it since (by this process: what
// Destination.AfterApply and the Bulk updates tell), and it is whole.
func (l *Listing) asListed(id string) (raw []byte, read time.Time, ok bool) {
	if !l.Listed() {
		return nil, time.Time{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.res[id]
	if h == nil || !l.usable(h) {
		return nil, time.Time{}, false
	}
	return h.raw, l.read, true
}

// whole reports whether a listed resource holds what a read by id would:
// a group listed without its members (as some services list them) does not.
func (l *Listing) whole(raw []byte) bool {
	return !l.members || getFold(raw, "members").Exists()
}

// once reports whether question is asked for the first time, and records it.
func (l *Listing) once(question string) bool {
	if l.asked[question] {
		return false
	}
	l.asked[question] = true
	l.bound()
	return l.listed.Load()
}

// AfterApply tells the destination's listing of res's endpoint what
// applying res did (a, err), so that later lookups in the same run do not
// answer from what the listing said before: a resource created is added
// (by the body sent and the lookup filter it was created for), one updated
// or failing part-way is marked as the service's to say and indexed by
// what it may hold now. Callers that apply changes while Listings is set
// call it after each Apply (Resync does). refs resolves the body's
// references again (from the resolver's cache: no request). Nothing is
// recorded in a dry run (nothing was written) or when no listing is kept.
func (d *Destination) AfterApply(res *lang.Result, a Applied, err error, refs lang.Resolver) {
	if d.DryRun != nil || d.Listings == nil || res == nil || res.OutOfScope || res.Endpoint == nil {
		return
	}
	l := d.Listings[res.Endpoint.Name]
	if !l.Listed() {
		return
	}
	if err == nil {
		switch a.Outcome {
		case Unchanged, Skipped, Absent, OutOfScope:
			return // nothing written that a lookup compares
		}
	} else if IsNotYet(err) || IsMultipleMatch(err) || errors.Is(err, ErrCreatePending) ||
		a.ID == "" && !scim.IsUncertain(err) {
		return // failed before anything was sent, or refused: nothing was made
	}
	op := lang.Update
	if a.ID == "" || a.Outcome == Created {
		op = lang.Create
	}
	var body []byte
	if a.Outcome != Deleted {
		body, _ = res.Resource(op, refs)
	}
	l.wrote(a.ID, body, res.Filter)
}

// wrote records a resource written (or perhaps created, id "") since the
// listing.
func (l *Listing) wrote(id string, body []byte, filter string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.listed.Load() {
		return
	}
	if id == "" {
		// A create whose outcome is unknown: a resource may exist that no
		// id names. Until the service is asked, no "none" is answered.
		l.maybes++
		id = fmt.Sprintf("\x00maybe-%d", l.maybes)
	}
	h := l.res[id]
	if h == nil {
		id = strings.Clone(id) // not a substring of the service's answer
		h = &listedRes{}
		l.res[id] = h
	}
	h.out = true
	l.writes++
	added := l.comparable(body)
	if pairs, ok := l.equalities(filter); ok {
		added = append(added, pairs...)
	}
	for _, p := range added {
		// Only the attributes indexed already are kept (the lookup's):
		// one that a filter names for the first time after a write is not
		// compared locally (match), so nothing else need be kept.
		if idx := l.index[p[0]]; idx != nil {
			v := strings.Clone(p[1]) // not a substring of the body or filter
			idx.add(v, id)
			h.pairs = append(h.pairs, [2]string{l.intern(p[0]), v})
		}
	}
	l.bound()
}

// bound drops the listing when what it holds (resources listed and
// written, or questions answered "none") outgrows its Max: from then on every
// lookup asks the service, and memory stays where it was. l.mu is held.
func (l *Listing) bound() {
	if l.max <= 0 || len(l.res) <= l.max && len(l.asked) <= l.max {
		return
	}
	l.listed.Store(false)
	l.res, l.index, l.asked, l.snapped = map[string]*listedRes{}, nil, map[string]bool{}, 0
	l.reason = fmt.Sprintf("it outgrew %d resources and answers", l.max)
	if l.log != nil {
		l.log.Warn(l.who+": the endpoint's listing outgrew the most a listing may hold: each entry is looked up from here on",
			"endpoint", l.ep.Path, "max", l.max)
	}
}

// intern returns the index's own copy of an attribute path, so that the
// pairs of many written resources share it.
func (l *Listing) intern(lname string) string {
	for k := range l.index {
		if k == lname {
			return k
		}
	}
	return lname
}

// comparable returns the (lower-cased path, folded value) pairs of a
// resource body that a listing compares: its single-valued string
// attributes and those of its single-valued complex ones.
func (l *Listing) comparable(body []byte) [][2]string {
	var out [][2]string
	gjson.ParseBytes(body).ForEach(func(k, v gjson.Result) bool {
		switch {
		case v.Type == gjson.String:
			if sup := l.support(k.Str); sup.ok {
				out = append(out, [2]string{strings.ToLower(k.Str), fold(sup, v.Str)})
			}
		case v.IsObject() && !strings.Contains(k.Str, ":"):
			v.ForEach(func(sk, sv gjson.Result) bool {
				if name := k.Str + "." + sk.Str; sv.Type == gjson.String {
					if sup := l.support(name); sup.ok {
						out = append(out, [2]string{strings.ToLower(name), fold(sup, sv.Str)})
					}
				}
				return true
			})
		}
		return true
	})
	return out
}

package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/engine/state"
	"github.com/scimsync/scimsync/lang"
)

// DriftKind is what verify found wrong with one resource or entry.
type DriftKind string

// The kinds of drift.
const (
	// Missing is an entry in scope with no resource at its endpoint.
	Missing DriftKind = "missing"
	// Differing is a resource whose managed attributes differ from the
	// mapping of its entry.
	Differing DriftKind = "differing"
	// Orphan is a resource this pipe created or adopted (the id map knows
	// it) whose entry is gone or out of scope.
	Orphan DriftKind = "orphan"
	// Unmanaged is a resource the pipe does not know: information, never
	// drift, never touched.
	Unmanaged DriftKind = "unmanaged"
)

// Drift is one item of a verify report.
type Drift struct {
	Kind     DriftKind `json:"kind"`
	Endpoint string    `json:"endpoint"`
	Class    string    `json:"class,omitempty"`
	DN       string    `json:"dn,omitempty"`
	ID       string    `json:"id,omitempty"`   // the SCIM id; "" for missing
	Name     string    `json:"name,omitempty"` // userName or displayName, for people reading it
	// Attributes are the names of the managed attributes that differ.
	Attributes []string `json:"attributes,omitempty"`
	// Patch are the PATCH request bodies that would fix a differing resource.
	Patch []json.RawMessage `json:"patch,omitempty"`
	// MembersMissing and MembersExtra are the member ids a group lacks and
	// has beyond its entry's (differing groups).
	MembersMissing []string `json:"membersMissing,omitempty"`
	MembersExtra   []string `json:"membersExtra,omitempty"`
	// Reason (orphans): "gone" (no entry has it any more) or "out of scope".
	Reason string `json:"reason,omitempty"`
	// Action (orphans): what --repair does: "delete", "deactivate", or
	// "keep" and "none" (the class keeps what leaves its scope, or leaves
	// deletes out: not drift, shown for information).
	Action string `json:"action,omitempty"`
	// Repaired and Error tell what --repair did.
	Repaired bool   `json:"repaired,omitempty"`
	Error    string `json:"error,omitempty"`

	key       string // the id-map key (orphans)
	refersOut bool   // the entry's resource refers to other resources: repaired last
}

// IsDrift reports whether the item is drift (it changes verify's exit
// code): unmanaged resources, and orphans the class means to keep, are not.
func (d *Drift) IsDrift() bool {
	switch d.Kind {
	case Missing, Differing:
		return true
	case Orphan:
		return d.Action == "delete" || d.Action == "deactivate"
	}
	return false
}

// EndpointReport counts what verify found at one endpoint.
type EndpointReport struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// Listed is whether the endpoint was read by listing it in pages; when
	// not (the service refuses to list), each entry was looked up, and
	// unmanaged resources cannot be known (Unmanaged is -1).
	Listed    bool `json:"listed"`
	Entries   int  `json:"entries"`   // entries in scope mapped to this endpoint
	Resources int  `json:"resources"` // resources the listing gave; -1 when not listed
	InSync    int  `json:"inSync"`
	Missing   int  `json:"missing"`
	Differing int  `json:"differing"`
	Orphans   int  `json:"orphans"` // orphans that are drift (to delete or deactivate)
	Kept      int  `json:"kept"`    // orphans their class keeps: not drift
	Unmanaged int  `json:"unmanaged"`
	Repaired  int  `json:"repaired,omitempty"`
	Failed    int  `json:"failed,omitempty"`
}

// VerifyReport is what Verify found (and, with Repair, did).
type VerifyReport struct {
	Start     time.Time         `json:"start"`
	Duration  time.Duration     `json:"-"`
	Seconds   float64           `json:"seconds"`
	Entries   int64             `json:"entries"`  // directory entries read
	Requests  int64             `json:"requests"` // SCIM requests sent to compare (not to repair)
	Endpoints []*EndpointReport `json:"endpoints"`
	Items     []*Drift          `json:"items"`
	Errors    []string          `json:"errors,omitempty"` // entries that could not be compared, and failed repairs
	Repaired  bool              `json:"repair"`
}

// Drifted reports whether anything found is drift.
func (r *VerifyReport) Drifted() bool {
	for _, it := range r.Items {
		if it.IsDrift() && !it.Repaired {
			return true
		}
	}
	return false
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Endpoints, when set, are the only endpoints compared (by name).
	Endpoints []string
	// PageSize is the count asked for per listing page (default 200, also
	// capped by the ServiceProviderConfig's filter.maxResults).
	PageSize int
	// Store is the pipe's state: the id map says which resources the pipe
	// manages (orphans) and which resource is each entry's. nil: every
	// resource no entry matches is unmanaged. --repair writes it.
	Store *state.Store
	// Repair applies the fixes: creates, PATCHes, orphan deletes (per the
	// owning class's onDelete, or onLeave for an entry out of scope), with
	// the same safety as run (Destination.ApplyKnown: creates recorded
	// before they are sent, lookups before a second create).
	Repair bool
	// Guard stops a repair that would delete too much before it starts.
	Guard DeleteGuard
	// Log receives warnings; nil: discard.
	Log *slog.Logger
}

// verifyEndpoint is the SCIM side of one endpoint as verify holds it.
type verifyEndpoint struct {
	ep     *lang.Endpoint
	report *EndpointReport
	list   *Listing                 // the endpoint's resources; not Listed when the service was not listed
	seen   map[string]bool          // ids matched by an entry
	byID   map[string]string        // id -> id-map key
	maps   map[string]state.Mapping // id-map key -> mapping, for this endpoint
	extIDs map[string]string        // externalId -> id, for the id map's keys
	left   map[string]bool          // id-map keys whose entries are in the directory but out of scope
}

// Verify compares the mapping of every entry of src (in resync mode) with
// what the SCIM service holds, per endpoint, and returns what differs. The
// directory is streamed (memory stays flat in its size but for the id map);
// each endpoint is read by listing it in pages of PageSize
// (?startIndex=&count=), which costs one request per page rather than one
// per entry, and held in memory to compare against; where the service
// refuses to list, each entry is looked up (one request each) and orphans
// are read by id.
//
// Only what the pipe manages counts: the diff covers the class's managed
// paths (a difference elsewhere is never reported), and resources no entry
// and no id-map record claims are unmanaged, counted and listed but never
// drift. Entries that cannot be compared (an expression error, a lookup
// failing) are reported in Errors.
//
// With Repair, the fixes are applied after the comparison: creates and
// PATCHes first (entries whose resources refer to others last, so that
// their references exist), then the orphans, after the guard allows their
// count. Each fix reads its entry again and goes through
// Destination.ApplyKnown, as run does.
func Verify(ctx context.Context, p *lang.Pipe, d *Destination, src Entries, opts VerifyOptions) (*VerifyReport, error) {
	v := &verifier{p: p, d: d, src: src, opts: opts, eps: map[string]*verifyEndpoint{},
		rep: &VerifyReport{Start: time.Now(), Repaired: opts.Repair}}
	if v.opts.Log == nil {
		v.opts.Log = slog.New(slog.DiscardHandler)
	}
	if err := v.endpoints(); err != nil {
		return nil, err
	}
	if opts.Repair {
		// Repairs go from what is read now: not before a killed process's
		// writes in flight have landed (doubt.go).
		if err := d.Settle(ctx); err != nil {
			return nil, err
		}
	}
	if err := v.loadIDMap(); err != nil {
		return nil, err
	}
	for _, name := range v.order {
		if err := v.list(ctx, v.eps[name]); err != nil {
			return nil, err
		}
	}
	ev := p.NewEvaluator()
	refs := &verifyRefs{v: v, ctx: ctx, ev: p.NewEvaluator(), cache: map[string]refHit{}}
	err := src.Each(ctx, func(e *lang.Entry) error {
		v.rep.Entries++
		return v.compare(ctx, ev, refs, e)
	})
	if err != nil {
		return v.rep, err
	}
	for _, name := range v.order {
		if err := v.orphans(ctx, v.eps[name]); err != nil {
			return v.rep, err
		}
	}
	if opts.Repair {
		if err := v.repair(ctx); err != nil {
			v.finish()
			return v.rep, err
		}
	}
	v.finish()
	return v.rep, nil
}

type verifier struct {
	p     *lang.Pipe
	d     *Destination
	src   Entries
	opts  VerifyOptions
	eps   map[string]*verifyEndpoint
	order []string // endpoint names, in the script's order
	rep   *VerifyReport
	reqs  atomic.Int64
}

func (v *verifier) finish() {
	v.rep.Duration = time.Since(v.rep.Start)
	v.rep.Seconds = v.rep.Duration.Seconds()
	v.rep.Requests = v.reqs.Load()
	kind := map[DriftKind]int{Missing: 0, Differing: 1, Orphan: 2, Unmanaged: 3}
	sort.SliceStable(v.rep.Items, func(i, j int) bool {
		a, b := v.rep.Items[i], v.rep.Items[j]
		if a.Endpoint != b.Endpoint {
			return v.eps[a.Endpoint].report.Path < v.eps[b.Endpoint].report.Path
		}
		if a.Kind != b.Kind {
			return kind[a.Kind] < kind[b.Kind]
		}
		if a.DN != b.DN {
			return a.DN < b.DN
		}
		return a.ID < b.ID
	})
}

// endpoints picks the endpoints compared: those a class sends to, or the
// ones named.
func (v *verifier) endpoints() error {
	want := map[string]bool{}
	for _, n := range v.opts.Endpoints {
		if v.p.Endpoint(n) == nil {
			return fmt.Errorf("the script has no endpoint %q", n)
		}
		want[n] = true
	}
	for _, ep := range v.p.Endpoints {
		used := false
		for _, cl := range v.p.Classes {
			for _, e := range cl.Endpoints(v.p) {
				used = used || e == ep
			}
		}
		if !used || len(want) > 0 && !want[ep.Name] {
			continue
		}
		r := &EndpointReport{Name: ep.Name, Path: ep.Path}
		v.rep.Endpoints = append(v.rep.Endpoints, r)
		v.eps[ep.Name] = &verifyEndpoint{ep: ep, report: r, seen: map[string]bool{}, byID: map[string]string{},
			maps: map[string]state.Mapping{}, extIDs: map[string]string{}, left: map[string]bool{}}
		v.order = append(v.order, ep.Name)
	}
	if len(v.order) == 0 {
		return errors.New("no endpoint to verify: no class sends to the endpoints named")
	}
	return nil
}

func (v *verifier) loadIDMap() error {
	if v.opts.Store == nil {
		return nil
	}
	return v.opts.Store.Range(func(key string, m state.Mapping) bool {
		ve := v.eps[m.Endpoint]
		if ve == nil {
			return true
		}
		ve.maps[key] = m
		if m.SCIMID != "" {
			ve.byID[m.SCIMID] = key
		}
		if !strings.HasPrefix(key, "dn:") {
			ve.extIDs[key] = m.SCIMID
		}
		return true
	})
}

// list reads an endpoint's resources page by page (Destination.List). A
// service that refuses to list (400, 403, 404, 405, 501 on the first
// page), ignores startIndex, or fails a later page even after the client's
// retries leaves the endpoint to lookups, with a warning; a first page that
// fails otherwise (an outage, a 401) fails verify.
func (v *verifier) list(ctx context.Context, ve *verifyEndpoint) error {
	l, err := v.d.List(ctx, ve.ep, ListOptions{PageSize: v.opts.PageSize, Max: -1, Requests: &v.reqs, Log: v.opts.Log, Who: "verify"})
	ve.list = l
	if err != nil {
		return err
	}
	if !l.Listed() {
		ve.report.Resources, ve.report.Unmanaged = -1, -1
		return nil
	}
	ve.report.Listed, ve.report.Resources = true, l.Len()
	return nil
}

// entryKey is the id-map key of an entry.
func (v *verifier) entryKey(e *lang.Entry) string {
	if k := source.Identity(e, v.p.Source); k != "" {
		return k
	}
	return "dn:" + source.NormalizeDN(e.DN)
}

// find returns an entry's resource: the id map's, else the one the lookup
// filter finds (in the listing, or at the service when the endpoint was not
// listed, the filter is more than equalities, or the listed resource is
// not whole: a group listed without its members).
func (v *verifier) find(ctx context.Context, ve *verifyEndpoint, key, filter string) (string, []byte, error) {
	m, known := ve.maps[key]
	if l := ve.list; l.Listed() {
		if known && m.SCIMID != "" {
			if r, ok := l.Peek(m.SCIMID); ok && l.whole(r) {
				return m.SCIMID, r, nil
			}
		}
		if filter == "" {
			return "", nil, nil
		}
		if ids, ok := l.Match(filter); ok {
			switch len(ids) {
			case 0:
				return "", nil, nil
			case 1:
				if r, _ := l.Peek(ids[0]); l.whole(r) {
					return ids[0], r, nil
				}
			default:
				return "", nil, &MultipleMatchError{Endpoint: ve.ep.Path, Filter: filter, IDs: ids, Total: len(ids)}
			}
		}
	}
	// One request: a GET by the known id, else the lookup (a known id
	// gone from the service costs a second, not counted here).
	if known && m.SCIMID != "" || filter != "" {
		v.reqs.Add(1)
	}
	return v.d.find(ctx, ve.ep, filter, m.SCIMID)
}

// getFold reads a (sub-)attribute by name, ignoring case as SCIM names do.
func getFold(r []byte, name string) gjson.Result {
	cur := gjson.ParseBytes(r)
	for _, part := range strings.Split(name, ".") {
		var next gjson.Result
		cur.ForEach(func(k, val gjson.Result) bool {
			if strings.EqualFold(k.Str, part) {
				next = val
				return false
			}
			return true
		})
		cur = next
		if !cur.Exists() {
			return cur
		}
	}
	return cur
}

// compare maps one entry and compares it with its resource.
func (v *verifier) compare(ctx context.Context, ev *lang.Evaluator, refs *verifyRefs, e *lang.Entry) error {
	key := v.entryKey(e)
	res, err := ev.Eval(&lang.Change{Type: lang.Add, DN: e.DN, Entry: e}, lang.Resync)
	if err != nil {
		v.rep.Errors = append(v.rep.Errors, fmt.Sprintf("%s: %v", e.DN, err))
		return nil
	}
	if res.OutOfScope {
		for _, ve := range v.eps {
			if _, ok := ve.maps[key]; ok {
				ve.left[key] = true
			}
		}
		return nil
	}
	ve := v.eps[res.Endpoint.Name]
	if ve == nil {
		return nil // an endpoint left out with --endpoint
	}
	ve.report.Entries++
	class := res.Class.Name
	id, current, err := v.find(ctx, ve, key, res.Filter)
	if err != nil {
		v.rep.Errors = append(v.rep.Errors, fmt.Sprintf("%s: %v", e.DN, err))
		return nil
	}
	refersOut := res.RefersElsewhere()
	if current == nil {
		it := &Drift{Kind: Missing, Endpoint: ve.ep.Name, Class: class, DN: e.DN, refersOut: refersOut}
		if body, err := res.Resource(lang.Create, refs); err == nil {
			it.Name = displayName(body)
		}
		ve.report.Missing++
		v.rep.Items = append(v.rep.Items, it)
		return nil
	}
	ve.seen[id] = true
	desired, err := res.Resource(lang.Update, refs)
	if err != nil {
		v.rep.Errors = append(v.rep.Errors, fmt.Sprintf("%s: %v", e.DN, err))
		return nil
	}
	managed := res.Managed(lang.Update)
	ops, err := scim.Diff(current, desired, managed, v.d.diffOptions(ve.ep))
	if err != nil {
		v.rep.Errors = append(v.rep.Errors, fmt.Sprintf("%s: %v", e.DN, err))
		return nil
	}
	if len(ops) == 0 {
		ve.report.InSync++
		return nil
	}
	it := &Drift{Kind: Differing, Endpoint: ve.ep.Name, Class: class, DN: e.DN, ID: id, Name: displayName(current),
		Attributes: OpAttributes(ops), refersOut: refersOut}
	for _, b := range scim.PatchBodies(ops, v.d.maxOps()) {
		it.Patch = append(it.Patch, json.RawMessage(b))
	}
	if managesMembers(managed) {
		it.MembersMissing, it.MembersExtra = memberDiff(current, desired)
	}
	ve.report.Differing++
	v.rep.Items = append(v.rep.Items, it)
	return nil
}

// orphans sorts the resources no entry matched into orphans and unmanaged.
func (v *verifier) orphans(ctx context.Context, ve *verifyEndpoint) error {
	add := func(key, id string, m state.Mapping, current []byte) {
		it := &Drift{Kind: Orphan, Endpoint: ve.ep.Name, Class: m.Class, DN: m.DN, ID: id, Name: displayName(current), key: key}
		it.Reason, it.Action = "gone", "delete"
		if ve.left[key] {
			it.Reason = "out of scope"
		}
		if cl := v.p.Class(m.Class); cl != nil {
			if ve.left[key] {
				it.Action = cl.OnLeave
			} else if it.Action = cl.OnDelete; !syncs(cl, "delete") {
				it.Action = "none"
			}
		}
		if a := gjson.GetBytes(current, "active"); it.Action == "deactivate" && a.Exists() && !a.Bool() {
			return // deactivated already: in step with the class
		}
		if it.IsDrift() {
			ve.report.Orphans++
		} else {
			ve.report.Kept++
		}
		v.rep.Items = append(v.rep.Items, it)
	}
	if ve.list.Listed() {
		for _, id := range ve.list.IDs() {
			if ve.seen[id] {
				continue
			}
			r, _ := ve.list.Peek(id)
			key, known := ve.byID[id]
			if !known {
				// Adopted by externalId: the resource carries the identity
				// of an entry the id map knows under another SCIM id.
				if x := gjson.GetBytes(r, "externalId").String(); x != "" {
					if _, ok := ve.extIDs[x]; ok {
						key, known = x, true
					}
				}
			}
			if known {
				add(key, id, ve.maps[key], r)
				continue
			}
			ve.report.Unmanaged++
			v.rep.Items = append(v.rep.Items, &Drift{Kind: Unmanaged, Endpoint: ve.ep.Name, ID: id, Name: displayName(r)})
		}
		return nil
	}
	// Not listed: read each id-map resource no entry matched.
	keys := make([]string, 0, len(ve.maps))
	for k := range ve.maps {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		m := ve.maps[k]
		if m.SCIMID == "" || ve.seen[m.SCIMID] {
			continue
		}
		if err := v.d.wait(ctx); err != nil {
			return err
		}
		v.reqs.Add(1)
		r, err := v.d.Client.Get(ctx, strings.TrimRight(ve.ep.Path, "/")+"/"+url.PathEscape(m.SCIMID))
		if scim.IsStatus(err, http.StatusNotFound) {
			continue
		}
		if err != nil {
			v.rep.Errors = append(v.rep.Errors, fmt.Sprintf("%s/%s: %v", ve.ep.Path, m.SCIMID, err))
			continue
		}
		add(k, m.SCIMID, m, r)
	}
	return nil
}

// repair applies the fixes, after the guard allows the orphan deletes.
func (v *verifier) repair(ctx context.Context) error {
	deletes, mapped := 0, 0
	for _, it := range v.rep.Items {
		if it.Kind == Orphan && it.IsDrift() {
			deletes++
		}
	}
	for _, ve := range v.eps {
		mapped += len(ve.maps)
	}
	if err := v.opts.Guard.Check(deletes, mapped); err != nil {
		return err
	}
	refs := &RefResolver{Ctx: ctx, Pipe: v.p, Dest: v.d, Mode: lang.Resync, Entry: v.src.Get}
	ev := v.p.NewEvaluator()
	for _, later := range []bool{false, true} {
		for _, it := range v.rep.Items {
			if (it.Kind != Missing && it.Kind != Differing) || it.refersOut != later {
				continue
			}
			v.record(it, v.fix(ctx, ev, refs, it))
		}
	}
	for _, it := range v.rep.Items {
		if it.Kind == Orphan && it.IsDrift() {
			v.record(it, v.removeOrphan(ctx, it))
		}
	}
	return nil
}

func (v *verifier) record(it *Drift, err error) {
	r := v.eps[it.Endpoint].report
	if err != nil {
		it.Error = err.Error()
		r.Failed++
		what := it.DN
		if what == "" {
			what = it.ID
		}
		v.rep.Errors = append(v.rep.Errors, fmt.Sprintf("repairing %s: %v", what, err))
		return
	}
	it.Repaired = true
	r.Repaired++
}

// fix creates or updates the resource of a missing or differing entry, read
// again from the source, and records it in the id map.
func (v *verifier) fix(ctx context.Context, ev *lang.Evaluator, refs *RefResolver, it *Drift) error {
	e, err := v.src.Get(it.DN)
	if err != nil {
		return err
	}
	if e == nil {
		return errors.New("the entry is gone from the source")
	}
	key := v.entryKey(e)
	res, err := ev.Eval(&lang.Change{Type: lang.Add, DN: e.DN, Entry: e}, lang.Resync)
	if err != nil {
		return err
	}
	if res.OutOfScope {
		return errors.New("the entry is out of scope now")
	}
	known := Known{ID: it.ID}
	store := v.opts.Store
	var m state.Mapping
	if store != nil {
		if old, ok, err := store.Get(key); err == nil && ok {
			m = old
			if known.ID == "" {
				known.ID, known.Filters, known.CreateSent = old.SCIMID, old.Pending, old.CreateSent
			}
		}
		known.BeforeCreate = func(filters []string) error {
			pm := state.Mapping{Endpoint: res.Endpoint.Name, DN: e.DN, Class: res.Class.Name, Pending: filters, CreateSent: time.Now()}
			return store.Put(key, pm)
		}
	}
	a, err := v.d.ApplyKnown(ctx, res, known, refs)
	if err != nil {
		return err
	}
	if store != nil && a.ID != "" && (m.SCIMID != a.ID || m.DN != e.DN || m.Class != res.Class.Name || len(m.Pending) > 0) {
		return store.Put(key, state.Mapping{Endpoint: res.Endpoint.Name, SCIMID: a.ID, DN: e.DN, Class: res.Class.Name})
	}
	return nil
}

// removeOrphan deletes or deactivates an orphan as its class says, and
// forgets a deleted one (and one whose entry is gone) in the id map.
func (v *verifier) removeOrphan(ctx context.Context, it *Drift) error {
	ve := v.eps[it.Endpoint]
	if _, err := v.d.DeleteKnown(ctx, ve.ep, it.ID, it.Action == "deactivate"); err != nil {
		return err
	}
	if v.opts.Store != nil && it.key != "" && (it.Action == "delete" || it.Reason == "gone") {
		return v.opts.Store.Delete(it.key)
	}
	return nil
}

// verifyRefs resolves ref(…) targets for the comparison without a request
// per member: the member's entry is read from the source, mapped, and found
// in the listing (or looked up where the endpoint was not listed).
type verifyRefs struct {
	v     *verifier
	ctx   context.Context
	ev    *lang.Evaluator
	cache map[string]refHit
}

type refHit struct {
	ref lang.Ref
	ep  *lang.Endpoint
	ok  bool
}

// Resolve implements lang.Resolver. A member in scope that SCIM lacks
// resolves to "(missing: DN)", so that the group shows it as a member
// missing rather than failing the comparison.
func (r *verifyRefs) Resolve(dn string, endpoints []*lang.Endpoint) (lang.Ref, bool, error) {
	key := source.NormalizeDN(dn)
	h, hit := r.cache[key]
	if !hit {
		var err error
		if h, err = r.resolve(dn); err != nil {
			return lang.Ref{}, false, err
		}
		if len(r.cache) < 200000 {
			r.cache[key] = h
		}
	}
	if !h.ok || !contains(endpoints, h.ep) {
		return lang.Ref{}, false, nil
	}
	return h.ref, true, nil
}

func (r *verifyRefs) resolve(dn string) (refHit, error) {
	e, err := r.v.src.Get(dn)
	if err != nil || e == nil {
		return refHit{}, err
	}
	res, err := r.ev.Eval(&lang.Change{Type: lang.Add, DN: e.DN, Entry: e}, lang.Resync)
	if err != nil || res.OutOfScope {
		return refHit{}, nil
	}
	h := refHit{ep: res.Endpoint, ok: true, ref: lang.Ref{Type: res.Endpoint.Type}}
	ve := r.v.eps[res.Endpoint.Name]
	if ve == nil {
		// An endpoint not verified: look it up as a sync would.
		id, cur, err := r.v.d.find(r.ctx, res.Endpoint, res.Filter, "")
		r.v.reqs.Add(1)
		if err != nil {
			return refHit{}, err
		}
		if cur == nil {
			h.ref.ID = "(missing: " + e.DN + ")"
		} else {
			h.ref.ID = id
		}
		return h, nil
	}
	id, cur, err := r.v.find(r.ctx, ve, r.v.entryKey(e), res.Filter)
	if err != nil {
		return refHit{}, err
	}
	if cur == nil {
		h.ref.ID = "(missing: " + e.DN + ")"
	} else {
		h.ref.ID = id
	}
	return h, nil
}

// OpAttributes returns the names of the attributes a PATCH changes (its
// paths' attributes, or the keys of a path-less operation's value), sorted
// and without duplicates: what a log line or a report may show, never the
// values.
func OpAttributes(ops []scim.PatchOp) []string {
	set := map[string]bool{}
	for _, op := range ops {
		if op.Path == "" {
			var obj map[string]json.RawMessage
			if json.Unmarshal(op.Value, &obj) == nil {
				for k := range obj {
					set[k] = true
				}
			}
			continue
		}
		p := op.Path
		if strings.HasPrefix(strings.ToLower(p), "urn:") {
			// urn:...:2.0:User:manager.value: the attribute follows the
			// last ':' before any value filter; the URN itself has dots.
			head := p
			if i := strings.IndexByte(head, '['); i >= 0 {
				head = head[:i]
			}
			if i := strings.LastIndexByte(head, ':'); i >= 0 {
				attr := head[i+1:]
				if j := strings.IndexByte(attr, '.'); j >= 0 {
					attr = attr[:j]
				}
				set[p[:i+1]+attr] = true
				continue
			}
		}
		if i := strings.IndexAny(p, "[."); i >= 0 {
			p = p[:i]
		}
		set[p] = true
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func managesMembers(managed []scim.Path) bool {
	for _, p := range managed {
		if strings.EqualFold(p.Attr, "members") {
			return true
		}
	}
	return false
}

// memberDiff returns the member values desired lacks in current (missing)
// and current has beyond desired (extra).
func memberDiff(current, desired []byte) (missing, extra []string) {
	set := func(b []byte) map[string]bool {
		m := map[string]bool{}
		for _, x := range getFold(b, "members").Array() {
			if id := x.Get("value").String(); id != "" {
				m[id] = true
			}
		}
		return m
	}
	cur, want := set(current), set(desired)
	for id := range want {
		if !cur[id] {
			missing = append(missing, id)
		}
	}
	for id := range cur {
		if !want[id] {
			extra = append(extra, id)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return missing, extra
}

// displayName is what a person recognizes a resource by.
func displayName(r []byte) string {
	for _, n := range []string{"userName", "displayName", "externalId"} {
		if s := getFold(r, n).String(); s != "" {
			return s
		}
	}
	return ""
}

// FormatCount renders n for the summary table: "-" when unknown.
func FormatCount(n int) string {
	if n < 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/lang"
)

// Defaults of a Bulk resync's limits where the script gives none: RFC
// 7644 names no default. DefaultBulkMaxOperations also caps what the
// service advertises (SCIMMY and Okta 1 000, PingDirectory 10 000): a
// service carries a request's operations out one after the other, and
// measured on the SCIM test server 1 000 creates took over the client's
// 10 s timeout, after which every create in the request must be looked up
// (BENCHMARKS.md); 100 keep a request to about a second while still
// sending one write request per 100 creates. bulkMaxOperations raises it.
const (
	DefaultBulkMaxOperations = 100
	DefaultBulkMaxPayload    = 1 << 20
)

// BulkPlan is how a resync sends its creates and updates: in RFC 7644
// §3.7 BulkRequests within Limits when On, one request each otherwise.
type BulkPlan struct {
	On     bool
	Limits scim.BulkLimits
	// Service is what the service advertised (unknown when not asked, or
	// when it would not say).
	Service scim.ServiceProviderConfig
}

// PlanBulk reads the service's ServiceProviderConfig once (not when the
// destination is offline) and decides, with the scim block's settings
// overriding what the service advertises: bulk "on" uses Bulk whatever the
// service says, "auto" (the default) when it advertises bulk.supported,
// "off" never. The limits are the script's bulkMaxOperations and
// bulkMaxPayload, else the service's (operations capped at
// DefaultBulkMaxOperations), else the defaults above. It logs
// what it found and decided once, at info (the document holds no secret).
func PlanBulk(ctx context.Context, p *lang.Pipe, d *Destination) BulkPlan {
	var plan BulkPlan
	if !d.Offline && d.Client != nil {
		plan.Service = d.Client.Discover(ctx)
	}
	switch p.Bulk {
	case "on":
		plan.On = true
	case "auto":
		plan.On = plan.Service.Bulk.Supported == scim.Supported
	}
	plan.Limits = scim.BulkLimits{
		MaxOperations:  firstPositive(p.BulkMaxOperations, min(firstPositive(plan.Service.Bulk.MaxOperations, DefaultBulkMaxOperations), DefaultBulkMaxOperations)),
		MaxPayloadSize: firstPositive(p.BulkMaxPayload, plan.Service.Bulk.MaxPayloadSize, DefaultBulkMaxPayload),
	}
	mode := p.Bulk
	if mode == "" {
		mode = "off"
	}
	args := []any{"service", plan.Service.String(), "bulk_setting", mode, "bulk", plan.On}
	if plan.On {
		args = append(args, "bulk_max_operations", plan.Limits.MaxOperations, "bulk_max_payload", plan.Limits.MaxPayloadSize)
	}
	if !d.Offline { // an offline dry run (the demo) asked no service
		d.log().Info("resync: the SCIM service's ServiceProviderConfig", args...)
	}
	return plan
}

func firstPositive(v ...int) int {
	for _, n := range v {
		if n > 0 {
			return n
		}
	}
	return 0
}

// bulkOp is one create or update queued for a BulkRequest: what the
// worker that evaluated the entry knew, kept beyond the evaluator's next
// change (a lang.Result is not: its evaluator reuses it).
type bulkOp struct {
	e       *lang.Entry
	class   string
	ep      *lang.Endpoint
	body    []byte   // a create's resource; an update's PatchOp body
	filter  string   // the class's lookup filter
	filters []string // what finds a create if the request's outcome is unknown (Destination.identifying)
	bulkID  string
	deps    []bulkDep // the ops its body refers to by bulkId ("bulkId:…" members)
	// secrets are the change's secret values: withheld from a dry run's
	// display, and kept out of shadows (held in memory only).
	secrets []string
	managed []scim.Path // what the body manages: its shadow's covers (listshadow.go)
	// An update (resyncbulkupdate.go) sets id, the resource's, and keeps
	// what the single-request path needs if it must take over.
	id       string
	current  []byte   // the resource as looked up
	desired  []byte   // the resource as the update makes it (the listing's bookkeeping)
	attrs    []string // the attributes the PATCH changes, and its operations (the sync log)
	patchOps int
}

// bulkDep is an op referred to by bulkId: its bulkId and its entry's DN.
type bulkDep struct{ id, dn string }

func (op *bulkOp) operation() scim.BulkOperation {
	if op.update() {
		// No bulkId: RFC 7644 §3.7 asks for one on POST only, and services
		// answer a PATCH's by position (SCIMMY does not echo one).
		return scim.BulkOperation{Method: http.MethodPatch, Path: resourcePath(op.ep.Path, op.id), Data: op.body}
	}
	return scim.BulkOperation{Method: http.MethodPost, Path: op.ep.Path, BulkID: op.bulkID, Data: op.body}
}

// update reports whether op is a PATCH of an existing resource.
func (op *bulkOp) update() bool { return op.id != "" }

// bulkSender queues a resync's creates, and its updates that are one
// PATCH (resyncbulkupdate.go), and sends them in BulkRequests.
// Each operation's outcome is handled on its own, exactly as the answer to
// a single POST would be: counted, reported to ResyncOptions.Applied (the
// id map) and told to the reference resolver, or failed alone.
type bulkSender struct {
	p    *lang.Pipe
	d    *Destination
	plan BulkPlan
	st   *Stats
	opts ResyncOptions
	// retry puts an entry back for a later pass (a reference not in SCIM
	// yet); it reports false on the last pass, where the entry fails.
	retry func(dn string) bool

	mu      sync.Mutex
	open    *scim.BulkBatch
	openOps []*bulkOp
	pending map[string]*bulkOp // normalized DN -> its op in the open batch
	seq     int

	inflight sync.WaitGroup
	sem      chan struct{} // bounds the BulkRequests in flight

	// Batches sent and not answered yet (in flight or waiting for sem): the
	// workers wait (room) while there are 2×workers, so that a directory
	// read faster than the service answers does not pile every entry's
	// request up in memory. freed is closed (and replaced) at each answer.
	roomMu      sync.Mutex
	outstanding int
	roomFor     int
	freed       chan struct{}
	off         atomic.Bool // the service refused POST /Bulk itself: single requests from then on
	noPatch     atomic.Bool // the service refused a PATCH in a BulkRequest as a method: updates go alone

	createdMu sync.Mutex
	created   map[string]string // bulkId -> the id of the resource it made

	readBacks readBacks // what Bulk wrote, for shadows (listshadow.go)
}

func newBulkSender(p *lang.Pipe, d *Destination, plan BulkPlan, st *Stats, opts ResyncOptions, workers int) *bulkSender {
	return &bulkSender{p: p, d: d, plan: plan, st: st, opts: opts,
		sem: make(chan struct{}, max(1, workers)), created: map[string]string{},
		roomFor: 2 * max(1, workers), freed: make(chan struct{})}
}

// room waits until fewer than roomFor batches are outstanding (or ctx
// ends). Only the workers wait here, never a batch's own goroutine.
func (b *bulkSender) room(ctx context.Context) error {
	b.roomMu.Lock()
	for b.outstanding >= b.roomFor {
		ch := b.freed
		b.roomMu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		b.roomMu.Lock()
	}
	b.roomMu.Unlock()
	return nil
}

// apply handles one evaluated entry: a missing resource is queued for a
// BulkRequest, and so is an existing one's update when it is one PATCH
// body in the filter form (updateOp; queued true: its outcome is
// reported when the request is answered). What Bulk does not carry
// (deletes, other updates, a group over the member cap, a resource larger
// than maxPayloadSize alone) goes through Destination.Apply or ApplyFound.
func (b *bulkSender) apply(ctx context.Context, e *lang.Entry, res *lang.Result) (a Applied, queued bool, err error) {
	if res.OutOfScope || res.Change.Type == lang.Delete || b.off.Load() {
		a, err = b.d.Apply(ctx, res, "", b.opts.Refs)
		return a, false, err
	}
	if err := b.room(ctx); err != nil {
		return Applied{Endpoint: res.Endpoint}, false, err
	}
	id, current, err := b.d.Lookup(ctx, res)
	if err != nil {
		return Applied{Endpoint: res.Endpoint}, false, err
	}
	if current != nil {
		if op := b.updateOp(e, res, id, current); op != nil {
			if err := b.enqueue(ctx, op); err != nil {
				return Applied{Endpoint: res.Endpoint}, false, err
			}
			return Applied{}, true, nil
		}
		a, err = b.d.ApplyFound(ctx, res, id, current, b.opts.Refs)
		return a, false, err
	}
	if b.d.SkipCreates {
		return Applied{Endpoint: res.Endpoint, Outcome: Skipped}, false, nil
	}
	refs := &bulkRefs{inner: b.opts.Refs, b: b}
	body, err := res.Resource(lang.Create, refs)
	if err != nil {
		return Applied{Endpoint: res.Endpoint}, false, err
	}
	if dep, ok := refs.second(); ok {
		// One bulkId reference per operation at the most (bulkRefs): this
		// one waits for a later pass, where its references have ids.
		return Applied{Endpoint: res.Endpoint}, false, &notYetError{dn: dep.dn}
	}
	op := &bulkOp{e: e, class: className(res), ep: res.Endpoint, body: bytes.Clone(body), deps: refs.deps,
		secrets: res.Secrets(), managed: res.Managed(lang.Create)}
	if _, rest := b.d.capMembers(op.body); rest > 0 || !b.plan.Limits.FitsAlone(op.operation()) {
		// More members than one request may carry, or too large for a
		// BulkRequest: a single create (whose members resolve without
		// bulkIds; one still queued makes it wait for a later pass).
		a, err = b.d.Apply(ctx, res, "", b.opts.Refs)
		return a, false, err
	}
	op.filter = res.Filter
	op.filters = b.d.identifying(res.Endpoint, res.Filter, op.body)
	if err := b.enqueue(ctx, op); err != nil {
		return Applied{Endpoint: res.Endpoint}, false, err
	}
	return Applied{}, true, nil
}

func className(res *lang.Result) string {
	if res.Class == nil {
		return ""
	}
	return res.Class.Name
}

// bulkRefs resolves references as the resync's resolver does, except to
// entries queued in the open batch: those are "bulkId:…" (RFC 7644
// §3.7.2), which the service resolves within the request.
//
// An operation is sent with one such reference at the most; one that
// would carry two or more (a group whose members are queued beside it)
// waits for a later pass, where they resolve to ids. RFC 7644 allows
// any number, but SCIMMY 1.3 (the test server's library, and others'
// servers) resolves only the last of them: each reference is replaced in
// the operation's original data, so the earlier replacements are lost
// and the service refuses the "bulkId:…" left as a member value.
type bulkRefs struct {
	inner lang.Resolver
	b     *bulkSender
	deps  []bulkDep
}

// second returns a reference to another queued operation than the first
// one's, if the resource refers to two or more.
func (r *bulkRefs) second() (bulkDep, bool) {
	for _, d := range r.deps {
		if d.id != r.deps[0].id {
			return d, true
		}
	}
	return bulkDep{}, false
}

func (r *bulkRefs) Resolve(dn string, endpoints []*lang.Endpoint) (lang.Ref, bool, error) {
	r.b.mu.Lock()
	op := r.b.pending[source.NormalizeDN(dn)]
	r.b.mu.Unlock()
	if op != nil && contains(endpoints, op.ep) {
		r.deps = append(r.deps, bulkDep{id: op.bulkID, dn: op.e.DN})
		return lang.Ref{ID: "bulkId:" + op.bulkID, Type: op.ep.Type}, true, nil
	}
	if r.inner == nil {
		return lang.Ref{ID: dn}, true, nil // as with no resolver at all
	}
	return r.inner.Resolve(dn, endpoints)
}

// enqueue adds op to the open batch, sending the batch when it is full.
// An op that refers by bulkId to ops already sent (their batch filled up
// in between) is not queued: the reference is not in SCIM yet, and a later
// pass resolves it to the id.
func (b *bulkSender) enqueue(ctx context.Context, op *bulkOp) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	op.bulkID = "b" + strconv.Itoa(b.seq)
	for _, dep := range op.deps {
		if !b.isOpen(dep.id) {
			return &notYetError{dn: dep.dn}
		}
	}
	if b.open == nil {
		b.open = scim.NewBulkBatch(b.plan.Limits)
		b.pending = map[string]*bulkOp{}
	}
	o := op.operation()
	if !b.open.Fits(o) {
		if len(op.deps) > 0 {
			// Its references are in the batch that must go now.
			b.flushLocked(ctx)
			return &notYetError{dn: op.deps[0].dn}
		}
		b.flushLocked(ctx)
		b.open = scim.NewBulkBatch(b.plan.Limits)
		b.pending = map[string]*bulkOp{}
	}
	b.open.Add(o)
	b.openOps = append(b.openOps, op)
	if !op.update() {
		b.pending[source.NormalizeDN(op.e.DN)] = op // references to it become bulkIds
	}
	if b.plan.Limits.MaxOperations > 0 && b.open.Len() >= b.plan.Limits.MaxOperations {
		b.flushLocked(ctx)
	}
	return nil
}

func (b *bulkSender) isOpen(bulkID string) bool {
	for _, op := range b.openOps {
		if op.bulkID == bulkID {
			return true
		}
	}
	return false
}

// flushLocked sends the open batch in the background (b.mu held).
func (b *bulkSender) flushLocked(ctx context.Context) {
	if b.open == nil || b.open.Len() == 0 {
		b.open, b.openOps, b.pending = nil, nil, nil
		return
	}
	ops := b.openOps
	b.open, b.openOps, b.pending = nil, nil, nil
	b.inflight.Add(1)
	b.roomMu.Lock()
	b.outstanding++
	b.roomMu.Unlock()
	go func() {
		defer b.inflight.Done()
		defer func() {
			b.roomMu.Lock()
			b.outstanding--
			close(b.freed)
			b.freed = make(chan struct{})
			b.roomMu.Unlock()
		}()
		select {
		case b.sem <- struct{}{}:
		case <-ctx.Done():
			for _, op := range ops {
				b.fail(op, ctx.Err())
			}
			return
		}
		defer func() { <-b.sem }()
		b.send(ctx, ops, 1)
	}()
}

// finish sends what is queued and waits for every answer: the end of a
// pass, before the next one reads what this one created.
func (b *bulkSender) finish(ctx context.Context) {
	b.mu.Lock()
	b.flushLocked(ctx)
	b.mu.Unlock()
	b.inflight.Wait()
}

// send sends ops as one BulkRequest (attempt counts the tries of these
// operations) and settles each operation's outcome: the creates' here, the
// updates' in settleUpdates (resyncbulkupdate.go).
func (b *bulkSender) send(ctx context.Context, ops []*bulkOp, attempt int) {
	if len(ops) == 1 && ops[0].update() {
		// A BulkRequest of one PATCH costs the round trip the PATCH alone
		// does, and the single path keeps more (the patchFilters fallback,
		// the shadow from the answer): it goes alone.
		b.single(ctx, ops[0])
		return
	}
	batch := scim.NewBulkBatch(scim.BulkLimits{})
	var shown []string
	for _, op := range ops {
		batch.Add(op.operation())
		shown = append(shown, op.secrets...)
	}
	b.st.Requests.Add(1)
	if b.d.DryRun != nil {
		body := batch.Body()
		if len(shown) > 0 {
			body = scim.Withhold(body, secret.NewScrubber(secret.Withheld, shown...))
		}
		b.d.DryRun(http.MethodPost, "/Bulk", body)
		for _, op := range ops {
			if op.update() {
				b.done(op, op.updated())
				continue
			}
			b.done(op, Applied{Outcome: Created, Endpoint: op.ep, ID: dryRunID, Attributes: bodyAttributes(op.body)})
		}
		return
	}
	if err := b.d.wait(ctx); err != nil {
		for _, op := range ops {
			b.fail(op, err)
		}
		return
	}
	// From here each update may be written: its shadow is held (and
	// dropped when the request ends) and its listed copy no longer answers.
	shadows := b.beginUpdates(ops)
	b.d.sending()
	results, err := b.d.Client.SendBulk(ctx, batch)
	if err != nil {
		endShadows(shadows, func(int) error { return err })
		b.requestFailed(ctx, ops, attempt, err)
		return
	}
	endShadows(shadows, func(i int) error { return updateResult(ops[i], results[i]) })
	// The creates first: an update the single path must take over may refer
	// to a resource the same request created.
	ups, upResults := takeUpdates(&ops, &results)
	defer b.settleUpdates(ctx, ups, upResults)
	// The service answered the request as a whole: what it did is done,
	// and a lookup now sees it. An operation it failed with a 5xx or a
	// 429, or left out of its answer, is looked up, then sent again if
	// not found.
	var unsure, noID []*bulkOp
	var unsureErr error
	for i, op := range ops {
		r := results[i]
		switch {
		case r.Err == nil && r.ID != "":
			b.created1(op, r.ID)
		case r.Err == nil:
			// A success without the id: find the resource it made (not
			// found, it is not sent again: the service said it made it).
			noID = append(noID, op)
		case r.Status == 0 || r.Status >= 500 || r.Status == http.StatusTooManyRequests:
			unsure, unsureErr = append(unsure, op), r.Err
		case r.Status == http.StatusConflict && op.ep.Adopt:
			// The resource exists (another writer, an earlier create):
			// the single path adopts it, as for a 409 to a POST.
			b.single(ctx, op)
		case r.Status == http.StatusPreconditionFailed && len(op.deps) > 0:
			// An operation it referred to failed: a later pass resolves
			// the reference anew (and reports it if it stays missing).
			b.later(op, r.Err)
		default:
			b.fail(op, fmt.Errorf("create at %s: %w", op.ep.Path, bodyPasswordRefused(r.Err, http.MethodPost, op.body, op.ep.Path)))
		}
	}
	for _, op := range append(unsure, noID...) {
		b.wrote(op, "")
	}
	if len(noID) > 0 {
		b.settle(ctx, noID, attempt, errors.New("the service answered the create without the new resource's location"), false)
	}
	if len(unsure) > 0 {
		b.settle(ctx, unsure, attempt, unsureErr, true)
	}
}

// requestFailed handles a BulkRequest that got no BulkResponse.
func (b *bulkSender) requestFailed(ctx context.Context, ops []*bulkOp, attempt int, err error) {
	var se *scim.Error
	isErr := errors.As(err, &se)
	switch {
	case ctx.Err() != nil:
		for _, op := range ops {
			b.fail(op, err)
		}
	case isErr && (se.Status == http.StatusNotFound || se.Status == http.StatusMethodNotAllowed || se.Status == http.StatusNotImplemented):
		// No Bulk at this service, whatever it advertised: single
		// requests from now on (nothing was carried out).
		if !b.off.Swap(true) {
			b.d.log().Warn("resync: the SCIM service refused POST /Bulk; sending one request per resource from now on (scim { bulk = \"off\" } says so at once)",
				"status", se.Status)
		}
		for _, op := range ops {
			b.single(ctx, op)
		}
	case isErr && se.Status == http.StatusRequestEntityTooLarge && len(ops) > 1:
		// The service takes less than it advertised (or than the script
		// said): halves, each on its own.
		b.d.log().Warn("resync: the SCIM service refused a Bulk request as too large; sending smaller ones (set scim { bulkMaxPayload } or bulkMaxOperations lower)",
			"operations", len(ops))
		b.send(ctx, ops[:len(ops)/2], attempt)
		b.send(ctx, ops[len(ops)/2:], attempt)
	case isErr && se.Status >= 400 && se.Status < 500 && se.Status != http.StatusTooManyRequests:
		// Refused whole (401, 403, 400, a lone op too large): nothing was
		// carried out, and each create and update fails for that reason.
		for _, op := range ops {
			b.fail(op, op.failed(err))
		}
	case isErr && se.Status == http.StatusTooManyRequests:
		// Refused before any work, after the client's own resends: try
		// again, without the lookups an unknown outcome needs.
		b.again(ctx, ops, attempt, err)
	default:
		// No answer, a 5xx, or an answer that is not a BulkResponse: the
		// service may have created any of them. Each is looked up (a
		// listing of the endpoint no longer answers "none" for it: the
		// lookup asks the service). Those not found are sent again only
		// when the service itself answered (500, 503): it has finished
		// with the request. After a timeout, a dropped connection or a
		// gateway's 502 or 504 it may still be working through the
		// request's operations (one after the other, for seconds), and a
		// create sent again could make a second resource: those fail, to
		// be looked up again by the next resync, as a single create's
		// unknown outcome does.
		serviceAnswered := isErr && se.Status >= 500 && se.Status != http.StatusBadGateway && se.Status != http.StatusGatewayTimeout
		ups, _ := takeUpdates(&ops, nil)
		for _, op := range ops {
			b.wrote(op, "")
		}
		b.settle(ctx, ops, attempt, err, serviceAnswered)
		b.unknownUpdates(ctx, ups, err, serviceAnswered)
	}
}

// settle looks up each op whose create may or may not have happened:
// found, it is adopted (as a single create's unknown outcome is); not
// found, it is sent again when resend is set, and fails otherwise.
func (b *bulkSender) settle(ctx context.Context, ops []*bulkOp, attempt int, cause error, resend bool) {
	var again []*bulkOp
	for _, op := range ops {
		id, cur, err := b.d.FindAny(ctx, op.ep, op.filters)
		switch {
		case err != nil:
			b.fail(op, fmt.Errorf("create at %s (it may have been carried out; it is looked up before being sent again): %w (and looking it up failed: %v)", op.ep.Path, cause, err))
		case cur != nil:
			b.adopt(ctx, op, id, cur)
		case resend:
			again = append(again, op)
		default:
			b.fail(op, fmt.Errorf("create at %s (it may have been carried out; it is looked up before being sent again): %w", op.ep.Path, cause))
		}
	}
	b.again(ctx, again, attempt, cause)
}

// again sends ops once more, after the client's backoff, within the
// client's attempt limit; references to ops that meanwhile got an id are
// rewritten to it, and ops whose referenced op is neither created nor
// resent wait for a later pass.
func (b *bulkSender) again(ctx context.Context, ops []*bulkOp, attempt int, cause error) {
	if len(ops) == 0 {
		return
	}
	if attempt >= b.d.Client.MaxAttempts() {
		for _, op := range ops {
			b.fail(op, op.unsent(cause))
		}
		return
	}
	resent := map[string]bool{}
	for _, op := range ops {
		resent[op.bulkID] = true
	}
	var keep []*bulkOp
	for _, op := range ops {
		if b.rebase(op, resent) {
			keep = append(keep, op)
		}
	}
	if err := b.d.Client.Backoff(ctx, attempt, cause); err != nil {
		for _, op := range keep {
			b.fail(op, op.unsent(cause))
		}
		return
	}
	if len(keep) > 0 {
		b.send(ctx, keep, attempt+1)
	}
}

// rebase rewrites op's bulkId references to ops that now have an id, and
// reports false (op put back for a later pass) when one refers to an op
// that is neither created nor sent along.
func (b *bulkSender) rebase(op *bulkOp, resent map[string]bool) bool {
	var deps []bulkDep
	for _, dep := range op.deps {
		b.createdMu.Lock()
		id, ok := b.created[dep.id]
		b.createdMu.Unlock()
		switch {
		case ok:
			op.body = bytes.ReplaceAll(op.body, []byte(strconvQuote("bulkId:"+dep.id)), []byte(strconvQuote(id)))
		case resent[dep.id]:
			deps = append(deps, dep)
		default:
			b.later(op, &notYetError{dn: dep.dn})
			return false
		}
	}
	op.deps = deps
	return true
}

// created1 reports op created as resource id.
func (b *bulkSender) created1(op *bulkOp, id string) {
	b.createdMu.Lock()
	b.created[op.bulkID] = id
	b.createdMu.Unlock()
	b.wrote(op, id)
	b.wroteBulk(op, id, op.body)
	b.done(op, Applied{Outcome: Created, Endpoint: op.ep, ID: id, Attributes: bodyAttributes(op.body)})
}

// wrote tells the destination's listing of op's endpoint, if it keeps
// one, that op made resource id — or, with id "", that it may have made
// one (Destination.AfterApply for a single request).
func (b *bulkSender) wrote(op *bulkOp, id string) {
	if b.d.DryRun != nil || b.d.Listings == nil {
		return
	}
	l := b.d.Listings[op.ep.Name]
	if !l.Listed() {
		return
	}
	l.wrote(id, b.withIDs(op.body, op.deps), op.filter)
}

// withIDs is body with its bulkId references to deps that have made their
// resource replaced by that resource's id.
func (b *bulkSender) withIDs(body []byte, deps []bulkDep) []byte {
	b.createdMu.Lock()
	defer b.createdMu.Unlock()
	for _, dep := range deps {
		if depID, ok := b.created[dep.id]; ok {
			body = bytes.ReplaceAll(body, []byte(strconvQuote("bulkId:"+dep.id)), []byte(strconvQuote(depID)))
		}
	}
	return body
}

// adopt takes the resource an unanswered create made (or another writer
// did) and makes it match, as Destination.Apply does after an unknown
// outcome.
func (b *bulkSender) adopt(ctx context.Context, op *bulkOp, id string, cur []byte) {
	b.createdMu.Lock()
	b.created[op.bulkID] = id
	b.createdMu.Unlock()
	res, err := b.eval(op)
	if err != nil {
		b.fail(op, err)
		return
	}
	a, err := b.d.ApplyFound(ctx, res, id, cur, b.opts.Refs)
	b.d.AfterApply(res, a, err, b.opts.Refs)
	a.Adopted = true
	if err != nil {
		b.fail(op, err)
		return
	}
	b.done(op, a)
}

// single applies op's entry by the single-request path: nothing of op was
// carried out (the service refused POST /Bulk, or a create met a 409).
func (b *bulkSender) single(ctx context.Context, op *bulkOp) {
	if op.update() {
		b.singleUpdate(ctx, op, false)
		return
	}
	res, err := b.eval(op)
	if err != nil {
		b.fail(op, err)
		return
	}
	a, err := b.d.Apply(ctx, res, "", b.opts.Refs)
	if b.applied(op, res, a, err) {
		b.done(op, a)
	}
}

// applied ends a single-request apply of op's entry: the listing is told
// and the requests counted; a reference not in SCIM yet puts op back for a
// later pass, another error fails it. It reports whether op was applied
// (the caller then reports it done).
func (b *bulkSender) applied(op *bulkOp, res *lang.Result, a Applied, err error) bool {
	b.d.AfterApply(res, a, err, b.opts.Refs)
	b.st.Requests.Add(int64(a.Requests))
	switch {
	case err == nil:
		return true
	case IsNotYet(err):
		b.later(op, err)
	default:
		b.fail(op, err)
	}
	return false
}

// eval maps op's entry again, for the paths that need the whole result
// (the worker's evaluator has moved on).
func (b *bulkSender) eval(op *bulkOp) (*lang.Result, error) {
	ev := b.p.NewEvaluator()
	ev.Exclude(b.opts.Exclude...)
	return ev.Eval(&lang.Change{Type: lang.Add, DN: op.e.DN, Entry: op.e}, lang.Resync)
}

func (b *bulkSender) done(op *bulkOp, a Applied) {
	b.st.applied(b.opts, op.e, op.class, a)
}

func (b *bulkSender) fail(op *bulkOp, err error) {
	b.st.fail(b.opts, op.e.DN, err)
}

// later puts op's entry back for a later pass; on the last pass it fails
// with err.
func (b *bulkSender) later(op *bulkOp, err error) {
	if b.retry(op.e.DN) {
		b.st.Done.Add(-1)
		return
	}
	b.fail(op, err)
}

package engine

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/lang"
)

// Updates in a Bulk resync (issue 15 #5).
//
// An entry whose resource exists and differs is updated by the PATCH bodies
// Destination.update would send (Patch, against the resource as looked up).
// When that is one body, in the filter form, with no password write and in
// PATCH mode, the body goes into the open BulkRequest as a PATCH operation
// beside the creates, within maxOperations and maxPayloadSize. Everything
// else goes through ApplyFound as before: several bodies (more operations
// than maxPatchOps), update = "put", a password write, the replace form
// (patchFilters = "replace", or learned from a refusal), an entry where
// nothing differs, an operation larger than maxPayloadSize alone. A batch
// that would carry one PATCH and nothing else is sent as that PATCH alone:
// a BulkRequest of one operation costs the same round trip, and the single
// path keeps more (the patchFilters fallback, the shadow from the answer).
// A dry run shows the PATCHes inside the BulkRequest a real run would send,
// secrets withheld as in the creates.
//
// Each operation's outcome is handled on its own:
//
//   - a 2xx (whose location, when given, names the resource patched) is the
//     update done: counted Updated, reported to Applied and the resolver as
//     the single path reports it;
//   - any other status, or none (the service answered the request but not
//     the operation), sends the entry the single-request way once, reading
//     the resource again (by id; a 404 then looks it up by the lookup
//     filter and creates it when it is not there) and diffing anew: a 400,
//     409 or 412 often means the resource changed since it was looked up,
//     a 404 that it is gone, a 5xx that the operation may or may not have
//     been carried out. Only when that fails too does the entry fail, with
//     the single path's error. A 405 or 501 (the service does not take
//     PATCH in a BulkRequest) also sends later updates alone.
//
// A BulkRequest with no BulkResponse is handled as for its creates: 429 is
// sent again, 404/405/501 to /Bulk sends each update alone (nothing was
// carried out), another 4xx fails each update with the refusal. After the
// service's own 500 or 503 (it has finished with the request) each update
// is read again and diffed anew, never sent blind: the PATCHes this engine
// makes are mostly idempotent (replace, a value-filtered remove), but an
// "add" of an element to a multi-valued attribute sent twice may add it
// twice at a service that does not merge equal values, and a value-filtered
// remove sent after the first one took effect may be refused (noTarget).
// A re-read sends only what is still missing. After no answer, a gateway's
// 502 or 504, or an answer that is not a BulkResponse, the service may still
// be working through the request: a re-read could race with it, so each
// update fails as "may have been carried out", and the next resync reads
// it again (as the creates of the same request are not sent again).
//
// Shadows (shadow.go): a PATCH sent in a BulkRequest does not go through
// Destination.write, so its resource's shadow is held by a session opened
// before the request is sent and ended with the operation's outcome
// (bulkshadow.go): the shadow is dropped, and a lost answer marks the
// resource in doubt for the quiet time, as write does for a 204. (A
// BulkResponse carries no resource for a PATCH at the services tried, so
// there is nothing to record from.) The listing, if kept, is told before the
// request is sent that the resource is the service's to say, so that a
// re-read goes to the service.

// updateOp returns the Bulk operation that updates the resource id (as
// current) to res, or nil when the update goes the single-request way.
func (b *bulkSender) updateOp(e *lang.Entry, res *lang.Result, id string, current []byte) *bulkOp {
	d := b.d
	if d.SkipUpdates || b.noPatch.Load() || d.Pipe != nil && d.Pipe.Update == "put" ||
		d.PatchForm() != PatchFormFilter || hasPasswordChange(res) {
		return nil
	}
	ep := res.Endpoint
	// As Destination.updateIn: the resource, then what it manages.
	desired, err := res.Resource(lang.Update, b.opts.Refs)
	if err != nil {
		return nil // ApplyFound meets the same error
	}
	managed := res.Managed(lang.Update)
	bodies, err := d.Patch(current, desired, managed, ep)
	if err != nil || len(bodies) != 1 {
		return nil
	}
	op := &bulkOp{e: e, class: className(res), ep: ep, body: bodies[0], filter: res.Filter,
		id: id, current: bytes.Clone(current), desired: bytes.Clone(desired), secrets: res.Secrets(), managed: managed}
	op.attrs, op.patchOps = patchSummary(bodies)
	if !b.plan.Limits.FitsAlone(op.operation()) {
		return nil
	}
	return op
}

// resourcePath is the path of resource id at endpointPath, as
// Destination.write makes it.
func resourcePath(endpointPath, id string) string {
	return strings.TrimRight(endpointPath, "/") + "/" + url.PathEscape(id)
}

// updated is what op's update did when the service carried it out.
func (op *bulkOp) updated() Applied {
	return Applied{Outcome: Updated, Endpoint: op.ep, ID: op.id, Attributes: op.attrs, PatchOps: op.patchOps}
}

// failed is a refusal of op as the single-request path words it.
func (op *bulkOp) failed(err error) error {
	if op.update() {
		return fmt.Errorf("patch %s/%s: %w", op.ep.Path, op.id, err)
	}
	return fmt.Errorf("create at %s: %w", op.ep.Path, err)
}

// unsent is op failing after the BulkRequest it went in was tried as often
// as the client tries a request.
func (op *bulkOp) unsent(cause error) error {
	if op.update() {
		return fmt.Errorf("patch %s/%s: %w", op.ep.Path, op.id, cause)
	}
	return fmt.Errorf("create at %s (it may have been carried out; it is looked up before being sent again): %w", op.ep.Path, cause)
}

// updateResult is the outcome of update op in a BulkResponse: nil when the
// service carried it out. A success whose location names another resource
// than the one patched is not taken for this operation's (the answer was
// matched by position: a PATCH carries no bulkId).
func updateResult(op *bulkOp, r scim.BulkResult) error {
	if !op.update() || r.Err != nil {
		return r.Err
	}
	if r.ID != "" && r.ID != op.id {
		// r.ID: the answer's resource id, else its location's last segment.
		return fmt.Errorf("scim: PATCH %s/%s in POST /Bulk: the answer names another resource, %q", op.ep.Path, op.id, r.ID)
	}
	return nil
}

// takeUpdates moves the updates out of *ops (and their results out of
// *results, when given), keeping the order of both.
func takeUpdates(ops *[]*bulkOp, results *[]scim.BulkResult) (ups []*bulkOp, upResults []scim.BulkResult) {
	var keep []*bulkOp
	var keepResults []scim.BulkResult
	for i, op := range *ops {
		if op.update() {
			ups = append(ups, op)
			if results != nil {
				upResults = append(upResults, (*results)[i])
			}
			continue
		}
		keep = append(keep, op)
		if results != nil {
			keepResults = append(keepResults, (*results)[i])
		}
	}
	*ops = keep
	if results != nil {
		*results = keepResults
	}
	return ups, upResults
}

// settleUpdates handles each update's outcome in an answered BulkRequest.
func (b *bulkSender) settleUpdates(ctx context.Context, ops []*bulkOp, results []scim.BulkResult) {
	for i, op := range ops {
		err := updateResult(op, results[i])
		if err == nil {
			b.wroteBulk(op, op.id, op.desired)
			b.done(op, op.updated())
			continue
		}
		if st := results[i].Status; st == http.StatusMethodNotAllowed || st == http.StatusNotImplemented {
			// Not carried out: the service does not take PATCH here.
			if !b.noPatch.Swap(true) {
				b.d.log().Warn("resync: the SCIM service refused a PATCH in a Bulk request; sending updates one request each from now on",
					"status", st)
			}
			b.singleUpdate(ctx, op, false)
			continue
		}
		b.singleUpdate(ctx, op, true)
	}
}

// unknownUpdates handles the updates of a BulkRequest that got no
// BulkResponse and may have been carried out: read again and diffed anew
// when the service answered (serviceAnswered: it has finished with the
// request), failed otherwise.
func (b *bulkSender) unknownUpdates(ctx context.Context, ops []*bulkOp, cause error, serviceAnswered bool) {
	for _, op := range ops {
		if serviceAnswered {
			b.singleUpdate(ctx, op, true)
			continue
		}
		b.fail(op, fmt.Errorf("patch %s/%s (it may have been carried out; the next resync reads it again): %w", op.ep.Path, op.id, cause))
	}
}

// singleUpdate applies op's entry by the single-request path. Unless
// reread, nothing of op was carried out and the resource is as looked up:
// ApplyFound diffs against it. With reread, the resource is read again
// (Apply with its id), and an entry that matches once read, after a
// request that may have done the update, counts as updated.
func (b *bulkSender) singleUpdate(ctx context.Context, op *bulkOp, reread bool) {
	res, err := b.eval(op)
	if err != nil {
		b.fail(op, err)
		return
	}
	var a Applied
	if reread {
		a, err = b.d.Apply(ctx, res, op.id, b.opts.Refs)
	} else {
		a, err = b.d.ApplyFound(ctx, res, op.id, op.current, b.opts.Refs)
	}
	if !b.applied(op, res, a, err) {
		return
	}
	if reread && a.Outcome == Unchanged && a.ID == op.id {
		a = op.updated()
	}
	b.done(op, a)
}

// beginUpdates prepares the updates among ops for the BulkRequest about to
// be sent: the listing of each one's endpoint learns that the resource is
// written (Destination.AfterApply for a single update), and a shadow
// session is opened on it. It returns the sessions by op index (nil where
// none).
func (b *bulkSender) beginUpdates(ops []*bulkOp) []*shadowSession {
	var out []*shadowSession
	for i, op := range ops {
		if !op.update() {
			continue
		}
		if b.d.DryRun == nil && b.d.Listings != nil {
			if l := b.d.Listings[op.ep.Name]; l.Listed() {
				l.wrote(op.id, op.desired, op.filter)
			}
		}
		if s := b.d.bulkShadowBegin(op.ep.Path, op.id); s != nil {
			if out == nil {
				out = make([]*shadowSession, len(ops))
			}
			out[i] = s
		}
	}
	return out
}

// endShadows ends each session with its operation's outcome.
func endShadows(sessions []*shadowSession, outcome func(i int) error) {
	for i, s := range sessions {
		if s != nil {
			s.endBulk(outcome(i))
		}
	}
}

package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/lang"
)

// Outcome is what applying one change did.
type Outcome string

// The outcomes.
const (
	Created     Outcome = "created"
	Updated     Outcome = "updated"
	Unchanged   Outcome = "unchanged" // the resource already matched: no request sent
	Deleted     Outcome = "deleted"
	Deactivated Outcome = "deactivated"
	Absent      Outcome = "absent" // a delete found nothing to delete
	OutOfScope  Outcome = "out of scope"
	Skipped     Outcome = "skipped" // --creates-only or --updates-only left it alone
)

// Applied reports one applied change.
type Applied struct {
	Outcome  Outcome
	Endpoint *lang.Endpoint
	ID       string // the SCIM id of the resource, when there is one
	Adopted  bool   // a create met 409 and updated the existing resource instead
	Requests int    // write requests sent (POST, PATCH, PUT, DELETE)
	// Attributes are the names of the attributes a create set or an update
	// changed, and PatchOps the PATCH operations sent: for the sync log.
	Attributes []string
	PatchOps   int
}

// Destination applies mapped changes to one SCIM service.
type Destination struct {
	Client *scim.Client
	Pipe   *lang.Pipe
	// MaxOpsPerRequest bounds the operations of one PATCH (default: the
	// script's maxPatchOps, else scim.DefaultMaxOpsPerRequest); larger
	// changes go in several requests.
	MaxOpsPerRequest int
	// Limiter, when set, is waited on before every request (lookups too).
	Limiter interface {
		Wait(ctx context.Context) error
	}
	// DryRun, when set, receives every write request (POST, PATCH, PUT,
	// DELETE) instead of the service; lookups still go to the service.
	DryRun func(method, path string, body []byte)
	// Offline makes every lookup find nothing, with no request: a dry run
	// without a reachable service shows every entry as a create.
	Offline bool
	// SkipCreates and SkipUpdates leave resources that would be created
	// (or updated) alone: resync --updates-only and --creates-only.
	SkipCreates, SkipUpdates bool
	// CreateGrace is how long after an unconfirmed create no second one is
	// sent, and how long a write in doubt waits (doubt.go); default three
	// times the script's SCIM timeout (DefaultCreateGrace with the default
	// timeout).
	CreateGrace time.Duration
	// Log receives what the destination learns about its service (a PATCH
	// form it refuses); default slog.Default().
	Log *slog.Logger
	// Shadows, when set, keeps the shadow of each resource this destination
	// writes in step with what it wrote, or drops it (shadow.go); changes
	// whose Known.Shadow is set PATCH from it without reading the resource.
	Shadows *Shadows
	// doubt holds the resources whose writes are in doubt (doubt.go).
	doubt *doubts
	// Listings, by endpoint name, answer lookups without a request where
	// they can (Listing, AfterApply); nil: every lookup asks the service.
	Listings map[string]*Listing
}

func (d *Destination) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.Default()
}

// dryRunID is the id a dry-run create reports.
const dryRunID = "(dry run)"

// write sends a write request, or hands it to DryRun.
func (d *Destination) write(ctx context.Context, method, endpoint, id string, body []byte) ([]byte, error) {
	path := strings.TrimRight(endpoint, "/")
	if id != "" {
		path += "/" + url.PathEscape(id)
	}
	if d.DryRun != nil {
		d.DryRun(method, path, withheld(ctx, body))
		if method == http.MethodPost {
			return []byte(`{"id":"` + dryRunID + `"}`), nil
		}
		return nil, nil
	}
	if method == http.MethodPatch || method == http.MethodPut {
		// A write of a resource in doubt waits, then has the change read
		// it again (doubt.go).
		if waited, err := d.settle(ctx, endpoint, id); waited || err != nil {
			if err != nil {
				return nil, err
			}
			return nil, ErrInDoubt
		}
	}
	if err := d.wait(ctx); err != nil {
		return nil, err
	}
	// Every write keeps the resource's shadow right or drops it (shadow.go).
	sess, own := d.shadowFor(ctx, endpoint, id)
	if sess != nil && sess.refused != nil {
		if own {
			sess.end()
		}
		return nil, errShadowRefused
	}
	d.sending()
	answer, err := d.send(ctx, method, endpoint, id, body)
	if err != nil {
		d.noteDoubt(method, endpoint, id, err)
	}
	if sess != nil {
		sess.note(answer, err)
		if own {
			sess.end()
		}
	}
	return answer, err
}

// send sends one write request.
func (d *Destination) send(ctx context.Context, method, endpoint, id string, body []byte) ([]byte, error) {
	switch method {
	case http.MethodPost:
		return d.Client.Create(ctx, endpoint, body)
	case http.MethodPatch:
		return d.Client.Patch(ctx, endpoint, id, body)
	case http.MethodPut:
		return d.Client.Put(ctx, endpoint, id, body)
	case http.MethodDelete:
		return nil, d.Client.Delete(ctx, endpoint, id)
	}
	return nil, fmt.Errorf("unknown method %s", method)
}

func (d *Destination) wait(ctx context.Context) error {
	if d.Limiter == nil {
		return nil
	}
	return d.Limiter.Wait(ctx)
}

// MultipleMatchError is a lookup filter that found more than one resource:
// the change fails rather than pick one.
type MultipleMatchError struct {
	Endpoint string
	Filter   string
	IDs      []string
	Total    int
}

func (e *MultipleMatchError) Error() string {
	return fmt.Sprintf("lookup %s?filter=%s found %d resources (%s): the filter must identify one resource",
		e.Endpoint, e.Filter, e.Total, strings.Join(e.IDs, ", "))
}

// Apply applies the result of one change. knownID is the SCIM id the
// caller remembers for the entry ("" if none): it is tried first, and the
// lookup filter only when it is gone. refs resolves ref(…) targets.
func (d *Destination) Apply(ctx context.Context, res *lang.Result, knownID string, refs lang.Resolver) (Applied, error) {
	return d.ApplyKnown(ctx, res, Known{ID: knownID}, refs)
}

// Known is what the caller remembers of an entry's resource.
type Known struct {
	ID string // the SCIM id, "" if none
	// Filters find a resource whose create was sent but not confirmed (a
	// timeout, a 5xx, a kill -9 with the POST in flight): it may exist.
	Filters []string
	// CreateSent is when that create was sent. Until CreateGrace has
	// passed, a create is not sent again even when the filters find
	// nothing: the first may still be on its way (ErrCreatePending).
	CreateSent time.Time
	// BeforeCreate, when set, is called before a create is sent, with the
	// filters that would find the new resource; an error stops the create.
	// The engine records them durably (the id map), so that a crash or an
	// unanswered POST is followed by a lookup, never a blind second create.
	BeforeCreate func(filters []string) error
	// CreateRefused, when set, is called when the service answered a create
	// with a refusal (a 4xx), or with a 500 or 503 after which a lookup
	// finds nothing: no create is on its way, so the record BeforeCreate
	// made must not hold the next attempt back.
	CreateRefused func() error
	// Shadow lets an update of the resource ID diff against its shadow
	// instead of reading it first (run; see shadow.go), when the
	// destination keeps shadows and one can be trusted.
	Shadow bool
	// Alive reports whether a resource id is one the caller knows exists
	// (its id map): a shadow that refers to another is not used.
	Alive func(id string) bool
}

// ErrCreatePending is a create whose outcome is unknown and too recent to
// send again: trying again later is the cure (a temporary failure).
var ErrCreatePending = errors.New("an earlier create of this resource was sent and not confirmed; waiting before sending it again")

// DefaultCreateGrace is how long after an unconfirmed create no second one
// is sent with the SCIM client's default per-request timeout: three times
// that timeout (a script's own timeout changes it: writeQuiet).
const DefaultCreateGrace = 3 * scim.DefaultTimeout

// shownSecrets is the context key of the secret values a dry run must
// not show (withheld).
type shownSecrets struct{}

// withheld is body as a dry run shows it: every secret value of the change
// it was built from (password attributes, password mappings, wherever they
// were mapped to) replaced by secret.Withheld. Only display uses it.
func withheld(ctx context.Context, body []byte) []byte {
	vals, _ := ctx.Value(shownSecrets{}).([]string)
	if len(vals) == 0 || len(body) == 0 {
		return body
	}
	return scim.Withhold(body, secret.NewScrubber(secret.Withheld, vals...))
}

// ApplyKnown is Apply with what the caller knows of the resource.
func (d *Destination) ApplyKnown(ctx context.Context, res *lang.Result, known Known, refs lang.Resolver) (Applied, error) {
	if d.DryRun != nil {
		if vals := res.Secrets(); len(vals) > 0 {
			ctx = context.WithValue(ctx, shownSecrets{}, vals)
		}
	}
	if res.OutOfScope {
		return Applied{Outcome: OutOfScope}, nil
	}
	ep := res.Endpoint
	out := Applied{Endpoint: ep}
	if known.ID != "" {
		// An earlier write of the resource may still land: read it after.
		if _, err := d.settle(ctx, ep.Path, known.ID); err != nil {
			return out, err
		}
	}
	if known.Shadow && known.ID != "" && res.Change.Type != lang.Delete && !d.SkipUpdates && d.shadowsReadable() {
		a, done, gone, err := d.updateFromShadow(ctx, res, known, refs)
		if done {
			return a, err
		}
		out.Requests = a.Requests // a refused PATCH: read and diffed again below
		if gone {
			known.ID = "" // 404: looked up by the lookup filter, created if not there
		}
	}
	id, current, err := d.find(ctx, ep, res.Filter, known.ID)
	if err == nil && current == nil && len(known.Filters) > 0 {
		id, current, err = d.FindAny(ctx, ep, known.Filters)
		if current != nil {
			out.Adopted = true
		}
	}
	if err != nil {
		return out, err
	}
	out.ID = id
	if res.Change.Type == lang.Delete {
		return d.delete(ctx, res, out, current)
	}
	if current == nil && d.SkipCreates || current != nil && d.SkipUpdates {
		out.Outcome = Skipped
		return out, nil
	}
	if current == nil {
		if !known.CreateSent.IsZero() && time.Since(known.CreateSent) < d.createGrace() {
			return out, fmt.Errorf("create at %s: %w", ep.Path, ErrCreatePending)
		}
		body, err := res.Resource(lang.Create, refs)
		if err != nil {
			return out, err
		}
		body, rest := d.capMembers(body)
		filters := d.identifying(ep, res.Filter, body)
		if known.BeforeCreate != nil {
			if err := known.BeforeCreate(filters); err != nil {
				return out, err
			}
		}
		sent := time.Now()
		created, err := d.write(ctx, http.MethodPost, ep.Path, "", body)
		out.Requests++
		if err == nil {
			out.Outcome, out.ID = Created, gjson.GetBytes(created, "id").String()
			out.Attributes = bodyAttributes(body)
			if d.DryRun != nil && out.ID == dryRunID {
				return out, nil
			}
			// The answer is the new resource's first shadow.
			sess := d.shadowBegin(ep.Path, out.ID, sent)
			defer sess.end()
			if sess != nil {
				sess.note(created, nil)
			}
			if rest == 0 {
				if sess != nil { // (no body to read again without one)
					m := res.Managed(lang.Create)
					d.keepShadow(sess, res, scim.NewDesired(body, m), m)
				}
				return out, nil
			}
			// The members beyond the cap, added by PATCH within it.
			out, err = d.updateIn(sess.within(ctx), res, out, created, refs, sess)
			out.Outcome = Created
			return out, err
		}
		if scim.IsUncertain(err) {
			// The service may have created it: adopt what is there rather
			// than create a second one.
			id, cur, ferr := d.FindAny(ctx, ep, filters)
			if ferr == nil && cur != nil {
				out.ID, out.Adopted = id, true
				return d.update(ctx, res, out, cur, refs)
			}
			var se *scim.Error
			if ferr == nil && known.CreateRefused != nil && errors.As(err, &se) &&
				se.Status != http.StatusBadGateway && se.Status != http.StatusGatewayTimeout {
				// The service itself answered (500, 503) and the resource is
				// not there: nothing is on its way, so the next try need not
				// wait out the grace of an unanswered create. (A 502 or 504
				// comes from a gateway: the service may still be at it.)
				if cerr := known.CreateRefused(); cerr != nil {
					return out, cerr
				}
			}
			return out, fmt.Errorf("create at %s (it may have been carried out; it is looked up before being sent again): %w", ep.Path, err)
		}
		if !ep.Adopt || !scim.IsStatus(err, http.StatusConflict) {
			var se *scim.Error
			if known.CreateRefused != nil && errors.As(err, &se) && se.Status >= 400 && se.Status < 500 && !se.Temporary() {
				if cerr := known.CreateRefused(); cerr != nil {
					return out, cerr
				}
			}
			return out, fmt.Errorf("create at %s: %w", ep.Path, bodyPasswordRefused(err, http.MethodPost, body, ep.Path))
		}
		// The resource exists but the lookup did not find it (another
		// writer, or a POST whose answer was lost): find it by the unique
		// attributes the create carried, and adopt it.
		id, current, ferr := d.findUnique(ctx, ep, body)
		if ferr != nil || current == nil {
			return out, fmt.Errorf("create at %s: %w (and no resource with its unique attributes was found to adopt: %v)", ep.Path, err, ferr)
		}
		out.ID, out.Adopted = id, true
		return d.update(ctx, res, out, current, refs)
	}
	return d.update(ctx, res, out, current, refs)
}

// errShadowShort is a shadow that lacks an attribute the update manages.
var errShadowShort = errors.New("the shadow does not hold every managed attribute")

// updateFromShadow updates the resource known.ID by diffing against its
// shadow, without reading it (shadow.go). done is false when there was no
// shadow to trust, or the service refused a PATCH built from it (then the
// returned Applied counts the requests sent, and gone says it was a 404):
// the change goes the GET-first way.
func (d *Destination) updateFromShadow(ctx context.Context, res *lang.Result, known Known, refs lang.Resolver) (a Applied, done, gone bool, err error) {
	ep := res.Endpoint
	sess := d.shadowBegin(ep.Path, known.ID, time.Now())
	defer sess.end()
	rec := sess.read(ep, known.Alive)
	if rec == nil {
		return Applied{}, false, false, nil
	}
	a, err = d.updateIn(sess.within(ctx), res, Applied{Endpoint: ep, ID: known.ID}, rec.Body, refs, sess)
	if errors.Is(err, errShadowShort) {
		return Applied{}, false, false, nil
	}
	if sess.refused != nil {
		d.log().Debug("scim: " + shadowRefusal(ep, known.ID, sess.refused))
		return a, false, scim.IsStatus(sess.refused, http.StatusNotFound), nil
	}
	return a, true, false, err
}

// find returns the existing resource: by knownID, then by filter. A nil
// current means there is none.
func (d *Destination) find(ctx context.Context, ep *lang.Endpoint, filter, knownID string) (id string, current []byte, err error) {
	if d.Offline {
		return "", nil, nil
	}
	if l := d.Listings[ep.Name]; l != nil {
		r := l.lookup(filter, knownID)
		if r.done {
			return r.id, r.current, r.err
		}
		if r.gone {
			knownID = ""
		}
	}
	if knownID != "" {
		if err := d.wait(ctx); err != nil {
			return "", nil, err
		}
		body, err := d.Client.Get(ctx, strings.TrimRight(ep.Path, "/")+"/"+url.PathEscape(knownID))
		switch {
		case err == nil:
			return knownID, body, nil
		case !scim.IsStatus(err, http.StatusNotFound):
			return "", nil, fmt.Errorf("get %s/%s: %w", ep.Path, knownID, err)
		}
	}
	if filter == "" {
		return "", nil, nil
	}
	if err := d.wait(ctx); err != nil {
		return "", nil, err
	}
	found, total, err := d.Client.Search(ctx, ep.Path, filter, d.Pipe.Query == "post")
	if err != nil {
		return "", nil, fmt.Errorf("lookup %s: %w", ep.Path, err)
	}
	switch {
	case len(found) == 0 && total == 0:
		return "", nil, nil
	case len(found) == 1 && total <= 1:
		id := gjson.GetBytes(found[0], "id").String()
		if id == "" {
			return "", nil, fmt.Errorf("lookup %s?filter=%s: the resource found has no id", ep.Path, filter)
		}
		return id, found[0], nil
	}
	e := &MultipleMatchError{Endpoint: ep.Path, Filter: filter, Total: max(total, len(found))}
	for _, r := range found {
		e.IDs = append(e.IDs, gjson.GetBytes(r, "id").String())
	}
	return "", nil, e
}

// FindAny returns the one resource the first of filters that finds one
// finds; nil current when none does.
func (d *Destination) FindAny(ctx context.Context, ep *lang.Endpoint, filters []string) (string, []byte, error) {
	for _, f := range filters {
		id, current, err := d.find(ctx, ep, f, "")
		if err != nil || current != nil {
			return id, current, err
		}
	}
	return "", nil, nil
}

// identifying returns the filters that find the resource body creates:
// the endpoint's lookup, externalId when the body sets it, and the
// attributes the core schema declares unique (userName), or displayName
// where none is (Groups). They are what an unconfirmed create is looked up
// by before it is sent again.
func (d *Destination) identifying(ep *lang.Endpoint, lookup string, body []byte) []string {
	var out []string
	add := func(f string) {
		for _, g := range out {
			if g == f {
				return
			}
		}
		out = append(out, f)
	}
	if lookup != "" {
		add(lookup)
	}
	if v := gjson.GetBytes(body, "externalId"); v.Type == gjson.String && v.Str != "" {
		add("externalId eq " + scim.Quote(v.Str))
	}
	for _, n := range uniqueNames(ep) {
		if v := gjson.GetBytes(body, scim.EscapeKey(n)); v.Type == gjson.String && v.Str != "" {
			add(n + " eq " + scim.Quote(v.Str))
		}
	}
	return out
}

// uniqueNames are the attributes of the endpoint's core schema that are
// unique at the service, or displayName where none is.
func uniqueNames(ep *lang.Endpoint) []string {
	var names []string
	if core := ep.CoreSchema(); core != nil {
		for _, a := range core.Attributes {
			if a.Uniqueness == "server" || a.Uniqueness == "global" {
				names = append(names, a.Name)
			}
		}
	}
	if len(names) == 0 {
		names = []string{"displayName"}
	}
	return names
}

// capMembers cuts a create body's members to the per-request cap
// (maxPatchOps): services such as AWS IAM Identity Center refuse more
// members in one request. It returns the body to POST and how many members
// were left out; update adds them afterwards by PATCH, within the cap.
func (d *Destination) capMembers(body []byte) ([]byte, int) {
	limit := d.maxOps()
	if limit <= 0 {
		limit = scim.DefaultMaxOpsPerRequest
	}
	members := gjson.GetBytes(body, "members")
	if !members.IsArray() {
		return body, 0
	}
	all := members.Array()
	if len(all) <= limit {
		return body, 0
	}
	raw := make([]byte, 0, len(members.Raw))
	raw = append(raw, '[')
	for i, m := range all[:limit] {
		if i > 0 {
			raw = append(raw, ',')
		}
		raw = append(raw, m.Raw...)
	}
	raw = append(raw, ']')
	out, err := sjson.SetRawBytes(append([]byte(nil), body...), "members", raw)
	if err != nil {
		return body, 0
	}
	return out, len(all) - limit
}

// createGrace is how long an unconfirmed create may still be carried out:
// the quiet time of any write in doubt (doubt.go).
func (d *Destination) createGrace() time.Duration { return d.writeQuiet() }

// findUnique looks a resource up by the attributes of body that the
// endpoint's core schema declares unique (userName for Users), or by
// displayName where none is (Groups).
func (d *Destination) findUnique(ctx context.Context, ep *lang.Endpoint, body []byte) (string, []byte, error) {
	for _, n := range uniqueNames(ep) {
		v := gjson.GetBytes(body, scim.EscapeKey(n))
		if v.Type != gjson.String || v.Str == "" {
			continue
		}
		id, current, err := d.find(ctx, ep, n+" eq "+scim.Quote(v.Str), "")
		if err != nil || current != nil {
			return id, current, err
		}
	}
	return "", nil, nil
}

// update makes the resource match the desired one over the managed paths.
func (d *Destination) update(ctx context.Context, res *lang.Result, out Applied, current []byte, refs lang.Resolver) (Applied, error) {
	return d.updateIn(ctx, res, out, current, refs, nil)
}

// updateIn is update within a shadow session (shadow.go): current is the
// resource as read, or (sess.used) its shadow; a nil sess opens one of the
// update's own.
func (d *Destination) updateIn(ctx context.Context, res *lang.Result, out Applied, current []byte, refs lang.Resolver, sess *shadowSession) (Applied, error) {
	ep := res.Endpoint
	desired, err := res.Resource(lang.Update, refs)
	if err != nil {
		return out, err
	}
	managed := res.Managed(lang.Update)
	if sess != nil && sess.used && !sess.rec.covers(managed) {
		return out, errShadowShort // before anything is sent
	}
	if sess == nil {
		if sess = d.shadowBegin(ep.Path, out.ID, time.Now()); sess != nil {
			defer sess.end()
			ctx = sess.within(ctx)
		}
	}
	if d.Pipe.Update == "put" {
		body, err := scim.PutBody(current, desired, managed)
		if err != nil {
			return out, err
		}
		// PUT only when something managed differs.
		ops, err := scim.Diff(current, desired, managed, d.diffOptions(ep))
		if err != nil {
			return out, err
		}
		if len(ops) == 0 && !hasPasswordChange(res) {
			out.Outcome = Unchanged
			return out, nil
		}
		if _, err := d.write(ctx, http.MethodPut, ep.Path, out.ID, body); err != nil {
			return out, fmt.Errorf("put %s/%s: %w", ep.Path, out.ID, bodyPasswordRefused(err, http.MethodPut, body, ep.Path+"/"+out.ID))
		}
		out.Requests++
		out.Outcome, out.Attributes = Updated, OpAttributes(ops)
		return out, nil
	}
	// desired read once: diffed against current here, and against the
	// service's answer when the shadow is kept.
	want := scim.NewDesired(desired, managed)
	bodies, err := patchBodies(current, want, ep, d.maxOps())
	if err != nil {
		return out, err
	}
	if len(bodies) == 0 {
		out.Outcome = Unchanged
		out, err = d.withPassword(ctx, res, out)
		if err == nil {
			d.keepShadow(sess, res, want, managed)
			d.keepListed(sess, res, current, want, managed) // nothing sent: the listing's copy (listshadow.go)
		}
		return out, err
	}
	n, err := d.sendPatches(ctx, ep, out.ID, current, desired, managed, bodies)
	out.Requests += n
	out.Attributes, out.PatchOps = patchSummary(bodies)
	if err != nil {
		return out, err
	}
	out.Outcome = Updated
	out, err = d.withPassword(ctx, res, out)
	if err == nil {
		d.keepShadow(sess, res, want, managed)
	}
	return out, err
}

// Patch returns the PATCH request bodies that turn current into desired
// over the managed paths; none when nothing differs.
func (d *Destination) Patch(current, desired []byte, managed []scim.Path, ep *lang.Endpoint) ([][]byte, error) {
	return Patch(current, desired, managed, ep, d.maxOps())
}

// Patch returns the PATCH request bodies (at most maxOps operations each;
// 0 means scim.DefaultMaxOpsPerRequest) that turn current into desired over
// the managed paths, comparing as the endpoint's schemas say; none when
// nothing differs. `scimsync map --current` shows them without a server.
func Patch(current, desired []byte, managed []scim.Path, ep *lang.Endpoint, maxOps int) ([][]byte, error) {
	return patchBodies(current, scim.NewDesired(desired, managed), ep, maxOps)
}

// patchBodies is Patch of a desired resource read already.
func patchBodies(current []byte, want *scim.Desired, ep *lang.Endpoint, maxOps int) ([][]byte, error) {
	ops, err := want.Diff(current, diffOptions(ep, maxOps))
	if err != nil {
		return nil, err
	}
	if len(ops) == 0 {
		return nil, nil
	}
	return scim.PatchBodies(ops, maxOps), nil
}

func (d *Destination) diffOptions(ep *lang.Endpoint) scim.DiffOptions {
	return diffOptions(ep, d.maxOps())
}

func (d *Destination) maxOps() int {
	if d.MaxOpsPerRequest > 0 {
		return d.MaxOpsPerRequest
	}
	if d.Pipe != nil {
		return d.Pipe.MaxPatchOps
	}
	return 0
}

func diffOptions(ep *lang.Endpoint, maxOps int) scim.DiffOptions {
	return scim.DiffOptions{Core: ep.CoreSchema(), Extensions: ep.ExtensionSchemas(), MaxOpsPerRequest: maxOps}
}

// deactivateBody is the PATCH that deactivates a resource.
var deactivateBody = []byte(`{"schemas":["` + scim.URNPatchOp + `"],"Operations":[{"op":"replace","path":"active","value":false}]}`)

// delete removes the resource, or deactivates it when the class says so.
func (d *Destination) delete(ctx context.Context, res *lang.Result, out Applied, current []byte) (Applied, error) {
	if current == nil {
		out.Outcome = Absent
		return out, nil
	}
	deactivate := res.Class.OnDelete == "deactivate"
	if a := gjson.GetBytes(current, "active"); deactivate && a.Exists() && !a.Bool() {
		out.Outcome = Unchanged
		return out, nil
	}
	return d.DeleteKnown(ctx, res.Endpoint, out.ID, deactivate)
}

// DeleteKnown deletes (or deactivates) the resource with a known id: a
// delete the id map correlates, when the change itself carries nothing to
// classify or look it up by. A resource already gone counts as done.
func (d *Destination) DeleteKnown(ctx context.Context, ep *lang.Endpoint, id string, deactivate bool) (Applied, error) {
	out := Applied{Endpoint: ep, ID: id, Outcome: Deleted}
	method, body, what := http.MethodDelete, []byte(nil), "delete"
	if deactivate {
		method, body, what, out.Outcome = http.MethodPatch, deactivateBody, "deactivate", Deactivated
	}
	if _, err := d.write(ctx, method, ep.Path, id, body); err != nil {
		if scim.IsStatus(err, http.StatusNotFound) {
			out.Outcome = Absent
			return out, nil
		}
		return out, fmt.Errorf("%s %s/%s: %w", what, ep.Path, id, err)
	}
	out.Requests++
	return out, nil
}

// LeaveGroups removes the resource ep/id from the groups it is a member of
// that managed says the pipe manages (managed returns the group's
// endpoint, or nil): one PATCH remove with a value filter each. The groups
// come from the resource's `groups` attribute (RFC 7643 §4.1.2) when the
// service fills it, else from searching groupEndpoints for
// members[value eq "id"].
func (d *Destination) LeaveGroups(ctx context.Context, ep *lang.Endpoint, id string, groupEndpoints []*lang.Endpoint, managed func(groupID string) *lang.Endpoint, managedGroups []string) error {
	if d.Offline {
		return nil
	}
	if err := d.wait(ctx); err != nil {
		return err
	}
	body, err := d.Client.Get(ctx, strings.TrimRight(ep.Path, "/")+"/"+url.PathEscape(id))
	if err != nil {
		if scim.IsStatus(err, http.StatusNotFound) {
			return nil
		}
		return fmt.Errorf("get %s/%s: %w", ep.Path, id, err)
	}
	done := map[string]bool{}
	leave := func(gid string) error {
		gep := managed(gid)
		if gid == "" || gep == nil || done[gid] {
			return nil
		}
		done[gid] = true
		if d.PatchForm() == PatchFormReplace {
			return d.leaveWhole(ctx, gep, gid, id)
		}
		op := `{"schemas":["` + scim.URNPatchOp + `"],"Operations":[{"op":"remove","path":` +
			strconvQuote("members[value eq "+scim.Quote(id)+"]") + `}]}`
		_, err := d.write(ctx, http.MethodPatch, gep.Path, gid, []byte(op))
		if refusedFilter(err, []byte(op)) {
			// A service that refuses value filters: the members, whole.
			return d.leaveWhole(ctx, gep, gid, id)
		}
		if err != nil && !scim.IsStatus(err, http.StatusNotFound) {
			return fmt.Errorf("removing %s from group %s: %w", id, gid, err)
		}
		return nil
	}
	if groups := gjson.GetBytes(body, "groups"); groups.Exists() {
		for _, g := range groups.Array() {
			if err := leave(g.Get("value").String()); err != nil {
				return err
			}
		}
		return nil
	}
	filter := "members[value eq " + scim.Quote(id) + "]"
	for _, gep := range groupEndpoints {
		// Each pass removes the member from what it found; search again
		// until a page brings nothing new (a page may not hold them all).
		for range 100 {
			if err := d.wait(ctx); err != nil {
				return err
			}
			found, _, err := d.Client.Search(ctx, gep.Path, filter, d.Pipe.Query == "post")
			if scim.IsStatus(err, http.StatusBadRequest) {
				// The service cannot filter on members: look at each group
				// the pipe manages instead.
				return d.leaveManaged(ctx, id, managed, managedGroups, done, leave)
			}
			if err != nil {
				return fmt.Errorf("finding the groups of %s at %s: %w", id, gep.Path, err)
			}
			progress := false
			for _, g := range found {
				gid := gjson.GetBytes(g, "id").String()
				if !done[gid] {
					progress = true
				}
				if err := leave(gid); err != nil {
					return err
				}
				done[gid] = true
			}
			if !progress {
				break
			}
		}
	}
	return nil
}

// leaveWhole removes member id from group gid by replacing the group's
// members with the others (for services that refuse a value filter in a
// PATCH path).
func (d *Destination) leaveWhole(ctx context.Context, gep *lang.Endpoint, gid, id string) error {
	if err := d.wait(ctx); err != nil {
		return err
	}
	body, err := d.Client.Get(ctx, strings.TrimRight(gep.Path, "/")+"/"+url.PathEscape(gid))
	if scim.IsStatus(err, http.StatusNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get %s/%s: %w", gep.Path, gid, err)
	}
	found := false
	for _, m := range gjson.GetBytes(body, "members").Array() {
		found = found || m.Get("value").String() == id
	}
	if !found {
		return nil
	}
	ops, err := scim.ReplaceFiltered(body, []scim.PatchOp{{Op: "remove", Path: "members[value eq " + scim.Quote(id) + "]"}}, d.diffOptions(gep))
	if err != nil {
		return fmt.Errorf("removing %s from group %s: %w", id, gid, err)
	}
	patch := scim.PatchBodies(ops, 0)[0]
	if _, err := d.write(ctx, http.MethodPatch, gep.Path, gid, patch); err != nil && !scim.IsStatus(err, http.StatusNotFound) {
		return fmt.Errorf("removing %s from group %s: %w", id, gid, err)
	}
	return nil
}

// leaveManaged reads each managed group and leaves those that list id.
func (d *Destination) leaveManaged(ctx context.Context, id string, managed func(string) *lang.Endpoint, groups []string, done map[string]bool, leave func(string) error) error {
	for _, gid := range groups {
		gep := managed(gid)
		if gep == nil || done[gid] {
			continue
		}
		if err := d.wait(ctx); err != nil {
			return err
		}
		body, err := d.Client.Get(ctx, strings.TrimRight(gep.Path, "/")+"/"+url.PathEscape(gid))
		if scim.IsStatus(err, http.StatusNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("get %s/%s: %w", gep.Path, gid, err)
		}
		for _, m := range gjson.GetBytes(body, "members").Array() {
			if m.Get("value").String() == id {
				if err := leave(gid); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}

// strconvQuote quotes s as a JSON string.
func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// IsMultipleMatch reports whether err is a lookup that matched several
// resources.
func IsMultipleMatch(err error) bool {
	var m *MultipleMatchError
	return errors.As(err, &m)
}

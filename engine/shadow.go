package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/jsonw"
	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/state"
	"github.com/scimsync/scimsync/lang"
)

// Shadows: one request per change in `run` (issue 15, part 6).
//
// Before shadows, run read every resource (GET) before changing it (PATCH):
// two round trips per change, at SaaS latency the larger part of a run's
// time. A shadow is what the service held, after this engine's last
// confirmed write, of the attributes the resource's class manages: the
// projection of the service's own answer to that write (RFC 7644 §3.5.2: a
// 200 answer to a PATCH, like the answer to a POST or PUT, carries the
// resource). run diffs the desired resource against the shadow instead of
// against a fresh read and sends the PATCH alone. scim.Diff reads of the
// current resource only the attributes the managed paths name (whole, for
// multi-valued ones), so diffing against the projection is diffing
// against the resource, and the writes are the writes the GET-first path
// makes, as long as the shadow is what a GET would return. Everything below
// is about when that holds.
//
// Where a shadow comes from. From the answer to this engine's own write,
// and only when that answer names the resource written (its id) and
// already matches what was written over the managed paths (Diff of answer
// against desired is empty): an answer that is not the whole resource, or a
// service that rewrites what it is sent, leaves no shadow, and the next
// change reads the resource as before. A 204 without a body drops the
// shadow. A shadow never holds a value of the change's secrets (a password
// mapped to a readable attribute): such a record is not written. Besides,
// resync records, by the same rules, the copy a listing of the endpoint
// gave of a resource it found nothing to change in, and of the resources
// its Bulk requests wrote (a BulkResponse carries no resource) from a
// listing read after them: listshadow.go says when.
//
// Crash safety, and the cost in state writes. A write sent and a crash
// before its shadow is updated must not leave the old shadow trusted (title
// A→B sent, crash, the entry back to A: diff(shadow A, A) would send
// nothing while the service has B). The store keeps a marker that says
// "clean" only after a process that kept its shadows closed it normally; it
// is set to "open" in the transaction that opens the store — durably,
// before anything is sent — and an Open that finds it not "clean" deletes
// every shadow (engine/state/shadow.go). That marks every shadow a
// process could touch in doubt, once per process instead of once per
// change, so a change costs one state write, the new shadow, and that one
// is not waited for: it goes to the group committer (engine/state
// commit.go) and is committed with the other workers' writes, while this
// process answers from memory what it has queued and not yet committed. A
// change that needs no request (an empty diff) writes nothing.
//
// Writes in doubt. A write whose answer was lost (a timeout, a 5xx, a
// dropped connection) may still be carried out by the service after a later
// write of the same resource, undoing part of it. The client does not send
// it again, and the next update of the resource waits out the quiet time
// (three times the client's timeout) before it reads it (doubt.go); besides,
// no shadow is recorded for that resource from a request sent within the
// quiet time after the lost one, and after an Open that dropped the shadows
// of a process that died, none at all until the quiet time after it last
// sent a write has passed (Shadows.deadUntil).
//
// Every write keeps its shadow right or drops it. Destination.write, which
// every request that changes a resource goes through, opens a session on
// the resource for the request unless the update around it holds one:
// deletes, deactivations, group-member removals (LeaveGroups, leaveWhole),
// the patchForm fallbacks, password PATCHes outside an update all drop the
// shadow; an update (run, failed retry, parked retries, resync, verify
// --repair: any Destination with Shadows set) records the answer of its
// last write. Two sessions on one resource at once (a group patched by its
// own change while a deactivated member leaves it) record nothing: either
// answer may miss the other's write. A resource this engine deletes may
// vanish from the groups that listed it (the service's own doing, RFC 7644
// §3.6), so a shadow that refers to a resource the id map does not hold
// (Known.Alive) is not used.
//
// Where a shadow is not used: a class whose managed attributes the shadow
// does not hold (it was recorded for another class or mapping), update =
// "put" (the PUT body carries the unmanaged attributes too, and a stale
// copy would write back what others changed), the replace form of
// multi-valued attributes (patchFilters = "replace", or learned: the
// replacement carries the elements the pipe does not manage), resync and
// verify (they compare with the service itself; they keep shadows right),
// dry runs, `failed retry`, and `run --shadows=false`.
//
// A PATCH built from a shadow that the service refuses with 400, 404, 409
// or 412 is not sent again as it is, and nothing more is sent from that
// shadow: the shadow is dropped and the change goes the GET-first way (404:
// the resource is looked up by the lookup filter and created when it is not
// there). Writes made by others — the REPL (`repl` with a SCIM service),
// the service's console, other provisioning — are drift that run does not
// see, as before for attributes no change touches; verify finds it and
// resync or verify --repair repairs it.
//
// ETags (If-Match with meta.version) would let the service refuse a PATCH
// built from a shadow that others made stale; the SCIM client does not send
// If-Match yet, so they are not used.

// Shadows keeps the shadows of the resources a Destination writes, in the
// pipe's state store.
type Shadows struct {
	store *state.Store
	// Quiet, when set, replaces the destination's quiet time (see above):
	// how long a write whose answer was lost may still be carried out.
	Quiet time.Duration

	opened  time.Time
	dropped bool // the store dropped the shadows of a process that did not close clean
	// lastSent is when the processes before this one last sent a write,
	// when the store can tell (state.Store.LastSent).
	lastSent      time.Time
	lastSentKnown bool

	mu    sync.Mutex
	slots map[string]*slot
	seq   uint64 // numbers the queued store writes
	ends  int
}

// NewShadows returns the shadows kept in st, and declares that this process
// keeps them (state.Store.KeepShadows): every SCIM write it makes goes
// through a Destination whose Shadows is the value returned.
func NewShadows(st *state.Store) *Shadows {
	st.KeepShadows()
	sent, known := st.LastSent()
	return &Shadows{store: st, opened: time.Now(), dropped: st.ShadowsDropped(), lastSent: sent, lastSentKnown: known,
		slots: map[string]*slot{}}
}

// deadUntil is when no write a process that died can have left in flight
// can land any more: quiet after it last sent one, or after Open when that
// cannot be told (state.Store.LastSent); zero when the last process closed
// the store cleanly.
func (sh *Shadows) deadUntil(quiet time.Duration) time.Time {
	if sh == nil || !sh.dropped {
		return time.Time{}
	}
	base := sh.opened
	if sh.lastSentKnown && sh.lastSent.Before(base) {
		base = sh.lastSent
	}
	return base.Add(quiet)
}

// slot is what the process knows of one resource's shadow beyond the store.
type slot struct {
	open    int       // sessions open on the resource
	overlap bool      // a session began while another was open: none of them records
	queued  uint64    // the last store write queued and not yet committed (0: none)
	val     []byte    // its record; nil for a drop
	taint   time.Time // nothing is recorded from requests sent before then (a write in doubt)
	wrote   time.Time // when the last session that wrote ended: a copy read before may miss its write
}

// shadowKey is the store key of a resource.
func shadowKey(endpointPath, id string) string {
	return strings.Trim(endpointPath, "/") + "\x00" + id
}

// shadowRecord is a stored shadow.
type shadowRecord struct {
	// Covers are the attributes the body holds, lower-case: "title", or
	// "urn:…:user:employeenumber" for an extension's. An attribute covered
	// and absent from the body is absent at the service.
	Covers []string        `json:"covers"`
	Body   json.RawMessage `json:"body"`
}

// coverKey names the attribute of a managed path in Covers.
func coverKey(p scim.Path) string {
	if p.URN == "" || isCoreURN(p.URN) {
		return strings.ToLower(p.Attr)
	}
	return strings.ToLower(p.URN + ":" + p.Attr)
}

func isCoreURN(urn string) bool {
	const core = "urn:ietf:params:scim:schemas:core:"
	return len(urn) > len(core) && strings.EqualFold(urn[:len(core)], core)
}

// shadowSession is one change's (or one request's) use of a resource's
// shadow: begun before the resource is read or written, ended after.
type shadowSession struct {
	sh        *Shadows
	key, id   string
	began     time.Time
	quiet     time.Duration
	used      bool          // the update diffed against the shadow
	rec       *shadowRecord // the shadow read
	wrote     bool          // a write was sent
	answer    []byte        // the last write's answer (nil: none, or 204)
	failed    bool          // a write failed
	uncertain bool          // ... and may have been carried out
	refused   error         // a write built from the shadow was refused: nothing more is sent in this session
	damaged   bool          // the stored record failed its checksum
	record    []byte        // what end stores (keep)
	copied    bool          // record is a copy read at began (a listing), not a write's answer (listshadow.go)
	ended     bool
}

// begin opens a session on the resource endpointPath/id. began is when the
// first request of the session is (or was) sent.
func (sh *Shadows) begin(endpointPath, id string, began time.Time, quiet time.Duration) *shadowSession {
	if sh == nil || id == "" {
		return nil
	}
	if sh.Quiet > 0 {
		quiet = sh.Quiet
	}
	k := shadowKey(endpointPath, id)
	sh.mu.Lock()
	sl := sh.slots[k]
	if sl == nil {
		sl = &slot{}
		sh.slots[k] = sl
	}
	if sl.open > 0 {
		sl.overlap = true
	}
	sl.open++
	sh.mu.Unlock()
	return &shadowSession{sh: sh, key: k, id: id, began: began, quiet: quiet}
}

// read returns the shadow to diff against, or nil when there is none to
// trust: none recorded, dropped, damaged, another session open on the
// resource, or a reference in it to a resource alive does not know.
func (s *shadowSession) read(ep *lang.Endpoint, alive func(id string) bool) *shadowRecord {
	sh := s.sh
	sh.mu.Lock()
	sl := sh.slots[s.key]
	if sl.overlap {
		sh.mu.Unlock()
		return nil
	}
	var val []byte
	pending := sl.queued != 0
	if pending {
		val = sl.val
	}
	sh.mu.Unlock()
	if !pending {
		v, ok, err := sh.store.Shadow(s.key)
		if errors.Is(err, state.ErrShadowDamaged) {
			s.damaged = true
			return nil
		}
		if err != nil || !ok {
			return nil
		}
		val = v
	}
	if val == nil {
		return nil
	}
	rec, ok := decodeShadowRecord(val)
	if !ok {
		s.damaged = true
		return nil
	}
	if !refsAlive(gjson.ParseBytes(rec.Body), ep, alive) {
		return nil
	}
	s.used, s.rec = true, &rec
	return &rec
}

// decodeShadowRecord reads a stored record (shadowProjection's): false
// when it is not one. It is read on every change of `run --shadows`, so
// with gjson rather than by reflection.
func decodeShadowRecord(val []byte) (shadowRecord, bool) {
	var rec shadowRecord
	if !gjson.ValidBytes(val) {
		return rec, false
	}
	doc := gjson.ParseBytes(val)
	covers, body := doc.Get("covers"), doc.Get("body")
	if !doc.IsObject() || !body.IsObject() || covers.Exists() && !covers.IsArray() && covers.Type != gjson.Null {
		return rec, false
	}
	ok := true
	if covers.IsArray() {
		covers.ForEach(func(_, c gjson.Result) bool {
			ok = c.Type == gjson.String
			rec.Covers = append(rec.Covers, c.Str)
			return ok
		})
	}
	rec.Body = json.RawMessage(body.Raw)
	return rec, ok
}

// covers reports whether rec holds every attribute managed reads.
func (rec *shadowRecord) covers(managed []scim.Path) bool {
	for _, p := range managed {
		k := coverKey(p)
		found := false
		for _, c := range rec.Covers {
			if c == k {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// note records how a write of the session went.
func (s *shadowSession) note(answer []byte, err error) {
	s.wrote = true
	if err == nil {
		s.answer = answer
		return
	}
	s.failed, s.answer = true, nil
	var se *scim.Error
	var te *scim.TransportError
	switch {
	case errors.As(err, &se) && se.Status < 500:
		// A refusal: RFC 7644 §3.5.2 makes a refused PATCH change nothing.
		if s.used && (se.Status == http.StatusBadRequest || se.Status == http.StatusNotFound ||
			se.Status == http.StatusConflict || se.Status == http.StatusPreconditionFailed) {
			s.refused = err
		}
	case errors.As(err, &te) && te.NotSent:
	default:
		// A session's writes update a resource (PATCH, PUT, DELETE): an
		// update answered 503 was not handled (scim.InDoubt).
		s.uncertain = scim.InDoubt(http.MethodPatch, err)
	}
}

// errShadowRefused is a write not sent: an earlier write of the same change,
// built from the shadow, was refused, and the change is read and diffed
// again instead (ApplyKnown).
var errShadowRefused = errors.New("not sent: the service refused a PATCH built from the resource's shadow")

// end closes the session: its record is stored when it has one that is
// safe to trust, the shadow is dropped when the session wrote anything
// else (or failed, or found the record damaged), and left alone otherwise.
func (s *shadowSession) end() {
	if s == nil || s.ended {
		return
	}
	s.ended = true
	sh := s.sh
	now := time.Now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sl := sh.slots[s.key]
	sl.open--
	overlap := sl.overlap
	if sl.open == 0 {
		sl.overlap = false
	}
	if s.uncertain {
		t := now.Add(s.quiet)
		if t.After(sl.taint) {
			sl.taint = t
		}
		sh.store.ShadowsInDoubtUntil(t)
	}
	if s.wrote {
		sl.wrote = now
	}
	var val []byte
	switch {
	case s.copied && (overlap || !s.began.After(sl.wrote)):
		// A copy read before a write of this process (or beside one):
		// what the store holds is left alone.
		sh.sweep(s.key, sl, now)
		return
	case s.record != nil && !overlap && !s.failed && !s.began.Before(sl.taint) &&
		!s.began.Before(sh.deadUntil(s.quiet)):
		val = s.record
	case s.wrote || s.damaged || s.record != nil:
		// dropped: val stays nil
	default:
		sh.sweep(s.key, sl, now)
		return
	}
	sh.seq++
	n := sh.seq
	sl.queued, sl.val = n, val
	done := func(err error) {
		sh.mu.Lock()
		defer sh.mu.Unlock()
		if err == nil && sl.queued == n {
			sl.queued, sl.val = 0, nil
		}
		// On failure the queued value stays in memory, hiding what the
		// store holds (the store, marked broken, drops them all at the
		// next Open).
	}
	if val != nil {
		sh.store.PutShadowAsync(s.key, val, done)
	} else {
		sh.store.DropShadowAsync(s.key, done)
	}
	sh.sweep(s.key, sl, now)
}

// sweep forgets slots that hold nothing any more, now and then.
func (sh *Shadows) sweep(key string, sl *slot, now time.Time) {
	idle := func(sl *slot) bool { return sl.open == 0 && sl.queued == 0 && !now.Before(sl.taint) }
	if idle(sl) {
		delete(sh.slots, key)
	}
	if sh.ends++; sh.ends%1024 == 0 {
		for k, o := range sh.slots {
			if idle(o) {
				delete(sh.slots, k)
			}
		}
	}
}

// shadowCtx is the context key of the session an update holds.
type shadowCtx struct{}

// within returns ctx carrying the session, for the writes made under it.
func (s *shadowSession) within(ctx context.Context) context.Context {
	if s == nil {
		return ctx
	}
	return context.WithValue(ctx, shadowCtx{}, s)
}

// shadowsReadable reports whether updates may diff against shadows here:
// shadows kept, PATCH (not PUT), the filter form, a real service.
func (d *Destination) shadowsReadable() bool {
	return d.Shadows != nil && d.DryRun == nil && !d.Offline && (d.Pipe == nil || d.Pipe.Update != "put") &&
		d.PatchForm() == PatchFormFilter
}

// shadowQuiet is how long a write whose answer was lost may still be
// carried out by the service (doubt.go).
func (d *Destination) shadowQuiet() time.Duration { return d.writeQuiet() }

// shadowBegin opens a session on ep/id when this destination keeps shadows.
func (d *Destination) shadowBegin(endpointPath, id string, began time.Time) *shadowSession {
	if d.Shadows == nil || d.DryRun != nil || d.Offline {
		return nil
	}
	return d.Shadows.begin(endpointPath, id, began, d.shadowQuiet())
}

// shadowFor returns the session a write to endpoint/id belongs to: the
// update's (from ctx), or one of its own (own) that the write ends.
func (d *Destination) shadowFor(ctx context.Context, endpoint, id string) (s *shadowSession, own bool) {
	if id == "" {
		return nil, false // a create: there is no shadow yet
	}
	if s, _ := ctx.Value(shadowCtx{}).(*shadowSession); s != nil && s.key == shadowKey(endpoint, id) {
		return s, false
	}
	s = d.shadowBegin(endpoint, id, time.Now())
	return s, s != nil
}

// keepShadow sets the record a session that wrote stores at its end: the
// projection of the last write's answer, when that answer is safe to keep
// (shadowProjection). desired and managed are what the writes made the
// resource hold.
func (d *Destination) keepShadow(s *shadowSession, res *lang.Result, desired *scim.Desired, managed []scim.Path) {
	if s == nil || !s.wrote || s.failed || !d.shadowsReadable() {
		return
	}
	s.record = shadowProjection(res.Endpoint, s.id, s.answer, desired, managed, d.diffOptions(res.Endpoint), res.Secrets())
}

// shadowProjection returns the record of the answer a service gave to a
// write of resource id: the managed attributes only. It returns nil when
// the answer is not to be trusted as the resource: empty (204), another
// resource's (or none's) id, a JSON it cannot diff, or one that does not
// hold what was written (Diff of answer against desired is not empty), or
// when the record would hold a value of secrets.
func shadowProjection(ep *lang.Endpoint, id string, answer []byte, desired *scim.Desired, managed []scim.Path, opts scim.DiffOptions, secrets []string) []byte {
	if len(answer) == 0 {
		return nil
	}
	// Diff fails on an answer that is not a JSON object (it validates it):
	// checked first, it spares validating the answer twice.
	if ops, err := desired.Diff(answer, opts); err != nil || len(ops) > 0 {
		return nil
	}
	doc := gjson.ParseBytes(answer)
	if doc.Get("id").String() != id {
		return nil
	}
	// What is kept: core attributes by name, and extension attributes by
	// URN and name, compared as their lower-case forms are. Built once per
	// change of `run`, so without maps or a string per key: a few names
	// scanned are cheaper.
	type ext struct {
		urn   string
		attrs []string
	}
	var covers, core []string
	var exts []ext
	for _, p := range managed {
		k := coverKey(p)
		if containsString(covers, k) {
			continue
		}
		covers = append(covers, k)
		if strings.EqualFold(p.Attr, "password") || isWriteOnly(ep, p) {
			continue // never returned, never compared (Diff skips it), never stored
		}
		if p.URN == "" || isCoreURN(p.URN) {
			core = append(core, p.Attr)
			continue
		}
		i := slices.IndexFunc(exts, func(e ext) bool { return lowerEqual(e.urn, p.URN) })
		if i < 0 {
			exts, i = append(exts, ext{urn: p.URN}), len(exts)
		}
		exts[i].attrs = append(exts[i].attrs, p.Attr)
	}
	lowerIn := func(list []string, s string) bool {
		return slices.ContainsFunc(list, func(x string) bool { return lowerEqual(x, s) })
	}
	b := make([]byte, 0, 64+len(answer))
	b = append(b, `{"covers":[`...)
	for i, c := range covers {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonw.AppendString(b, c)
	}
	b = append(b, `],"body":{`...)
	n := 0
	field := func(k string) {
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = jsonw.AppendString(b, k)
		b = append(b, ':')
	}
	doc.ForEach(func(k, v gjson.Result) bool {
		if lowerIn(core, k.Str) {
			field(k.Str)
			b = appendCompact(b, v.Raw)
			return true
		}
		i := slices.IndexFunc(exts, func(e ext) bool { return lowerEqual(e.urn, k.Str) })
		if i < 0 || !v.IsObject() {
			return true
		}
		field(k.Str)
		b = append(b, '{')
		m := 0
		v.ForEach(func(ek, ev gjson.Result) bool {
			if lowerIn(exts[i].attrs, ek.Str) {
				if m > 0 {
					b = append(b, ',')
				}
				m++
				b = jsonw.AppendString(b, ek.Str)
				b = append(b, ':')
				b = appendCompact(b, ev.Raw)
			}
			return true
		})
		b = append(b, '}')
		return true
	})
	b = append(b, "}}"...)
	for _, v := range secrets {
		if v == "" {
			continue
		}
		q := strconvQuote(v)
		if bytes.Contains(b, []byte(v)) || bytes.Contains(b, []byte(q[1:len(q)-1])) {
			return nil
		}
	}
	return b
}

// lowerEqual reports whether strings.ToLower(a) == strings.ToLower(b),
// without making either.
func lowerEqual(a, b string) bool {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb && unicode.ToLower(ra) != unicode.ToLower(rb) {
			return false
		}
		a, b = a[na:], b[nb:]
	}
	return a == "" && b == ""
}

// appendCompact appends the valid JSON raw without insignificant space,
// as json.Compact writes it.
func appendCompact(b []byte, raw string) []byte {
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case inString:
			if c == '\\' && i+1 < len(raw) {
				b = append(b, c)
				i++
				c = raw[i]
			} else if c == '"' {
				inString = false
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			continue
		case c == '"':
			inString = true
		}
		b = append(b, c)
	}
	return b
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// attrDef returns the schema definition of a managed path's attribute.
func attrDef(ep *lang.Endpoint, urn, attr string) *scim.Attribute {
	if urn == "" || isCoreURN(urn) {
		if c := ep.CoreSchema(); c != nil {
			return c.Attr(attr)
		}
		return nil
	}
	for _, s := range ep.ExtensionSchemas() {
		if s != nil && strings.EqualFold(s.ID, urn) {
			return s.Attr(attr)
		}
	}
	return nil
}

func isWriteOnly(ep *lang.Endpoint, p scim.Path) bool {
	a := attrDef(ep, p.URN, p.Attr)
	return a != nil && a.Mutability == scim.WriteOnly
}

// refsAlive reports whether every resource the shadow body refers to (the
// value of members, manager and other complex attributes with a $ref) is
// one alive says exists. Without alive, a shadow that refers to anything is
// not used.
func refsAlive(body gjson.Result, ep *lang.Endpoint, alive func(string) bool) bool {
	ok := true
	check := func(urn, name string, v gjson.Result) {
		a := attrDef(ep, urn, name)
		isRef := a != nil && a.Type == scim.TypeComplex && a.Sub("$ref") != nil ||
			a == nil && (strings.EqualFold(name, "members") || strings.EqualFold(name, "manager"))
		if !isRef {
			return
		}
		each := func(el gjson.Result) bool {
			id := el.Get("value")
			if !el.IsObject() {
				id = el
			}
			if id.Type == gjson.Null || !id.Exists() {
				return true
			}
			if alive == nil || !alive(id.String()) {
				ok = false
			}
			return ok
		}
		if v.IsArray() {
			v.ForEach(func(_, el gjson.Result) bool { return each(el) })
		} else {
			each(v)
		}
	}
	body.ForEach(func(k, v gjson.Result) bool {
		if strings.HasPrefix(strings.ToLower(k.Str), "urn:") && v.IsObject() {
			v.ForEach(func(ek, ev gjson.Result) bool {
				check(k.Str, ek.Str, ev)
				return ok
			})
		} else {
			check("", k.Str, v)
		}
		return ok
	})
	return ok
}

// shadowRefusal explains, for the log, why a change went the GET-first way
// after a PATCH built from its shadow.
func shadowRefusal(ep *lang.Endpoint, id string, err error) string {
	return fmt.Sprintf("%s/%s: the service refused a PATCH built from the resource's shadow (%v): read and diffed again", ep.Path, id, err)
}

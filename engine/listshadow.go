package engine

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/lang"
)

// Shadows from listings: after a Bulk load, run's first change of a
// resource costs one request (issue 15).
//
// A shadow is the answer to this engine's own write (shadow.go). Two kinds
// of resource leave a resync without one, and so cost `run --shadows` a GET
// before the PATCH of their first change: those the resync found nothing
// to change in (nothing sent, nothing answered), and those it created or
// updated in Bulk requests (a BulkResponse carries no resource). Resync
// records theirs from listings of the endpoint, by the rules an answer goes
// through (shadowProjection): the copy names the resource, it matches over
// the managed paths what the entry makes of the resource (so a copy that
// lacks an attribute the entry sets gives none), and it holds no value of
// the change's secrets.
//
//   - A resource the listing answered the lookup for and that matched the
//     entry (Unchanged): its listed copy, with no request (keepListed).
//   - The resources the resync's Bulk requests created or updated: once the
//     last pass has ended, each endpoint they belong to is listed again, in
//     the pages the first listing used, holding only those resources, and
//     each copy is checked against what its operation wrote (readBack).
//
// A copy is as old as its listing: it is judged as an answer to a request
// sent when the listing's first page was asked for (a write in doubt before
// then, or a process that died within the quiet time, keeps it out), and it
// is never recorded when this process wrote the resource after that
// (Listing.asListed refuses a resource written since; shadowSession.fromCopy
// one whose write it saw). The listing must show what a read by id would: a
// group listed without the members the pipe manages gives no shadow
// (Listing.whole). A managed attribute a copy lacks and the entry does not
// set is taken as absent at the service, as it is in a write's answer.
//
// Reading back costs one request per page (200 resources, or the service's
// filter.maxResults: about 0.005 per resource of the endpoint), and each
// shadow saves one GET, once, if run changes the resource before anything
// else writes it. Which ones it will change is not known, so the endpoint
// is read back only when its pages number at most a tenth of the resources
// Bulk wrote to it (readBackRatio): a tenth of them changing pays for it.
// Into an empty service the pages cost 1/200 of the resources at most; a
// resync that updates a few hundred users of 100 000 skips it (500 pages
// for at most a few hundred GETs saved).
//
// Nothing is recorded without a listing (--no-list, list = false, a
// service that will not list, an endpoint that outgrew --list-max), in a
// dry run, or where shadows are not read (update = "put", the replace form
// of patchFilters). Until it is read back, what a Bulk request wrote is held
// in memory (the body it sent, about 0.4 KiB per user), up to the
// listing's bound. The resync keeps shadows in the state store (its
// Destination's Shadows), so what it records is trusted by the next run
// only if it closes the store cleanly (engine/state/shadow.go).

// readBackRatio is how many resources Bulk must have written per page of
// the endpoint's listing for the listing to be read again (see above).
const readBackRatio = 10

// readBackWorth returns how many pages of size a listing of an endpoint
// takes that held listed resources when the resync began and has had
// created more since, and whether reading it is worth it for the shadows
// of written, the resources Bulk wrote to it (see above).
func readBackWorth(listed, created, written, size int) (pages int, worth bool) {
	if size <= 0 {
		size = DefaultListPage
	}
	pages = (listed + created + size - 1) / size
	return pages, written > 0 && pages*readBackRatio <= written
}

// keepListed sets the record of a session that found nothing to change in
// the resource (updateIn) from the listing's copy of it, when current, what
// the update compared with, is that copy (the lookup was answered from the
// listing, not by a read) and the copy may be recorded.
func (d *Destination) keepListed(s *shadowSession, res *lang.Result, current []byte, desired *scim.Desired, managed []scim.Path) {
	if s == nil || s.wrote || s.used || !d.shadowsReadable() {
		return
	}
	raw, read, ok := d.Listings[res.Endpoint.Name].asListed(s.id)
	if !ok || !bytes.Equal(raw, current) {
		return
	}
	s.fromCopy(shadowProjection(res.Endpoint, s.id, raw, desired, managed, d.diffOptions(res.Endpoint), res.Secrets()), read)
}

// fromCopy sets the record a session that wrote nothing stores at its end:
// rec, the projection of a copy of the resource read at read (a listing's
// page) rather than of an answer to a write. It is judged as an answer
// from a request sent at read would be (a write in doubt before then, or a
// process that died, keeps it out), and it is not stored at all when a
// session of this process that wrote the resource ended after read, or ran
// beside this one: the copy may miss that write (shadowSession.end). A nil
// rec changes nothing, and so does the record the resource has already: a
// resync where nothing differs rewrites no shadow it recorded before.
func (s *shadowSession) fromCopy(rec []byte, read time.Time) {
	if s == nil || rec == nil || s.wrote || s.sh.holds(s.key, rec) {
		return
	}
	s.record, s.copied = rec, true
	if read.Before(s.began) {
		s.began = read
	}
}

// holds reports whether rec is the shadow of key already: queued by this
// process, or in the store.
func (sh *Shadows) holds(key string, rec []byte) bool {
	sh.mu.Lock()
	if sl := sh.slots[key]; sl != nil && sl.queued != 0 {
		v := sl.val
		sh.mu.Unlock()
		return v != nil && bytes.Equal(v, rec)
	}
	sh.mu.Unlock()
	v, ok, err := sh.store.Shadow(key)
	return err == nil && ok && bytes.Equal(v, rec)
}

// bulkWritten is what a Bulk operation made a resource hold: what its copy
// read back must match to be recorded.
type bulkWritten struct {
	desired []byte
	deps    []bulkDep // its bulkId references, resolved when it is read back
	managed []scim.Path
	secrets []string
	create  bool
}

// readBacks are the resources a resync's Bulk requests wrote, by endpoint
// and id, to be read back once its last pass has ended.
type readBacks struct {
	mu   sync.Mutex
	byEP map[*lang.Endpoint]map[string]*bulkWritten
}

// wroteBulk notes that a Bulk operation made resource id of op's endpoint
// hold desired, when it may be read back: the destination keeps and reads
// shadows and the endpoint was listed. Past the listing's bound, nothing
// more is noted (List would refuse the endpoint anyway).
func (b *bulkSender) wroteBulk(op *bulkOp, id string, desired []byte) {
	d := b.d
	if id == "" || d.Shadows == nil || d.DryRun != nil || d.Offline || !d.shadowsReadable() {
		return
	}
	l := d.Listings[op.ep.Name]
	if !l.Listed() {
		return
	}
	rb := &b.readBacks
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if rb.byEP == nil {
		rb.byEP = map[*lang.Endpoint]map[string]*bulkWritten{}
	}
	set := rb.byEP[op.ep]
	if set == nil {
		set = map[string]*bulkWritten{}
		rb.byEP[op.ep] = set
	}
	if l.max > 0 && len(set) >= l.max && set[id] == nil {
		return
	}
	set[id] = &bulkWritten{desired: desired, deps: op.deps, managed: op.managed, secrets: op.secrets, create: !op.update()}
}

// readBack records the shadows of what the resync's Bulk requests wrote,
// from a listing of each endpoint read after its last Bulk request was
// answered (see above). It runs once every pass has ended: no write of the
// resync is under way.
func (b *bulkSender) readBack(ctx context.Context) {
	rb := &b.readBacks
	rb.mu.Lock()
	byEP := rb.byEP
	rb.byEP = nil
	rb.mu.Unlock()
	if !b.d.shadowsReadable() {
		return // the replace form was learned meanwhile: no shadow is read
	}
	for _, ep := range b.p.Endpoints {
		set := byEP[ep]
		if len(set) == 0 || ctx.Err() != nil {
			continue
		}
		l := b.d.Listings[ep.Name]
		if !l.Listed() {
			continue // dropped meanwhile: it outgrew its bound
		}
		created := 0
		for _, w := range set {
			if w.create {
				created++
			}
		}
		pages, worth := readBackWorth(l.Len(), created, len(set), l.size)
		log := b.d.log()
		if !worth {
			log.Info("resync: not reading back what the Bulk requests wrote, for shadows: the listing would cost more than it saves",
				"endpoint", ep.Path, "written", len(set), "pages", pages)
			continue
		}
		again, err := b.d.List(ctx, ep, ListOptions{PageSize: l.size, MaxResults: -1, Max: l.max,
			Want: int64(len(set) / readBackRatio), Log: l.log, Who: l.who,
			Only: func(id string) bool { return set[id] != nil }})
		if err != nil || !again.Listed() {
			log.Info("resync: could not read back what the Bulk requests wrote: no shadows for it",
				"endpoint", ep.Path, "written", len(set), "reason", again.Reason())
			continue
		}
		matched := 0
		for id, w := range set {
			raw, read, ok := again.asListed(id)
			if !ok {
				continue
			}
			rec := shadowProjection(ep, id, raw, scim.NewDesired(b.withIDs(w.desired, w.deps), w.managed), w.managed, b.d.diffOptions(ep), w.secrets)
			if rec == nil {
				continue
			}
			s := b.d.shadowBegin(ep.Path, id, time.Now())
			s.fromCopy(rec, read)
			s.end()
			matched++
		}
		log.Info("resync: read back what the Bulk requests wrote, for shadows",
			"endpoint", ep.Path, "written", len(set), "pages", again.Pages(), "matched", matched)
	}
}

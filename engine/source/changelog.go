package source

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/engine/ldif"
	"github.com/scimsync/scimsync/lang"
)

// Changelog reads a draft-good-ldap-changelog cn=changelog: 389-ds's Retro
// Changelog, and the same format on PingDirectory, DSEE and ForgeRock.
//
// Ordering: events come in ascending changeNumber order, which is the order
// the server made the changes, across all entries. Position is
// "changelog:N", N the last change number reported; resuming reports the
// changes numbered above N.
//
// Reading: the root DSE's firstChangeNumber and lastChangeNumber say what
// there is; the changelog is read in windows of cfg.PageSize change numbers
// with the filter (&(changeNumber>=A)(changeNumber<=B)) (389-ds does not
// return entries in order for a mere >= filter, so each window is sorted).
// It is polled every cfg.PollInterval (default 1s); where the server
// supports persistent search (389-ds does) a persistent search on
// cn=changelog wakes the poller as soon as a change is logged.
//
// Each record becomes an event: targetDN, changeType, newRDN, deleteOldRDN
// and newSuperior say what happened; the changes attribute (LDIF; 389-ds
// stores it folded, with operational attributes and a trailing NUL) gives
// the changed attribute names, and the clear text of a password change
// (389-ds's unhashed#user#password) as Change.NewPassword (password.go);
// no other value is kept, and none is logged or put in an error. For add,
// modify and modrdn the entry is then read from the directory as it is
// now; if it is gone the event is EventDropped. A delete whose entry
// exists again (same identity) is dropped too. The identity comes from the record (targetUniqueId,
// targetEntryUUID, which 389-ds records when the Retro Changelog plugin has
// nsslapd-attribute: nsuniqueid:targetUniqueId) or from the current entry.
//
// Change numbers run without gaps. A gap right after the checkpoint that
// persists (the changelog was trimmed by age or size, or its entries
// deleted), a firstChangeNumber above it, or a lastChangeNumber below it
// stops the source with a *TrimmedError (errors.Is ErrTrimmed).
type Changelog struct {
	cfg    lang.SourceConfig
	opts   Options
	d      *dialer
	conn   *ldap.Conn
	base   string // cn=changelog
	fetch  *fetcher
	idAttr string // the script's identity attribute, "" = the record's or the entry's

	last      int64 // last change number reported; -1 = not positioned yet (start from the oldest)
	pending   []*ldap.Entry
	skipped   bool  // records were passed over since the last event
	onceUntil int64 // Options.Once: stop after this change number
	gapSince  time.Time
	gapGrace  time.Duration
	poll      time.Duration
	page      int64
	err       error // sticky fatal error; ErrClosed after Close

	wake       chan struct{}
	stopWake   context.CancelFunc
	wakeDone   sync.WaitGroup
	wakeActive bool

	link link      // the reader's connection, for health checks (lag.go)
	lag  *lagMeter // LagAt's own connections and cache (lag.go)
}

var (
	_ Source   = (*Changelog)(nil)
	_ LagMeter = (*Changelog)(nil)
	_ Linker   = (*Changelog)(nil)
)

// OpenChangelog opens a changelog source positioned after start.
func OpenChangelog(ctx context.Context, cfg lang.SourceConfig, start string, opts Options) (*Changelog, error) {
	rest, err := splitPosition("changelog", start)
	if err != nil {
		return nil, err
	}
	last := int64(-1)
	if rest != "" {
		if last, err = strconv.ParseInt(rest, 10, 64); err != nil || last < 0 {
			return nil, fmt.Errorf("%w: %q is not a change number", ErrBadPosition, start)
		}
	}
	d, err := newDialer(cfg, opts)
	if err != nil {
		return nil, err
	}
	sc, err := newScope(cfg.Base)
	if err != nil {
		return nil, err
	}
	c := &Changelog{
		cfg: cfg, opts: opts, d: d, base: "cn=changelog", last: last,
		idAttr:   cfg.Identity,
		gapGrace: 3 * time.Second,
		poll:     cfg.PollInterval,
		page:     int64(cfg.PageSize),
		wake:     make(chan struct{}, 1),
	}
	if c.poll <= 0 {
		c.poll = time.Second
	}
	if c.page <= 0 {
		c.page = 500
	}
	c.fetch = &fetcher{scope: sc, idAttr: cfg.Identity}
	conn, _, err := d.dial(ctx, d.timeout)
	if err != nil {
		return nil, err
	}
	c.conn = conn
	dse, err := rootDSE(conn, "firstChangeNumber", "lastChangeNumber", "changelog", "namingContexts", "supportedControl")
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("reading the root DSE: %w", err)
	}
	if v := dse.GetAttributeValue("changelog"); v != "" {
		c.base = v
	}
	if ncs := dse.GetAttributeValues("namingContexts"); len(ncs) > 0 {
		for _, nc := range ncs {
			if !strings.EqualFold(nc, c.base) {
				c.fetch.context = nc
				break
			}
		}
	}
	if dse.GetAttributeValue("lastChangeNumber") == "" && dse.GetAttributeValue("firstChangeNumber") == "" {
		if _, err := conn.Search(ldap.NewSearchRequest(c.base, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{"1.1"}, nil)); err != nil {
			conn.Close()
			return nil, fmt.Errorf("no changelog at %s (is the Retro Changelog plugin on?): %s", c.base, ldapReason(err))
		}
	}
	if opts.Once {
		c.onceUntil, _ = strconv.ParseInt(dse.GetAttributeValue("lastChangeNumber"), 10, 64)
	}
	c.lag = &lagMeter{d: d, measure: changelogLagFunc(c.base)}
	if !opts.NoWakeup && !opts.Once && supportsControl(dse, controlTypePersistentSearch) {
		wctx, cancel := context.WithCancel(context.Background())
		c.stopWake = cancel
		c.wakeActive = true
		c.wakeDone.Add(1)
		go c.wakeup(wctx)
	}
	return c, nil
}

// Close ends the source's connections.
func (c *Changelog) Close() error {
	c.err = ErrClosed
	if c.stopWake != nil {
		c.stopWake()
		c.wakeDone.Wait()
		c.stopWake = nil
	}
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
	return nil
}

// LagAt measures how far position (a "changelog:N" checkpoint) is behind
// the changelog's newest record; see Lag and LagMeter.
func (c *Changelog) LagAt(ctx context.Context, position string) (Lag, error) {
	return c.lag.lagAt(ctx, position)
}

// Link reports the reader's connection (lost while it reconnects).
func (c *Changelog) Link() LinkState { return c.link.state() }

// Position returns the checkpoint after the last event reported.
func (c *Changelog) Position() string {
	if c.last < 0 {
		return ""
	}
	return "changelog:" + strconv.FormatInt(c.last, 10)
}

// Next returns the next change; see Source.
func (c *Changelog) Next(ctx context.Context) (*Event, error) {
	if c.err != nil {
		return nil, c.err
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if c.conn == nil {
			conn, err := c.d.dialRetry(ctx, c.d.timeout, "changelog")
			if err != nil {
				return nil, c.fatal(err)
			}
			c.conn = conn
			c.link.up()
		}
		if len(c.pending) > 0 {
			ev, err := c.convert(ctx, c.pending[0])
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				if retryable(err) {
					c.lost(err)
					continue
				}
				return nil, c.fatal(err)
			}
			c.pending = c.pending[1:]
			if ev == nil {
				c.skipped = true
				continue
			}
			c.skipped = false
			return ev, nil
		}
		if c.skipped {
			c.skipped = false
			return &Event{Kind: EventCheckpoint, Position: c.Position()}, nil
		}
		n, err := c.read()
		if err != nil {
			if retryable(err) {
				c.lost(err)
				continue
			}
			return nil, c.fatal(err)
		}
		if n > 0 {
			continue
		}
		if c.opts.Once && (c.last >= c.onceUntil || c.onceUntil == 0) && c.gapSince.IsZero() {
			return nil, io.EOF
		}
		wait := c.poll
		if !c.gapSince.IsZero() {
			wait = min(wait, 250*time.Millisecond)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-c.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

func (c *Changelog) fatal(err error) error {
	if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		c.err = err
	}
	return err
}

func (c *Changelog) lost(err error) {
	c.d.log.Warn("ldap connection lost", "source", "changelog", "error", err.Error())
	c.link.down(err)
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// read reads the next window of records into pending and returns how many.
func (c *Changelog) read() (int, error) {
	dse, err := rootDSE(c.conn, "firstChangeNumber", "lastChangeNumber")
	if err != nil {
		return 0, err
	}
	first, _ := strconv.ParseInt(dse.GetAttributeValue("firstChangeNumber"), 10, 64)
	last, _ := strconv.ParseInt(dse.GetAttributeValue("lastChangeNumber"), 10, 64)
	if c.last < 0 {
		if last == 0 {
			return 0, nil // empty changelog: start with its first change, whenever it comes
		}
		c.last = max(first-1, 0)
	}
	if last < c.last {
		return 0, &TrimmedError{Checkpoint: c.last, First: first, Missing: c.last + 1}
	}
	if last == c.last {
		c.gapSince = time.Time{}
		return 0, nil
	}
	if first > c.last+1 {
		return 0, &TrimmedError{Checkpoint: c.last, First: first, Missing: c.last + 1}
	}
	hi := min(last, c.last+c.page)
	if c.opts.Once {
		hi = min(hi, c.onceUntil)
		if hi <= c.last {
			return 0, nil
		}
	}
	filter := fmt.Sprintf("(&(changeNumber>=%d)(changeNumber<=%d))", c.last+1, hi)
	res, err := c.conn.Search(ldap.NewSearchRequest(c.base, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 0, 0, false,
		filter, changelogAttrs, nil))
	if err != nil && !isNoSuchObject(err) {
		return 0, err
	}
	var recs []*ldap.Entry
	if res != nil {
		recs = res.Entries
	}
	num := func(e *ldap.Entry) int64 {
		n, _ := strconv.ParseInt(e.GetAttributeValue("changeNumber"), 10, 64)
		return n
	}
	slices.SortFunc(recs, func(a, b *ldap.Entry) int { return cmp.Compare(num(a), num(b)) })
	// keep the gapless run right after the checkpoint
	want := c.last + 1
	n := 0
	for _, r := range recs {
		if num(r) != want {
			break
		}
		want++
		n++
	}
	if n == 0 {
		// the next change number is missing although later ones exist
		if c.gapSince.IsZero() {
			c.gapSince = time.Now()
		}
		if time.Since(c.gapSince) >= c.gapGrace {
			return 0, &TrimmedError{Checkpoint: c.last, First: first, Missing: c.last + 1}
		}
		return 0, nil
	}
	c.gapSince = time.Time{}
	c.pending = append(c.pending, recs[:n]...)
	return n, nil
}

var changelogAttrs = []string{"changeNumber", "targetDN", "changeType", "changes", "newRDN", "deleteOldRDN",
	"newSuperior", "targetUniqueId", "targetEntryUUID", "changeTime", "ds-changelog-encrypted-password"}

// convert turns one changelog record into an event; nil when the change is
// outside the bases. It sets c.last.
func (c *Changelog) convert(ctx context.Context, r *ldap.Entry) (*Event, error) {
	number, err := strconv.ParseInt(r.GetAttributeValue("changeNumber"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("changelog entry %s has no valid changeNumber", r.DN)
	}
	rec, err := parseChangelogEntry(r)
	if err != nil {
		return nil, err
	}
	if rec.changesErr != nil {
		// the change is still applied (from the current entry); only the
		// list of changed attributes is unknown
		c.d.log.Warn("changelog: changed attributes unknown", "changeNumber", number, "error", rec.changesErr.Error())
	}
	newDN := rec.dn
	if rec.typ == lang.ModRDN {
		newDN = renamedDN(rec.dn, rec.newRDN, rec.newSuperior)
	}
	if !c.fetch.scope.contains(rec.dn) && !c.fetch.scope.contains(newDN) {
		c.last = number
		return nil, nil
	}
	id := rec.identity(c.idAttr)
	ch := &lang.Change{Type: rec.typ, DN: newDN, Changed: rec.changed}
	if rec.typ == lang.ModRDN {
		ch.OldDN = rec.dn
	}
	ev := &Event{Kind: EventChange, Change: ch, Identity: id}
	if ch.NewPassword, err = c.recordPassword(r, rec.typ); err != nil {
		// the change is still applied, without its password (password.go)
		c.d.log.Warn("changelog: the new password cannot be read", "changeNumber", number, "error", err.Error())
	}
	if c.fetch.idAttr == "" {
		c.fetch.idAttr = rec.idAttr
	}
	switch rec.typ {
	case lang.Add, lang.Modify, lang.ModRDN:
		e, err := c.fetch.current(ctx, c.conn, newDN, id)
		if err != nil {
			return nil, err
		}
		if e == nil {
			ev.Kind = EventDropped
			ev.Dropped = "the entry no longer exists"
			ch.Entry = lang.NewEntry(newDN, nil)
			break
		}
		ch.Entry = e
		if ch.DN != e.DN && rec.typ != lang.Add {
			// it moved again since: report where it is now
			ch.DN = e.DN
		}
		if id == "" {
			ev.Identity, _ = entryIdentity(e, c.idAttr)
		}
	case lang.Delete:
		ch.Entry = lang.NewEntry(rec.dn, nil)
		var e *lang.Entry
		if id != "" {
			e, err = c.fetch.byIdentity(c.conn, id)
		} else {
			e, err = c.fetch.byDN(c.conn, rec.dn)
		}
		if err != nil {
			return nil, err
		}
		if e != nil {
			ev.Kind = EventDropped
			ev.Dropped = "the entry exists again"
		}
	}
	c.last = number
	ev.Position = c.Position()
	return ev, nil
}

// changelogRecord is what a changelog entry says, values of changes left out.
type changelogRecord struct {
	typ         lang.ChangeType
	dn          string
	newRDN      string
	deleteOld   bool
	newSuperior string
	changed     []string
	uniqueID    string // targetUniqueId
	entryUUID   string // targetEntryUUID
	idAttr      string // attribute to search the identity by
	changesErr  error  // the changes value could not be read: Changed is unknown (nil)
}

func (r *changelogRecord) identity(attr string) string {
	switch {
	case strings.EqualFold(attr, "entryUUID") && r.entryUUID != "":
		return canonicalIdentity("entryUUID", r.entryUUID)
	case strings.EqualFold(attr, "nsUniqueId") && r.uniqueID != "":
		return canonicalIdentity("nsUniqueId", r.uniqueID)
	case attr == "" && r.uniqueID != "":
		return canonicalIdentity("nsUniqueId", r.uniqueID)
	case attr == "" && r.entryUUID != "":
		return canonicalIdentity("entryUUID", r.entryUUID)
	}
	return ""
}

// parseChangelogEntry reads a cn=changelog entry.
func parseChangelogEntry(e *ldap.Entry) (*changelogRecord, error) {
	num := e.GetAttributeValue("changeNumber")
	typ, ok := lang.ParseChangeType(e.GetAttributeValue("changeType"))
	if !ok {
		return nil, fmt.Errorf("changelog entry %s: unknown changeType %q", num, e.GetAttributeValue("changeType"))
	}
	r := &changelogRecord{
		typ:         typ,
		dn:          e.GetAttributeValue("targetDN"),
		newRDN:      e.GetAttributeValue("newRDN"),
		newSuperior: e.GetAttributeValue("newSuperior"),
		uniqueID:    e.GetAttributeValue("targetUniqueId"),
		entryUUID:   e.GetAttributeValue("targetEntryUUID"),
	}
	if r.dn == "" {
		return nil, fmt.Errorf("changelog entry %s has no targetDN", num)
	}
	switch strings.ToLower(e.GetAttributeValue("deleteOldRDN")) {
	case "true", "1", "yes":
		r.deleteOld = true
	}
	switch {
	case r.uniqueID != "":
		r.idAttr = "nsUniqueId"
	case r.entryUUID != "":
		r.idAttr = "entryUUID"
	}
	switch typ {
	case lang.Modify:
		r.changed, r.changesErr = changedAttrs(typ, e.GetRawAttributeValue("changes"))
	case lang.ModRDN:
		if r.newRDN == "" {
			return nil, fmt.Errorf("changelog entry %s: modrdn without newRDN", num)
		}
		r.changed = rdnChanged(r.dn, r.newRDN, r.deleteOld)
	}
	return r, nil
}

var unhashedPassword = regexp.MustCompile(`(?i)unhashed#user#password`)

// changedAttrs returns the names of the attributes a changes value (LDIF
// text: attribute lines for an add, modify blocks for a modify) touches,
// operational ones left out. 389-ds ends the text with a NUL and folds long
// lines; both are handled. The values are never returned, and a parse
// error reports only the line, so no value (a password) can leak.
func changedAttrs(typ lang.ChangeType, changes []byte) ([]string, error) {
	changes = bytes.TrimRight(changes, "\x00")
	if len(bytes.TrimSpace(changes)) == 0 {
		return nil, nil
	}
	// 389-ds logs a password change's cleartext as "unhashed#user#password",
	// a name LDIF does not allow: rename it (it is left out anyway)
	changes = unhashedPassword.ReplaceAll(changes, []byte("unhashed-user-password"))
	var buf bytes.Buffer
	buf.WriteString("dn: cn=changes\n")
	if typ == lang.Modify {
		buf.WriteString("changetype: modify\n")
	}
	buf.Write(changes)
	if changes[len(changes)-1] != '\n' {
		buf.WriteByte('\n')
	}
	rec, err := ldif.NewReader(&buf).Next()
	if err != nil {
		var le *ldif.Error
		if errors.As(err, &le) {
			return nil, fmt.Errorf("the changes attribute is not valid LDIF (line %d)", max(le.Line-2, 1))
		}
		return nil, errors.New("the changes attribute is not valid LDIF")
	}
	var out []string
	for _, m := range rec.Mods {
		if !isOperational(m.Attr) {
			out = appendName(out, m.Attr)
		}
	}
	for _, a := range rec.Attrs {
		if !isOperational(a.Name) {
			out = appendName(out, a.Name)
		}
	}
	return out, nil
}

// changelogStartPoint answers set-startpoint for a changelog.
func changelogStartPoint(ctx context.Context, cfg lang.SourceConfig, spec StartSpec, opts Options) (string, error) {
	d, err := newDialer(cfg, opts)
	if err != nil {
		return "", err
	}
	conn, _, err := d.dial(ctx, d.timeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	dse, err := rootDSE(conn, "firstChangeNumber", "lastChangeNumber", "changelog")
	if err != nil {
		return "", err
	}
	first, _ := strconv.ParseInt(dse.GetAttributeValue("firstChangeNumber"), 10, 64)
	last, _ := strconv.ParseInt(dse.GetAttributeValue("lastChangeNumber"), 10, 64)
	pos := func(n int64) string { return "changelog:" + strconv.FormatInt(max(n, 0), 10) }
	switch spec.Kind {
	case StartEnd:
		return pos(last), nil
	case StartChangeNumber:
		if spec.ChangeNumber < 1 {
			return "", fmt.Errorf("--change-number must be 1 or more")
		}
		if first > 0 && spec.ChangeNumber < first {
			return "", fmt.Errorf("change %d is no longer in the changelog (oldest: %d)", spec.ChangeNumber, first)
		}
		if spec.ChangeNumber > last+1 {
			return "", fmt.Errorf("change %d does not exist yet (newest: %d)", spec.ChangeNumber, last)
		}
		return pos(spec.ChangeNumber - 1), nil
	case StartRewind:
		base := dse.GetAttributeValue("changelog")
		if base == "" {
			base = "cn=changelog"
		}
		since := time.Now().Add(-spec.Rewind).UTC().Format("20060102150405Z")
		res, err := conn.SearchWithPaging(ldap.NewSearchRequest(base, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 0, 0, false,
			"(changeTime>="+since+")", []string{"changeNumber"}, nil), 500)
		if err != nil && !isNoSuchObject(err) {
			return "", fmt.Errorf("searching the changelog by changeTime: %s", ldapReason(err))
		}
		lowest := last + 1
		if res != nil {
			for _, e := range res.Entries {
				if n, err := strconv.ParseInt(e.GetAttributeValue("changeNumber"), 10, 64); err == nil && n < lowest {
					lowest = n
				}
			}
		}
		return pos(lowest - 1), nil
	}
	return "", unsupported("changelog", spec)
}

// controlTypePersistentSearch is draft-ietf-ldapext-psearch-03's control,
// which go-ldap does not have.
const controlTypePersistentSearch = "2.16.840.1.113730.3.4.3"

// persistentSearch is the persistent search request control: every change
// type, changes only, no entry change notifications.
type persistentSearch struct{}

func (persistentSearch) GetControlType() string { return controlTypePersistentSearch }
func (persistentSearch) String() string         { return "PersistentSearch" }
func (persistentSearch) Encode() *ber.Packet {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Control")
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, controlTypePersistentSearch, "Control Type"))
	p.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, true, "Criticality"))
	v := ber.Encode(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, nil, "Control Value")
	seq := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "PersistentSearch")
	seq.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 15, "changeTypes"))
	seq.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, true, "changesOnly"))
	seq.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, "returnECs"))
	v.AppendChild(seq)
	p.AppendChild(v)
	return p
}

// wakeup keeps a persistent search open on the changelog and pokes the
// poller whenever a record is added. It reconnects like the reader and
// gives up only when the server refuses the search itself.
func (c *Changelog) wakeup(ctx context.Context) {
	defer c.wakeDone.Done()
	for ctx.Err() == nil {
		conn, err := c.d.dialRetry(ctx, 0, "changelog wake-up")
		if err != nil {
			return
		}
		req := ldap.NewSearchRequest(c.base, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{"changeNumber"}, []ldap.Control{persistentSearch{}})
		r := conn.SearchAsync(ctx, req, 16)
		for r.Next() {
			if r.Entry() != nil {
				select {
				case c.wake <- struct{}{}:
				default:
				}
			}
		}
		err = r.Err()
		conn.Close()
		if ctx.Err() != nil {
			return
		}
		if err != nil && !retryable(err) {
			c.d.log.Warn("changelog persistent search refused; polling only", "error", ldapReason(err))
			return
		}
		if sleep(ctx, c.d.min) != nil {
			return
		}
	}
}

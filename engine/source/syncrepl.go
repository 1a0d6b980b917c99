package source

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/lang"
)

// Syncrepl reads an RFC 4533 Content Synchronization stream
// (refreshAndPersist): OpenLDAP's syncprov, and 389-ds's Content
// Synchronization plugin.
//
// Ordering: events come in the order the server sends them. In the refresh
// phase (catching up from the cookie, or the whole scope without one) that
// is the server's order, one message per changed entry, with the entry as it
// is now; in the persist phase it is the order of the changes. Changes to one
// entry are always in order.
//
// Position is "syncrepl:" plus the base64 of the sync cookie; events that
// the server sends without a cookie (all of the refresh phase) carry the
// previous one, so resuming replays them, which is harmless.
//
// Mapping: a syncState add is a lang.Add (an upsert: the refresh phase sends
// every changed entry as add); modify is a lang.Modify, or a lang.ModRDN
// with OldDN when the identity was last seen at another DN (the source keeps
// an identity → DN map, seeded through Options.KnownDN); delete is a
// lang.Delete. The identity is the syncUUID: entryUUID on OpenLDAP,
// nsUniqueId on 389-ds (canonicalIdentity makes it the same string the
// changelog source gives). syncIdSet with refreshDeletes=TRUE are deletes.
// A present phase (syncState present, syncIdSet with refreshDeletes=FALSE,
// ended by refreshPresent or syncDone), and a refresh without cookie (every
// entry is sent), end with an EventPresentSet. e-syncRefreshRequired makes
// the source start again without a cookie, so the present set after the full
// refresh tells the caller what was deleted.
type Syncrepl struct {
	cfg   lang.SourceConfig
	opts  Options
	d     *dialer
	base  string
	scope scope

	conn   *ldap.Conn
	stop   context.CancelFunc
	msgs   chan syncMsg
	wg     sync.WaitGroup
	cookie []byte
	known  map[string]string // identity -> DN last seen
	pw     *passwordTracker  // which entries' clear-text userPassword changed (password.go)

	initial      bool // this search started without a cookie
	refreshing   bool
	presentPhase bool
	present      map[string]struct{}
	queue        []*Event
	finished     bool // refreshOnly search done (Options.Once)
	err          error

	link link      // the search's connection, for health checks (lag.go)
	lag  *lagMeter // LagAt's own connections and cache (lag.go)
}

var (
	_ Source   = (*Syncrepl)(nil)
	_ LagMeter = (*Syncrepl)(nil)
	_ Linker   = (*Syncrepl)(nil)
)

type syncMsg struct {
	entry    *ldap.Entry
	controls []ldap.Control
	err      error
	done     bool
}

// OpenSyncrepl opens a syncrepl source positioned after start.
func OpenSyncrepl(ctx context.Context, cfg lang.SourceConfig, start string, opts Options) (*Syncrepl, error) {
	rest, err := splitPosition("syncrepl", start)
	if err != nil {
		return nil, err
	}
	cookie, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: the syncrepl cookie is not base64", ErrBadPosition)
	}
	d, err := newDialer(cfg, opts)
	if err != nil {
		return nil, err
	}
	sc, err := newScope(cfg.Base)
	if err != nil {
		return nil, err
	}
	s := &Syncrepl{cfg: cfg, opts: opts, d: d, scope: sc, cookie: cookie, known: map[string]string{}, pw: newPasswordTracker()}
	conn, _, err := d.dial(ctx, 0)
	if err != nil {
		return nil, err
	}
	s.base, err = searchBase(conn, sc)
	if err != nil {
		conn.Close()
		return nil, err
	}
	s.conn = conn
	s.lag = &lagMeter{d: d, measure: syncreplLagFunc(sc, s.base)}
	s.startSearch()
	return s, nil
}

// LagAt measures how far position (a "syncrepl:COOKIE" checkpoint) is
// behind the directory's newest change; see Lag and LagMeter.
func (s *Syncrepl) LagAt(ctx context.Context, position string) (Lag, error) {
	return s.lag.lagAt(ctx, position)
}

// Link reports the sync search's connection (lost while it reconnects).
func (s *Syncrepl) Link() LinkState { return s.link.state() }

// searchBase is the one subtree a sync search reads: the common suffix of
// the bases, or the server's first naming context.
func searchBase(conn *ldap.Conn, sc scope) (string, error) {
	if len(sc) == 0 {
		dse, err := rootDSE(conn, "namingContexts", "defaultNamingContext")
		if err != nil {
			return "", fmt.Errorf("reading the root DSE: %w", err)
		}
		// 389-ds names its Retro Changelog's backend as the default
		// naming context once the plugin is on: never the entries' one.
		if v := dse.GetAttributeValue("defaultNamingContext"); v != "" && !strings.EqualFold(v, "cn=changelog") &&
			!strings.EqualFold(v, "cn=accesslog") {
			return v, nil
		}
		for _, nc := range dse.GetAttributeValues("namingContexts") {
			if !strings.EqualFold(nc, "cn=changelog") && !strings.EqualFold(nc, "cn=accesslog") {
				return nc, nil
			}
		}
		return "", errors.New("the source has no base and the server names no naming context")
	}
	common := sc[0]
	for _, b := range sc[1:] {
		for !(common.EqualFold(b) || common.AncestorOfFold(b)) {
			if len(common.RDNs) <= 1 {
				return "", fmt.Errorf("the source bases %s and %s have no common suffix; a sync search reads one subtree", sc[0], b)
			}
			common = &ldap.DN{RDNs: common.RDNs[1:]}
		}
	}
	return common.String(), nil
}

// startSearch runs a refreshAndPersist (refreshOnly with Options.Once)
// search from the current cookie on the current connection.
func (s *Syncrepl) startSearch() {
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.msgs = make(chan syncMsg, 16)
	s.initial = len(s.cookie) == 0
	s.refreshing = true
	s.presentPhase = false
	s.present = map[string]struct{}{}
	mode := ldap.SyncRequestModeRefreshAndPersist
	if s.opts.Once {
		mode = ldap.SyncRequestModeRefreshOnly
	}
	req := ldap.NewSearchRequest(s.base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", fetchAttrs, nil)
	r := s.conn.Syncrepl(ctx, req, 64, mode, s.cookie, false)
	msgs := s.msgs
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		send := func(m syncMsg) bool {
			select {
			case msgs <- m:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for r.Next() {
			if !send(syncMsg{entry: r.Entry(), controls: r.Controls()}) {
				return
			}
		}
		send(syncMsg{err: r.Err(), done: true})
	}()
}

// Close ends the search and the connection.
func (s *Syncrepl) Close() error {
	s.err = ErrClosed
	s.stopSearch()
	return nil
}

func (s *Syncrepl) stopSearch() {
	if s.stop != nil {
		s.stop()
		s.stop = nil
	}
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
	s.wg.Wait()
}

// Position returns the checkpoint of the last cookie received.
func (s *Syncrepl) Position() string {
	if len(s.cookie) == 0 {
		return ""
	}
	return "syncrepl:" + base64.StdEncoding.EncodeToString(s.cookie)
}

// Next returns the next event; see Source.
func (s *Syncrepl) Next(ctx context.Context) (*Event, error) {
	if s.err != nil {
		return nil, s.err
	}
	for {
		if len(s.queue) > 0 {
			ev := s.queue[0]
			s.queue = s.queue[1:]
			return ev, nil
		}
		if s.finished {
			return nil, io.EOF
		}
		if s.conn == nil {
			conn, err := s.d.dialRetry(ctx, 0, "syncrepl")
			if err != nil {
				if ctx.Err() == nil {
					s.err = err
				}
				return nil, err
			}
			s.conn = conn
			s.link.up()
			s.startSearch()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case m := <-s.msgs:
			if m.done {
				if err := s.searchEnded(m.err); err != nil {
					return nil, err
				}
				continue
			}
			s.handle(m)
		}
	}
}

// searchEnded deals with the end of a sync search: done (refreshOnly),
// refresh required, connection lost, or a fatal error.
func (s *Syncrepl) searchEnded(err error) error {
	switch {
	case err == nil && s.opts.Once:
		s.finished = true
		s.stopSearch()
		return nil
	case ldap.IsErrorWithCode(err, ldap.LDAPResultSyncRefreshRequired):
		s.d.log.Warn("syncrepl: the server requires a full refresh; reloading without cookie")
		s.cookie = nil
		s.stopSearch()
		return nil
	case err == nil || retryable(err):
		reason := "the server ended the search"
		if err != nil {
			reason = err.Error()
		}
		s.d.log.Warn("ldap connection lost", "source", "syncrepl", "error", reason)
		s.link.down(errors.New(reason))
		s.stopSearch()
		return nil
	}
	s.stopSearch()
	s.err = fmt.Errorf("syncrepl search on %s: %s", s.base, ldapReason(err))
	if ldap.IsErrorWithCode(err, ldap.LDAPResultUnavailableCriticalExtension) {
		s.err = fmt.Errorf("syncrepl search on %s: the server does not offer RFC 4533 sync (syncprov overlay or Content Synchronization plugin): %s", s.base, ldapReason(err))
	}
	return s.err
}

// handle turns one message into queued events.
func (s *Syncrepl) handle(m syncMsg) {
	if m.entry != nil {
		for _, c := range m.controls {
			if st, ok := c.(*ldap.ControlSyncState); ok {
				s.entry(m.entry, st)
				return
			}
		}
		return // an entry without sync state: not part of the protocol; ignore
	}
	for _, c := range m.controls {
		switch v := c.(type) {
		case *ldap.ControlSyncInfo:
			s.info(v)
		case *ldap.ControlSyncDone:
			s.setCookie(v.Cookie)
			if !v.RefreshDeletes || s.initial {
				s.endPresent()
			} else {
				s.checkpoint()
			}
			s.refreshing = false
		}
	}
}

func (s *Syncrepl) setCookie(c []byte) {
	if len(c) > 0 {
		s.cookie = append([]byte(nil), c...)
	}
}

func (s *Syncrepl) entry(e *ldap.Entry, st *ldap.ControlSyncState) {
	id := st.EntryUUID.String()
	s.setCookie(st.Cookie)
	switch st.State {
	case ldap.SyncStatePresent:
		s.presentPhase = true
		s.present[id] = struct{}{}
		if e.DN != "" {
			s.known[id] = e.DN
		}
		return
	case ldap.SyncStateDelete:
		dn := e.DN
		if dn == "" {
			dn, _ = s.lastDN(id)
		}
		delete(s.known, id)
		delete(s.present, id)
		s.pw.forget(id)
		if dn != "" && !s.scope.contains(dn) {
			s.checkpoint()
			return
		}
		s.queue = append(s.queue, &Event{Kind: EventChange, Identity: id, Position: s.Position(),
			Change: &lang.Change{Type: lang.Delete, DN: dn, Entry: lang.NewEntry(dn, nil)}})
		return
	}
	ch := &lang.Change{Type: lang.Modify, DN: e.DN, Entry: toEntry(e)}
	if st.State == ldap.SyncStateAdd {
		ch.Type = lang.Add
	}
	old, known := s.lastDN(id)
	if known && old != e.DN && NormalizeDN(old) != NormalizeDN(e.DN) { // (parsed only when spelled apart)
		ch.Type = lang.ModRDN
		ch.OldDN = old
	}
	ch.NewPassword = s.pw.observe(id, e.GetAttributeValues("userPassword"), !known)
	s.known[id] = e.DN
	if s.refreshing {
		s.present[id] = struct{}{}
	}
	if !s.scope.contains(e.DN) && (ch.OldDN == "" || !s.scope.contains(ch.OldDN)) {
		s.checkpoint()
		return
	}
	s.queue = append(s.queue, &Event{Kind: EventChange, Identity: id, Position: s.Position(), Change: ch})
}

func (s *Syncrepl) lastDN(id string) (string, bool) {
	if dn, ok := s.known[id]; ok {
		return dn, true
	}
	if s.opts.KnownDN != nil {
		return s.opts.KnownDN(id)
	}
	return "", false
}

func (s *Syncrepl) info(v *ldap.ControlSyncInfo) {
	switch {
	case v.NewCookie != nil:
		s.setCookie(v.NewCookie.Cookie)
		s.checkpoint()
	case v.RefreshPresent != nil:
		s.setCookie(v.RefreshPresent.Cookie)
		s.endPresent()
		if v.RefreshPresent.RefreshDone {
			s.refreshing = false
		}
	case v.RefreshDelete != nil:
		s.setCookie(v.RefreshDelete.Cookie)
		if v.RefreshDelete.RefreshDone {
			if s.initial || s.presentPhase {
				s.endPresent()
			} else {
				s.checkpoint()
			}
			s.refreshing = false
		} else {
			s.checkpoint()
		}
	case v.SyncIdSet != nil:
		s.setCookie(v.SyncIdSet.Cookie)
		for _, u := range v.SyncIdSet.SyncUUIDs {
			id := u.String()
			if v.SyncIdSet.RefreshDeletes {
				dn, _ := s.lastDN(id)
				delete(s.known, id)
				s.queue = append(s.queue, &Event{Kind: EventChange, Identity: id, Position: s.Position(),
					Change: &lang.Change{Type: lang.Delete, DN: dn, Entry: lang.NewEntry(dn, nil)}})
			} else {
				s.presentPhase = true
				s.present[id] = struct{}{}
			}
		}
		if v.SyncIdSet.RefreshDeletes && len(s.queue) > 0 {
			s.queue[len(s.queue)-1].Position = s.Position()
		}
	}
}

// endPresent reports the present set gathered since the refresh began.
func (s *Syncrepl) endPresent() {
	ids := make([]string, 0, len(s.present))
	for id := range s.present {
		ids = append(ids, id)
	}
	for id := range s.known {
		if _, ok := s.present[id]; !ok {
			delete(s.known, id)
		}
	}
	s.queue = append(s.queue, &Event{Kind: EventPresentSet, Identities: ids, Position: s.Position()})
	s.present = map[string]struct{}{}
	s.presentPhase = false
	s.initial = false
}

func (s *Syncrepl) checkpoint() {
	if pos := s.Position(); pos != "" {
		s.queue = append(s.queue, &Event{Kind: EventCheckpoint, Position: pos})
	}
}

// syncreplStartPoint answers set-startpoint for syncrepl: --end runs a
// refreshOnly search without a cookie, asking for no attributes, and keeps
// the final cookie.
func syncreplStartPoint(ctx context.Context, cfg lang.SourceConfig, spec StartSpec, opts Options) (string, error) {
	if spec.Kind != StartEnd {
		return "", unsupported("syncrepl", spec)
	}
	d, err := newDialer(cfg, opts)
	if err != nil {
		return "", err
	}
	sc, err := newScope(cfg.Base)
	if err != nil {
		return "", err
	}
	conn, _, err := d.dial(ctx, 0)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	base, err := searchBase(conn, sc)
	if err != nil {
		return "", err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"1.1"}, nil)
	r := conn.Syncrepl(sctx, req, 64, ldap.SyncRequestModeRefreshOnly, nil, false)
	var cookie []byte
	keep := func(c []byte) {
		if len(c) > 0 {
			cookie = c
		}
	}
	for r.Next() {
		for _, c := range r.Controls() {
			switch v := c.(type) {
			case *ldap.ControlSyncState:
				keep(v.Cookie)
			case *ldap.ControlSyncDone:
				keep(v.Cookie)
			case *ldap.ControlSyncInfo:
				switch {
				case v.NewCookie != nil:
					keep(v.NewCookie.Cookie)
				case v.RefreshDelete != nil:
					keep(v.RefreshDelete.Cookie)
				case v.RefreshPresent != nil:
					keep(v.RefreshPresent.Cookie)
				case v.SyncIdSet != nil:
					keep(v.SyncIdSet.Cookie)
				}
			}
		}
	}
	if err := r.Err(); err != nil {
		return "", fmt.Errorf("syncrepl search on %s: %s", base, ldapReason(err))
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if len(cookie) == 0 {
		return "", errors.New("the server sent no sync cookie")
	}
	return "syncrepl:" + base64.StdEncoding.EncodeToString(cookie), nil
}

package source

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/lang"
)

// DirSync reads Active Directory's DirSync control
// (1.2.840.113556.1.4.841) with go-ldap's (*Conn).DirSync, polling every
// cfg.PollInterval (default 1s).
//
// Ordering: DirSync returns changed objects in the server's (USN) order and
// reports each object once per round with its changes merged, so the order
// of changes to one entry holds, but several changes to one entry between
// two rounds arrive as one event.
//
// Position is "dirsync:" plus the base64 of the DirSync cookie. The cookie
// only moves at the end of a round: every event of a round but its last
// carries the previous cookie, so resuming replays the round.
//
// Mapping: an object with isDeleted=TRUE (a tombstone under CN=Deleted
// Objects) is a lang.Delete. Any other object is read again by
// <GUID=...> (DirSync returns only the changed attributes) and is a
// lang.Add when its identity is new to the source (and to Options.KnownDN),
// a lang.ModRDN with OldDN when it was last seen at another DN, else a
// lang.Modify; Changed lists the attributes DirSync returned. The identity
// is objectGUID in its textual form. An object gone by the time it is read
// is EventDropped. The search covers the domain's naming context (DirSync
// requires a naming-context root) and changes outside cfg.Base are passed
// over. Without replication rights the bind account gets the error
// insufficientAccessRights: use an account with "Replicating Directory
// Changes".
//
// Tested by unit tests of the conversion, and against a Samba AD DC by
// TestDirSyncSamba here and the end-to-end tests of engine and
// cmd/scimsync, against the DC that .ci/samba.sh starts for every CI run
// (required under SCIMSYNC_REQUIRE_SERVERS): Samba binds the fixed port
// 389, so it needs root (the tests skip without it, saying so) and one
// instance per network namespace.
type DirSync struct {
	cfg    lang.SourceConfig
	opts   Options
	d      *dialer
	conn   *ldap.Conn
	scope  scope
	base   string
	cookie []byte
	known  map[string]string
	poll   time.Duration
	queue  []*Event
	caught bool // Options.Once: a round returned nothing more
	err    error
	link   link // the connection, for health checks (lag.go)
}

var (
	_ Source = (*DirSync)(nil)
	_ Linker = (*DirSync)(nil)
)

// Link reports the connection (lost while it reconnects). DirSync does not
// measure its lag: see Lag.
func (s *DirSync) Link() LinkState { return s.link.state() }

// OpenDirSync opens a DirSync source positioned after start.
func OpenDirSync(ctx context.Context, cfg lang.SourceConfig, start string, opts Options) (*DirSync, error) {
	rest, err := splitPosition("dirsync", start)
	if err != nil {
		return nil, err
	}
	cookie, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: the DirSync cookie is not base64", ErrBadPosition)
	}
	d, err := newDialer(cfg, opts)
	if err != nil {
		return nil, err
	}
	sc, err := newScope(cfg.Base)
	if err != nil {
		return nil, err
	}
	s := &DirSync{cfg: cfg, opts: opts, d: d, scope: sc, cookie: cookie, known: map[string]string{}, poll: cfg.PollInterval}
	if s.poll <= 0 {
		s.poll = time.Second
	}
	conn, _, err := d.dial(ctx, d.timeout)
	if err != nil {
		return nil, err
	}
	s.conn = conn
	if s.base, err = namingContext(conn); err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

// namingContext is the domain's naming context (defaultNamingContext).
func namingContext(conn *ldap.Conn) (string, error) {
	dse, err := rootDSE(conn, "defaultNamingContext", "namingContexts", "supportedControl")
	if err != nil {
		return "", fmt.Errorf("reading the root DSE: %w", err)
	}
	if !supportsControl(dse, ldap.ControlTypeDirSync) {
		return "", fmt.Errorf("the server does not offer DirSync (%s); is it Active Directory or Samba AD?", ldap.ControlTypeDirSync)
	}
	if v := dse.GetAttributeValue("defaultNamingContext"); v != "" {
		return v, nil
	}
	if v := dse.GetAttributeValue("namingContexts"); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("the server names no naming context")
}

// Close ends the connection.
func (s *DirSync) Close() error {
	s.err = ErrClosed
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
	return nil
}

// Position returns the checkpoint after the last round read.
func (s *DirSync) Position() string {
	if len(s.cookie) == 0 {
		return ""
	}
	return "dirsync:" + base64.StdEncoding.EncodeToString(s.cookie)
}

// Next returns the next event; see Source.
func (s *DirSync) Next(ctx context.Context) (*Event, error) {
	if s.err != nil {
		return nil, s.err
	}
	for {
		if len(s.queue) > 0 {
			ev := s.queue[0]
			s.queue = s.queue[1:]
			return ev, nil
		}
		if s.caught && s.opts.Once {
			return nil, io.EOF
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if s.conn == nil {
			conn, err := s.d.dialRetry(ctx, s.d.timeout, "dirsync")
			if err != nil {
				if ctx.Err() == nil {
					s.err = err
				}
				return nil, err
			}
			s.conn = conn
			s.link.up()
		}
		more, err := s.round(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if retryable(err) {
				s.d.log.Warn("ldap connection lost", "source", "dirsync", "error", err.Error())
				s.link.down(err)
				s.conn.Close()
				s.conn = nil
				continue
			}
			s.err = fmt.Errorf("dirsync on %s: %s", s.base, ldapReason(err))
			return nil, s.err
		}
		if more || len(s.queue) > 0 {
			continue
		}
		s.caught = true
		if s.opts.Once {
			continue
		}
		if err := sleep(ctx, s.poll); err != nil {
			return nil, err
		}
	}
}

// round runs one DirSync search and queues its events; more is the
// server's "more data" flag.
func (s *DirSync) round(ctx context.Context) (more bool, err error) {
	req := ldap.NewSearchRequest(s.base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(|(objectClass=user)(objectClass=group)(objectClass=contact))", []string{"*"}, nil)
	res, err := s.conn.DirSync(req, 0, 0, s.cookie)
	if err != nil {
		return false, err
	}
	prev := s.Position()
	var next []byte
	if ctl := ldap.FindControl(res.Controls, ldap.ControlTypeDirSync); ctl != nil {
		if ds, ok := ctl.(*ldap.ControlDirSync); ok {
			next = ds.Cookie
			more = ds.Flags != 0
		}
	}
	var evs []*Event
	for _, e := range res.Entries {
		ev, err := s.convert(ctx, e)
		if err != nil {
			return false, err
		}
		if ev != nil {
			ev.Position = prev
			evs = append(evs, ev)
		}
	}
	if len(next) > 0 {
		s.cookie = append([]byte(nil), next...)
	}
	if len(evs) > 0 {
		evs[len(evs)-1].Position = s.Position()
	} else if s.Position() != prev {
		evs = append(evs, &Event{Kind: EventCheckpoint, Position: s.Position()})
	}
	s.queue = append(s.queue, evs...)
	return more, nil
}

// convert turns one DirSync result into an event; nil when out of scope.
func (s *DirSync) convert(ctx context.Context, e *ldap.Entry) (*Event, error) {
	raw := e.GetRawAttributeValue("objectGUID")
	id := ""
	if len(raw) == 16 {
		id = canonicalIdentity("objectGUID", string(raw))
	}
	ev, fetchDN := dirsyncEvent(e, id, s.lastDN)
	if ev == nil {
		return nil, nil
	}
	if ev.Change.Type == lang.Delete {
		delete(s.known, id)
		return ev, nil
	}
	if !s.scope.contains(ev.Change.DN) && (ev.Change.OldDN == "" || !s.scope.contains(ev.Change.OldDN)) {
		s.known[id] = ev.Change.DN
		return nil, nil
	}
	f := &fetcher{}
	cur, err := f.byDN(s.conn, fetchDN)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cur == nil {
		ev.Kind = EventDropped
		ev.Dropped = "the entry no longer exists"
		ev.Change.Entry = lang.NewEntry(ev.Change.DN, nil)
		return ev, nil
	}
	ev.Change.Entry = cur
	s.known[id] = cur.DN
	return ev, nil
}

func (s *DirSync) lastDN(id string) (string, bool) {
	if dn, ok := s.known[id]; ok {
		return dn, true
	}
	if s.opts.KnownDN != nil {
		return s.opts.KnownDN(id)
	}
	return "", false
}

// dirsyncEvent maps one DirSync result (only changed attributes, plus
// objectGUID and instanceType) to an event without entry, and the DN to read
// the current entry at (<GUID=hex>, which AD resolves wherever the object
// is).
func dirsyncEvent(e *ldap.Entry, id string, lastDN func(string) (string, bool)) (*Event, string) {
	if id == "" {
		return nil, ""
	}
	var changed []string
	for _, a := range e.Attributes {
		if !isOperational(a.Name) && !strings.EqualFold(a.Name, "isDeleted") {
			changed = appendName(changed, a.Name)
		}
	}
	if strings.EqualFold(e.GetAttributeValue("isDeleted"), "TRUE") {
		dn, ok := lastDN(id)
		if !ok {
			dn = e.DN
		}
		return &Event{Kind: EventChange, Identity: id,
			Change: &lang.Change{Type: lang.Delete, DN: dn, Entry: lang.NewEntry(dn, nil)}}, ""
	}
	ch := &lang.Change{Type: lang.Add, DN: e.DN, Changed: changed}
	if old, ok := lastDN(id); ok {
		ch.Type = lang.Modify
		if NormalizeDN(old) != NormalizeDN(e.DN) {
			ch.Type = lang.ModRDN
			ch.OldDN = old
		}
	}
	guid := e.GetRawAttributeValue("objectGUID")
	return &Event{Kind: EventChange, Identity: id, Change: ch}, fmt.Sprintf("<GUID=%x>", guid)
}

// dirsyncStartPoint answers set-startpoint for DirSync: --end runs rounds
// asking for objectGUID only until the server has nothing more.
func dirsyncStartPoint(ctx context.Context, cfg lang.SourceConfig, spec StartSpec, opts Options) (string, error) {
	if spec.Kind != StartEnd {
		return "", unsupported("dirsync", spec)
	}
	d, err := newDialer(cfg, opts)
	if err != nil {
		return "", err
	}
	conn, _, err := d.dial(ctx, d.timeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	base, err := namingContext(conn)
	if err != nil {
		return "", err
	}
	var cookie []byte
	for range 100000 {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{"objectGUID"}, nil)
		res, err := conn.DirSync(req, 0, 0, cookie)
		if err != nil {
			return "", fmt.Errorf("dirsync on %s: %s", base, ldapReason(err))
		}
		ctl, _ := ldap.FindControl(res.Controls, ldap.ControlTypeDirSync).(*ldap.ControlDirSync)
		if ctl == nil || len(ctl.Cookie) == 0 {
			return "", fmt.Errorf("the server sent no DirSync cookie")
		}
		cookie = ctl.Cookie
		if ctl.Flags == 0 {
			return "dirsync:" + base64.StdEncoding.EncodeToString(cookie), nil
		}
	}
	return "", fmt.Errorf("DirSync did not finish after 100000 rounds")
}

package source

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/lang"
)

// LagUnknown is Lag.Changes when the source can tell how old its position
// is but not how many changes lie after it (syncrepl without a readable
// accesslog).
const LagUnknown = -1

// Lag is how far a position (a checkpoint) is behind the directory's
// newest change, as the directory tells it: it is read from the directory,
// never counted by the engine, so it also covers changes the engine has
// not seen at all.
//
// What each kind can tell:
//
//   - changelog: Changes is lastChangeNumber minus the checkpoint's change
//     number (every change in the changelog, in the bases or not); Seconds
//     is the age of the oldest change not read (the changeTime of the record
//     after the checkpoint), 0 when none is.
//   - syncrepl on OpenLDAP with a readable accesslog (a naming context
//     cn=accesslog): Changes counts the successful writes under the sync
//     base logged with a CSN newer than the cookie's (at most LagCountLimit;
//     that value means "that many or more"); Seconds is the age of the
//     oldest of them, 0 when there is none.
//   - syncrepl on OpenLDAP without it: Changes is LagUnknown; Seconds is the
//     time from the cookie's CSN to the database's contextCSN (its newest
//     change), 0 when they are equal. That span equals the oldest unread
//     change's age under steady traffic, over-states it right after an idle
//     spell, and counts changes outside the sync base when the base is below
//     the database suffix.
//   - syncrepl on 389-ds (Content Synchronization): the cookie ends with a
//     Retro Changelog change number, so the lag is the changelog's.
//   - dirsync and ldif: not measured (ErrLagUnsupported). A DirSync cookie
//     is opaque by specification (MS-ADTS 3.1.1.3.4.1.3); its highest USN
//     sits at an offset known only from Samba's reverse-engineered layout,
//     which no test server here can confirm. An LDIF file would have to be
//     read to its end to count the records left.
type Lag struct {
	Changes int64   // changes after the position; LagUnknown when the source cannot count them
	Seconds float64 // see above; never negative
}

// LagCountLimit bounds the accesslog search that counts a syncrepl lag, so
// that measuring a large backlog stays one small search.
const LagCountLimit = 1000

// ErrLagUnsupported means the source kind cannot tell its lag.
var ErrLagUnsupported = errors.New("this kind of source does not tell its lag")

// ErrLagNoPosition means there is no checkpoint to measure from: the first
// run reads the whole scope.
var ErrLagNoPosition = errors.New("no checkpoint yet: the first run reads the whole scope")

// LagMeter is a source that can measure how far a checkpoint of its own
// kind is behind the directory. LagAt is safe to call while another
// goroutine reads the source with Next: it measures on a short-lived
// connection of its own (never the change stream's), within a few seconds,
// and answers from its last measure for LagCache, whatever the position,
// so a probe scraped every second costs the directory one measure per
// LagCache.
type LagMeter interface {
	LagAt(ctx context.Context, position string) (Lag, error)
}

// LagCache is how long a LagMeter answers from its last measure (for any
// position).
const LagCache = 5 * time.Second

// lagTimeout bounds a measure: the dial, the bind and each search.
const lagTimeout = 3 * time.Second

// Unwrapper is a source that wraps another (the metrics' counting
// wrapper): LagOf and LinkOf look through it.
type Unwrapper interface{ Unwrap() Source }

// unwrap returns the innermost source.
func unwrap(src Source) Source {
	for i := 0; i < 8; i++ {
		u, ok := src.(Unwrapper)
		if !ok {
			break
		}
		src = u.Unwrap()
	}
	return src
}

// LagOf measures position against src's directory (ErrLagUnsupported when
// the source cannot tell).
func LagOf(ctx context.Context, src Source, position string) (Lag, error) {
	if m, ok := unwrap(src).(LagMeter); ok {
		return m.LagAt(ctx, position)
	}
	return Lag{}, ErrLagUnsupported
}

// MeasureLag measures position (a checkpoint of cfg's kind) against the
// directory cfg describes, on a connection of its own that it closes: what
// `scimsync status` shows when run is not running.
func MeasureLag(ctx context.Context, cfg lang.SourceConfig, position string, opts Options) (Lag, error) {
	var measure lagFunc
	switch cfg.Kind {
	case "changelog":
		measure = changelogLagFunc("")
	case "syncrepl":
		sc, err := newScope(cfg.Base)
		if err != nil {
			return Lag{}, err
		}
		measure = syncreplLagFunc(sc, "")
	default:
		return Lag{}, fmt.Errorf("a %s source: %w", cfg.Kind, ErrLagUnsupported)
	}
	d, err := newDialer(cfg, opts)
	if err != nil {
		return Lag{}, err
	}
	m := &lagMeter{d: d, measure: measure}
	return m.measureNow(ctx, position, time.Now())
}

// lagFunc measures position on conn at now.
type lagFunc func(conn *ldap.Conn, position string, now time.Time) (Lag, error)

// lagMeter measures a source's lag on short-lived connections of its own,
// one measure at a time, answering from its last measure for every
// (LagCache when 0).
type lagMeter struct {
	d       *dialer
	measure lagFunc
	every   time.Duration

	mu  sync.Mutex
	at  time.Time // when the cached result was measured
	lag Lag
	err error
}

// lagAt answers from the last measure while it is fresh, whatever the
// position: on a busy stream the checkpoint moves with every change, and
// a cache keyed by position would measure at every scrape. The answer is
// thus the lag as it was at most every ago.
func (m *lagMeter) lagAt(ctx context.Context, position string) (Lag, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	every := m.every
	if every <= 0 {
		every = LagCache
	}
	now := time.Now()
	if !m.at.IsZero() && now.Sub(m.at) < every {
		return m.lag, m.err
	}
	m.lag, m.err = m.measureNow(ctx, position, now)
	m.at = now
	return m.lag, m.err
}

func (m *lagMeter) measureNow(ctx context.Context, position string, now time.Time) (Lag, error) {
	ctx, cancel := context.WithTimeout(ctx, lagTimeout)
	defer cancel()
	d := *m.d
	d.timeout = min(d.timeout, lagTimeout)
	conn, _, err := d.dial(ctx, d.timeout)
	if err != nil {
		return Lag{}, err
	}
	defer conn.Close()
	return m.measure(conn, position, now)
}

// changelogLagFunc measures a "changelog:N" position; base is the
// changelog's DN ("" = as the root DSE names it).
func changelogLagFunc(base string) lagFunc {
	return func(conn *ldap.Conn, position string, now time.Time) (Lag, error) {
		rest, err := splitPosition("changelog", position)
		if err != nil {
			return Lag{}, err
		}
		cp := int64(-1)
		if rest != "" {
			if cp, err = strconv.ParseInt(rest, 10, 64); err != nil || cp < 0 {
				return Lag{}, fmt.Errorf("%w: %q is not a change number", ErrBadPosition, position)
			}
		}
		return changelogLag(conn, base, cp, now)
	}
}

// changelogLag compares change number cp (-1: none read, the source starts
// at the oldest) with the root DSE's lastChangeNumber, and reads the
// changeTime of the first change after cp.
func changelogLag(conn *ldap.Conn, base string, cp int64, now time.Time) (Lag, error) {
	dse, err := rootDSE(conn, "firstChangeNumber", "lastChangeNumber", "changelog")
	if err != nil {
		return Lag{}, fmt.Errorf("reading the root DSE: %s", ldapReason(err))
	}
	if base == "" {
		base = dse.GetAttributeValue("changelog")
	}
	if base == "" {
		base = "cn=changelog"
	}
	first, _ := strconv.ParseInt(dse.GetAttributeValue("firstChangeNumber"), 10, 64)
	last, err := strconv.ParseInt(dse.GetAttributeValue("lastChangeNumber"), 10, 64)
	if err != nil && dse.GetAttributeValue("lastChangeNumber") != "" {
		return Lag{}, fmt.Errorf("the root DSE's lastChangeNumber %q is not a number", dse.GetAttributeValue("lastChangeNumber"))
	}
	if last == 0 {
		return Lag{}, nil // an empty changelog
	}
	if cp < 0 {
		cp = max(first-1, 0)
	}
	switch {
	case last < cp:
		return Lag{}, &TrimmedError{Checkpoint: cp, First: first, Missing: cp + 1}
	case last == cp:
		return Lag{}, nil
	}
	next := max(cp+1, first)
	res, err := conn.Search(ldap.NewSearchRequest(base, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 1, int(lagTimeout/time.Second), false,
		fmt.Sprintf("(changeNumber=%d)", next), []string{"changeTime"}, nil))
	if err != nil && !isNoSuchObject(err) {
		return Lag{}, fmt.Errorf("reading change %d: %s", next, ldapReason(err))
	}
	if res == nil || len(res.Entries) == 0 {
		return Lag{}, fmt.Errorf("change %d is not in %s (trimmed?)", next, base)
	}
	t, err := parseLDAPTime(res.Entries[0].GetAttributeValue("changeTime"))
	if err != nil {
		return Lag{}, fmt.Errorf("change %d: changeTime: %w", next, err)
	}
	return Lag{Changes: last - cp, Seconds: max(now.Sub(t).Seconds(), 0)}, nil
}

// syncreplLagFunc measures a "syncrepl:COOKIE" position; base is the sync
// search's base ("" = found as the source finds it, from sc).
func syncreplLagFunc(sc scope, base string) lagFunc {
	var once sync.Mutex
	return func(conn *ldap.Conn, position string, now time.Time) (Lag, error) {
		rest, err := splitPosition("syncrepl", position)
		if err != nil {
			return Lag{}, err
		}
		cookie, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return Lag{}, fmt.Errorf("%w: the syncrepl cookie is not base64", ErrBadPosition)
		}
		if len(cookie) == 0 {
			return Lag{}, ErrLagNoPosition
		}
		once.Lock()
		if base == "" {
			if base, err = searchBase(conn, sc); err != nil {
				once.Unlock()
				return Lag{}, err
			}
		}
		b := base
		once.Unlock()
		return syncreplLag(conn, b, string(cookie), now)
	}
}

// syncreplLag measures an RFC 4533 cookie: OpenLDAP's (rid=NNN,csn=CSN[;CSN...])
// against the accesslog or contextCSN, 389-ds's (...#N) against its changelog.
func syncreplLag(conn *ldap.Conn, base, cookie string, now time.Time) (Lag, error) {
	csns := cookieCSNs(cookie)
	if len(csns) == 0 {
		if n, ok := cookieChangeNumber(cookie); ok {
			return changelogLag(conn, "", n, now)
		}
		return Lag{}, errors.New("the sync cookie carries no CSN and no change number")
	}
	dse, err := rootDSE(conn, "namingContexts")
	if err != nil {
		return Lag{}, fmt.Errorf("reading the root DSE: %s", ldapReason(err))
	}
	suffix, accesslog := "", ""
	bdn, err := ldap.ParseDN(base)
	if err != nil {
		return Lag{}, fmt.Errorf("sync base %q: %w", base, err)
	}
	for _, nc := range dse.GetAttributeValues("namingContexts") {
		if strings.EqualFold(nc, "cn=accesslog") {
			accesslog = nc
			continue
		}
		if ndn, err := ldap.ParseDN(nc); err == nil && (ndn.EqualFold(bdn) || ndn.AncestorOfFold(bdn)) {
			suffix = nc
		}
	}
	if accesslog != "" {
		if lag, ok, err := accesslogLag(conn, accesslog, base, csns, now); err != nil || ok {
			return lag, err
		}
	}
	if suffix == "" {
		suffix = base
	}
	res, err := conn.Search(ldap.NewSearchRequest(suffix, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, int(lagTimeout/time.Second), false,
		"(objectClass=*)", []string{"contextCSN"}, nil))
	if err != nil {
		return Lag{}, fmt.Errorf("reading the contextCSN of %s: %s", suffix, ldapReason(err))
	}
	if len(res.Entries) == 0 || len(res.Entries[0].GetAttributeValues("contextCSN")) == 0 {
		return Lag{}, fmt.Errorf("%s has no readable contextCSN", suffix)
	}
	var behind time.Duration
	newestCookie := ""
	for _, c := range csns {
		newestCookie = max(newestCookie, c)
	}
	for _, ctx := range res.Entries[0].GetAttributeValues("contextCSN") {
		mine, ok := csns[csnSID(ctx)]
		if !ok {
			mine = newestCookie
		}
		if ctx <= mine {
			continue
		}
		t1, err1 := csnTime(ctx)
		t0, err0 := csnTime(mine)
		if err1 != nil || err0 != nil {
			return Lag{}, fmt.Errorf("unreadable CSN (%q, %q)", ctx, mine)
		}
		behind = max(behind, t1.Sub(t0))
	}
	return Lag{Changes: LagUnknown, Seconds: behind.Seconds()}, nil
}

// accesslogLag counts, in OpenLDAP's accesslog, the successful writes under
// base whose CSN (the log entry's entryCSN is the write's) is newer than
// the cookie's CSN for the same server id. ok is false when the accesslog
// cannot be read by this account: the caller falls back to contextCSN.
func accesslogLag(conn *ldap.Conn, accesslog, base string, csns map[string]string, now time.Time) (lag Lag, ok bool, err error) {
	// Reading the log's root entry tells whether this account may read
	// the log (OpenLDAP answers noSuchObject to one that may not). Its
	// contextCSN, when there is one, is the newest write logged: at or
	// below the cookie's, nothing is newer, without searching.
	res, err := conn.Search(ldap.NewSearchRequest(accesslog, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, int(lagTimeout/time.Second), false,
		"(objectClass=*)", []string{"contextCSN"}, nil))
	if err != nil || len(res.Entries) == 0 {
		return Lag{}, false, nil
	}
	oldestCookie := ""
	for _, c := range csns {
		if oldestCookie == "" || c < oldestCookie {
			oldestCookie = c
		}
	}
	if logCSNs := res.Entries[0].GetAttributeValues("contextCSN"); len(logCSNs) > 0 {
		newer := false
		for _, c := range logCSNs {
			if mine, ok := csns[csnSID(c)]; !ok || c > mine {
				newer = true
			}
		}
		if !newer {
			return Lag{}, true, nil
		}
	}
	filter := "(&(objectClass=auditWriteObject)(reqResult=0)(entryCSN>=" + ldap.EscapeFilter(oldestCookie) + ")" +
		"(reqDN:dnSubtreeMatch:=" + ldap.EscapeFilter(base) + "))"
	res, err = conn.Search(ldap.NewSearchRequest(accesslog, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, LagCountLimit+1,
		int(lagTimeout/time.Second), false, filter, []string{"entryCSN"}, nil))
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		return Lag{}, true, fmt.Errorf("searching %s: %s", accesslog, ldapReason(err))
	}
	oldest := ""
	var n int64
	if res != nil {
		for _, e := range res.Entries {
			c := e.GetAttributeValue("entryCSN")
			if mine, ok := csns[csnSID(c)]; ok && c <= mine {
				continue
			}
			n++
			if oldest == "" || c < oldest {
				oldest = c
			}
		}
	}
	if n == 0 {
		return Lag{}, true, nil
	}
	t, err := csnTime(oldest)
	if err != nil {
		return Lag{}, true, fmt.Errorf("unreadable CSN %q in %s", oldest, accesslog)
	}
	return Lag{Changes: min(n, LagCountLimit), Seconds: max(now.Sub(t).Seconds(), 0)}, true, nil
}

// cookieCSNs reads the CSNs of an OpenLDAP sync cookie
// ("rid=000,sid=001,csn=CSN;CSN"), by server id (a CSN's third field).
func cookieCSNs(cookie string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(cookie, ",") {
		v, ok := strings.CutPrefix(part, "csn=")
		if !ok {
			continue
		}
		for _, c := range strings.Split(v, ";") {
			if _, err := csnTime(c); err == nil {
				out[csnSID(c)] = c
			}
		}
	}
	return out
}

// cookieChangeNumber reads 389-ds's Content Synchronization cookie
// ("host:port#binddn:base:filter#N"), N a Retro Changelog change number.
func cookieChangeNumber(cookie string) (int64, bool) {
	i := strings.LastIndexByte(cookie, '#')
	if i < 0 || strings.Count(cookie, "#") < 2 || strings.Contains(cookie, "csn=") {
		return 0, false
	}
	n, err := strconv.ParseInt(cookie[i+1:], 10, 64)
	return n, err == nil && n >= 0
}

// csnSID is a CSN's server id (timestamp#count#sid#mod).
func csnSID(csn string) string {
	f := strings.Split(csn, "#")
	if len(f) < 3 {
		return ""
	}
	return f[2]
}

// csnTime is the time of a CSN (YYYYmmddHHMMSS.ffffffZ#count#sid#mod).
func csnTime(csn string) (time.Time, error) {
	ts, _, ok := strings.Cut(csn, "#")
	if !ok {
		return time.Time{}, fmt.Errorf("not a CSN")
	}
	return parseLDAPTime(ts)
}

// parseLDAPTime parses the UTC GeneralizedTime forms directories write in
// changeTime and CSNs: YYYYmmddHHMMSSZ, with or without a fraction.
func parseLDAPTime(s string) (time.Time, error) {
	for _, layout := range []string{"20060102150405Z", "20060102150405.999999999Z"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a UTC GeneralizedTime", s)
}

// LinkState is a source's connection to its directory as last seen.
type LinkState struct {
	Down  bool      // the connection is lost and the source is reconnecting
	Since time.Time // when it was lost
	Err   string    // why (the LDAP or network error; never a value read from the directory)
}

// Linker is a source that reports its connection: the changelog, syncrepl
// and DirSync sources. A lost connection is not an error for Next, which
// reconnects by itself; Link lets health checks see it meanwhile. Link is
// safe to call while another goroutine reads the source.
type Linker interface {
	Link() LinkState
}

// LinkOf reports src's connection, looking through wrappers; ok is false
// when the source does not report one (an LDIF file).
func LinkOf(src Source) (LinkState, bool) {
	if l, ok := unwrap(src).(Linker); ok {
		return l.Link(), true
	}
	return LinkState{}, false
}

// link keeps a LinkState for a source's reader.
type link struct {
	mu sync.Mutex
	st LinkState
}

// down records the connection lost (the first loss's time is kept until
// it is back).
func (l *link) down(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.st.Down {
		l.st = LinkState{Down: true, Since: time.Now()}
	}
	if err != nil {
		l.st.Err = err.Error()
	}
}

// up records the connection back.
func (l *link) up() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st = LinkState{}
}

func (l *link) state() LinkState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st
}

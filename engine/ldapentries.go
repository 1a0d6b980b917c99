package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/lang"
)

// LDAPEntries are the entries of an LDAP directory, as a resync reads them:
// a paged subtree search (RFC 2696 simple paged results) under the sync
// classes' base DNs, streamed page by page so that memory stays flat in the
// size of the directory (one page is read ahead while the previous one is
// processed). Make one with NewLDAPEntries and Close it when done.
//
// Which entries:
//   - the bases: each class's base DNs, or the source's when a class names
//     none; a class base is narrowed to the source's bases (the source
//     reads nothing outside them), and a base under another is dropped, so
//     no entry is read twice. With no base anywhere, the root DSE's
//     defaultNamingContext, else its namingContexts (but cn=changelog and
//     cn=accesslog);
//   - the filter: (objectClass=*), ANDed with LDAPOptions.Filter;
//   - the attributes: "*", the ones the pipe's expressions read (which
//     may be operational, such as entryUUID or nsAccountLock) and the
//     identity attribute, never all of "+".
//
// Count is a DN-only paged count (attribute "1.1") bounded by
// LDAPOptions.CountFor: on a directory too large to count in that time it
// gives -1 (no ETA) rather than delay the resync. A lost connection during
// the scan ends Each with an error (paged-results cookies belong to the
// connection, so the search cannot resume): run resync again, entries
// already in step cost a lookup and no write. Get reads through a
// source.Reader (the references of `run` too), which reconnects.
type LDAPEntries struct {
	cfg      lang.SourceConfig
	opts     source.Options
	log      *slog.Logger
	bases    []string
	filter   string
	attrs    []string
	dns      []string
	pageSize uint32
	countFor time.Duration

	reader *source.Reader // Get

	countOnce sync.Once
	count     int64
}

// LDAPOptions tune NewLDAPEntries.
type LDAPOptions struct {
	// Filter is an extra LDAP filter (RFC 4515) the entries must match,
	// ANDed with the search's (resync --filter).
	Filter string
	// DNs, when not nil, are the only entries read, each by a base search
	// (resync --dn-file); a DN absent from the directory, or not matching
	// Filter, is skipped.
	DNs []string
	// PageSize is the number of entries per page (default: the source's
	// pageSize, else 500).
	PageSize int
	// CountFor bounds Count's DN-only pass (default 10 s); negative: no
	// count, Count gives -1.
	CountFor time.Duration
	// Source tunes the connections (logger, backoff).
	Source source.Options
	// Logger receives warnings (a base that does not exist, a server
	// without paged results); nil: discard.
	Logger *slog.Logger
}

// pagedResultsOID is the RFC 2696 control.
const pagedResultsOID = "1.2.840.113556.1.4.319"

// NewLDAPEntries connects to the pipe's LDAP source (so a wrong URL,
// certificate or password is reported at once) and prepares the search.
func NewLDAPEntries(ctx context.Context, p *lang.Pipe, opts LDAPOptions) (*LDAPEntries, error) {
	filter, err := SearchFilter(opts.Filter)
	if err != nil {
		return nil, err
	}
	l := &LDAPEntries{
		cfg:      p.Source,
		opts:     opts.Source,
		log:      opts.Logger,
		filter:   filter,
		attrs:    searchAttributes(p),
		dns:      opts.DNs,
		countFor: opts.CountFor,
		count:    -1,
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case opts.PageSize > 0:
		l.pageSize = uint32(opts.PageSize)
	case p.Source.PageSize > 0:
		l.pageSize = uint32(p.Source.PageSize)
	default:
		l.pageSize = 500
	}
	if l.countFor == 0 {
		l.countFor = 10 * time.Second
	}
	if l.bases, err = searchBases(p); err != nil {
		return nil, err
	}
	if l.reader, err = source.OpenReader(ctx, p.Source, opts.Source); err != nil {
		return nil, err
	}
	if opts.DNs != nil {
		return l, nil
	}
	c, err := source.DialLDAP(ctx, p.Source, opts.Source)
	if err != nil {
		l.reader.Close()
		return nil, err
	}
	defer c.Close()
	dse, err := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"supportedControl", "namingContexts", "defaultNamingContext"}, nil))
	if err != nil {
		l.reader.Close()
		return nil, fmt.Errorf("reading the root DSE: %w", err)
	}
	var root *ldap.Entry
	if len(dse.Entries) > 0 {
		root = dse.Entries[0]
	} else {
		root = &ldap.Entry{}
	}
	paged := false
	for _, oid := range root.GetAttributeValues("supportedControl") {
		paged = paged || oid == pagedResultsOID
	}
	if !paged {
		l.log.Warn("the directory does not announce paged results (RFC 2696): each base is read in one search, held in memory")
	}
	if l.bases == nil {
		if d := root.GetAttributeValue("defaultNamingContext"); d != "" {
			l.bases = []string{d}
		} else {
			for _, nc := range root.GetAttributeValues("namingContexts") {
				if n := strings.ToLower(strings.ReplaceAll(nc, " ", "")); n != "cn=changelog" && n != "cn=accesslog" {
					l.bases = append(l.bases, nc)
				}
			}
		}
		if len(l.bases) == 0 {
			l.reader.Close()
			return nil, errors.New("the source has no base and the directory names no naming context: set base in the source block")
		}
	}
	return l, nil
}

// SearchFilter returns the filter a resync searches with: every entry, or
// those matching extra (an RFC 4515 filter, checked here; the parentheses
// may be left out).
func SearchFilter(extra string) (string, error) {
	extra = strings.TrimSpace(extra)
	if extra == "" {
		return "(objectClass=*)", nil
	}
	if !strings.HasPrefix(extra, "(") {
		extra = "(" + extra + ")"
	}
	if _, err := ldap.CompileFilter(extra); err != nil {
		return "", fmt.Errorf("invalid LDAP filter %q: %v", extra, err)
	}
	return "(&(objectClass=*)" + extra + ")", nil
}

// Bases returns the base DNs the scan searches.
func (l *LDAPEntries) Bases() []string { return append([]string(nil), l.bases...) }

// Close ends the connection Get uses.
func (l *LDAPEntries) Close() error { return l.reader.Close() }

// searchAttributes is "*", the attributes the pipe reads, and the
// identity attribute(s).
func searchAttributes(p *lang.Pipe) []string {
	out := []string{"*"}
	seen := map[string]bool{"*": true}
	add := func(a string) {
		if k := strings.ToLower(a); a != "" && !seen[k] {
			seen[k] = true
			out = append(out, a)
		}
	}
	for _, a := range p.Attributes() {
		add(a)
	}
	if p.Source.Identity != "" {
		add(p.Source.Identity)
	} else {
		for _, a := range source.IdentityAttributes() {
			add(a)
		}
	}
	return out
}

// searchBases is the classes' bases narrowed to the source's, without
// overlaps; nil when neither names any (the caller asks the root DSE).
func searchBases(p *lang.Pipe) ([]string, error) {
	parse := func(s string) (*ldap.DN, error) {
		d, err := ldap.ParseDN(s)
		if err != nil {
			return nil, fmt.Errorf("base %q: %v", s, err)
		}
		return d, nil
	}
	var src []*ldap.DN
	for _, b := range p.Source.Base {
		d, err := parse(b)
		if err != nil {
			return nil, err
		}
		src = append(src, d)
	}
	var want []*ldap.DN
	all := false
	for _, c := range p.Classes {
		if len(c.Base) == 0 {
			all = true
			continue
		}
		for _, b := range c.Base {
			d, err := parse(b)
			if err != nil {
				return nil, err
			}
			if len(src) == 0 {
				want = append(want, d)
				continue
			}
			for _, s := range src {
				switch {
				case s.EqualFold(d) || s.AncestorOfFold(d):
					want = append(want, d)
				case d.AncestorOfFold(s):
					want = append(want, s)
				}
			}
		}
	}
	if all || len(p.Classes) == 0 {
		if len(src) == 0 {
			return nil, nil
		}
		want = append(want, src...)
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("no class base is under the source's base (%s): nothing to read", strings.Join(p.Source.Base, ", "))
	}
	// Shallowest first; keep a base only when no kept one holds it.
	sort.SliceStable(want, func(i, j int) bool { return len(want[i].RDNs) < len(want[j].RDNs) })
	var kept []*ldap.DN
	var out []string
	for _, d := range want {
		covered := false
		for _, k := range kept {
			if k.EqualFold(d) || k.AncestorOfFold(d) {
				covered = true
				break
			}
		}
		if !covered {
			kept = append(kept, d)
			out = append(out, d.String())
		}
	}
	return out, nil
}

// Count implements Entries: the number of DNs listed, or a DN-only paged
// count bounded by LDAPOptions.CountFor (-1 when it does not finish in
// time or fails). It is computed once.
func (l *LDAPEntries) Count() int64 {
	if l.dns != nil {
		return int64(len(l.dns))
	}
	l.countOnce.Do(func() {
		if l.countFor < 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.countFor)
		defer cancel()
		c, err := source.DialLDAP(ctx, l.cfg, l.opts)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetTimeout(l.countFor)
		var n int64
		for _, base := range l.bases {
			err := l.scan(ctx, c, base, []string{"1.1"}, func(es []*ldap.Entry) error {
				n += int64(len(es))
				return ctx.Err()
			})
			if err != nil {
				l.log.Info("resync: no count of the entries", "reason", err.Error())
				return
			}
		}
		l.count = n
	})
	return l.count
}

// Each implements Entries: the listed DNs, or a paged subtree search under
// each base.
func (l *LDAPEntries) Each(ctx context.Context, fn func(*lang.Entry) error) error {
	c, err := source.DialLDAP(ctx, l.cfg, l.opts)
	if err != nil {
		return err
	}
	defer c.Close()
	if l.dns != nil {
		for _, dn := range l.dns {
			if err := ctx.Err(); err != nil {
				return err
			}
			res, err := c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
				l.filter, l.attrs, nil))
			if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
				return fmt.Errorf("reading %s: %w", dn, err)
			}
			if err != nil || len(res.Entries) == 0 {
				continue // not in the directory, or not matching the filter
			}
			if err := fn(source.EntryOf(res.Entries[0])); err != nil {
				return err
			}
		}
		return nil
	}
	for _, base := range l.bases {
		var n int64
		err := l.scan(ctx, c, base, l.attrs, func(es []*ldap.Entry) error {
			for _, e := range es {
				if err := fn(source.EntryOf(e)); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
				return fmt.Errorf("searching %s (after %d entries): %w: the bind DN needs no size limit on paged searches "+
					"(slapd: limits … size.prtotal=unlimited; 389-ds: nsPagedSizeLimit -1)", base, n, err)
			}
			return fmt.Errorf("searching %s (after %d entries): %w", base, n, err)
		}
	}
	return nil
}

// errNoBase is a base that is not in the directory: nothing under it.
var errNoBase = errors.New("no such base")

// scan runs a paged subtree search under base and hands each page to fn,
// reading the next page while fn works. A base the directory lacks gives
// nothing (with a warning).
func (l *LDAPEntries) scan(ctx context.Context, c *ldap.Conn, base string, attrs []string, fn func([]*ldap.Entry) error) error {
	type page struct {
		entries []*ldap.Entry
		err     error
	}
	pages := make(chan page, 1)
	stop := make(chan struct{})
	ctrl := ldap.NewControlPaging(l.pageSize)
	req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		l.filter, attrs, []ldap.Control{ctrl})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(pages)
		for first := true; ; first = false {
			res, err := c.Search(req)
			if err != nil {
				if first && ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
					err = errNoBase
				}
				select {
				case pages <- page{err: err}:
				case <-stop:
				}
				return
			}
			select {
			case pages <- page{entries: res.Entries}:
			case <-stop:
				return
			}
			pr, _ := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging)
			if pr == nil || len(pr.Cookie) == 0 {
				return
			}
			ctrl.SetCookie(pr.Cookie)
		}
	}()
	finish := func(err error) error {
		// The read-ahead ends after the page it is reading; the caller
		// closes the connection, which ends the search at the server.
		close(stop)
		for range pages {
		}
		wg.Wait()
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return finish(ctx.Err())
		case p, ok := <-pages:
			if !ok {
				return finish(nil)
			}
			if errors.Is(p.err, errNoBase) {
				l.log.Warn("resync: a base DN is not in the directory; nothing is read under it", "base", base)
				return finish(nil)
			}
			if p.err != nil {
				return finish(p.err)
			}
			if err := fn(p.entries); err != nil {
				return finish(err)
			}
		}
	}
}

// Get implements Entries: the entry at dn (nil when absent), read as the
// change sources read entries.
func (l *LDAPEntries) Get(dn string) (*lang.Entry, error) {
	return l.reader.Entry(context.Background(), dn)
}

// FilteredEntries are the entries of Src that Match takes: resync
// --filter over a source that cannot filter itself (an LDIF file). Get is
// not filtered: it serves references, which may point anywhere.
type FilteredEntries struct {
	Src   Entries
	Match func(*lang.Entry) bool

	once  sync.Once
	count int64
}

// Count implements Entries by reading Src once (meant for in-memory
// sources); -1 when that fails.
func (f *FilteredEntries) Count() int64 {
	f.once.Do(func() {
		var n int64
		err := f.Src.Each(context.Background(), func(e *lang.Entry) error {
			if f.Match(e) {
				n++
			}
			return nil
		})
		f.count = n
		if err != nil {
			f.count = -1
		}
	})
	return f.count
}

// Each implements Entries.
func (f *FilteredEntries) Each(ctx context.Context, fn func(*lang.Entry) error) error {
	return f.Src.Each(ctx, func(e *lang.Entry) error {
		if !f.Match(e) {
			return nil
		}
		return fn(e)
	})
}

// Get implements Entries.
func (f *FilteredEntries) Get(dn string) (*lang.Entry, error) { return f.Src.Get(dn) }

// MatchFilter compiles an LDAP filter (RFC 4515) for entries held in
// memory (an LDIF source). Values compare case-insensitively (as most
// directory attributes do, caseIgnoreMatch), ordering (>=, <=) numerically
// when both sides are integers, approximate (~=) as equality; attribute
// names case-insensitively. Extensible matches (:=) are refused.
func MatchFilter(filter string) (func(*lang.Entry) bool, error) {
	filter = strings.TrimSpace(filter)
	if !strings.HasPrefix(filter, "(") {
		filter = "(" + filter + ")"
	}
	pkt, err := ldap.CompileFilter(filter)
	if err != nil {
		return nil, fmt.Errorf("invalid LDAP filter %q: %v", filter, err)
	}
	m, err := compileMatch(pkt)
	if err != nil {
		return nil, fmt.Errorf("LDAP filter %q: %v", filter, err)
	}
	return m, nil
}

func compileMatch(p *ber.Packet) (func(*lang.Entry) bool, error) {
	switch p.Tag {
	case ldap.FilterAnd, ldap.FilterOr:
		var subs []func(*lang.Entry) bool
		for _, c := range p.Children {
			m, err := compileMatch(c)
			if err != nil {
				return nil, err
			}
			subs = append(subs, m)
		}
		if p.Tag == ldap.FilterAnd {
			return func(e *lang.Entry) bool {
				for _, m := range subs {
					if !m(e) {
						return false
					}
				}
				return true
			}, nil
		}
		return func(e *lang.Entry) bool {
			for _, m := range subs {
				if m(e) {
					return true
				}
			}
			return false
		}, nil
	case ldap.FilterNot:
		if len(p.Children) != 1 {
			return nil, errors.New("malformed not")
		}
		m, err := compileMatch(p.Children[0])
		if err != nil {
			return nil, err
		}
		return func(e *lang.Entry) bool { return !m(e) }, nil
	case ldap.FilterPresent:
		attr := packetString(p)
		if strings.EqualFold(attr, "objectClass") {
			return func(*lang.Entry) bool { return true }, nil
		}
		return func(e *lang.Entry) bool { return len(e.Get(attr)) > 0 }, nil
	case ldap.FilterEqualityMatch, ldap.FilterApproxMatch, ldap.FilterGreaterOrEqual, ldap.FilterLessOrEqual:
		if len(p.Children) != 2 {
			return nil, errors.New("malformed comparison")
		}
		attr, want := packetString(p.Children[0]), packetString(p.Children[1])
		tag := p.Tag
		return func(e *lang.Entry) bool {
			for _, v := range e.Get(attr) {
				c := compareValues(v, want)
				switch {
				case (tag == ldap.FilterEqualityMatch || tag == ldap.FilterApproxMatch) && c == 0,
					tag == ldap.FilterGreaterOrEqual && c >= 0, tag == ldap.FilterLessOrEqual && c <= 0:
					return true
				}
			}
			return false
		}, nil
	case ldap.FilterSubstrings:
		if len(p.Children) != 2 {
			return nil, errors.New("malformed substrings")
		}
		attr := packetString(p.Children[0])
		type part struct {
			tag ber.Tag
			s   string
		}
		var parts []part
		for _, c := range p.Children[1].Children {
			parts = append(parts, part{c.Tag, strings.ToLower(packetString(c))})
		}
		return func(e *lang.Entry) bool {
		values:
			for _, v := range e.Get(attr) {
				v = strings.ToLower(v)
				for _, pt := range parts {
					switch pt.tag {
					case ldap.FilterSubstringsInitial:
						if !strings.HasPrefix(v, pt.s) {
							continue values
						}
						v = v[len(pt.s):]
					case ldap.FilterSubstringsAny:
						i := strings.Index(v, pt.s)
						if i < 0 {
							continue values
						}
						v = v[i+len(pt.s):]
					case ldap.FilterSubstringsFinal:
						if !strings.HasSuffix(v, pt.s) {
							continue values
						}
					}
				}
				return true
			}
			return false
		}, nil
	}
	return nil, errors.New("extensible matches (:=) are not supported for an LDIF source")
}

func packetString(p *ber.Packet) string {
	if p.Data != nil && p.Data.Len() > 0 {
		return p.Data.String()
	}
	if s, ok := p.Value.(string); ok {
		return s
	}
	return ""
}

// compareValues compares integers as numbers, anything else as
// case-folded strings.
func compareValues(a, b string) int {
	if x, err := strconv.ParseInt(strings.TrimSpace(a), 10, 64); err == nil {
		if y, err := strconv.ParseInt(strings.TrimSpace(b), 10, 64); err == nil {
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		}
	}
	return strings.Compare(strings.ToLower(a), strings.ToLower(b))
}

package source

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/lang"
)

// Reader reads entries from a source's directory on demand: the engine's
// references to entries the id map does not know (a group member not synced
// yet) and the REPL's :fetch and :search. It is read-only (base-object and
// subtree searches), safe for concurrent use (the requests share one
// connection, which LDAP multiplexes), and reconnects when the connection
// drops, dialing as the sources do (conn.go: the URLs in order, StartTLS or
// ldaps://, the CA file, the bind DN and password, the timeout).
//
// Entries are read as the change sources read them (entry.go): every user
// and operational attribute plus the identity attributes, values as raw
// bytes, so that a class evaluates a referenced entry exactly as it would
// evaluate a change to it.
type Reader struct {
	cfg   lang.SourceConfig
	d     *dialer
	fetch *fetcher

	mu   sync.Mutex
	conn *ldap.Conn
	nc   string // the server's naming context, for searches when the source has no base
}

// readerAttempts bounds the tries of one read: a connection dropped under a
// request is dialed again and the request repeated, with backoff, this many
// times in all. A read never waits for the directory indefinitely.
const readerAttempts = 3

// OpenReader connects to the directory of an LDAP source block (changelog,
// syncrepl, dirsync) and returns a Reader. A wrong URL, certificate or
// password is reported at once (ErrAuth for refused credentials); an LDIF
// source has no directory to read.
func OpenReader(ctx context.Context, cfg lang.SourceConfig, opts Options) (*Reader, error) {
	if cfg.Kind == "ldif" {
		return nil, errors.New("the source is an LDIF file, not a directory")
	}
	d, err := newDialer(cfg, opts)
	if err != nil {
		return nil, err
	}
	sc, err := newScope(cfg.Base)
	if err != nil {
		return nil, err
	}
	r := &Reader{cfg: cfg, d: d, fetch: &fetcher{scope: sc, idAttr: cfg.Identity}}
	conn, _, err := d.dial(ctx, d.timeout)
	if err != nil {
		return nil, err
	}
	r.conn = conn
	return r, nil
}

// Config returns the source block the Reader reads.
func (r *Reader) Config() lang.SourceConfig { return r.cfg }

// InScope reports whether dn is under one of the source's base DNs (every
// DN when the source names none): an entry the source reports changes of.
func (r *Reader) InScope(dn string) bool { return r.fetch.scope.contains(dn) }

// Close ends the connection. The Reader may still be used: it dials again.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != nil {
		r.conn.Close()
		r.conn = nil
	}
	return nil
}

// get returns the connection, dialing when there is none.
func (r *Reader) get(ctx context.Context) (*ldap.Conn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != nil && !r.conn.IsClosing() {
		return r.conn, nil
	}
	if r.conn != nil {
		r.conn.Close()
		r.conn = nil
	}
	conn, _, err := r.d.dial(ctx, r.d.timeout)
	if err != nil {
		return nil, err
	}
	r.conn = conn
	return conn, nil
}

// drop closes c after it failed, unless another request already replaced it.
func (r *Reader) drop(c *ldap.Conn, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn == c {
		r.d.log.Warn("ldap connection lost", "source", "reader", "error", err.Error())
		r.conn.Close()
		r.conn = nil
	}
}

// do runs read on a connection, dialing again and repeating it when the
// connection is lost, at most readerAttempts times in all.
func (r *Reader) do(ctx context.Context, read func(*ldap.Conn) error) error {
	wait := r.d.min
	var err error
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		var c *ldap.Conn
		if c, err = r.get(ctx); err == nil {
			if err = read(c); err == nil || !retryable(err) {
				return err
			}
			r.drop(c, err)
		} else if errors.Is(err, ErrAuth) {
			return err
		}
		if attempt >= readerAttempts {
			return err
		}
		if serr := sleep(ctx, wait); serr != nil {
			return serr
		}
		wait = min(wait*2, r.d.max)
	}
}

// Entry reads the entry at dn; nil, nil when there is none.
func (r *Reader) Entry(ctx context.Context, dn string) (*lang.Entry, error) {
	var e *lang.Entry
	err := r.do(ctx, func(c *ldap.Conn) error {
		var err error
		e, err = r.fetch.byDN(c, dn)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dn, reasonError{err})
	}
	return e, nil
}

// EntryByID reads the entry with a source identity (as Event.Identity
// writes it) wherever it is in the directory now, inside the source's bases
// or not, so that an entry moved out of scope is told from one deleted.
// nil, nil when there is none, or when the source has no identity attribute.
func (r *Reader) EntryByID(ctx context.Context, id string) (*lang.Entry, error) {
	var e *lang.Entry
	err := r.do(ctx, func(c *ldap.Conn) error {
		nc, err := r.namingContext(c)
		if err != nil {
			return err
		}
		attrs := []string{r.fetch.idAttr}
		if r.fetch.idAttr == "" {
			// The script names none: the changelog told it per record.
			// Try the attributes identities come from, so that an entry is
			// never taken for deleted because it was looked for by nothing.
			attrs = identityAttrs
		}
		for _, a := range attrs {
			everywhere := &fetcher{scope: scope{}, idAttr: a, context: nc}
			if e, err = everywhere.byIdentity(c, id); e != nil || err != nil && retryable(err) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the entry %s: %w", id, reasonError{err})
	}
	return e, nil
}

// Search reads the entries an RFC 4515 filter finds in the subtree of base,
// or, when base is "", under each of the source's base DNs (the server's
// naming context when the source names none). limit > 0 stops after that
// many entries (no error); limit <= 0 reads them all, with paging.
func (r *Reader) Search(ctx context.Context, base, filter string, limit int) ([]*lang.Entry, error) {
	if _, err := ldap.CompileFilter(filter); err != nil {
		return nil, fmt.Errorf("filter %s: %w", filter, err)
	}
	bases := []string{base}
	if base == "" {
		bases = r.cfg.Base
	}
	var out []*lang.Entry
	err := r.do(ctx, func(c *ldap.Conn) error {
		out = out[:0]
		bs := bases
		if len(bs) == 0 {
			nc, err := r.namingContext(c)
			if err != nil {
				return err
			}
			bs = []string{nc}
		}
		for _, b := range bs {
			if limit > 0 && len(out) >= limit {
				break
			}
			req := ldap.NewSearchRequest(b, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
				filter, fetchAttrs, nil)
			var res *ldap.SearchResult
			var err error
			if limit > 0 {
				req.SizeLimit = limit - len(out)
				res, err = c.Search(req)
				if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
					err = nil
				}
			} else {
				res, err = c.SearchWithPaging(req, 500)
			}
			if err != nil {
				if isNoSuchObject(err) {
					continue
				}
				return err
			}
			if res == nil {
				continue
			}
			for _, e := range res.Entries {
				if limit > 0 && len(out) >= limit {
					break
				}
				out = append(out, toEntry(e))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("searching %s: %w", filter, reasonError{err})
	}
	return out, nil
}

// namingContext is the server's first naming context that is not a
// changelog, read once.
func (r *Reader) namingContext(c *ldap.Conn) (string, error) {
	r.mu.Lock()
	nc := r.nc
	r.mu.Unlock()
	if nc != "" {
		return nc, nil
	}
	nc, err := searchBase(c, nil)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(nc) == "" {
		return "", errors.New("the source has no base and the server names no naming context")
	}
	r.mu.Lock()
	r.nc = nc
	r.mu.Unlock()
	return nc, nil
}

// reasonError shows an LDAP result as its code's text and the server's
// message, without go-ldap's packet details; errors.Is and errors.As see
// the error it wraps.
type reasonError struct{ err error }

func (e reasonError) Error() string {
	if le, ok := e.err.(*ldap.Error); ok {
		return ldapReason(le)
	}
	return e.err.Error()
}

func (e reasonError) Unwrap() error { return e.err }

package source

import (
	"context"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/lang"
)

// DialLDAP connects to the first server of cfg.URLs that answers, as the
// change sources do (ldap:// or ldaps://, StartTLS, the CA file, the bind
// DN and password), and returns the bound connection with cfg.Timeout (30 s
// when unset) on each request. It makes one pass over the URLs, without
// retrying: a wrong URL, certificate or password is reported at once. The
// caller closes the connection.
func DialLDAP(ctx context.Context, cfg lang.SourceConfig, opts Options) (*ldap.Conn, error) {
	d, err := newDialer(cfg, opts)
	if err != nil {
		return nil, err
	}
	c, _, err := d.dial(ctx, d.timeout)
	return c, err
}

// IdentityAttributes are the attributes tried, in order, for an entry's
// stable identity when the script names none.
func IdentityAttributes() []string { return append([]string(nil), identityAttrs...) }

// EntryOf converts a go-ldap entry to the entry expressions read; values
// keep their raw bytes.
func EntryOf(e *ldap.Entry) *lang.Entry { return toEntry(e) }

// Identity returns an entry's stable identity as the source of cfg reports
// it in its events (canonical lower-case UUID), or "" when there is none —
// an LDIF source, or an entry without the identity attribute: the engine
// then keys its id map by DN.
func Identity(e *lang.Entry, cfg lang.SourceConfig) string {
	if cfg.Kind == "ldif" {
		return ""
	}
	id, _ := entryIdentity(e, cfg.Identity)
	return id
}

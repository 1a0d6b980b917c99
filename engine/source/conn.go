package source

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/lang"
)

// defaultTimeout bounds dialing, binding and each request when the script
// sets no timeout.
const defaultTimeout = 30 * time.Second

// dialer opens authenticated connections to the first reachable server of
// cfg.URLs: ldap:// (optionally upgraded with StartTLS) or ldaps://, a CA
// file or the system roots, the bind DN and password (a secret.Secret,
// revealed only to put it on the wire, and never part of an error or log).
type dialer struct {
	urls     []string
	bindDN   string
	password func() string
	startTLS bool
	tls      *tls.Config
	timeout  time.Duration
	min, max time.Duration
	log      interface {
		Info(string, ...any)
		Warn(string, ...any)
	}
}

func newDialer(cfg lang.SourceConfig, opts Options) (*dialer, error) {
	if len(cfg.URLs) == 0 {
		return nil, fmt.Errorf("the %s source has no url", cfg.Kind)
	}
	for _, u := range cfg.URLs {
		p, err := url.Parse(u)
		if err == nil && p.User != nil {
			// Credentials in the URL would be ignored (the bind uses bindDn
			// and password) and then printed with it: refuse, naming only
			// the host.
			return nil, fmt.Errorf("source url %s://%s: the url carries credentials (user:password@), which are never used "+
				"and must not sit in a url; give bindDn and password (from env() or file()) instead", p.Scheme, p.Host)
		}
		if err != nil || (p.Scheme != "ldap" && p.Scheme != "ldaps") || p.Host == "" {
			return nil, fmt.Errorf("source url %q: want ldap://host[:port] or ldaps://host[:port]", withoutUserinfo(u))
		}
		if p.Scheme == "ldaps" && cfg.StartTLS {
			return nil, fmt.Errorf("source url %q: starttls applies to ldap:// urls, not ldaps://", u)
		}
	}
	if cfg.Insecure {
		opts.logger().Warn("ldap: TLS CERTIFICATE VERIFICATION IS OFF (insecure = true in the source block): anyone on the " +
			"network path can read the bind password and the directory's data; set caFile to the CA that signed the server's certificate instead")
	}
	d := &dialer{
		urls:     cfg.URLs,
		bindDN:   cfg.BindDN,
		password: cfg.Password.Reveal,
		startTLS: cfg.StartTLS,
		timeout:  cfg.Timeout,
		min:      opts.MinBackoff,
		max:      opts.MaxBackoff,
		log:      opts.logger(),
		tls:      &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.Insecure}, //nolint:gosec // only when the script says insecure
	}
	if d.timeout <= 0 {
		d.timeout = defaultTimeout
	}
	if d.min <= 0 {
		d.min = 250 * time.Millisecond
	}
	if d.max <= 0 {
		d.max = 30 * time.Second
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("source ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("source ca file %s: no PEM certificate in it", cfg.CAFile)
		}
		d.tls.RootCAs = pool
	}
	return d, nil
}

// dial connects to the first server of the list that answers and accepts
// the bind. requestTimeout 0 leaves requests unbounded (persistent searches).
func (d *dialer) dial(ctx context.Context, requestTimeout time.Duration) (*ldap.Conn, string, error) {
	var errs []error
	for _, u := range d.urls {
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		c, err := d.dialOne(ctx, u, requestTimeout)
		if err == nil {
			return c, u, nil
		}
		if errors.Is(err, ErrAuth) {
			return nil, "", err
		}
		errs = append(errs, fmt.Errorf("%s: %w", u, err))
	}
	return nil, "", errors.Join(errs...)
}

func (d *dialer) dialOne(ctx context.Context, u string, requestTimeout time.Duration) (*ldap.Conn, error) {
	p, _ := url.Parse(u)
	tc := d.tls.Clone()
	if tc.ServerName == "" {
		tc.ServerName = p.Hostname()
	}
	nd := &net.Dialer{Timeout: d.timeout, KeepAlive: 15 * time.Second}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < nd.Timeout {
		nd.Timeout = time.Until(dl)
	}
	c, err := ldap.DialURL(u, ldap.DialWithDialer(nd), ldap.DialWithTLSConfig(tc))
	if err != nil {
		return nil, err
	}
	c.SetTimeout(d.timeout)
	if d.startTLS {
		if err := c.StartTLS(tc); err != nil {
			c.Close()
			return nil, fmt.Errorf("starttls: %w", err)
		}
	}
	if d.bindDN != "" || d.password() != "" {
		if err := c.Bind(d.bindDN, d.password()); err != nil {
			c.Close()
			if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) ||
				ldap.IsErrorWithCode(err, ldap.LDAPResultInappropriateAuthentication) ||
				ldap.IsErrorWithCode(err, ldap.LDAPResultConfidentialityRequired) {
				return nil, fmt.Errorf("%w: bind as %q at %s: %s", ErrAuth, d.bindDN, u, ldapReason(err))
			}
			return nil, fmt.Errorf("bind: %w", err)
		}
	}
	c.SetTimeout(requestTimeout)
	return c, nil
}

// dialRetry dials until it succeeds, ctx is done, or the credentials are
// refused, waiting with exponential backoff and jitter between rounds.
func (d *dialer) dialRetry(ctx context.Context, requestTimeout time.Duration, what string) (*ldap.Conn, error) {
	wait := d.min
	for attempt := 1; ; attempt++ {
		c, u, err := d.dial(ctx, requestTimeout)
		if err == nil {
			if attempt > 1 {
				d.log.Info("ldap reconnected", "source", what, "url", u, "attempts", attempt)
			}
			return c, nil
		}
		if errors.Is(err, ErrAuth) || ctx.Err() != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		d.log.Warn("ldap connection failed, retrying", "source", what, "error", err.Error(), "retry_in", wait.String())
		if err := sleep(ctx, wait+rand.N(wait/4+1)); err != nil {
			return nil, err
		}
		wait = min(wait*2, d.max)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retryable reports whether err means the connection is lost or the server
// is (perhaps briefly) unable to serve: reconnect and go on.
// Temporary reports whether a directory operation that failed with err may
// succeed when tried again later: the server is unreachable, restarting,
// busy or timed out, or the connection dropped.
func Temporary(err error) bool { return retryable(err) }

func retryable(err error) bool {
	if err == nil {
		return false
	}
	var le *ldap.Error
	if errors.As(err, &le) {
		switch le.ResultCode {
		case ldap.ErrorNetwork, ldap.LDAPResultBusy, ldap.LDAPResultUnavailable,
			ldap.LDAPResultServerDown, ldap.LDAPResultTimeout, ldap.LDAPResultConnectError,
			ldap.LDAPResultTimeLimitExceeded, ldap.LDAPResultOther:
			return true
		}
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "connection closed") || strings.Contains(s, "response channel closed") ||
		strings.Contains(s, "EOF") || strings.Contains(s, "connection reset")
}

// ldapReason is an LDAP error's result text and diagnostic message, without
// go-ldap's packet details.
func ldapReason(err error) string {
	var le *ldap.Error
	if errors.As(err, &le) {
		msg := ldap.LDAPResultCodeMap[le.ResultCode]
		if le.Err != nil {
			msg += ": " + le.Err.Error()
		}
		return msg
	}
	return err.Error()
}

// isNoSuchObject reports an LDAP noSuchObject result.
func isNoSuchObject(err error) bool {
	return ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject)
}

// rootDSE reads attributes of the root DSE.
func rootDSE(c *ldap.Conn, attrs ...string) (*ldap.Entry, error) {
	res, err := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", attrs, nil))
	if err != nil {
		return nil, err
	}
	if len(res.Entries) == 0 {
		return &ldap.Entry{}, nil
	}
	return res.Entries[0], nil
}

// supportsControl reports whether the root DSE lists a control OID.
func supportsControl(dse *ldap.Entry, oid string) bool {
	for _, v := range dse.GetAttributeValues("supportedControl") {
		if v == oid {
			return true
		}
	}
	return false
}

// withoutUserinfo cuts what lies between "//" and "@" out of a URL that did
// not parse, in case it holds a password.
func withoutUserinfo(u string) string {
	_, rest, ok := strings.Cut(u, "//")
	if !ok {
		return u
	}
	host, path, _ := strings.Cut(rest, "/")
	if i := strings.LastIndexByte(host, '@'); i >= 0 {
		return u[:len(u)-len(rest)] + "…@" + host[i+1:] + strings.TrimSuffix("/"+path, "/")
	}
	return u
}

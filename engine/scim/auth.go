package scim

// Why golang.org/x/oauth2 (the one dependency this file adds): the client-credentials grant
// looks like one form POST, but a correct client also has to form-urlencode the id and secret
// before Basic auth (RFC 6749 §2.3.1, which hand-written clients often get wrong), fall back to
// client_secret_post for servers that refuse the header, parse both JSON and form-encoded token
// responses, expires_in given as a number or a string, and RFC 6749 §5.2 error bodies returned
// with 200. x/oauth2 does all of that, is maintained by the Go team, and pulls in nothing but
// the standard library. Caching and refresh stay here: its ReuseTokenSource cannot be told to
// drop a token the server rejected (our "refresh once on 401"), and its fixed 10 s early expiry
// would fetch a token per request from a service issuing short-lived tokens.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/scimsync/scimsync/engine/secret"
)

// authenticator puts credentials on a request. stale is the credential a previous try of the
// same request used and the server refused with 401, or "". It returns the credential used.
type authenticator interface {
	apply(ctx context.Context, req *http.Request, stale string) (used string, err error)
	// refreshable tells whether a 401 can be cured by getting a new credential.
	refreshable() bool
}

type noAuth struct{}

func (noAuth) apply(context.Context, *http.Request, string) (string, error) { return "", nil }
func (noAuth) refreshable() bool                                            { return false }

type basicAuth struct {
	user string
	pass secret.Secret
}

func (a basicAuth) apply(_ context.Context, req *http.Request, _ string) (string, error) {
	req.SetBasicAuth(a.user, a.pass.Reveal())
	return "", nil
}
func (basicAuth) refreshable() bool { return false }

type bearerAuth struct{ token secret.Secret }

func (a bearerAuth) apply(_ context.Context, req *http.Request, _ string) (string, error) {
	req.Header.Set("Authorization", "Bearer "+a.token.Reveal())
	return "", nil
}
func (bearerAuth) refreshable() bool { return false }

// oauthAuth gets access tokens with the OAuth2 client-credentials grant (RFC 6749 §4.4),
// caches one, and replaces it before it expires or when the server refuses it.
type oauthAuth struct {
	cc    *clientcredentials.Config
	hc    *http.Client // for the token endpoint: same TLS settings and pool as the SCIM requests
	now   func() time.Time
	toErr func(err error) error // makes token endpoint failures *Error / *TransportError

	mu      sync.Mutex
	tok     *oauth2.Token
	renewAt time.Time // when to fetch a new token although this one is still valid
}

func newOAuthAuth(cfg Config, hc *http.Client, now func() time.Time, toErr func(error) error) *oauthAuth {
	return &oauthAuth{
		cc: &clientcredentials.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret.Reveal(),
			TokenURL:     cfg.TokenURL,
			Scopes:       cfg.Scopes,
		},
		hc:    hc,
		now:   now,
		toErr: toErr,
	}
}

func (a *oauthAuth) refreshable() bool { return true }

func (a *oauthAuth) apply(ctx context.Context, req *http.Request, stale string) (string, error) {
	tok, err := a.token(ctx, stale)
	if err != nil {
		return "", err
	}
	tok.SetAuthHeader(req)
	return tok.AccessToken, nil
}

// token returns the cached token, fetching a new one when there is none, when it is due for
// renewal, or when it is the stale one a server just refused. Concurrent callers share one
// fetch: a token that another goroutine already replaced is not fetched again.
func (a *oauthAuth) token(ctx context.Context, stale string) (*oauth2.Token, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if a.tok != nil && (stale == "" || a.tok.AccessToken != stale) &&
		(a.renewAt.IsZero() || now.Before(a.renewAt)) {
		return a.tok, nil
	}
	tok, err := a.cc.Token(context.WithValue(ctx, oauth2.HTTPClient, a.hc))
	if err != nil {
		a.tok = nil
		return nil, a.toErr(err)
	}
	a.tok = tok
	a.renewAt = time.Time{}
	if !tok.Expiry.IsZero() {
		// Renew when a quarter of the lifetime is left, at most 30 s before expiry: long-lived
		// tokens are replaced 30 s early, a 4 s test token 1 s early.
		life := tok.Expiry.Sub(now)
		if tok.ExpiresIn > 0 {
			life = time.Duration(tok.ExpiresIn) * time.Second
		}
		a.renewAt = tok.Expiry.Add(-min(life/4, 30*time.Second))
	}
	return tok, nil
}

// tokenError makes a failure of the token endpoint an *Error (the endpoint answered) or a
// *TransportError (it did not), so that the retry policy treats it like any other request.
func (c *Client) tokenError(err error) error {
	path := c.cfg.TokenURL
	if u, perr := url.Parse(path); perr == nil {
		u.RawQuery, u.Fragment = "", ""
		path = u.String()
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		status := re.Response.StatusCode
		if status < 300 {
			status = http.StatusBadRequest // an RFC 6749 §5.2 error body sent with 200
		}
		e := parseError(http.MethodPost, path, status, re.Response.Header, re.Body, c.retry.Now(), c.redact)
		e.Detail = "token endpoint refused the client credentials request: " + e.Detail
		return e
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) {
		return newTransportError(http.MethodPost, path, err, c.cfg.Timeout, false, c.cfg.CertFile != "", c.redact)
	}
	// An answer that is not a token (no access_token, unparseable): not worth retrying.
	return fmt.Errorf("scim: POST %s: token endpoint: %s", path, c.redact(err.Error()))
}

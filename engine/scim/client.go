package scim

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/scimsync/scimsync/engine/secret"
)

// MaxResponseBytes bounds the body of one response (a 10 000-member group is about 1 MB).
const MaxResponseBytes = 64 << 20

// Media types of RFC 7644 §3.1 and §8.1.
const (
	MediaType       = "application/scim+json"
	acceptMediaType = "application/scim+json, application/json;q=0.9"
)

// Version returns the scimsync version from the build information, or "dev".
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Response is a 2xx answer of the service provider.
type Response struct {
	Status int
	Header http.Header
	Body   []byte // raw JSON (or empty, e.g. for 204); read it with gjson
}

// Option changes how NewClient builds a Client.
type Option func(*Client)

// WithLogger sets the logger for warnings (insecure TLS, retries). Default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// WithRetry sets the retry policy. Its zero fields keep their defaults; a zero MaxAttempts
// keeps Config.MaxAttempts.
func WithRetry(r Retry) Option { return func(c *Client) { c.retry = r } }

// Client talks to one SCIM 2.0 service provider (RFC 7644). It is safe for concurrent use;
// make one per provider and share it, so that connections and OAuth2 tokens are reused.
type Client struct {
	cfg     Config
	base    string // Config.URL without the trailing slash
	hc      *http.Client
	auth    authenticator
	retry   Retry
	log     *slog.Logger
	secrets *strings.Replacer
	pace    *throttle
	observe RequestObserver // WithObserver; nil: none
	spc     discovered      // Discover's answer, read once (discovery.go)
}

// NewClient validates cfg and returns a Client for it. TLS certificates are verified unless
// cfg.Insecure is set, which logs a warning. The CA file, when given, is trusted in addition
// to the system roots (so an OAuth2 token endpoint on a public host still verifies).
func NewClient(cfg Config, opts ...Option) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Client{cfg: cfg, base: strings.TrimRight(cfg.URL, "/"), log: slog.Default()}
	for _, o := range opts {
		o(c)
	}
	if c.retry.MaxAttempts == 0 {
		c.retry.MaxAttempts = cfg.MaxAttempts
	}
	c.retry = c.retry.withDefaults()
	c.retry.OnRetry = c.logRetry(c.retry.OnRetry)
	c.secrets = secretReplacer(cfg)
	c.pace = newThrottle(cfg.Rate, c.retry.Now)

	tc, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Insecure {
		c.log.Warn("scim: TLS CERTIFICATE VERIFICATION IS OFF (insecure): anyone on the network path "+
			"can read and change the SCIM traffic and the credentials in it; use a CA file instead",
			"url", cfg.URL)
	}
	if u, _ := url.Parse(cfg.URL); cfg.Auth != AuthNone && strings.EqualFold(u.Scheme, "http") && !isLoopback(u.Hostname()) {
		c.log.Warn("scim: credentials are sent over plain http to a remote host; use https", "url", cfg.URL)
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   cfg.Timeout,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          cfg.MaxConns,
		MaxIdleConnsPerHost:   cfg.MaxConns,
		MaxConnsPerHost:       cfg.MaxConns,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	c.hc = &http.Client{
		Transport: tr,
		// A redirect is reported, not followed: it would turn a POST into a GET, and the
		// fix (the right base URL) belongs in the configuration.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	switch cfg.Auth {
	case AuthBasic:
		c.auth = basicAuth{user: cfg.Username, pass: cfg.Password}
	case AuthBearer:
		c.auth = bearerAuth{token: cfg.Token}
	case AuthOAuth2:
		tokenHTTP := &http.Client{Transport: userAgent{tr, cfg.UserAgent}, CheckRedirect: c.hc.CheckRedirect}
		c.auth = newOAuthAuth(cfg, tokenHTTP, c.retry.Now, c.tokenError)
	default:
		c.auth = noAuth{}
	}
	return c, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CloseIdleConnections closes the pooled connections that are not in use.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

func tlsConfig(cfg Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.Insecure} //nolint:gosec // explicit, warned about
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("scim: reading the CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("scim: CA file %s holds no PEM certificate", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("scim: loading the client certificate %s and key %s: %w", cfg.CertFile, cfg.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// userAgent sets the User-Agent of requests that have none (the OAuth2 token requests).
type userAgent struct {
	rt http.RoundTripper
	ua string
}

func (u userAgent) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("User-Agent") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("User-Agent", u.ua)
	}
	return u.rt.RoundTrip(r)
}

// secretReplacer replaces every configured secret, and the forms it takes on the wire, with
// secret.Redacted.
func secretReplacer(cfg Config) *strings.Replacer {
	var vals []string
	add := func(s string) {
		if s == "" {
			return
		}
		for _, v := range []string{s, url.QueryEscape(s), url.PathEscape(s)} {
			vals = append(vals, v, secret.Redacted)
		}
	}
	add(cfg.Password.Reveal())
	add(cfg.Token.Reveal())
	add(cfg.ClientSecret.Reveal())
	if !cfg.Password.IsZero() {
		add(base64.StdEncoding.EncodeToString([]byte(cfg.Username + ":" + cfg.Password.Reveal())))
	}
	if !cfg.ClientSecret.IsZero() {
		add(base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(cfg.ClientID) + ":" + url.QueryEscape(cfg.ClientSecret.Reveal()))))
	}
	return strings.NewReplacer(vals...)
}

// reAuthValue finds credentials a server may echo back ("invalid token Bearer abc...").
var reAuthValue = regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]{16,}=*`)

// redact removes the configured secrets and anything that looks like an Authorization value.
func (c *Client) redact(s string) string {
	s = c.secrets.Replace(s)
	return reAuthValue.ReplaceAllString(s, "$1 "+secret.Redacted)
}

// redactSent returns c.redact extended with the password values body
// carries: a service that quotes the request in its error (some echo the
// whole payload) must not put the password it was sent into the log, the
// failed-changes record or the state file.
func (c *Client) redactSent(body []byte) func(string) string {
	sent := PasswordValues(body)
	if len(sent) == 0 {
		return c.redact
	}
	s := secret.NewScrubber(secret.Redacted, sent...)
	return func(v string) string { return c.redact(s.String(v)) }
}

func (c *Client) logRetry(next func(int, error, time.Duration)) func(int, error, time.Duration) {
	return func(attempt int, err error, wait time.Duration) {
		// Debug: the caller logs an outage once, not once per attempt.
		c.log.Debug("scim: request failed, retrying", "attempt", attempt, "max_attempts", c.retry.MaxAttempts,
			"wait", wait.Round(time.Millisecond), "error", err.Error())
		if next != nil {
			next(attempt, err, wait)
		}
	}
}

// url joins the base URL and path, which is relative to it ("/Users/123?attributes=id").
func (c *Client) url(method, path string) (string, error) {
	if p, _, _ := strings.Cut(path, "?"); strings.Contains(p, "://") {
		// Joined to the base it would stay on the provider's host, but it is a caller's
		// mistake worth reporting rather than a 404.
		return "", fmt.Errorf("scim: %s %s: the path must be relative to the base URL", method, path)
	}
	return c.base + "/" + strings.TrimLeft(path, "/"), nil
}

// Do sends one request to the service provider with retries: temporary failures (429, 500,
// 502, 503, 504, timeouts, connection errors) are retried as the Retry policy says, and with
// OAuth2 a 401 makes the client fetch a new token and send the request once more. path is
// relative to the base URL and already escaped; it may carry a query. body is raw JSON, or nil.
// A 2xx answer is returned as a *Response; anything else is an error: *Error (the provider
// answered), *TransportError (it did not), *RetryError wrapping one of them after retries, or
// the context's error.
func (c *Client) Do(ctx context.Context, method, path string, body []byte) (*Response, error) {
	path = "/" + strings.TrimLeft(path, "/")
	u, err := c.url(method, path)
	if err != nil {
		return nil, err
	}
	var (
		resp      *Response
		refreshed bool
	)
	retry := c.retry
	if !idempotent(method, path) {
		retry.MaxAttempts = 1 // resent only when surely not processed: see below
	}
	err = retry.Do(ctx, func(ctx context.Context) error {
		if err := c.pace.wait(ctx); err != nil {
			return fmt.Errorf("scim: %s %s: %w", method, path, err)
		}
		r, used, err := c.once(ctx, method, path, u, body, "")
		c.pace.observe(err)
		if IsStatus(err, http.StatusUnauthorized) && used != "" && !refreshed && c.auth.refreshable() {
			refreshed = true
			c.log.Info("scim: the service provider refused the OAuth2 access token; fetching a new one and trying again",
				"method", method, "path", path)
			r, _, err = c.once(ctx, method, path, u, body, used)
		}
		resp = r
		return err
	})
	if err != nil && !idempotent(method, path) {
		return c.resendUnsent(ctx, method, path, u, body, err)
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// idempotent reports whether a request may be sent again after a failure
// whose effect is unknown (a timeout, a dropped connection, a 5xx): reads
// (GET, a POST to /.search) and DELETE, whose second attempt finds nothing
// left to do. Writes are not. A POST may create a second resource; and a
// PATCH or PUT whose first attempt is still on its way (held by a proxy or
// a load balancer, queued in the service) may be carried out after the
// second: an "add" of a member applied twice leaves some services holding
// the value twice, and a late first attempt lands after — and undoes — a
// later write of the same resource. Such a failure goes back to the caller
// (IsUncertain), which waits until the first attempt can no longer land
// and reads the resource again (engine.Destination).
func idempotent(method, path string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodDelete:
		return true
	case http.MethodPost:
		p, _, _ := strings.Cut(path, "?")
		return strings.HasSuffix(p, "/.search")
	}
	return false
}

// resendUnsent retries a write only while each failure shows that the
// service did not process it (notProcessed). After a timeout, a dropped
// connection or another 5xx the request may have been carried out, or may
// still be: the error goes back to the caller, which finds out
// (IsUncertain, InDoubt) by reading the resource once the request can no
// longer land.
func (c *Client) resendUnsent(ctx context.Context, method, path, u string, body []byte, err error) (*Response, error) {
	r := c.retry
	for attempt := 1; attempt < r.MaxAttempts && notProcessed(method, err); attempt++ {
		wait := r.Wait(attempt, err)
		if r.OnRetry != nil {
			r.OnRetry(attempt, err, wait)
		}
		if serr := r.Sleep(ctx, wait); serr != nil {
			return nil, &RetryError{Attempts: attempt, Err: err, Stop: serr}
		}
		if werr := c.pace.wait(ctx); werr != nil {
			return nil, &RetryError{Attempts: attempt, Err: err, Stop: werr}
		}
		var resp *Response
		resp, _, err = c.once(ctx, method, path, u, body, "")
		c.pace.observe(err)
		if err == nil {
			return resp, nil
		}
	}
	return nil, err
}

// notProcessed reports whether a failed write surely had no effect, so
// that it may be sent again: a 429 (refused before any work), a connection
// that could not be made, and for an update (PATCH, PUT, DELETE) a 503,
// which says the service could not handle the request (RFC 9110 §15.6.4):
// services and their load balancers answer it when overloaded or down, the
// common case of an outage, where treating each 503 as a write in doubt
// would hold every change of the resource for the quiet time. A create
// answered 503 is still looked up before it is sent again (IsUncertain): a
// second resource costs more than a lookup.
func notProcessed(method string, err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Status == http.StatusTooManyRequests ||
			e.Status == http.StatusServiceUnavailable && method != http.MethodPost
	}
	var t *TransportError
	return errors.As(err, &t) && t.NotSent
}

// InDoubt reports whether a write that failed with err may have been
// carried out or may still be (a timeout, a dropped connection, a 5xx other
// than an update's 503): the caller must read the resource, and not before
// the request can no longer land, before it writes it again.
func InDoubt(method string, err error) bool {
	return IsUncertain(err) && !notProcessed(method, err)
}

// IsUncertain reports whether err leaves it unknown whether the service
// carried out a request: no complete answer (a timeout, a dropped
// connection) or a 5xx. A create that failed so must be looked up before it
// is sent again.
func IsUncertain(err error) bool {
	var t *TransportError
	if errors.As(err, &t) {
		return !t.NotSent && !t.TLS
	}
	var e *Error
	return errors.As(err, &e) && e.Status >= 500
}

// readBody reads a response's body, up to one byte more than
// MaxResponseBytes. A body whose length the response states is read into
// a buffer of that size at once, rather than one grown from 512 bytes by
// doubling (each request of a run reads one).
func readBody(hr *http.Response) ([]byte, error) {
	r := io.LimitReader(hr.Body, MaxResponseBytes+1)
	n := hr.ContentLength
	if n < 0 || n > MaxResponseBytes {
		return io.ReadAll(r)
	}
	data := make([]byte, n, n+1) // the spare byte lets the read below see the end
	if _, err := io.ReadFull(r, data); err != nil {
		return data, err
	}
	// The end, seen (which lets the connection be reused); or a body
	// longer than stated, read whole as ReadAll would.
	var one [1]byte
	k, err := r.Read(one[:])
	if k == 0 && err == io.EOF {
		return data, nil
	}
	if k == 0 && err != nil {
		return data, err
	}
	rest, err := io.ReadAll(r)
	return append(append(data, one[:k]...), rest...), err
}

// once makes one attempt within Config.Timeout. stale is an access token to replace.
func (c *Client) once(ctx context.Context, method, path, u string, body []byte, stale string) (*Response, string, error) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, method, u, rd)
	if err != nil {
		return nil, "", fmt.Errorf("scim: %s %s: %s", method, path, c.redact(err.Error()))
	}
	req.Header.Set("Accept", acceptMediaType)
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	if body != nil {
		req.Header.Set("Content-Type", MediaType)
	}
	used, err := c.auth.apply(actx, req, stale)
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", fmt.Errorf("scim: %s %s: %w", method, path, context.Cause(ctx))
		}
		return nil, "", err
	}
	sent := time.Now()
	hr, err := c.hc.Do(req)
	if err != nil {
		c.observed(method, nil, sent)
		return nil, used, c.transportError(ctx, actx, method, path, err)
	}
	defer hr.Body.Close()
	defer c.observed(method, hr, sent)
	data, err := readBody(hr)
	if err != nil {
		return nil, used, c.transportError(ctx, actx, method, path, err)
	}
	if len(data) > MaxResponseBytes {
		return nil, used, fmt.Errorf("scim: %s %s: response larger than %d bytes", method, path, MaxResponseBytes)
	}
	if hr.StatusCode < 200 || hr.StatusCode > 299 {
		redact := c.redactSent(body)
		e := parseError(method, path, hr.StatusCode, hr.Header, data, c.retry.Now(), redact)
		if loc := hr.Header.Get("Location"); hr.StatusCode/100 == 3 && loc != "" {
			e.Detail = strings.TrimPrefix(e.Detail+"; ", "; ") + "redirected to " + redact(excerpt(redact(loc), false)) +
				" (redirects are not followed: fix the base URL)"
		}
		return nil, used, e
	}
	if err := CheckDepth(data); err != nil {
		return nil, used, fmt.Errorf("scim: %s %s: the response is refused: %w", method, path, err)
	}
	return &Response{Status: hr.StatusCode, Header: hr.Header, Body: data}, used, nil
}

// transportError tells a cancelled caller (not temporary) from a failed attempt.
func (c *Client) transportError(ctx, actx context.Context, method, path string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("scim: %s %s: %w", method, path, context.Cause(ctx))
	}
	timedOut := errors.Is(actx.Err(), context.DeadlineExceeded)
	return newTransportError(method, path, err, c.cfg.Timeout, timedOut, c.cfg.CertFile != "", c.redact)
}

// Get reads the resource at path ("/Users/2819c223...") and returns its JSON.
func (c *Client) Get(ctx context.Context, path string) ([]byte, error) {
	r, err := c.Do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	return r.Body, nil
}

// Search finds the resources of endpoint ("/Users") that match filter (RFC 7644 §3.4.2.2):
// with GET {endpoint}?filter=..., or with POST {endpoint}/.search (RFC 7644 §3.4.3) when
// usePost is set. It returns the resources of the first page, each as raw JSON, and
// totalResults, which may be larger when the provider pages. A lookup wants 0 or 1.
func (c *Client) Search(ctx context.Context, endpoint, filter string, usePost bool) ([][]byte, int, error) {
	endpoint = "/" + strings.Trim(endpoint, "/")
	var (
		r   *Response
		err error
	)
	if usePost {
		body, serr := sjson.SetBytes([]byte(`{"schemas":["`+URNSearchRequest+`"]}`), "filter", filter)
		if serr != nil {
			return nil, 0, fmt.Errorf("scim: building the search request: %w", serr)
		}
		r, err = c.Do(ctx, http.MethodPost, endpoint+"/.search", body)
	} else {
		// %20 rather than QueryEscape's "+", which some providers do not decode as a space.
		q := strings.ReplaceAll(url.QueryEscape(filter), "+", "%20")
		r, err = c.Do(ctx, http.MethodGet, endpoint+"?filter="+q, nil)
	}
	if err != nil {
		return nil, 0, err
	}
	if !gjson.ValidBytes(r.Body) || !gjson.ParseBytes(r.Body).IsObject() {
		return nil, 0, fmt.Errorf("scim: search %s: the response is not a JSON ListResponse: %s",
			endpoint, c.redact(excerpt(string(r.Body), true)))
	}
	doc := gjson.ParseBytes(r.Body)
	res := doc.Get("Resources")
	if !res.Exists() {
		res = doc.Get("resources") // seen in the wild; RFC 7644 §3.4.2 spells it "Resources"
	}
	var out [][]byte
	for _, v := range res.Array() {
		out = append(out, []byte(v.Raw))
	}
	total := len(out)
	if t := doc.Get("totalResults"); t.Exists() {
		total = int(t.Int())
	}
	return out, total, nil
}

// Create POSTs a new resource (raw JSON) to endpoint ("/Users", RFC 7644 §3.3) and returns the
// resource as the provider stored it.
func (c *Client) Create(ctx context.Context, endpoint string, body []byte) ([]byte, error) {
	r, err := c.Do(ctx, http.MethodPost, endpoint, body)
	if err != nil {
		return nil, err
	}
	return r.Body, nil
}

// Patch sends a PatchOp (raw JSON, RFC 7644 §3.5.2) to endpoint/id and returns the resource
// the provider answered with, or nil when it answered 204 No Content.
func (c *Client) Patch(ctx context.Context, endpoint, id string, body []byte) ([]byte, error) {
	p, err := resourcePath(endpoint, id)
	if err != nil {
		return nil, err
	}
	r, err := c.Do(ctx, http.MethodPatch, p, body)
	if err != nil {
		return nil, err
	}
	return r.Body, nil
}

// Put replaces the resource endpoint/id with body (raw JSON, RFC 7644 §3.5.1) and returns it
// as the provider stored it.
func (c *Client) Put(ctx context.Context, endpoint, id string, body []byte) ([]byte, error) {
	p, err := resourcePath(endpoint, id)
	if err != nil {
		return nil, err
	}
	r, err := c.Do(ctx, http.MethodPut, p, body)
	if err != nil {
		return nil, err
	}
	return r.Body, nil
}

// Delete deletes endpoint/id (RFC 7644 §3.6). A 404 counts as done: the resource is gone,
// perhaps deleted by an earlier attempt whose answer was lost.
func (c *Client) Delete(ctx context.Context, endpoint, id string) error {
	p, err := resourcePath(endpoint, id)
	if err != nil {
		return err
	}
	if _, err := c.Do(ctx, http.MethodDelete, p, nil); err != nil && !IsStatus(err, http.StatusNotFound) {
		return err
	}
	return nil
}

// resourcePath is endpoint/id with id escaped. An id that is not one
// path segment once escaped ("." and "..", which a URL resolves to the
// endpoint or its parent) is refused: the request would reach another
// resource than the one the service named.
func resourcePath(endpoint, id string) (string, error) {
	if id == "" {
		return "", fmt.Errorf("scim: %s: empty resource id", endpoint)
	}
	if id == "." || id == ".." {
		return "", fmt.Errorf("scim: %s: the resource id %q is not a valid path segment", endpoint, id)
	}
	return "/" + strings.Trim(endpoint, "/") + "/" + url.PathEscape(id), nil
}

// Package scimtest finds the real SCIM 2.0 test server for tests and drives its /_control API.
//
// The server is the project's SCIMMY-based scim-server.js, started outside the test binary by
//
//	testdata/servers/start-scim.sh DIR      # prints KEY='VALUE' lines, also in DIR/env
//	set -a; . DIR/env; set +a               # or: source .ci/scim.sh
//
// Server reads those variables. When they are missing the test is skipped, unless
// SCIMSYNC_REQUIRE_SERVERS=1 (set by .ci/run), which turns the skip into a failure.
//
// Tests share one server, and go test runs packages in parallel, so a test never resets it:
// it uses unique names (Unique) and its own User-Agent (UserAgent), on which the server
// matches injected faults, filters its request log and keys OAuth2 token settings.
package scimtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// RequireServersEnv is the environment variable that makes a missing server a failure.
const RequireServersEnv = "SCIMSYNC_REQUIRE_SERVERS"

// SkipMessage is the reason given when the server is not running.
const SkipMessage = "real SCIM server not running: start it with testdata/servers/start-scim.sh (see README)"

// Env is what start-scim.sh printed: where the server listens and the test credentials.
type Env struct {
	URL        string // SCIM_URL: plain HTTP base URL
	HTTPSURL   string // SCIM_HTTPS_URL: HTTPS, certificate signed by CAFile
	MTLSURL    string // SCIM_MTLS_URL: HTTPS requiring a client certificate signed by CAFile
	ControlURL string // SCIM_CONTROL_URL: the /_control test API

	Token             string // SCIM_TOKEN: static bearer token
	BasicUser         string // SCIM_BASIC_USER
	BasicPassword     string // SCIM_BASIC_PASSWORD
	OAuthTokenURL     string // SCIM_OAUTH_TOKEN_URL: client-credentials token endpoint
	OAuthClientID     string // SCIM_OAUTH_CLIENT_ID
	OAuthClientSecret string // SCIM_OAUTH_CLIENT_SECRET

	CAFile         string // SCIM_CA_FILE: the test CA (PEM)
	ClientCertFile string // SCIM_CLIENT_CERT_FILE: client certificate for MTLSURL (PEM)
	ClientKeyFile  string // SCIM_CLIENT_KEY_FILE: its key (PEM)
}

// Server returns the running test server's Env. When SCIM_URL is unset it skips the test,
// or fails it if SCIMSYNC_REQUIRE_SERVERS=1. It fails the test when the environment is only
// partly set or the server does not answer.
func Server(t testing.TB) Env {
	t.Helper()
	if os.Getenv("SCIM_URL") == "" {
		if os.Getenv(RequireServersEnv) == "1" {
			t.Fatalf("%s (%s=1 makes this a failure)", SkipMessage, RequireServersEnv)
		}
		t.Skip(SkipMessage)
	}
	var missing []string
	get := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			missing = append(missing, name)
		}
		return v
	}
	e := Env{
		URL:               get("SCIM_URL"),
		HTTPSURL:          get("SCIM_HTTPS_URL"),
		MTLSURL:           get("SCIM_MTLS_URL"),
		ControlURL:        get("SCIM_CONTROL_URL"),
		Token:             get("SCIM_TOKEN"),
		BasicUser:         get("SCIM_BASIC_USER"),
		BasicPassword:     get("SCIM_BASIC_PASSWORD"),
		OAuthTokenURL:     get("SCIM_OAUTH_TOKEN_URL"),
		OAuthClientID:     get("SCIM_OAUTH_CLIENT_ID"),
		OAuthClientSecret: get("SCIM_OAUTH_CLIENT_SECRET"),
		CAFile:            get("SCIM_CA_FILE"),
		ClientCertFile:    get("SCIM_CLIENT_CERT_FILE"),
		ClientKeyFile:     get("SCIM_CLIENT_KEY_FILE"),
	}
	if len(missing) > 0 {
		t.Fatalf("SCIM_URL is set but %s are not: export every line of the env file start-scim.sh wrote",
			strings.Join(missing, ", "))
	}
	var health struct {
		OK bool `json:"ok"`
	}
	if err := e.control(http.MethodGet, "/health", nil, &health); err != nil || !health.OK {
		t.Fatalf("SCIM test server at %s does not answer (restart it with testdata/servers/start-scim.sh): %v", e.ControlURL, err)
	}
	return e
}

// UserAgent returns a User-Agent unique to this test run, to give the client under test so
// that faults, the request log and token settings apply to this test only.
func UserAgent(t testing.TB) string {
	return "scimsync-test/" + sanitize(t.Name()) + "-" + randHex(4)
}

// Unique returns prefix plus a random suffix, for userNames and displayNames that must not
// collide with other tests using the same server.
func Unique(prefix string) string { return prefix + "-" + randHex(6) }

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// Fault is one fault injection rule of POST /_control/faults. The next Count SCIM requests
// matching Method, Path (a prefix, relative to the SCIM base) and UserAgent are delayed by
// DelayMs, then dropped (Drop) or answered with Status (and RetryAfter, Body, ContentType).
type Fault struct {
	Status      int    `json:"status"`
	Count       int    `json:"count"`
	RetryAfter  string `json:"retryAfter,omitempty"` // seconds or an HTTP-date
	Method      string `json:"method,omitempty"`
	Path        string `json:"path,omitempty"`
	UserAgent   string `json:"userAgent,omitempty"`
	DelayMs     int    `json:"delayMs,omitempty"`
	Drop        bool   `json:"drop,omitempty"`
	Body        string `json:"body,omitempty"`
	ContentType string `json:"contentType,omitempty"`
}

// Fault installs a fault injection rule.
func (e Env) Fault(t testing.TB, f Fault) {
	t.Helper()
	if f.Count == 0 {
		f.Count = 1
	}
	if err := e.control(http.MethodPost, "/faults", f, nil); err != nil {
		t.Fatalf("installing fault: %v", err)
	}
}

// Request is one entry of the server's request log.
type Request struct {
	Seq       int             `json:"seq"`
	Method    string          `json:"method"`
	Path      string          `json:"path"`
	Query     map[string]any  `json:"query"`
	Body      json.RawMessage `json:"body"`
	Status    int             `json:"status"` // 0: dropped without an answer
	Ms        float64         `json:"ms"`
	UserAgent string          `json:"userAgent"`
	Scheme    string          `json:"scheme"` // http or https
	Fault     bool            `json:"fault"`  // a fault rule matched
	// Operations is, for a POST /Bulk, each operation's outcome (bulk.go);
	// its Body is the whole BulkRequest, passwords withheld.
	Operations []BulkOutcome `json:"operations,omitempty"`
}

// Requests returns the logged SCIM requests sent with userAgent, oldest first.
func (e Env) Requests(t testing.TB, userAgent string) []Request {
	t.Helper()
	var out []Request
	if err := e.control(http.MethodGet, "/requests?userAgent="+url.QueryEscape(userAgent), nil, &out); err != nil {
		t.Fatalf("reading the request log: %v", err)
	}
	return out
}

// TokenRequest is one call of the OAuth2 token endpoint.
type TokenRequest struct {
	Time      string  `json:"time"`
	UserAgent string  `json:"userAgent"`
	OK        bool    `json:"ok"`
	TTL       float64 `json:"ttl"`
}

// TokenRequests returns the token endpoint calls made with userAgent, oldest first.
func (e Env) TokenRequests(t testing.TB, userAgent string) []TokenRequest {
	t.Helper()
	var out struct {
		TokenRequests []TokenRequest `json:"tokenRequests"`
	}
	if err := e.control(http.MethodGet, "/oauth?userAgent="+url.QueryEscape(userAgent), nil, &out); err != nil {
		t.Fatalf("reading the token log: %v", err)
	}
	return out.TokenRequests
}

// SetTokenTTL makes the tokens issued to userAgent expire after ttl (resolution 1 ms).
func (e Env) SetTokenTTL(t testing.TB, userAgent string, ttl time.Duration) {
	t.Helper()
	body := map[string]any{"ttl": ttl.Seconds(), "userAgent": userAgent}
	if err := e.control(http.MethodPost, "/oauth/ttl", body, nil); err != nil {
		t.Fatalf("setting the token TTL: %v", err)
	}
}

// RevokeTokens makes the server refuse (401) every token issued to userAgent so far, and
// returns how many it revoked.
func (e Env) RevokeTokens(t testing.TB, userAgent string) int {
	t.Helper()
	var out struct {
		Revoked int `json:"revoked"`
	}
	if err := e.control(http.MethodPost, "/oauth/revoke", map[string]any{"userAgent": userAgent}, &out); err != nil {
		t.Fatalf("revoking tokens: %v", err)
	}
	return out.Revoked
}

var controlClient = &http.Client{Timeout: 10 * time.Second}

// control calls the /_control API: path relative to ControlURL, in encoded as JSON, the
// answer decoded into out when not nil.
func (e Env) control(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, strings.TrimRight(e.ControlURL, "/")+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := controlClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

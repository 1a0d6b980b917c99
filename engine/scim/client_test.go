package scim

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/secret"
)

// syncBuffer is a bytes.Buffer safe for the logger and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testClient builds a client whose retries do not sleep (waits are recorded) and whose log
// goes to a buffer.
func testClient(t *testing.T, cfg Config, r Retry) (*Client, *fakeSleep, *syncBuffer) {
	t.Helper()
	fs := &fakeSleep{}
	if r.Sleep == nil {
		r.Sleep = fs.Sleep
	}
	logs := &syncBuffer{}
	c, err := NewClient(cfg, WithRetry(r), WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c, fs, logs
}

func scimErrorBody(status int, scimType, detail string) string {
	return fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"%d","scimType":%q,"detail":%q}`,
		status, scimType, detail)
}

func TestDoRequestShape(t *testing.T) {
	pw := secret.New("s3cret-pass")
	tests := []struct {
		name     string
		cfg      Config
		wantAuth string
	}{
		{"none", Config{}, ""},
		{"basic", Config{Auth: AuthBasic, Username: "alice", Password: pw},
			"Basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret-pass"))},
		{"bearer", Config{Auth: AuthBearer, Token: secret.New("tok-123")}, "Bearer tok-123"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *http.Request
			var gotBody []byte
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, gotBody = r, must(io.ReadAll(r.Body))
				w.Header().Set("Content-Type", MediaType)
				w.WriteHeader(201)
				io.WriteString(w, `{"id":"1"}`)
			}))
			defer srv.Close()
			cfg := tt.cfg
			cfg.URL = srv.URL + "/scim/v2/"
			c, _, _ := testClient(t, cfg, Retry{})
			resp, err := c.Do(context.Background(), "POST", "Users?attributes=id", []byte(`{"userName":"a"}`))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != 201 || string(resp.Body) != `{"id":"1"}` || resp.Header.Get("Content-Type") != MediaType {
				t.Errorf("response %d %q %v", resp.Status, resp.Body, resp.Header)
			}
			if got.Method != "POST" || got.URL.Path != "/scim/v2/Users" || got.URL.RawQuery != "attributes=id" {
				t.Errorf("request %s %s", got.Method, got.URL)
			}
			if got.Header.Get("Authorization") != tt.wantAuth {
				t.Errorf("Authorization = %q, want %q", got.Header.Get("Authorization"), tt.wantAuth)
			}
			if got.Header.Get("Content-Type") != MediaType || !strings.HasPrefix(got.Header.Get("Accept"), MediaType) {
				t.Errorf("Content-Type %q Accept %q", got.Header.Get("Content-Type"), got.Header.Get("Accept"))
			}
			if got.Header.Get("User-Agent") != "scimsync/"+Version() {
				t.Errorf("User-Agent = %q", got.Header.Get("User-Agent"))
			}
			if string(gotBody) != `{"userName":"a"}` {
				t.Errorf("body %q", gotBody)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// statusServer answers each request with the next of answers (the last one repeats).
type answer struct {
	status int
	header map[string]string
	body   string
}

func statusServer(t *testing.T, answers ...answer) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		a := answers[min(i, len(answers)-1)]
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestDoRetriesThenSucceeds(t *testing.T) {
	srv, n := statusServer(t,
		answer{429, map[string]string{"Retry-After": "2"}, scimErrorBody(429, "", "slow down")},
		answer{503, nil, scimErrorBody(503, "", "maintenance")},
		answer{200, nil, `{"id":"1"}`})
	c, fs, logs := testClient(t, Config{URL: srv.URL}, Retry{Rand: func() float64 { return 0.5 }})
	resp, err := c.Do(context.Background(), "GET", "/Users/1", nil)
	if err != nil || resp.Status != 200 {
		t.Fatalf("Do = %v, %v", resp, err)
	}
	if n.Load() != 3 {
		t.Errorf("requests = %d, want 3", n.Load())
	}
	want := []time.Duration{2*time.Second + 100*time.Millisecond, 200 * time.Millisecond}
	if !equalDurations(fs.waits, want) {
		t.Errorf("waits = %v, want %v (Retry-After honoured, then backoff)", fs.waits, want)
	}
	if !strings.Contains(logs.String(), "request failed, retrying") {
		t.Errorf("no retry logged: %s", logs)
	}
}

func TestDoGivesUp(t *testing.T) {
	srv, n := statusServer(t, answer{500, nil, scimErrorBody(500, "", "boom")})
	c, fs, _ := testClient(t, Config{URL: srv.URL, MaxAttempts: 3}, Retry{})
	_, err := c.Do(context.Background(), "GET", "/Users", nil)
	want := "scim: gave up after 3 attempts: GET /Users: 500 Internal Server Error: boom"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	var re *RetryError
	if !errors.As(err, &re) || re.Attempts != 3 || !IsStatus(err, 500) {
		t.Errorf("err %#v", err)
	}
	if n.Load() != 3 || len(fs.waits) != 2 {
		t.Errorf("requests %d waits %v", n.Load(), fs.waits)
	}
}

func TestDoNotRetryable(t *testing.T) {
	srv, n := statusServer(t, answer{409, nil, scimErrorBody(409, "uniqueness", "taken")})
	c, fs, _ := testClient(t, Config{URL: srv.URL}, Retry{})
	_, err := c.Do(context.Background(), "POST", "/Users", []byte(`{}`))
	var e *Error
	if !errors.As(err, &e) || e.Status != 409 || e.ScimType != "uniqueness" || e.Detail != "taken" {
		t.Fatalf("err = %#v", err)
	}
	if n.Load() != 1 || len(fs.waits) != 0 {
		t.Errorf("requests %d waits %v: a 409 must not be retried", n.Load(), fs.waits)
	}
}

func TestDoProxyHTML(t *testing.T) {
	srv, _ := statusServer(t, answer{502, map[string]string{"Content-Type": "text/html"},
		"<html><body><h1>502 Bad Gateway</h1><hr><center>nginx</center></body></html>"})
	c, _, _ := testClient(t, Config{URL: srv.URL, MaxAttempts: 2}, Retry{})
	_, err := c.Do(context.Background(), "GET", "/Users", nil)
	want := "scim: gave up after 2 attempts: GET /Users: 502 Bad Gateway: 502 Bad Gateway nginx"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

func TestDoRedirectNotFollowed(t *testing.T) {
	srv, n := statusServer(t, answer{301, map[string]string{"Location": "https://elsewhere.example/scim/v2/Users"}, ""})
	c, _, _ := testClient(t, Config{URL: srv.URL}, Retry{})
	_, err := c.Do(context.Background(), "POST", "/Users", []byte(`{}`))
	want := "scim: POST /Users: 301 Moved Permanently: redirected to https://elsewhere.example/scim/v2/Users " +
		"(redirects are not followed: fix the base URL)"
	if err == nil || err.Error() != want || n.Load() != 1 {
		t.Errorf("err = %v (%d requests)\nwant %s", err, n.Load(), want)
	}
}

func TestDoTimeout(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer srv.Close()
	c, fs, _ := testClient(t, Config{URL: srv.URL, Timeout: 50 * time.Millisecond, MaxAttempts: 2}, Retry{})
	start := time.Now()
	_, err := c.Do(context.Background(), "GET", "/Users", nil)
	var te *TransportError
	if !errors.As(err, &te) || !te.Timeout || !te.Temporary() {
		t.Fatalf("err = %#v, want a timeout *TransportError", err)
	}
	want := "scim: gave up after 2 attempts: GET /Users: timeout: no complete response within 50ms"
	if err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	if n.Load() != 2 || len(fs.waits) != 1 {
		t.Errorf("requests %d waits %v", n.Load(), fs.waits)
	}
	if time.Since(start) > 4*time.Second {
		t.Errorf("took %v: the timeout did not cut the attempts", time.Since(start))
	}
}

func TestDoConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, fs, _ := testClient(t, Config{URL: "http://" + addr + "/scim", MaxAttempts: 2}, Retry{})
	_, err = c.Do(context.Background(), "GET", "/Users", nil)
	var te *TransportError
	if !errors.As(err, &te) || te.Timeout || te.TLS || !IsTemporary(err) {
		t.Fatalf("err = %#v, want a temporary *TransportError", err)
	}
	if !strings.HasPrefix(err.Error(), "scim: gave up after 2 attempts: GET /Users: request failed: dial tcp "+addr) ||
		len(fs.waits) != 1 {
		t.Errorf("err = %v, waits %v", err, fs.waits)
	}
}

func TestDoCancelled(t *testing.T) {
	started := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer srv.Close()
	c, fs, _ := testClient(t, Config{URL: srv.URL}, Retry{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	_, err := c.Do(ctx, "GET", "/Users", nil)
	if !errors.Is(err, context.Canceled) || IsTemporary(err) || len(fs.waits) != 0 {
		t.Errorf("err = %v (waits %v), want context.Canceled, not retried", err, fs.waits)
	}
}

func TestDoRejectsAbsolutePath(t *testing.T) {
	c, _, _ := testClient(t, Config{URL: "http://127.0.0.1:1/scim", Auth: AuthBearer, Token: secret.New("t0k")}, Retry{})
	for _, p := range []string{"http://evil.example/x", "https://evil.example/Users?filter=x"} {
		if _, err := c.Do(context.Background(), "GET", p, nil); err == nil || !strings.Contains(err.Error(), "relative to the base URL") {
			t.Errorf("Do(%q) = %v", p, err)
		}
	}
}

func TestHelpers(t *testing.T) {
	type seen struct{ method, path, query, body string }
	var mu sync.Mutex
	var log []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		log = append(log, seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, string(must(io.ReadAll(r.Body)))})
		mu.Unlock()
		switch {
		case r.Method == "DELETE" && strings.HasSuffix(r.URL.Path, "/gone"):
			w.WriteHeader(404)
			io.WriteString(w, scimErrorBody(404, "", "Resource gone not found"))
		case r.Method == "DELETE" && strings.HasSuffix(r.URL.Path, "/locked"):
			w.WriteHeader(403)
		case r.Method == "DELETE":
			w.WriteHeader(204)
		case r.Method == "PATCH":
			w.WriteHeader(204)
		case r.Method == "GET" && r.URL.Query().Get("filter") == "bad":
			io.WriteString(w, `<html>not json</html>`)
		case r.Method == "GET" && r.URL.Query().Has("filter"), strings.HasSuffix(r.URL.Path, "/.search"):
			io.WriteString(w, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":3,"itemsPerPage":2,
				"Resources":[{"id":"a","userName":"x"},{"id":"b","userName":"y"}]}`)
		default:
			w.WriteHeader(200)
			io.WriteString(w, `{"id":"x"}`)
		}
	}))
	defer srv.Close()
	c, _, _ := testClient(t, Config{URL: srv.URL + "/v2"}, Retry{})
	ctx := context.Background()

	res, total, err := c.Search(ctx, "/Users", `userName eq "a b+c&d"`, false)
	if err != nil || total != 3 || len(res) != 2 || gjson.GetBytes(res[1], "id").String() != "b" {
		t.Errorf("Search GET = %q, %d, %v", res, total, err)
	}
	res, total, err = c.Search(ctx, "Users/", `userName eq "a"`, true)
	if err != nil || total != 3 || len(res) != 2 {
		t.Errorf("Search POST = %q, %d, %v", res, total, err)
	}
	if _, _, err = c.Search(ctx, "/Users", "bad", false); err == nil ||
		err.Error() != "scim: search /Users: the response is not a JSON ListResponse: not json" {
		t.Errorf("Search of a non-JSON answer: %v", err)
	}
	if b, err := c.Get(ctx, "/Users/x"); err != nil || string(b) != `{"id":"x"}` {
		t.Errorf("Get = %s, %v", b, err)
	}
	if _, err := c.Create(ctx, "/Users", []byte(`{"userName":"n"}`)); err != nil {
		t.Error(err)
	}
	if b, err := c.Patch(ctx, "/Users", "a/b c", []byte(`{"Operations":[]}`)); err != nil || len(b) != 0 {
		t.Errorf("Patch = %q, %v", b, err)
	}
	if _, err := c.Put(ctx, "Groups", "g1", []byte(`{"displayName":"g"}`)); err != nil {
		t.Error(err)
	}
	if err := c.Delete(ctx, "/Users", "u1"); err != nil {
		t.Error(err)
	}
	if err := c.Delete(ctx, "/Users", "gone"); err != nil {
		t.Errorf("Delete of a missing resource = %v, want nil (404 counts as done)", err)
	}
	if err := c.Delete(ctx, "/Users", "locked"); !IsStatus(err, 403) {
		t.Errorf("Delete 403 = %v", err)
	}
	if err := c.Delete(ctx, "/Users", ""); err == nil {
		t.Error("Delete with an empty id succeeded")
	}

	want := []seen{
		{"GET", "/v2/Users", "filter=userName%20eq%20%22a%20b%2Bc%26d%22", ""},
		{"POST", "/v2/Users/.search", "", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"userName eq \"a\""}`},
		{"GET", "/v2/Users", "filter=bad", ""},
		{"GET", "/v2/Users/x", "", ""},
		{"POST", "/v2/Users", "", `{"userName":"n"}`},
		{"PATCH", "/v2/Users/a%2Fb%20c", "", `{"Operations":[]}`},
		{"PUT", "/v2/Groups/g1", "", `{"displayName":"g"}`},
		{"DELETE", "/v2/Users/u1", "", ""},
		{"DELETE", "/v2/Users/gone", "", ""},
		{"DELETE", "/v2/Users/locked", "", ""},
	}
	if len(log) != len(want) {
		t.Fatalf("requests:\n%v\nwant\n%v", log, want)
	}
	for i := range want {
		if log[i] != want[i] {
			t.Errorf("request %d = %+v\nwant %+v", i, log[i], want[i])
		}
	}
}

// tokenServer is an OAuth2 client-credentials endpoint issuing tok-1, tok-2, ...
type tokenServer struct {
	*httptest.Server
	fetches   atomic.Int32
	expiresIn int
	fail      atomic.Int32 // answer this status instead of a token while > 0
}

func newTokenServer(t *testing.T, id, secretValue string, expiresIn int) *tokenServer {
	ts := &tokenServer{expiresIn: expiresIn}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if s := ts.fail.Load(); s > 0 {
			w.WriteHeader(int(s))
			// a careless IdP that echoes what it got
			fmt.Fprintf(w, `{"error":"server_error","error_description":"cannot handle %s for %s"}`,
				r.Header.Get("Authorization"), r.PostFormValue("client_secret"))
			return
		}
		u, p, ok := r.BasicAuth()
		if !ok || u != id || p != secretValue || r.PostFormValue("grant_type") != "client_credentials" {
			w.WriteHeader(401)
			fmt.Fprintf(w, `{"error":"invalid_client","error_description":"bad secret %s"}`, p)
			return
		}
		n := ts.fetches.Add(1)
		fmt.Fprintf(w, `{"access_token":"tok-%d-abcdefghijklmnopqrstuvwxyz","token_type":"Bearer","expires_in":%d}`, n, ts.expiresIn)
	}))
	t.Cleanup(ts.Close)
	return ts
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// bearerServer accepts the tokens accept says yes to, and records the tokens it saw.
func bearerServer(t *testing.T, accept func(token string) bool) (*httptest.Server, *[]string) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		mu.Lock()
		seen = append(seen, tok)
		mu.Unlock()
		if !accept(tok) {
			w.WriteHeader(401)
			io.WriteString(w, scimErrorBody(401, "", "Authorization failed"))
			return
		}
		io.WriteString(w, `{"id":"1"}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

func oauthConfig(url, tokenURL string) Config {
	return Config{URL: url, Auth: AuthOAuth2, TokenURL: tokenURL, ClientID: "cid", ClientSecret: secret.New("client-s3cret")}
}

func TestOAuth2TokenCachedAndShared(t *testing.T) {
	ts := newTokenServer(t, "cid", "client-s3cret", 3600)
	srv, _ := bearerServer(t, func(string) bool { return true })
	c, _, _ := testClient(t, oauthConfig(srv.URL, ts.URL), Retry{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				if _, err := c.Get(context.Background(), "/Users/1"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n := ts.fetches.Load(); n != 1 {
		t.Errorf("token fetches = %d, want 1 for 40 requests", n)
	}
}

func TestOAuth2RenewedBeforeExpiry(t *testing.T) {
	ts := newTokenServer(t, "cid", "client-s3cret", 3600)
	srv, seen := bearerServer(t, func(string) bool { return true })
	clk := &clock{t: time.Now()}
	c, _, _ := testClient(t, oauthConfig(srv.URL, ts.URL), Retry{Now: clk.Now})
	ctx := context.Background()
	get := func() {
		t.Helper()
		if _, err := c.Get(ctx, "/Users/1"); err != nil {
			t.Fatal(err)
		}
	}
	get()
	clk.Add(3500 * time.Second) // 100 s left of 3600: still more than the 30 s margin
	get()
	clk.Add(80 * time.Second) // 20 s left: renewed although still valid
	get()
	if n := ts.fetches.Load(); n != 2 {
		t.Errorf("token fetches = %d, want 2", n)
	}
	if (*seen)[1] != (*seen)[0] || (*seen)[2] == (*seen)[1] {
		t.Errorf("tokens used: %v", *seen)
	}
}

func TestOAuth2RefreshOnceOn401(t *testing.T) {
	ts := newTokenServer(t, "cid", "client-s3cret", 3600)
	// The service provider forgot tok-1 (say it restarted); tok-2 works.
	srv, seen := bearerServer(t, func(tok string) bool { return !strings.HasPrefix(tok, "tok-1-") })
	c, fs, logs := testClient(t, oauthConfig(srv.URL, ts.URL), Retry{})
	if _, err := c.Get(context.Background(), "/Users/1"); err != nil {
		t.Fatal(err)
	}
	if ts.fetches.Load() != 2 || len(*seen) != 2 || len(fs.waits) != 0 {
		t.Errorf("fetches %d, requests %v, waits %v", ts.fetches.Load(), *seen, fs.waits)
	}
	if !strings.Contains(logs.String(), "refused the OAuth2 access token") {
		t.Errorf("refresh not logged: %s", logs)
	}

	// A provider that refuses every token: one refresh, then the 401 is returned.
	srv2, seen2 := bearerServer(t, func(string) bool { return false })
	c2, _, _ := testClient(t, oauthConfig(srv2.URL, ts.URL), Retry{})
	before := ts.fetches.Load()
	_, err := c2.Get(context.Background(), "/Users/1")
	if !IsStatus(err, 401) || len(*seen2) != 2 || ts.fetches.Load()-before != 2 {
		t.Errorf("err %v, requests %d, fetches %d: want one refresh and one retry", err, len(*seen2), ts.fetches.Load()-before)
	}
}

func TestOAuth2TokenEndpointErrors(t *testing.T) {
	srv, seen := bearerServer(t, func(string) bool { return true })

	// Wrong secret: 401 invalid_client, not retried, and the secret stays hidden.
	ts := newTokenServer(t, "cid", "the-right-one", 3600)
	c, fs, _ := testClient(t, oauthConfig(srv.URL, ts.URL), Retry{})
	_, err := c.Get(context.Background(), "/Users/1")
	var e *Error
	if !errors.As(err, &e) || e.Status != 401 || e.Method != "POST" || e.Path != ts.URL || len(fs.waits) != 0 {
		t.Fatalf("err = %#v (waits %v)", err, fs.waits)
	}
	want := "scim: POST " + ts.URL + ": 401 Unauthorized: token endpoint refused the client credentials request: bad secret"
	if err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}

	// Token endpoint briefly down: retried like any request.
	ts2 := newTokenServer(t, "cid", "client-s3cret", 3600)
	ts2.fail.Store(503)
	c2, fs2, _ := testClient(t, oauthConfig(srv.URL, ts2.URL), Retry{
		OnRetry: func(int, error, time.Duration) { ts2.fail.Store(0) }})
	if _, err := c2.Get(context.Background(), "/Users/1"); err != nil {
		t.Fatal(err)
	}
	if len(fs2.waits) != 1 || ts2.fetches.Load() != 1 || len(*seen) != 1 {
		t.Errorf("waits %v fetches %d requests %d", fs2.waits, ts2.fetches.Load(), len(*seen))
	}
}

// TestSecretsNeverShown provokes errors from servers that echo every credential they get and
// checks that no secret reaches an error message or the log.
func TestSecretsNeverShown(t *testing.T) {
	const (
		password     = "pa55-w0rd-Secret"
		token        = "static-t0ken-Secret"
		clientSecret = "cl1ent-Secret/+value"
	)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := string(must(io.ReadAll(r.Body)))
		u, p, _ := r.BasicAuth()
		detail := fmt.Sprintf("denied: auth=%s user=%s pass=%s body=%s", r.Header.Get("Authorization"), u, p, body)
		switch r.URL.Path {
		case "/html":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			fmt.Fprintf(w, "<html><body><pre>%s</pre></body></html>", detail)
		case "/slow":
			time.Sleep(200 * time.Millisecond)
		default:
			w.WriteHeader(401)
			io.WriteString(w, scimErrorBody(401, "", detail))
		}
	}))
	defer echo.Close()
	idp := newTokenServer(t, "cid", clientSecret, 3600)
	idp.fail.Store(400)

	secrets := []string{password, token, clientSecret,
		base64.StdEncoding.EncodeToString([]byte("alice:" + password)),
		"cl1ent-Secret%2F%2Bvalue", "tok-1-abcdefghijklmnopqrstuvwxyz",
		base64.StdEncoding.EncodeToString([]byte("cid:cl1ent-Secret%2F%2Bvalue"))}
	cfgs := map[string]Config{
		"basic":  {URL: echo.URL, Auth: AuthBasic, Username: "alice", Password: secret.New(password)},
		"bearer": {URL: echo.URL, Auth: AuthBearer, Token: secret.New(token)},
		"oauth2": {URL: echo.URL, Auth: AuthOAuth2, TokenURL: idp.URL, ClientID: "cid", ClientSecret: secret.New(clientSecret)},
		"oauth2-ok": {URL: echo.URL, Auth: AuthOAuth2, TokenURL: newTokenServer(t, "cid", clientSecret, 3600).URL,
			ClientID: "cid", ClientSecret: secret.New(clientSecret)},
	}
	for name, cfg := range cfgs {
		t.Run(name, func(t *testing.T) {
			cfg.Timeout = 50 * time.Millisecond
			cfg.MaxAttempts = 2
			c, _, logs := testClient(t, cfg, Retry{})
			var msgs []string
			for _, p := range []string{"/Users", "/html", "/slow"} {
				_, err := c.Do(context.Background(), "POST", p, []byte(`{"userName":"alice"}`))
				if err == nil {
					t.Fatalf("POST %s succeeded", p)
				}
				msgs = append(msgs, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", cfg))
			}
			msgs = append(msgs, logs.String())
			for _, m := range msgs {
				for _, s := range secrets {
					if strings.Contains(m, s) {
						t.Errorf("secret %q shown in: %s", s, m)
					}
				}
			}
			if !strings.Contains(strings.Join(msgs, "\n"), secret.Redacted) {
				t.Errorf("nothing was redacted; did the echo work? %s", msgs)
			}
		})
	}
}

// writeCertPEM writes the certificate of a TLS test server as a CA file.
func writeCertPEM(t *testing.T, srv *httptest.Server) string {
	p := filepath.Join(t.TempDir(), "ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"id":"1"}`)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	srv.StartTLS()
	defer srv.Close()
	ctx := context.Background()

	c, _, _ := testClient(t, Config{URL: srv.URL, CAFile: writeCertPEM(t, srv)}, Retry{})
	if _, err := c.Get(ctx, "/Users/1"); err != nil {
		t.Errorf("with the CA file: %v", err)
	}

	c, fs, _ := testClient(t, Config{URL: srv.URL}, Retry{})
	_, err := c.Get(ctx, "/Users/1")
	var te *TransportError
	if !errors.As(err, &te) || !te.TLS || IsTemporary(err) || len(fs.waits) != 0 {
		t.Fatalf("without the CA: %#v (waits %v), want a TLS *TransportError, not retried", err, fs.waits)
	}
	if !strings.HasPrefix(err.Error(), "scim: GET /Users/1: TLS certificate verification failed: the server's certificate "+
		"is signed by an authority this client does not trust (set the CA file to the CA that signed it): "+
		"tls: failed to verify certificate: x509: certificate signed by unknown authority") {
		t.Errorf("message: %v", err)
	}

	c, _, logs := testClient(t, Config{URL: srv.URL, Insecure: true}, Retry{})
	if _, err := c.Get(ctx, "/Users/1"); err != nil {
		t.Errorf("insecure: %v", err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "VERIFICATION IS OFF") {
		t.Errorf("no loud warning for insecure: %q", logs)
	}

	if _, err := NewClient(Config{URL: srv.URL, CAFile: filepath.Join(t.TempDir(), "missing.pem")}); err == nil {
		t.Error("NewClient with a missing CA file succeeded")
	}
	empty := filepath.Join(t.TempDir(), "empty.pem")
	os.WriteFile(empty, []byte("not a pem"), 0o600)
	if _, err := NewClient(Config{URL: srv.URL, CAFile: empty}); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("NewClient with a bad CA file: %v", err)
	}
}

func TestPlainHTTPWarning(t *testing.T) {
	for url, warn := range map[string]bool{
		"http://scim.example.com/v2": true,
		"http://127.0.0.1:8880/v2":   false,
		"http://localhost/v2":        false,
		"https://scim.example.com":   false,
	} {
		_, _, logs := testClient(t, Config{URL: url, Auth: AuthBearer, Token: secret.New("t")}, Retry{})
		if got := strings.Contains(logs.String(), "plain http"); got != warn {
			t.Errorf("%s: warning %v, want %v (%s)", url, got, warn, logs)
		}
	}
}

// ExampleNewClient looks a user up by userName and creates it when missing.
func ExampleNewClient() {
	c, err := NewClient(Config{
		URL:          "https://scim.example.com/scim/v2",
		Auth:         AuthOAuth2,
		TokenURL:     "https://login.example.com/oauth2/token",
		ClientID:     "scimsync",
		ClientSecret: secret.New(os.Getenv("SCIM_CLIENT_SECRET")),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	found, _, err := c.Search(ctx, "/Users", `userName eq "jdoe"`, false)
	switch {
	case err != nil:
		fmt.Println(err)
	case len(found) == 0:
		_, err = c.Create(ctx, "/Users", []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"jdoe"}`))
		if IsScimType(err, ScimTypeUniqueness) {
			fmt.Println("created meanwhile by someone else")
		}
	}
}

// TestReadBody: a response body reads the same whether its length is
// stated, unknown, or stated wrong.
func TestReadBody(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		length  int64
		wantErr bool
	}{
		{"stated", `{"id":"1"}`, 10, false},
		{"unknown", `{"id":"1"}`, -1, false},
		{"empty", ``, 0, false},
		{"longer than stated", `{"id":"1"}`, 4, false},
		{"shorter than stated", `{"id":"1"}`, 20, true},
		{"stated beyond the limit", `{}`, MaxResponseBytes + 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readBody(&http.Response{Body: io.NopCloser(strings.NewReader(tt.body)), ContentLength: tt.length})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want an error: %v", err, tt.wantErr)
			}
			if !tt.wantErr && string(got) != tt.body {
				t.Errorf("body %q, want %q", got, tt.body)
			}
		})
	}
}

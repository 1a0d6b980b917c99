package scim

// Tests against the real SCIMMY-based server of testdata/servers (see scimtest). They skip
// when it is not running, and fail instead when SCIMSYNC_REQUIRE_SERVERS=1.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/secret"
)

// serverClient returns a client for env with bearer auth and a User-Agent of this test's
// own, changed by mod, plus that User-Agent.
func serverClient(t *testing.T, env scimtest.Env, r Retry, mod func(*Config)) (*Client, string) {
	t.Helper()
	ua := scimtest.UserAgent(t)
	cfg := Config{URL: env.URL, Auth: AuthBearer, Token: secret.New(env.Token), UserAgent: ua, Timeout: 5 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	c, _, _ := testClient(t, cfg, r)
	return c, ua
}

// realSleep sleeps for real and records the waits.
type realSleep struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *realSleep) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return sleepContext(ctx, d)
}

func userJSON(t *testing.T, userName string) []byte {
	t.Helper()
	b := []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]}`)
	var err error
	for _, kv := range []struct {
		path string
		v    any
	}{
		{"userName", userName},
		{"name.givenName", "Jane"},
		{"name.familyName", "Doe"},
		{"displayName", "Jane Doe"},
		{"emails.0.type", "work"},
		{"emails.0.value", userName + "@example.com"},
		{"emails.0.primary", true},
		{"active", true},
	} {
		if b, err = sjson.SetBytes(b, kv.path, kv.v); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func createUser(t *testing.T, c *Client, userName string) string {
	t.Helper()
	body, err := c.Create(context.Background(), "/Users", userJSON(t, userName))
	if err != nil {
		t.Fatalf("creating %s: %v", userName, err)
	}
	id := gjson.GetBytes(body, "id").String()
	if id == "" {
		t.Fatalf("created %s without an id: %s", userName, body)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), "/Users", id) })
	return id
}

func statuses(reqs []scimtest.Request) []int {
	var out []int
	for _, r := range reqs {
		out = append(out, r.Status)
	}
	return out
}

func TestServerResourceLifecycle(t *testing.T) {
	env := scimtest.Server(t)
	c, ua := serverClient(t, env, Retry{}, nil)
	ctx := context.Background()
	prefix := scimtest.Unique("life")
	userName := prefix + "-a"
	var id string

	t.Run("create", func(t *testing.T) {
		resp, err := c.Do(ctx, "POST", "/Users", userJSON(t, userName))
		if err != nil {
			t.Fatal(err)
		}
		id = gjson.GetBytes(resp.Body, "id").String()
		if resp.Status != 201 || id == "" || resp.Header.Get("Location") == "" {
			t.Fatalf("create: %d %s %v", resp.Status, resp.Body, resp.Header)
		}
	})
	if id == "" {
		t.FailNow()
	}
	t.Cleanup(func() { _ = c.Delete(ctx, "/Users", id) })
	t.Run("get", func(t *testing.T) {
		body, err := c.Get(ctx, "/Users/"+id)
		if err != nil || gjson.GetBytes(body, "userName").String() != userName ||
			gjson.GetBytes(body, `emails.#(type=="work").value`).String() != userName+"@example.com" {
			t.Fatalf("get: %s, %v", body, err)
		}
	})
	second := createUser(t, c, prefix+"-b")
	for _, post := range []bool{false, true} {
		t.Run(fmt.Sprintf("search usePost=%v", post), func(t *testing.T) {
			for _, tt := range []struct {
				filter string
				ids    []string
			}{
				{`userName eq "` + prefix + `-none"`, nil},
				{`userName eq "` + userName + `"`, []string{id}},
				{`userName sw "` + prefix + `-" and active eq true`, []string{id, second}},
			} {
				res, total, err := c.Search(ctx, "/Users", tt.filter, post)
				if err != nil {
					t.Fatalf("%s: %v", tt.filter, err)
				}
				var got []string
				for _, r := range res {
					got = append(got, gjson.GetBytes(r, "id").String())
				}
				if total != len(tt.ids) || strings.Join(got, ",") != strings.Join(tt.ids, ",") {
					t.Errorf("%s: total %d ids %v, want %v", tt.filter, total, got, tt.ids)
				}
			}
		})
	}
	t.Run("patch single value", func(t *testing.T) {
		patch := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"replace","path":"name.givenName","value":"Janet"}]}`
		body, err := c.Patch(ctx, "/Users", id, []byte(patch))
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Get(ctx, "/Users/"+id)
		if err != nil || gjson.GetBytes(got, "name.givenName").String() != "Janet" ||
			gjson.GetBytes(got, "name.familyName").String() != "Doe" {
			t.Errorf("after patch: %s / %s, %v", body, got, err)
		}
	})
	t.Run("put", func(t *testing.T) {
		b, _ := sjson.SetBytes(userJSON(t, userName), "displayName", "J. Doe")
		b, _ = sjson.SetBytes(b, "active", false)
		if _, err := c.Put(ctx, "/Users", id, b); err != nil {
			t.Fatal(err)
		}
		got, err := c.Get(ctx, "/Users/"+id)
		if err != nil || gjson.GetBytes(got, "displayName").String() != "J. Doe" || gjson.GetBytes(got, "active").Bool() {
			t.Errorf("after put: %s, %v", got, err)
		}
	})
	t.Run("delete twice", func(t *testing.T) {
		if err := c.Delete(ctx, "/Users", id); err != nil {
			t.Fatal(err)
		}
		if err := c.Delete(ctx, "/Users", id); err != nil {
			t.Errorf("second delete = %v, want nil (404 is done)", err)
		}
		if _, err := c.Get(ctx, "/Users/"+id); !IsStatus(err, 404) {
			t.Errorf("get after delete = %v, want 404", err)
		}
	})
	if reqs := env.Requests(t, ua); len(reqs) == 0 {
		t.Error("the server logged no request with this test's User-Agent")
	}
}

func TestServerUniqueness(t *testing.T) {
	env := scimtest.Server(t)
	c, ua := serverClient(t, env, Retry{}, nil)
	userName := scimtest.Unique("dup")
	createUser(t, c, userName)
	_, err := c.Create(context.Background(), "/Users", userJSON(t, strings.ToUpper(userName)))
	var e *Error
	if !errors.As(err, &e) || e.Status != 409 || e.ScimType != ScimTypeUniqueness || e.Method != "POST" || e.Path != "/Users" {
		t.Fatalf("duplicate create: %#v", err)
	}
	if !strings.Contains(e.Detail, "already taken") {
		t.Errorf("detail %q", e.Detail)
	}
	if got := statuses(env.Requests(t, ua)); fmt.Sprint(got) != "[201 409]" {
		t.Errorf("requests %v, want [201 409]: a 409 is not retried", got)
	}
}

func TestServerRetryAfter(t *testing.T) {
	env := scimtest.Server(t)
	sl := &realSleep{}
	c, ua := serverClient(t, env, Retry{Sleep: sl.Sleep}, nil)
	env.Fault(t, scimtest.Fault{Status: 429, RetryAfter: "1", Method: "GET", Path: "/Users", UserAgent: ua})
	start := time.Now()
	if _, _, err := c.Search(context.Background(), "/Users", `userName eq "nobody-`+ua+`"`, false); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if len(sl.waits) != 1 || sl.waits[0] < time.Second || elapsed < time.Second {
		t.Errorf("waits %v, elapsed %v: want one wait of at least the Retry-After (1s)", sl.waits, elapsed)
	}
	reqs := env.Requests(t, ua)
	if got := statuses(reqs); fmt.Sprint(got) != "[429 200]" || !reqs[0].Fault {
		t.Errorf("requests %v, want [429 200]", got)
	}
}

// TestServer500ThenSuccess: a 500 is retried for a request that may be
// sent twice (a GET); a write (PATCH, PUT, POST) is not sent again after a
// 500, since the service may have carried it out (IsUncertain tells the
// caller to wait and read the resource), but is after a 429, which refuses
// before doing anything.
func TestServer500ThenSuccess(t *testing.T) {
	env := scimtest.Server(t)
	c, ua := serverClient(t, env, Retry{Base: 10 * time.Millisecond, Sleep: (&realSleep{}).Sleep}, nil)
	id := createUser(t, c, scimtest.Unique("r500"))
	env.Fault(t, scimtest.Fault{Status: 500, Count: 2, Method: "GET", Path: "/Users", UserAgent: ua})
	if _, err := c.Get(context.Background(), "/Users/"+id); err != nil {
		t.Fatal(err)
	}
	if got := statuses(env.Requests(t, ua)); fmt.Sprint(got) != "[201 500 500 200]" {
		t.Errorf("requests %v, want [201 500 500 200]", got)
	}

	patch := []byte(`{"schemas":["` + URNPatchOp + `"],"Operations":[{"op":"replace","path":"title","value":"x"}]}`)
	for _, w := range []struct {
		method string
		send   func() error
	}{
		{"PATCH", func() error { _, err := c.Patch(context.Background(), "/Users", id, patch); return err }},
		{"PUT", func() error {
			u, err := c.Get(context.Background(), "/Users/"+id)
			if err != nil {
				return err
			}
			_, err = c.Put(context.Background(), "/Users", id, u)
			return err
		}},
		{"POST", func() error {
			_, err := c.Create(context.Background(), "/Users", []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+scimtest.Unique("r500")+`"}`))
			return err
		}},
	} {
		seen := len(env.Requests(t, ua))
		env.Fault(t, scimtest.Fault{Status: 500, Count: 1, Method: w.method, Path: "/Users", UserAgent: ua})
		if err := w.send(); err == nil || !IsUncertain(err) {
			t.Fatalf("%s answered 500: %v; want an uncertain error, not a second attempt", w.method, err)
		}
		env.Fault(t, scimtest.Fault{Status: 429, Count: 1, Method: w.method, Path: "/Users", UserAgent: ua})
		if err := w.send(); err != nil {
			t.Fatalf("%s after a 429: %v", w.method, err)
		}
		var got []int
		for _, r := range env.Requests(t, ua)[seen:] {
			if r.Method == w.method {
				got = append(got, r.Status)
			}
		}
		if len(got) != 3 || got[0] != 500 || got[1] != 429 || got[2]/100 != 2 {
			t.Errorf("%s requests %v, want [500 429 2xx]: the 500 never resent, the 429 one resent", w.method, got)
		}
	}

	// A 503 says the service did not handle the request: an update is
	// resent, a create is not (it is looked up first).
	seen := len(env.Requests(t, ua))
	env.Fault(t, scimtest.Fault{Status: 503, Count: 1, Method: "PATCH", Path: "/Users", UserAgent: ua})
	patch = []byte(`{"schemas":["` + URNPatchOp + `"],"Operations":[{"op":"replace","path":"title","value":"after 503"}]}`)
	if _, err := c.Patch(context.Background(), "/Users", id, patch); err != nil {
		t.Errorf("a PATCH answered 503 once: %v, want it resent", err)
	}
	env.Fault(t, scimtest.Fault{Status: 503, Count: 1, Method: "POST", Path: "/Users", UserAgent: ua})
	_, err := c.Create(context.Background(), "/Users", []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+scimtest.Unique("r503")+`"}`))
	if err == nil || !IsUncertain(err) || InDoubt("PATCH", err) || !InDoubt("POST", err) {
		t.Errorf("a POST answered 503: %v; want an uncertain error (a create in doubt), not a second POST", err)
	}
	var got []string
	for _, r := range env.Requests(t, ua)[seen:] {
		got = append(got, fmt.Sprint(r.Method, " ", r.Status))
	}
	if fmt.Sprint(got) != "[PATCH 503 PATCH 200 POST 503]" {
		t.Errorf("requests %v, want [PATCH 503 PATCH 200 POST 503]", got)
	}
}

func TestServerSlowAndDropped(t *testing.T) {
	env := scimtest.Server(t)
	var mu sync.Mutex
	var retried []error
	onRetry := func(_ int, err error, _ time.Duration) { mu.Lock(); retried = append(retried, err); mu.Unlock() }
	c, ua := serverClient(t, env, Retry{Base: 10 * time.Millisecond, OnRetry: onRetry}, func(cfg *Config) {
		cfg.Timeout = 300 * time.Millisecond
	})
	id := createUser(t, c, scimtest.Unique("slow"))
	env.Fault(t, scimtest.Fault{DelayMs: 1500, Method: "GET", Path: "/Users/" + id, UserAgent: ua})
	env.Fault(t, scimtest.Fault{Drop: true, Method: "GET", Path: "/Users/" + id, UserAgent: ua})
	start := time.Now()
	if _, err := c.Get(context.Background(), "/Users/"+id); err != nil {
		t.Fatalf("get after a slow and a dropped answer: %v", err)
	}
	if len(retried) != 2 {
		t.Fatalf("retried after %v, want a timeout then a dropped connection", retried)
	}
	var te *TransportError
	if !errors.As(retried[0], &te) || !te.Timeout {
		t.Errorf("first failure %#v, want a timeout *TransportError", retried[0])
	}
	if !errors.As(retried[1], &te) || te.Timeout || te.TLS {
		t.Errorf("second failure %#v, want a connection *TransportError", retried[1])
	}
	t.Logf("slow, dropped, then answered in %v: %v", time.Since(start).Round(time.Millisecond), retried)
}

func TestServerProxyErrorPage(t *testing.T) {
	env := scimtest.Server(t)
	c, ua := serverClient(t, env, Retry{Base: 10 * time.Millisecond}, func(cfg *Config) { cfg.MaxAttempts = 2 })
	env.Fault(t, scimtest.Fault{Status: 502, Count: 2, UserAgent: ua, ContentType: "text/html",
		Body: "<html><head><title>502</title></head><body><h1>Bad Gateway</h1><p>The proxy got no answer.</p></body></html>"})
	_, err := c.Get(context.Background(), "/Users/x")
	want := "scim: gave up after 2 attempts: GET /Users/x: 502 Bad Gateway: 502 Bad Gateway The proxy got no answer."
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

func TestServerAuth(t *testing.T) {
	env := scimtest.Server(t)
	tests := []struct {
		name   string
		mod    func(*Config)
		status int // 0 = success
	}{
		{"bearer", nil, 0},
		{"bearer wrong token", func(c *Config) { c.Token = secret.New("wrong-token") }, 401},
		{"basic", func(c *Config) {
			c.Auth, c.Username, c.Password = AuthBasic, env.BasicUser, secret.New(env.BasicPassword)
		}, 0},
		{"basic wrong password", func(c *Config) {
			c.Auth, c.Username, c.Password = AuthBasic, env.BasicUser, secret.New("wrong-password")
		}, 401},
		{"none", func(c *Config) { c.Auth = AuthNone }, 401},
		{"oauth2", func(c *Config) {
			c.Auth, c.TokenURL, c.ClientID, c.ClientSecret = AuthOAuth2, env.OAuthTokenURL, env.OAuthClientID, secret.New(env.OAuthClientSecret)
		}, 0},
		{"oauth2 wrong secret", func(c *Config) {
			c.Auth, c.TokenURL, c.ClientID, c.ClientSecret = AuthOAuth2, env.OAuthTokenURL, env.OAuthClientID, secret.New("wrong-secret")
		}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := serverClient(t, env, Retry{}, tt.mod)
			_, _, err := c.Search(context.Background(), "/Users", `userName eq "nobody"`, false)
			switch {
			case tt.status == 0 && err != nil:
				t.Errorf("err = %v", err)
			case tt.status != 0 && !IsStatus(err, tt.status):
				t.Errorf("err = %v, want status %d", err, tt.status)
			case tt.status != 0:
				for _, s := range []string{"wrong-token", "wrong-password", "wrong-secret", env.OAuthClientSecret, env.BasicPassword} {
					if strings.Contains(err.Error(), s) {
						t.Errorf("the error shows a secret: %v", err)
					}
				}
				t.Logf("%v", err)
			}
		})
	}
}

func TestServerOAuth2TokenExpiresMidRun(t *testing.T) {
	env := scimtest.Server(t)
	c, ua := serverClient(t, env, Retry{}, func(c *Config) {
		c.Auth, c.TokenURL, c.ClientID, c.ClientSecret = AuthOAuth2, env.OAuthTokenURL, env.OAuthClientID, secret.New(env.OAuthClientSecret)
	})
	env.SetTokenTTL(t, ua, 2*time.Second)
	ctx := context.Background()
	id := createUser(t, c, scimtest.Unique("oauth"))

	// 4.5 s of requests with 2 s tokens: the client renews each token before it expires.
	deadline := time.Now().Add(4500 * time.Millisecond)
	n := 0
	for ; n < 40 && time.Now().Before(deadline); n++ {
		if _, err := c.Get(ctx, "/Users/"+id); err != nil {
			t.Fatalf("request %d: %v", n, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	fetches := len(env.TokenRequests(t, ua))
	if fetches < 3 {
		t.Errorf("%d token fetches over %d requests in 4.5 s with 2 s tokens, want at least 3", fetches, n)
	}
	for _, r := range env.Requests(t, ua) {
		if r.Status == 401 {
			t.Errorf("a request got 401 although tokens were renewed in time: %+v", r)
		}
	}

	t.Logf("%d requests, %d token fetches with 2 s tokens", n, fetches)
}

func TestServerOAuth2RefreshOn401(t *testing.T) {
	env := scimtest.Server(t)
	c, ua := serverClient(t, env, Retry{}, func(c *Config) {
		c.Auth, c.TokenURL, c.ClientID, c.ClientSecret = AuthOAuth2, env.OAuthTokenURL, env.OAuthClientID, secret.New(env.OAuthClientSecret)
	})
	ctx := context.Background()
	get := func() {
		t.Helper()
		if _, _, err := c.Search(ctx, "/Users", `userName eq "nobody"`, false); err != nil {
			t.Fatal(err)
		}
	}
	get()
	get()
	// The provider forgets the (long-lived) token: one 401, one new token, the request succeeds.
	if n := env.RevokeTokens(t, ua); n != 1 {
		t.Fatalf("revoked %d tokens, want 1", n)
	}
	get()
	get()
	if got := statuses(env.Requests(t, ua)); fmt.Sprint(got) != "[200 200 401 200 200]" {
		t.Errorf("requests %v, want [200 200 401 200 200]", got)
	}
	if got := len(env.TokenRequests(t, ua)); got != 2 {
		t.Errorf("token fetches %d, want 2 (exactly one refresh)", got)
	}
}

func TestServerHTTPS(t *testing.T) {
	env := scimtest.Server(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string // "" = success; else the start of the message after the method and path
	}{
		{"ca file", func(c *Config) { c.URL, c.CAFile = env.HTTPSURL, env.CAFile }, ""},
		{"wrong ca file", func(c *Config) { c.URL, c.CAFile = env.HTTPSURL, otherCA(t) },
			"TLS certificate verification failed: the server's certificate is signed by an authority this client does not trust"},
		{"no ca file", func(c *Config) { c.URL = env.HTTPSURL },
			"TLS certificate verification failed: the server's certificate is signed by an authority this client does not trust"},
		{"insecure", func(c *Config) { c.URL, c.Insecure = env.HTTPSURL, true }, ""},
		{"mtls", func(c *Config) {
			c.URL, c.CAFile, c.CertFile, c.KeyFile = env.MTLSURL, env.CAFile, env.ClientCertFile, env.ClientKeyFile
		}, ""},
		{"mtls without client certificate", func(c *Config) { c.URL, c.CAFile = env.MTLSURL, env.CAFile },
			"TLS handshake rejected by the server (if it requires a client certificate, set the certificate and key files)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ua := serverClient(t, env, Retry{}, tt.mod)
			_, _, err := c.Search(ctx, "/Users", `userName eq "nobody"`, false)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				reqs := env.Requests(t, ua)
				if len(reqs) != 1 || reqs[0].Scheme != "https" {
					t.Errorf("server saw %+v, want one https request", reqs)
				}
				return
			}
			var te *TransportError
			if !errors.As(err, &te) || !te.TLS || IsTemporary(err) {
				t.Fatalf("err = %#v, want a TLS *TransportError, not temporary", err)
			}
			if prefix := "scim: GET /Users?filter=userName%20eq%20%22nobody%22: " + tt.wantErr; !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("err = %v\nwant prefix %s", err, prefix)
			}
			if n := len(env.Requests(t, ua)); n != 0 {
				t.Errorf("%d requests reached the server", n)
			}
			t.Logf("%v", err)
		})
	}
}

// otherCA writes a fresh self-signed CA certificate that signed nothing the server has.
func otherCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "not the scimsync test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// BenchmarkServerGet measures one GET by id through the client against the real server
// (loopback, keep-alive; the figure is mostly the server's). Run with -bench; it is
// bounded by -benchtime like any benchmark.
func BenchmarkServerGet(b *testing.B) {
	env := scimtest.Server(b)
	ua := scimtest.UserAgent(b)
	c, err := NewClient(Config{URL: env.URL, Auth: AuthBearer, Token: secret.New(env.Token), UserAgent: ua})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	body, err := c.Create(ctx, "/Users", []byte(`{"userName":"`+scimtest.Unique("bench")+`"}`))
	if err != nil {
		b.Fatal(err)
	}
	id := gjson.GetBytes(body, "id").String()
	defer c.Delete(ctx, "/Users", id)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Get(ctx, "/Users/"+id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServerSearch measures a lookup by userName (GET ?filter=) against the real server.
func BenchmarkServerSearch(b *testing.B) {
	env := scimtest.Server(b)
	c, err := NewClient(Config{URL: env.URL, Auth: AuthBearer, Token: secret.New(env.Token), UserAgent: scimtest.UserAgent(b)})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	userName := scimtest.Unique("bench")
	body, err := c.Create(ctx, "/Users", []byte(`{"userName":"`+userName+`"}`))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Delete(ctx, "/Users", gjson.GetBytes(body, "id").String())
	filter := `userName eq "` + userName + `"`
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if res, _, err := c.Search(ctx, "/Users", filter, false); err != nil || len(res) != 1 {
			b.Fatal(len(res), err)
		}
	}
}

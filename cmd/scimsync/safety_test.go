package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/secret"
)

// scimProxy stands between the command under test and the real SCIM
// server: it records every request (method, path, arrival time) and can
// hold the requests that match, so a test sees what was sent and can keep
// a run busy while it looks at it.
type scimProxy struct {
	URL string // the SCIM base URL to give the command

	mu   sync.Mutex
	reqs []proxied

	hold     string        // requests whose URL or body contain it wait for release
	held     chan struct{} // receives once per held request
	release  chan struct{} // closed to let held requests go
	released sync.Once
}

type proxied struct {
	method, path string
	at           time.Time
}

func newSCIMProxy(t *testing.T, env scimtest.Env, hold string) *scimProxy {
	t.Helper()
	target, err := url.Parse(env.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := &scimProxy{hold: hold, held: make(chan struct{}, 16), release: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	rp.ErrorLog = log.New(io.Discard, "", 0) // requests the command abandons when it stops
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.reqs = append(p.reqs, proxied{r.Method, r.URL.Path, time.Now()})
		p.mu.Unlock()
		if p.hold != "" {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			u, _ := url.QueryUnescape(r.URL.RawQuery)
			if strings.Contains(u, p.hold) || strings.Contains(string(body), p.hold) {
				p.held <- struct{}{}
				select {
				case <-p.release:
				case <-time.After(60 * time.Second):
				}
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(p.letGo)
	p.URL = srv.URL + target.Path
	return p
}

func (p *scimProxy) letGo() { p.released.Do(func() { close(p.release) }) }

func (p *scimProxy) requests() []proxied {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]proxied(nil), p.reqs...)
}

// writes are the requests that change something at the service.
func (p *scimProxy) writes() []string {
	var out []string
	for _, r := range p.requests() {
		if r.method != http.MethodGet && !strings.HasSuffix(r.path, "/.search") {
			out = append(out, r.method+" "+r.path)
		}
	}
	return out
}

// TestResyncDemoNeverWrites (issue 12 #8): with SCIM_URL and SCIM_TOKEN
// set for a real service, `scimsync resync` with no pipe named is a dry
// run of the embedded demo that sends nothing at all (not even a lookup:
// the same output on every machine, and no 401 from a service that happens
// to listen on the demo's URL); and it says so once.
func TestResyncDemoNeverWrites(t *testing.T) {
	env := scimtest.Server(t)
	proxy := newSCIMProxy(t, env, "")
	t.Setenv("SCIM_URL", proxy.URL)
	t.Setenv("SCIM_TOKEN", env.Token)
	code, stdout, stderr := runCLI(t, "resync")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if r := proxy.requests(); len(r) != 0 {
		t.Errorf("the demo sent %d requests to the service (writes: %q)", len(r), proxy.writes())
	}
	if n := strings.Count(stdout, "POST /Users"); n != 22 {
		t.Errorf("%d creates of users shown, want the demo's 22", n)
	}
	if n := strings.Count(stderr, "dry run of the embedded demo"); n != 1 {
		t.Errorf("the dry run is announced %d times, want once:\n%s", n, stderr)
	}
	if !strings.Contains(stderr, "dry run: nothing was sent") || !strings.Contains(stdout, " /Users") {
		t.Errorf("no dry-run output:\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
}

// TestResyncStopsOnRefusedCredentials (issue 12 #8): a wrong token makes
// the service answer 401 to every request; the resync stops at the first
// with one message saying what to check, instead of failing every entry
// one by one, and exits 1. The token is never printed.
func TestResyncStopsOnRefusedCredentials(t *testing.T) {
	env := scimtest.Server(t)
	proxy := newSCIMProxy(t, env, "")
	const badToken = "not-the-token-7f3a91"
	t.Setenv("SCIM_URL", proxy.URL)
	t.Setenv("SCIM_TOKEN", badToken)
	dir := t.TempDir()
	prefix := scimtest.Unique("auth")
	const users = 40
	var b strings.Builder
	for i := range users {
		fmt.Fprintf(&b, "dn: uid=%s-%d,ou=People,dc=example,dc=com\nuid: %s-%d\ncn: U\n\n", prefix, i, prefix, i)
	}
	ldifPath := filepath.Join(dir, "s.ldif")
	pipePath := filepath.Join(dir, "s.pipe")
	must(t, os.WriteFile(ldifPath, []byte(b.String()), 0o644))
	must(t, os.WriteFile(pipePath, []byte(fmt.Sprintf(runPipe, ldifPath)), 0o644))
	for _, args := range [][]string{
		{"resync", "--state-dir", filepath.Join(dir, "state"), pipePath},
		{"resync", "--dry-run", pipePath},
	} {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			before := len(proxy.requests())
			code, stdout, stderr := runCLI(t, args...)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			for _, want := range []string{"scimsync resync: stopped: the SCIM service at " + proxy.URL + " answered 401 Unauthorized",
				"check the token", "resync stopped: "} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			if n := strings.Count(stderr, "401"); n != 1 {
				t.Errorf("401 reported %d times, want once:\n%s", n, stderr)
			}
			if strings.Contains(stderr, "failed: ") {
				t.Errorf("entries reported one by one:\n%s", stderr)
			}
			if strings.Contains(stdout+stderr, badToken) {
				t.Error("the token is in the output")
			}
			if n := len(proxy.requests()) - before; n >= users {
				t.Errorf("%d requests sent for %d entries: the resync did not stop", n, users)
			}
		})
	}
}

func TestAuthRefused(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"401", &scim.Error{Status: 401, Method: "GET", Path: "/Users"}, true},
		{"403", &scim.Error{Status: 403, Method: "POST", Path: "/Users"}, true},
		{"401 wrapped", fmt.Errorf("lookup: %w", &scim.Error{Status: 401}), true},
		{"404", &scim.Error{Status: 404}, false},
		{"500", &scim.Error{Status: 500}, false},
		{"transport", &scim.TransportError{Method: "GET", Path: "/Users"}, false},
		{"mapping", errors.New("s.pipe:12:5: first(uid) is nil"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := authRefused(tt.err); got != tt.want {
				t.Errorf("authRefused(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestAuthAdvice(t *testing.T) {
	const tok = "tok-3b2c-secret"
	tests := []struct {
		name string
		cfg  scim.Config
		err  error
		want string
	}{
		{"bearer 401", scim.Config{URL: "https://s.example/scim", Auth: scim.AuthBearer, Token: secret.New(tok)}, &scim.Error{Status: 401},
			`stopped: the SCIM service at https://s.example/scim answered 401 Unauthorized: it refused the credentials; check the token (and the environment variables the pipe's scim block reads them from) and the auth setting (auth = "bearer")`},
		{"basic 401", scim.Config{URL: "https://s.example/scim", Auth: scim.AuthBasic, Username: "u", Password: secret.New(tok)}, &scim.Error{Status: 401},
			`stopped: the SCIM service at https://s.example/scim answered 401 Unauthorized: it refused the credentials; check the user name and password (and the environment variables the pipe's scim block reads them from) and the auth setting (auth = "basic")`},
		{"none 401", scim.Config{URL: "https://s.example/scim"}, &scim.Error{Status: 401},
			`stopped: the SCIM service at https://s.example/scim answered 401 Unauthorized: it wants credentials and the pipe's scim block sends none; give it a token (or user and password, or an OAuth2 client) and its auth setting`},
		{"oauth2 403", scim.Config{URL: "https://s.example/scim", Auth: scim.AuthOAuth2, ClientSecret: secret.New(tok)}, fmt.Errorf("x: %w", &scim.Error{Status: 403}),
			`stopped: the SCIM service at https://s.example/scim answered 403 Forbidden: the credentials were accepted but may not do this; check the rights granted to the OAuth2 client id, secret and scopes (auth = "oauth2" in the pipe's scim block)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := authAdvice(tt.cfg, tt.err)
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if strings.Contains(got, tok) {
				t.Error("a secret is in the message")
			}
		})
	}
}

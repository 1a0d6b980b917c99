package scim

import (
	"context"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/engine/secret"
)

// hostileEcho is a SCIM service that quotes the request it got in its
// error, in the form the request path names: the JSON detail, plain text,
// HTML with entities, base64, URL-escaped, or the raw body as a SCIM
// error's detail far past the excerpt's length, so that a password would
// straddle the cut.
func hostileEcho(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b := string(body)
		switch {
		case strings.HasSuffix(r.URL.Path, "/text"):
			w.WriteHeader(400)
			io.WriteString(w, "bad request: "+b)
		case strings.HasSuffix(r.URL.Path, "/html"):
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(500)
			io.WriteString(w, "<p>"+html.EscapeString(b)+"</p>")
		case strings.HasSuffix(r.URL.Path, "/base64"):
			w.WriteHeader(400)
			io.WriteString(w, scimErrorBody(400, "invalidValue", "payload "+base64.StdEncoding.EncodeToString(body)))
		case strings.HasSuffix(r.URL.Path, "/urlesc"):
			w.WriteHeader(400)
			io.WriteString(w, scimErrorBody(400, "invalidValue", "payload "+url.QueryEscape(b)))
		case strings.HasSuffix(r.URL.Path, "/cut"):
			w.WriteHeader(400)
			io.WriteString(w, scimErrorBody(400, "invalidValue", strings.Repeat("x", maxDetail-5)+b))
		case strings.HasSuffix(r.URL.Path, "/deep"):
			w.WriteHeader(200)
			io.WriteString(w, strings.Repeat("[", 100000)+strings.Repeat("]", 100000))
		default:
			w.WriteHeader(409)
			io.WriteString(w, scimErrorBody(409, "uniqueness", "conflict with "+b))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestSentPasswordNeverInErrors: the password a request carries (a
// resource's password, a PATCH of password, a password in a PATCH value
// object) never reaches the error, in any form the service echoes it.
func TestSentPasswordNeverInErrors(t *testing.T) {
	const pw = `Echo-P@ss "w0rd"/+`
	srv := hostileEcho(t)
	c, _, logs := testClient(t, Config{URL: srv.URL, MaxAttempts: 1}, Retry{})
	bodies := map[string]string{
		"resource":      fmt.Sprintf(`{"schemas":[%q],"userName":"u","password":%q}`, URNUser, pw),
		"urn attribute": fmt.Sprintf(`{"urn:ietf:params:scim:schemas:core:2.0:User:password":%q}`, pw),
		"patch path":    fmt.Sprintf(`{"Operations":[{"op":"replace","path":"password","value":%q}]}`, pw),
		"patch value":   fmt.Sprintf(`{"Operations":[{"op":"replace","value":{"Password":%q}}]}`, pw),
	}
	for name, body := range bodies {
		for _, form := range []string{"json", "text", "html", "base64", "urlesc", "cut"} {
			t.Run(name+"/"+form, func(t *testing.T) {
				_, err := c.Do(context.Background(), http.MethodPatch, "/Users/1/"+form, []byte(body))
				if err == nil {
					t.Fatal("no error")
				}
				out := err.Error() + "\n" + logs.String()
				for _, f := range append(secret.Forms(pw), pw[:8]+"\\\"w0rd") {
					if strings.Contains(out, f) {
						t.Errorf("the sent password (as %q) is in: %s", f, out)
					}
				}
				if form == "json" && !strings.Contains(out, secret.Redacted) {
					t.Errorf("nothing redacted: %s", out)
				}
			})
		}
	}
}

func TestResponseTooDeep(t *testing.T) {
	srv := hostileEcho(t)
	c, _, _ := testClient(t, Config{URL: srv.URL, MaxAttempts: 1}, Retry{})
	_, err := c.Get(context.Background(), "/Users/deep")
	if err == nil || !strings.Contains(err.Error(), "nests deeper than 64 levels") {
		t.Fatalf("err = %v", err)
	}
}

func TestPasswordValuesAndWithhold(t *testing.T) {
	tests := []struct {
		name, doc string
		want      []string
		shown     string
	}{
		{"resource", `{"userName":"a","password":"p1","name":{"givenName":"g"}}`, []string{"p1"},
			`{"userName":"a","password":"(withheld)","name":{"givenName":"g"}}`},
		{"patch path", `{"Operations":[{"op":"replace","path":"PASSWORD","value":"p2"},{"op":"add","path":"title","value":"t"}]}`,
			[]string{"p2"}, `{"Operations":[{"op":"replace","path":"PASSWORD","value":"(withheld)"},{"op":"add","path":"title","value":"t"}]}`},
		{"patch value", `{"Operations":[{"op":"replace","value":{"password":"p3","title":"t"}}]}`, []string{"p3"},
			`{"Operations":[{"op":"replace","value":{"password":"(withheld)","title":"t"}}]}`},
		{"scrubbed elsewhere", `{"displayName":"has s3 inside","password":null}`, nil,
			`{"displayName":"has (withheld) inside","password":null}`},
		{"not json", `password=p4`, nil, `password=p4`},
	}
	s := secret.NewScrubber(secret.Withheld, "s3")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PasswordValues([]byte(tt.doc))
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("PasswordValues = %q, want %q", got, tt.want)
			}
			if shown := string(Withhold([]byte(tt.doc), s)); shown != tt.shown {
				t.Errorf("Withhold =\n%s\nwant\n%s", shown, tt.shown)
			}
		})
	}
}

func TestCheckDepth(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		ok   bool
	}{
		{"flat", `{"a":1}`, true},
		{"at the limit", strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth), true},
		{"past it", strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1), false},
		{"brackets in strings", `{"a":"` + strings.Repeat("[", 200) + `\"` + strings.Repeat("{", 200) + `"}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := CheckDepth([]byte(tt.doc)); (err == nil) != tt.ok {
				t.Errorf("CheckDepth: %v", err)
			}
		})
	}
}

// TestDotIDsRefused: ids "." and ".." are never sent as path segments,
// where /Users/.. would reach the service's root; other ids are escaped.
func TestDotIDsRefused(t *testing.T) {
	tests := []struct {
		id, want string // want "" : refused
	}{
		{".", ""},
		{"..", ""},
		{"../Groups/1", "/Users/..%2FGroups%2F1"},
		{"a.b", "/Users/a.b"},
		{"...", "/Users/..."},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			got, err := resourcePath("/Users", tt.id)
			if tt.want == "" {
				if err == nil || !strings.Contains(err.Error(), "not a valid path segment") {
					t.Errorf("resourcePath(%q) = %q, %v", tt.id, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("resourcePath(%q) = %q, %v", tt.id, got, err)
			}
		})
	}
}

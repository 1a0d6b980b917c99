package scim

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/secret"
)

func TestParseServiceProviderConfig(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want ServiceProviderConfig
		err  string
	}{
		{"SCIMMY", `{"schemas":["` + URNServiceConfig + `"],"patch":{"supported":true},"bulk":{"supported":true,"maxOperations":1000,"maxPayloadSize":1048576},` +
			`"filter":{"supported":true,"maxResults":200},"changePassword":{"supported":false},"sort":{"supported":true},"etag":{"supported":false},"authenticationSchemes":[]}`,
			ServiceProviderConfig{Read: true, Patch: Supported, Bulk: BulkConfig{Supported, 1000, 1048576}, Filter: FilterConfig{Supported, 200},
				ChangePassword: Unsupported, Sort: Supported, ETag: Unsupported}, ""},
		{"RFC 9865 pagination", `{"patch":{"supported":true},"bulk":{"supported":false,"maxOperations":0,"maxPayloadSize":0},` +
			`"pagination":{"cursor":true,"index":false,"defaultPaginationMethod":"Cursor","defaultPageSize":100,"maxPageSize":250,"cursorTimeout":3600}}`,
			ServiceProviderConfig{Read: true, Patch: Supported, Bulk: BulkConfig{Supported: Unsupported},
				Pagination: PaginationConfig{Cursor: Supported, Index: Unsupported, DefaultMethod: "cursor", DefaultPageSize: 100, MaxPageSize: 250, CursorTimeout: time.Hour}}, ""},
		{"names in any case, values as strings", `{"PATCH":{"Supported":"true"},"Bulk":{"SUPPORTED":"TRUE","maxoperations":"50","MaxPayloadSize":" 4096 "},"etag":{"supported":"false"}}`,
			ServiceProviderConfig{Read: true, Patch: Supported, Bulk: BulkConfig{Supported, 50, 4096}, ETag: Unsupported}, ""},
		{"wrong kinds are unknown, never guessed", `{"patch":{"supported":"yes"},"bulk":{"supported":1,"maxOperations":-5,"maxPayloadSize":1.5},` +
			`"filter":{"supported":null,"maxResults":99999999999},"pagination":{"cursor":"maybe","defaultPaginationMethod":"random"}}`,
			ServiceProviderConfig{Read: true}, ""},
		{"attributes that are not objects", `{"patch":true,"bulk":[1,2],"filter":"yes"}`, ServiceProviderConfig{Read: true}, ""},
		{"empty object", `{}`, ServiceProviderConfig{Read: true}, ""},
		{"HTML", `<html><body><h1>Not Found</h1></body></html>`, ServiceProviderConfig{}, "not a JSON object: Not Found"},
		{"array", `[{"patch":{"supported":true}}]`, ServiceProviderConfig{}, "not a JSON object"},
		{"truncated", `{"patch":{"supported":true}`, ServiceProviderConfig{}, "not a JSON object"},
		{"empty", ``, ServiceProviderConfig{}, "not a JSON object"},
		{"too deep", strings.Repeat(`{"a":`, 200) + `1` + strings.Repeat(`}`, 200), ServiceProviderConfig{}, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseServiceProviderConfig([]byte(tt.doc))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestDiscoverNeverFails: a service that does not serve the document, or
// serves something else, gives the unknown config with the reason, never
// an error (a hand-written server: these are the error paths).
func TestDiscoverNeverFails(t *testing.T) {
	tests := []struct {
		status int
		body   string
		why    string
	}{
		{404, `{"schemas":["` + URNError + `"],"status":"404"}`, "404"},
		{501, `Not Implemented`, "501"},
		{200, `<html>maintenance</html>`, "not a JSON object"},
		{200, `{"bulk":{"supported":true,"maxOperations":7}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/scim/ServiceProviderConfig" {
					t.Errorf("path %s", r.URL.Path)
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c, err := NewClient(Config{URL: srv.URL + "/scim", MaxAttempts: 1})
			if err != nil {
				t.Fatal(err)
			}
			got := c.Discover(context.Background())
			if tt.why == "" {
				if !got.Read || got.Bulk.Supported != Supported || got.Bulk.MaxOperations != 7 {
					t.Errorf("got %+v", got)
				}
				return
			}
			if got.Read || got.Problem == nil || !strings.Contains(got.Problem.Error(), tt.why) || got.Bulk.Supported != Unknown {
				t.Errorf("got %+v (%v), want unknown because of %q", got, got.Problem, tt.why)
			}
			if !strings.HasPrefix(got.String(), "unknown (") {
				t.Errorf("String() = %q", got.String())
			}
		})
	}
}

// TestDiscoverRealServer reads the SCIMMY test server's document: it
// advertises patch, bulk (1 000 operations, 1 MiB) and filter (200).
func TestDiscoverRealServer(t *testing.T) {
	env := scimtest.Server(t)
	c, err := NewClient(Config{URL: env.URL, Auth: AuthBearer, Token: secret.New(env.Token), UserAgent: scimtest.UserAgent(t)})
	if err != nil {
		t.Fatal(err)
	}
	got := c.Discover(context.Background())
	want := ServiceProviderConfig{Read: true, Patch: Supported, Bulk: BulkConfig{Supported, 1000, 1 << 20},
		Filter: FilterConfig{Supported, 200}, ChangePassword: Unsupported, Sort: Supported, ETag: Unsupported}
	if got != want {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if s := got.String(); !strings.Contains(s, "bulk=yes(maxOperations=1000 maxPayloadSize=1048576)") {
		t.Errorf("String() = %q", s)
	}
}

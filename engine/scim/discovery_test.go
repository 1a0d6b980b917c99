package scim

import (
	"context"
	"fmt"
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

// TestDiscoverOnce: a Client reads the ServiceProviderConfig once and
// answers later calls from it (a resync asks for the listing and for the
// Bulk plan); a 404 (the service serves none) is kept as unknown, while a
// 503 (the service could not say) is asked again.
func TestDiscoverOnce(t *testing.T) {
	env := scimtest.Server(t)
	tests := []struct {
		name     string
		fault    int  // status of the first answer; 0: none
		firstOK  bool // the first call reads the document
		requests int  // GET /ServiceProviderConfig sent over three calls
	}{
		{"read once", 0, true, 1},
		{"404 kept", 404, false, 1},
		{"503 asked again", 503, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ua := scimtest.UserAgent(t)
			c, err := NewClient(Config{URL: env.URL, Auth: AuthBearer, Token: secret.New(env.Token), UserAgent: ua, MaxAttempts: 1})
			if err != nil {
				t.Fatal(err)
			}
			if tt.fault != 0 {
				env.Fault(t, scimtest.Fault{Status: tt.fault, Method: "GET", Path: "/ServiceProviderConfig", UserAgent: ua})
			}
			var reads []bool
			for i := 0; i < 3; i++ {
				reads = append(reads, c.Discover(context.Background()).Read)
			}
			last := tt.firstOK || tt.fault == 503
			if want := []bool{tt.firstOK, last, last}; fmt.Sprint(reads) != fmt.Sprint(want) {
				t.Errorf("Read over three calls %v, want %v", reads, want)
			}
			n := 0
			for _, q := range env.Requests(t, ua) {
				if q.Path == "/ServiceProviderConfig" {
					n++
				}
			}
			if n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
		})
	}
}

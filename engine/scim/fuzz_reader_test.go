package scim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/engine/logsafe"
	"github.com/scimsync/scimsync/engine/secret"
)

// hangAfter is how long one input may take: a hundred times what the
// slowest needs on a loaded machine.
const hangAfter = 10 * time.Second

// fuzzTransport answers every request with one status and body.
type fuzzTransport struct {
	status int
	body   []byte
}

func (f fuzzTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: f.status, Header: http.Header{"Content-Type": {MediaType}},
		Body: io.NopCloser(bytes.NewReader(f.body)), Request: r}, nil
}

var fuzzUser = []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
	"id":"1","userName":"bjensen","displayName":"Babs","active":true,"name":{"givenName":"Barbara","familyName":"Jensen"},
	"emails":[{"type":"work","value":"b@example.com","primary":true}],"phoneNumbers":[{"type":"work","value":"555"}],
	"x":{"a":[1,{"b":null}]},"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"7"}}`)

var fuzzManaged = []string{"userName", "displayName", "active", "name.givenName", "name", "emails", `emails[type eq "work"].value`,
	"phoneNumbers.value", "members", "x", "y", URNEnterpriseUser + ":employeeNumber"}

// FuzzReadSCIM feeds arbitrary answers of a SCIM service through what
// reads them: the client (a search, a read, an error), then the PATCH
// diff, PutBody and Withhold over what it accepted. Nothing may panic or
// hang; a document the client accepts differs from nothing when compared
// with itself; an error message carries no control character and stays
// short. Run: go test ./engine/scim -run '^$' -fuzz FuzzReadSCIM -fuzztime 5m
func FuzzReadSCIM(f *testing.F) {
	for _, s := range []string{
		string(fuzzUser),
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":1,"Resources":[` + string(fuzzUser) + `]}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"id":"g","displayName":"G","members":[{"value":"1"},{"value":"2","display":"x"}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidValue","detail":"bad \u001b[2J"}`,
		`{"userName":"a","USERNAME":"b","emails":[{"value":"a","Value":"b"}]}`,
		`{"x":{"k":"v","K":"w"},"y":[{"a":1},{"A":1}]}`,
		strings.Repeat("[", 70) + strings.Repeat("]", 70),
		`<html><body>502 Bad Gateway</body></html>`,
		`{"Resources":[{"id":"."},{"id":".."}],"totalResults":"x"}`,
		"",
	} {
		for _, status := range []uint8{0, 1, 2} {
			f.Add(status, []byte(s))
		}
	}
	managed := parsePaths(f, fuzzManaged)
	opts := newOpts(f, "User", 0)
	scrub := secret.NewScrubber(secret.Withheld, "Barbara")
	f.Fuzz(func(t *testing.T, status uint8, body []byte) {
		// A hang is a failure too: the fuzzer itself only notices a
		// worker that stops answering, without saying where.
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(hangAfter):
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				panic(fmt.Sprintf("one input took over %v (status %d, %d bytes: %.300q)\n%s", hangAfter, status, len(body), body, buf[:n]))
			}
		}()
		code := []int{200, 400, 404, 409, 201}[int(status)%5]
		c, err := NewClient(Config{URL: "http://scim.invalid/v2", MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		c.hc.Transport = fuzzTransport{status: code, body: body}
		ctx := context.Background()
		var docs [][]byte
		if rs, _, err := c.Search(ctx, "/Users", `userName eq "bjensen"`, false); err == nil {
			docs = append(docs, rs...)
		} else {
			checkErrorText(t, err)
		}
		if r, err := c.Get(ctx, "/Users/1"); err == nil {
			docs = append(docs, r)
		} else {
			checkErrorText(t, err)
		}
		for _, doc := range docs {
			if ops, err := Diff(doc, doc, managed, opts); err == nil && len(ops) > 0 {
				t.Fatalf("a document differs from itself: %s\n%s", formatOps(ops), doc)
			}
			Diff(doc, fuzzUser, managed, opts)
			Diff(fuzzUser, doc, managed, opts)
			PutBody(doc, fuzzUser, managed)
			PutBody(fuzzUser, doc, managed)
			Withhold(doc, scrub)
		}
	})
}

// checkErrorText: an error built from a service's answer is short and
// safe to print.
func checkErrorText(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	if len(msg) > 2048 {
		t.Fatalf("an error of %d bytes: %.200q", len(msg), msg)
	}
	for _, r := range msg {
		if logsafe.Unsafe(r) {
			t.Fatalf("raw %U in the error %q", r, msg)
		}
	}
}

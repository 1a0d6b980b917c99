package engine

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/secret"
)

// TestVerifyListPagingServer is TestVerifyListPaging against the real SCIM
// test server (a private one, so that the collection is known): 45 users
// listed in pages of 20 are all listed — verify's check that each page
// starts where it asked passes, so it does not fall back to a lookup per
// entry — in 4 requests (the service configuration and 3 pages). The
// server used to answer the first 20 users for every page.
func TestVerifyListPagingServer(t *testing.T) {
	env := scimtest.Private(t)
	c, err := scim.NewClient(scim.Config{URL: env.URL, Auth: scim.AuthBearer, Token: secret.New(env.Token),
		UserAgent: scimtest.UserAgent(t), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	for i := range 45 {
		body := fmt.Appendf(nil, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"u%02d"}`, i)
		if _, err := c.Create(context.Background(), "/Users", body); err != nil {
			t.Fatal(err)
		}
	}
	v := &verifier{d: &Destination{Client: c}, opts: VerifyOptions{PageSize: 20, Log: slog.New(slog.DiscardHandler)}}
	ve := &verifyEndpoint{ep: testEndpoint(t), report: &EndpointReport{}}
	if err := v.list(context.Background(), ve); err != nil {
		t.Fatal(err)
	}
	if !ve.list.Listed() || ve.list.Len() != 45 || v.reqs.Load() != 4 {
		t.Fatalf("listed %v with %d resources in %d requests, want 45 in 4", ve.list.Listed(), ve.list.Len(), v.reqs.Load())
	}
}

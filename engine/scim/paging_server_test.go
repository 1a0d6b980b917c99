package scim

// Paging of the real SCIM test server (testdata/servers/scim-server.js), RFC 7644
// §3.4.2.4: verify lists an endpoint page by page, and on a server that
// ignores startIndex it can only fall back to one request per entry. The
// server used to answer the first 20 resources for every page (Express 5
// re-parses req.query on each read, so the router's cast of startIndex and
// count to numbers was lost and SCIMMY ignored both).

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/scim/scimtest"
)

// listPage is one ListResponse as the paging tests read it.
type listPage struct {
	names                           []string // userName or displayName of each resource, in order
	total, startIndex, itemsPerPage int
}

// getPage sends method path (with body for a POST .search) and reads the
// ListResponse, checking that itemsPerPage is the number of resources.
func getPage(t *testing.T, c *Client, method, path string, body []byte) listPage {
	t.Helper()
	r, err := c.Do(context.Background(), method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	doc := gjson.ParseBytes(r.Body)
	p := listPage{total: int(doc.Get("totalResults").Int()), startIndex: int(doc.Get("startIndex").Int()),
		itemsPerPage: int(doc.Get("itemsPerPage").Int())}
	for _, res := range doc.Get("Resources").Array() {
		n := res.Get("userName").String()
		if n == "" {
			n = res.Get("displayName").String()
		}
		p.names = append(p.names, n)
	}
	if p.itemsPerPage != len(p.names) {
		t.Errorf("%s %s: itemsPerPage %d for %d resources", method, path, p.itemsPerPage, len(p.names))
	}
	return p
}

// searchBody is a SearchRequest for POST /Users/.search.
func searchBody(filter string, startIndex, count int) []byte {
	f := ""
	if filter != "" {
		f = fmt.Sprintf(`"filter":%q,`, filter)
	}
	return fmt.Appendf(nil, `{"schemas":[%q],%s"startIndex":%d,"count":%d}`, URNSearchRequest, f, startIndex, count)
}

// createUsers creates userNames prefix-01... in order and returns them.
func createUsers(t *testing.T, c *Client, prefix string, n int) []string {
	t.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%03d", prefix, i+1)
		if _, err := c.Create(context.Background(), "/Users", userJSON(t, names[i])); err != nil {
			t.Fatalf("creating %s: %v", names[i], err)
		}
	}
	return names
}

// pageThrough lists with pages of count from startIndex 1 until totalResults,
// the way verify does, checking each page's startIndex and totalResults.
func pageThrough(t *testing.T, total, count int, page func(start int) listPage) []string {
	t.Helper()
	var all []string
	for start := 1; start <= total; {
		p := page(start)
		if p.startIndex != start || p.total != total || len(p.names) == 0 || len(p.names) > count {
			t.Fatalf("page at %d: startIndex %d, totalResults %d, %d resources (want startIndex %d, totalResults %d, 1..%d resources)",
				start, p.startIndex, p.total, len(p.names), start, total, count)
		}
		all = append(all, p.names...)
		start += len(p.names)
	}
	return all
}

// TestServerPagingFiltered lists 45 users of the shared server with a filter
// that only they match, in pages of 20, with GET and with POST .search: the
// pages follow each other (startIndex 1, 21, 41; 20, 20 and 5 resources, in
// creation order), totalResults is that of the filtered set, and the edge
// cases of RFC 7644 §3.4.2.4 hold (startIndex below 1 is 1, past the end is
// an empty page, count 0 is totalResults only) also with sortBy.
func TestServerPagingFiltered(t *testing.T) {
	env := scimtest.Server(t)
	c, _ := serverClient(t, env, Retry{MaxAttempts: 1}, nil)
	prefix := scimtest.Unique("page")
	names := createUsers(t, c, prefix, 45)
	filter := fmt.Sprintf(`userName sw %q`, prefix+"-")
	q := "/Users?filter=" + strings.ReplaceAll(url.QueryEscape(filter), "+", "%20")

	t.Run("GET pages of 20", func(t *testing.T) {
		got := pageThrough(t, 45, 20, func(start int) listPage {
			return getPage(t, c, http.MethodGet, fmt.Sprintf("%s&startIndex=%d&count=20", q, start), nil)
		})
		if !slices.Equal(got, names) {
			t.Fatalf("listed\n%v\nwant\n%v", got, names)
		}
	})
	t.Run("POST .search pages of 20", func(t *testing.T) {
		got := pageThrough(t, 45, 20, func(start int) listPage {
			return getPage(t, c, http.MethodPost, "/Users/.search", searchBody(filter, start, 20))
		})
		if !slices.Equal(got, names) {
			t.Fatalf("listed\n%v\nwant\n%v", got, names)
		}
	})

	for _, tt := range []struct {
		name      string
		query     string // after the filter
		wantStart int
		want      []string
	}{
		{"startIndex 0 is 1", "&startIndex=0&count=2", 1, names[:2]},
		{"a page inside the first 20", "&startIndex=5&count=3", 5, names[4:7]},
		{"the last page is short", "&startIndex=44&count=20", 44, names[43:]},
		{"past the end", "&startIndex=46&count=20", 46, nil},
		{"count 0: totalResults only", "&count=0", 1, nil},
		{"no paging: 20 from 1", "", 1, names[:20]},
		{"sorted, then paged", "&sortBy=userName&sortOrder=descending&startIndex=2&count=3", 2,
			[]string{names[43], names[42], names[41]}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := getPage(t, c, http.MethodGet, q+tt.query, nil)
			if p.total != 45 || p.startIndex != tt.wantStart || !slices.Equal(p.names, tt.want) {
				t.Fatalf("totalResults %d startIndex %d %v, want 45 %d %v", p.total, p.startIndex, p.names, tt.wantStart, tt.want)
			}
		})
	}
}

// TestServerPagingUnfiltered lists a private server whose collection the
// test knows (205 users, 3 groups) without a filter, the case the server
// cuts from its store: every user once, in creation order, in pages of 20;
// count is capped by the ServiceProviderConfig's filter.maxResults (200);
// /Groups and POST /Users/.search page the same way.
func TestServerPagingUnfiltered(t *testing.T) {
	env := scimtest.Private(t)
	c, _ := serverClient(t, env, Retry{MaxAttempts: 1}, nil)
	ctx := context.Background()
	names := createUsers(t, c, "all", 205)
	groups := []string{"g1", "g2", "g3"}
	for _, g := range groups {
		if _, err := c.Create(ctx, "/Groups", fmt.Appendf(nil, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":%q}`, g)); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := c.Get(ctx, "/ServiceProviderConfig")
	if err != nil {
		t.Fatal(err)
	}
	if max := gjson.GetBytes(cfg, "filter.maxResults").Int(); max != 200 {
		t.Fatalf("filter.maxResults %d, want 200 (this test's cap case assumes it)", max)
	}

	t.Run("pages of 20", func(t *testing.T) {
		got := pageThrough(t, 205, 20, func(start int) listPage {
			return getPage(t, c, http.MethodGet, fmt.Sprintf("/Users?startIndex=%d&count=20", start), nil)
		})
		if !slices.Equal(got, names) {
			t.Fatalf("listed %d users, want the 205 in creation order\n got %v", len(got), got)
		}
	})
	for _, tt := range []struct {
		name      string
		method    string
		path      string
		body      []byte
		total     int
		wantStart int
		want      []string
	}{
		{"count above maxResults is capped", http.MethodGet, "/Users?count=500", nil, 205, 1, names[:200]},
		{"the rest after the cap", http.MethodGet, "/Users?startIndex=201&count=500", nil, 205, 201, names[200:]},
		{"attributes keep the page", http.MethodGet, "/Users?attributes=userName&startIndex=100&count=2", nil, 205, 100, names[99:101]},
		{"groups", http.MethodGet, "/Groups?startIndex=2&count=1", nil, 3, 2, groups[1:2]},
		{"POST .search", http.MethodPost, "/Users/.search", searchBody("", 101, 50), 205, 101, names[100:150]},
		{"POST .search with a filter", http.MethodPost, "/Users/.search", searchBody(`userName sw "all-20"`, 3, 5), 6, 3, names[201:205]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := getPage(t, c, tt.method, tt.path, tt.body)
			if p.total != tt.total || p.startIndex != tt.wantStart || !slices.Equal(p.names, tt.want) {
				t.Fatalf("totalResults %d startIndex %d %v\nwant %d %d %v", p.total, p.startIndex, p.names, tt.total, tt.wantStart, tt.want)
			}
		})
	}
}

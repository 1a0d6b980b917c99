//go:build ignore

// scimload measures the SCIM server's own capacity for the requests a resync of the
// generated directory (genldif.go) sends, with no engine in between: a plain loop of C
// goroutines over one keep-alive net/http client (C = resync's --workers), loopback only,
// bounded by N. (A Node fetch loop was tried first: on 2 cores its client used more CPU
// than the server and it measured less than scimsync itself.)
//
//	SCIM_URL=... SCIM_TOKEN=... go run testdata/bench/scimload.go create N GROUPS MEMBERS [C]
//	  per user: GET /Users?filter=userName eq "…" (nothing found), POST /Users (the body the
//	  shipped openldap-to-scim.pipe maps); then per group: one lookup per member (the
//	  reference), GET /Groups?filter=displayName eq "…", POST /Groups with the members
//	SCIM_URL=... SCIM_TOKEN=... go run testdata/bench/scimload.go lookup N GROUPS MEMBERS [C]
//	  the requests of a second resync where nothing differs: the same lookups, no write
//
// The minimal request sets for the same work (issue 15 #7, testdata/bench/latency.sh): what
// a client that already knew everything it needs would send, the yardstick for scimsync's
// requests per entry and its rate at a given round trip:
//
//	go run testdata/bench/scimload.go post N GROUPS MEMBERS [C]
//	  into an empty service: one POST /Users per user, then one POST /Groups per group
//	  with its members (the ids the user POSTs returned): N + GROUPS requests
//	go run testdata/bench/scimload.go list N GROUPS MEMBERS [C]
//	  finding that nothing differs: GET /Users and GET /Groups in pages of 200
//	  (startIndex, count; the first page of each alone, for totalResults, then the rest
//	  C at a time): about (N + GROUPS) / 200 requests
//	go run testdata/bench/scimload.go patch N GROUPS MEMBERS [C]
//	  N modifies: one PATCH /Users/{id} per user replacing its title; the ids are read
//	  first by listing, neither timed nor counted
//
// Prints: "<mode>: <entries> entries, <requests> requests in <s> s = <e>/s entries, <r> req/s, <f> failed".
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	base, token      string
	client           = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	requests, failed atomic.Int64
)

func call(method, path string, body any) []byte {
	requests.Add(1)
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, r)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := client.Do(req)
	if err != nil {
		failed.Add(1)
		return nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		failed.Add(1)
		return nil
	}
	return data
}

func lookup(path, filter string) string {
	data := call(http.MethodGet, path+"?filter="+strings.ReplaceAll(url.QueryEscape(filter), "+", "%20"), nil)
	var lr struct {
		Resources []struct {
			ID string `json:"id"`
		}
	}
	if json.Unmarshal(data, &lr) == nil && len(lr.Resources) > 0 {
		return lr.Resources[0].ID
	}
	return ""
}

func pool(n, c int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				fn(i)
			}
		}()
	}
	wg.Wait()
}

func main() {
	base, token = strings.TrimRight(os.Getenv("SCIM_URL"), "/"), os.Getenv("SCIM_TOKEN")
	if !regexp.MustCompile(`^https?://(127\.0\.0\.1|localhost|\[::1\])[:/]`).MatchString(base) {
		fmt.Fprintln(os.Stderr, "scimload: SCIM_URL must be a loopback URL")
		os.Exit(2)
	}
	if len(os.Args) < 5 {
		fmt.Fprintln(os.Stderr, "usage: scimload create|lookup|post|list|patch N GROUPS MEMBERS [C]")
		os.Exit(2)
	}
	mode := os.Args[1]
	n, _ := strconv.Atoi(os.Args[2])
	groups, _ := strconv.Atoi(os.Args[3])
	members, _ := strconv.Atoi(os.Args[4])
	c := 4
	if len(os.Args) > 5 {
		c, _ = strconv.Atoi(os.Args[5])
	}
	start := time.Now()
	switch mode {
	case "create", "lookup":
	case "post":
		post(n, groups, members, c)
		report(mode, n+groups, start)
		return
	case "list":
		if seen := list(c); seen != n+groups {
			fmt.Fprintf(os.Stderr, "scimload: the listing held %d resources, not %d\n", seen, n+groups)
			failed.Add(1)
		}
		report(mode, n+groups, start)
		return
	case "patch":
		ids := userIDs(c)
		requests.Store(0)
		start = time.Now()
		patch(n, ids, c)
		report(mode, n, start)
		return
	default:
		fmt.Fprintf(os.Stderr, "scimload: unknown mode %q\n", mode)
		os.Exit(2)
	}
	pool(n, c, func(k int) {
		i := k + 1
		u := uid(i)
		lookup("/Users", `userName eq "`+u+`"`)
		if mode == "lookup" {
			return
		}
		call(http.MethodPost, "/Users", userBody(i))
	})
	pool(groups, c, func(g int) {
		var ms []map[string]string
		for m := 0; m < members; m++ {
			ms = append(ms, map[string]string{"value": lookup("/Users", `userName eq "`+uid(g*members+m+1)+`"`), "type": "User"})
		}
		name := fmt.Sprintf("bench-g%03d", g)
		lookup("/Groups", `displayName eq "`+name+`"`)
		if mode == "lookup" {
			return
		}
		call(http.MethodPost, "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": name, "members": ms})
	})
	report(mode, n+groups, start)
}

func uid(i int) string { return fmt.Sprintf("bench-u%06d", i) }

// userBody is the User the shipped openldap-to-scim.pipe maps from genldif.go's user i.
func userBody(i int) map[string]any {
	u := uid(i)
	return map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"},
		"userName":    u,
		"externalId":  fmt.Sprintf("00000000-0000-0000-0000-%012d", i),
		"name":        map[string]string{"givenName": "Bench", "familyName": fmt.Sprintf("User%d", i)},
		"displayName": fmt.Sprintf("Bench User %d", i), "title": fmt.Sprintf("Engineer %d", i%50),
		"emails":       []map[string]string{{"type": "work", "value": u + "@example.com"}},
		"phoneNumbers": []map[string]string{{"type": "work", "value": fmt.Sprintf("+1 555 %07d", i)}},
		"active":       true,
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]string{"employeeNumber": strconv.Itoa(i)},
	}
}

func report(mode string, entries int, start time.Time) {
	s := time.Since(start).Seconds()
	fmt.Printf("%s: %d entries, %d requests in %.2f s = %.0f/s entries, %.0f req/s, %d failed\n",
		mode, entries, requests.Load(), s, float64(entries)/s, float64(requests.Load())/s, failed.Load())
}

// idOf is the id in a resource's JSON, "" if none.
func idOf(data []byte) string {
	var r struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(data, &r) != nil {
		return ""
	}
	return r.ID
}

// post creates the users, then the groups with the users' ids as members: one request each.
func post(n, groups, members, c int) {
	ids := make([]string, n+1)
	pool(n, c, func(k int) { ids[k+1] = idOf(call(http.MethodPost, "/Users", userBody(k+1))) })
	pool(groups, c, func(g int) {
		ms := make([]map[string]string, 0, members)
		for m := 0; m < members; m++ {
			ms = append(ms, map[string]string{"value": ids[g*members+m+1], "type": "User"})
		}
		name := fmt.Sprintf("bench-g%03d", g)
		if idOf(call(http.MethodPost, "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": name, "members": ms})) == "" {
			failed.Add(1)
		}
	})
}

// pageSize is the largest page the test server gives (its filter.maxResults).
const pageSize = 200

// listPages reads every page of an endpoint: the first alone, for totalResults, then the
// rest c at a time. It calls fn with each page's resources.
func listPages(path string, c int, fn func(resources []json.RawMessage)) {
	page := func(startIndex int) (total int) {
		data := call(http.MethodGet, fmt.Sprintf("%s?startIndex=%d&count=%d", path, startIndex, pageSize), nil)
		var lr struct {
			TotalResults int               `json:"totalResults"`
			Resources    []json.RawMessage `json:"Resources"`
		}
		if json.Unmarshal(data, &lr) != nil {
			failed.Add(1)
			return 0
		}
		fn(lr.Resources)
		return lr.TotalResults
	}
	total := page(1)
	rest := (total - 1) / pageSize // pages after the first
	pool(rest, c, func(k int) { page(1 + (k+1)*pageSize) })
}

// list reads both endpoints whole and returns how many resources it saw.
func list(c int) int {
	var seen atomic.Int64
	count := func(rs []json.RawMessage) { seen.Add(int64(len(rs))) }
	listPages("/Users", c, count)
	listPages("/Groups", c, count)
	return int(seen.Load())
}

// userIDs maps userName to id, by listing.
func userIDs(c int) map[string]string {
	var mu sync.Mutex
	ids := map[string]string{}
	listPages("/Users", c, func(rs []json.RawMessage) {
		mu.Lock()
		defer mu.Unlock()
		for _, raw := range rs {
			var u struct {
				ID       string `json:"id"`
				UserName string `json:"userName"`
			}
			if json.Unmarshal(raw, &u) == nil {
				ids[u.UserName] = u.ID
			}
		}
	})
	return ids
}

// patch replaces each user's title with one PATCH, as a modify of the title in LDAP asks.
func patch(n int, ids map[string]string, c int) {
	tag := time.Now().UnixNano()
	pool(n, c, func(k int) {
		id := ids[uid(k+1)]
		if id == "" {
			failed.Add(1)
			return
		}
		call(http.MethodPatch, "/Users/"+id, map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []map[string]any{{"op": "replace", "path": "title", "value": fmt.Sprintf("Loop %d %d", tag, k+1)}},
		})
	})
}

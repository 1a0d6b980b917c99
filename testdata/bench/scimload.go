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
		fmt.Fprintln(os.Stderr, "usage: scimload create|lookup N GROUPS MEMBERS [C]")
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
	uid := func(i int) string { return fmt.Sprintf("bench-u%06d", i) }
	start := time.Now()
	pool(n, c, func(k int) {
		i := k + 1
		u := uid(i)
		lookup("/Users", `userName eq "`+u+`"`)
		if mode == "lookup" {
			return
		}
		call(http.MethodPost, "/Users", map[string]any{
			"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"},
			"userName":    u,
			"externalId":  fmt.Sprintf("00000000-0000-0000-0000-%012d", i),
			"name":        map[string]string{"givenName": "Bench", "familyName": fmt.Sprintf("User%d", i)},
			"displayName": fmt.Sprintf("Bench User %d", i), "title": fmt.Sprintf("Engineer %d", i%50),
			"emails":       []map[string]string{{"type": "work", "value": u + "@example.com"}},
			"phoneNumbers": []map[string]string{{"type": "work", "value": fmt.Sprintf("+1 555 %07d", i)}},
			"active":       true,
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]string{"employeeNumber": strconv.Itoa(i)},
		})
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
	s := time.Since(start).Seconds()
	fmt.Printf("%s: %d entries, %d requests in %.2f s = %.0f/s entries, %.0f req/s, %d failed\n",
		mode, n+groups, requests.Load(), s, float64(n+groups)/s, float64(requests.Load())/s, failed.Load())
}

package engine

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/lang"
)

// benchUser is a User as the SCIM test server (SCIMMY) lists one that
// scripts/openldap-to-scim.pipe created from testdata/bench/genldif.go's
// entries: the same keys, in the same order, values of the same lengths.
func benchUser(i int) string {
	id := fmt.Sprintf("%08x-b12f-479e-bc86-9a81a26c618c", i)
	return `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],` +
		`"id":"` + id + `","externalId":"` + fmt.Sprintf("%08x-2c1f-103f-8f2a-5b1f2f7a8e11", i) + `",` +
		`"meta":{"resourceType":"User","created":"2026-12-02T07:27:29.146Z","lastModified":"2026-12-02T07:27:29.146Z",` +
		`"location":"http://127.0.0.1:8880/scim/v2/Users/` + id + `","version":"W/\"1\""},` +
		fmt.Sprintf(`"userName":"bench-u%06d","name":{"familyName":"User%d","givenName":"Bench"},"displayName":"Bench User %d",`, i, i, i) +
		fmt.Sprintf(`"title":"Engineer %d","active":true,"emails":[{"value":"bench-u%06d@example.com","type":"work"}],`, i%50, i) +
		fmt.Sprintf(`"phoneNumbers":[{"value":"+1 555 %07d","type":"work"}],`, i) +
		fmt.Sprintf(`"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"%d"}}`, i)
}

// benchUsersServer serves n benchUsers at /Users in pages of at most 200,
// as the test server does.
func benchUsersServer(tb testing.TB, n int) *httptest.Server {
	users := make([]string, n)
	for i := range users {
		users[i] = benchUser(i + 1)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/scim+json")
		start, _ := strconv.Atoi(r.URL.Query().Get("startIndex"))
		count, _ := strconv.Atoi(r.URL.Query().Get("count"))
		start = max(start, 1)
		end := min(start-1+min(count, 200), n)
		fmt.Fprintf(w, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"Resources":[%s],"startIndex":%d,"itemsPerPage":%d,"totalResults":%d}`,
			strings.Join(users[start-1:end], ","), start, end-start+1, n)
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// openldapPipe is the shipped scripts/openldap-to-scim.pipe with its SCIM
// URL set to url.
func openldapPipe(tb testing.TB, url string) *lang.Pipe {
	text, err := os.ReadFile("../scripts/openldap-to-scim.pipe")
	if err != nil {
		tb.Fatal(err)
	}
	env := map[string]string{"SCIM_URL": url, "SCIM_TOKEN": "t"}
	p, err := lang.Load("openldap-to-scim.pipe", string(text), lang.LoadOptions{LookupEnv: func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// BenchmarkListingMemory measures what a listing of n Users keeps live
// once read and indexed by its lookup attribute (as a resync's first
// lookup indexes it): the heap in use after a collection, less the heap in
// use before, per listed resource (B/resource). time/op and allocs/op are
// those of reading the listing from a local server.
//
//	go test -run '^$' -bench BenchmarkListingMemory -benchtime 3x ./engine/
func BenchmarkListingMemory(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		srv := benchUsersServer(b, n)
		p := openldapPipe(b, srv.URL)
		c, err := scim.NewClient(scim.Config{URL: srv.URL})
		if err != nil {
			b.Fatal(err)
		}
		d := &Destination{Client: c, Pipe: p}
		ep := p.Endpoint("Users")
		for _, v := range listingVariants {
			b.Run(fmt.Sprintf("%s/%d", v.name, n), func(b *testing.B) {
				b.ReportAllocs()
				var perResource float64
				for b.Loop() {
					var before, after runtime.MemStats
					runtime.GC()
					runtime.ReadMemStats(&before)
					opts := v.opts
					opts.MaxResults, opts.Max = -1, -1
					l, err := d.List(context.Background(), ep, opts)
					if err != nil || !l.Listed() || l.Len() != n {
						b.Fatalf("listed %v (%s), %d resources, err %v", l.Listed(), l.Reason(), l.Len(), err)
					}
					if r := l.lookup(`userName eq "bench-u000001"`, ""); !r.done || r.current == nil {
						b.Fatalf("lookup: %+v", r)
					}
					runtime.GC()
					runtime.ReadMemStats(&after)
					perResource = (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n)
					runtime.KeepAlive(l)
				}
				b.ReportMetric(perResource, "B/resource")
			})
		}
	}
}

// listingVariants are the listings BenchmarkListingMemory compares.
var listingVariants = []struct {
	name string
	opts ListOptions
}{
	{"whole", ListOptions{Whole: true}},
	{"compact", ListOptions{}},
}

// BenchmarkListingWrites measures what a listing keeps per resource a
// resync creates into it (AfterApply: the resource's comparable values
// and its lookup filter's, for the attributes indexed already), after a
// collection, per create (B/resource).
func BenchmarkListingWrites(b *testing.B) {
	const n = 10000
	p := openldapPipe(b, "https://scim.example.com/v2")
	bodies := make([][]byte, n)
	for i := range bodies {
		// The body sent: the listed form less id and meta.
		bodies[i] = []byte(strings.Replace(benchUser(i+1), `"meta":{`, `"x":{`, 1))
	}
	b.ReportAllocs()
	var perResource float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		l := NewListing(p.Endpoint("Users"))
		if r := l.lookup(`userName eq "bench-u000001"`, ""); !r.done || r.current != nil {
			b.Fatalf("lookup: %+v", r)
		}
		for i, body := range bodies {
			l.wrote(fmt.Sprintf("%08x-b12f-479e-bc86-9a81a26c618c", i+1), body, fmt.Sprintf(`userName eq "bench-u%06d"`, i+1))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perResource = (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / n
		runtime.KeepAlive(l)
	}
	b.ReportMetric(perResource, "B/resource")
}

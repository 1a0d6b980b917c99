package engine

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/lang"
)

// listingPipe has a Users endpoint looked up by userName and a Groups
// endpoint looked up by displayName.
func listingPipe(t *testing.T) *lang.Pipe {
	t.Helper()
	p, err := lang.Load("l.pipe", `pipe "l"
source ldif { file = "x.ldif" }
scim {
  url   = "https://scim.example.com/v2"
  token = "t"
}
endpoint Users {
  path    = "/Users"
  schemas = ["urn:ietf:params:scim:schemas:core:2.0:User"]
  lookup  = "userName eq " + scimQuote(first(uid))
}
endpoint Groups {
  path    = "/Groups"
  schemas = ["urn:ietf:params:scim:schemas:core:2.0:Group"]
  lookup  = "displayName eq " + scimQuote(first(cn))
}
class people {
  base     = "ou=People,dc=example,dc=com"
  endpoint = Users
  map {
    userName    = first(uid)
    displayName = first(cn)
  }
}
`, lang.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestListingLookup walks a listing through the answers Destination.find
// takes from it, in order (each step sees what the earlier ones did): a
// listed resource by id or filter, none the first time a question finds
// nothing and the service the second time, the service for anything a
// write of this process may have changed (the resource written, any filter
// the body written matches, any "none" after a create whose outcome is
// unknown), and the service for what the listing cannot answer as the
// service would (a filter it does not evaluate, an attribute no listed
// resource carries, a group listed without members).
func TestListingLookup(t *testing.T) {
	p := listingPipe(t)
	users := NewListing(p.Endpoint("Users"),
		[]byte(`{"id":"1","userName":"alice","displayName":"Alice","emails":[{"value":"a@x"}]}`),
		[]byte(`{"id":"2","userName":"bob","displayName":"Bob"}`),
		[]byte(`{"id":"3","userName":"carol","displayName":"Twin"}`),
		[]byte(`{"id":"4","userName":"dave","displayName":"Twin"}`),
	)
	groups := NewListing(p.Endpoint("Groups"),
		[]byte(`{"id":"g1","displayName":"staff","members":[{"value":"1"}]}`),
		[]byte(`{"id":"g2","displayName":"empty"}`),
	)
	type step struct {
		name    string
		l       *Listing
		wrote   []string // id, body written before the lookup ("" id: a create whose outcome is unknown)
		filter  string
		known   string
		want    string // "id", "none", "ask", "gone" (ask the filter only), "multiple"
		wantID  string
		wantRaw string // a substring of the resource answered
	}
	steps := []step{
		{name: "known id listed", l: users, known: "2", want: "id", wantID: "2", wantRaw: `"bob"`},
		{name: "filter, one match, case folded", l: users, filter: `userName eq "ALICE"`, want: "id", wantID: "1"},
		{name: "filter and filter", l: users, filter: `userName eq "carol" and displayName eq "twin"`, want: "id", wantID: "3"},
		{name: "filter, two matches", l: users, filter: `displayName eq "Twin"`, want: "multiple"},
		{name: "filter, none", l: users, filter: `userName eq "erin"`, want: "none"},
		{name: "the same filter again: the service", l: users, filter: `userName eq "erin"`, want: "ask"},
		{name: "known id not listed: gone, then the filter", l: users, known: "99", filter: `userName eq "frank"`, want: "none"},
		{name: "the same id again: the service", l: users, known: "99", filter: `userName eq "bob"`, want: "ask"},
		{name: "known id gone, no filter", l: users, known: "98", want: "none"},
		{name: "not equalities", l: users, filter: `userName sw "a"`, want: "ask"},
		{name: "or", l: users, filter: `userName eq "alice" or userName eq "bob"`, want: "ask"},
		{name: "multi-valued attribute", l: users, filter: `emails.value eq "a@x"`, want: "ask"},
		{name: "attribute no listed resource carries", l: users, filter: `title eq "boss"`, want: "ask"},
		{name: "unknown attribute", l: users, filter: `shoeSize eq "9"`, want: "ask"},
		{name: "written resource by id", l: users, wrote: []string{"2", `{"userName":"robert","displayName":"Bob"}`}, known: "2", want: "ask"},
		{name: "written resource by its old value", l: users, filter: `userName eq "bob"`, want: "ask"},
		{name: "written resource by its new value", l: users, filter: `userName eq "Robert"`, want: "ask"},
		{name: "created resource by its value", l: users, wrote: []string{"5", `{"userName":"gina"}`}, filter: `userName eq "gina"`, want: "ask"},
		{name: "untouched resource still answered", l: users, filter: `userName eq "alice"`, want: "id", wantID: "1"},
		{name: "a miss is still a miss", l: users, filter: `userName eq "hank"`, want: "none"},
		{name: "after a create of unknown outcome, no miss", l: users, wrote: []string{"", `{"userName":"ivy"}`}, filter: `userName eq "jack"`, want: "ask"},
		{name: "a hit is still a hit", l: users, filter: `userName eq "alice"`, want: "id", wantID: "1"},
		{name: "group with members", l: groups, filter: `displayName eq "staff"`, want: "id", wantID: "g1", wantRaw: `"members"`},
		{name: "group listed without members", l: groups, filter: `displayName eq "empty"`, want: "ask"},
		{name: "group known id without members", l: groups, known: "g2", want: "ask"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.wrote != nil {
				s.l.wrote(s.wrote[0], []byte(s.wrote[1]), "")
			}
			r := s.l.lookup(s.filter, s.known)
			got := "ask"
			switch {
			case r.done && r.err != nil && IsMultipleMatch(r.err):
				got = "multiple"
			case r.done && r.err != nil:
				t.Fatalf("error %v", r.err)
			case r.done && r.current == nil:
				got = "none"
			case r.done:
				got = "id"
			case r.gone:
				got = "gone"
			}
			if got != s.want || s.wantID != "" && r.id != s.wantID || s.wantRaw != "" && !strings.Contains(string(r.current), s.wantRaw) {
				t.Fatalf("got %s %q %s, want %s %q %s", got, r.id, r.current, s.want, s.wantID, s.wantRaw)
			}
		})
	}
}

// TestAfterApply: what a resync tells the listing after each apply. A
// create makes the created resource (by the body sent and the lookup
// filter) the service's to answer; an unchanged resource stays answered
// from the listing; a refused create and a reference not synced yet
// record nothing; a create that may or may not have happened stops every
// "none" answer.
func TestAfterApply(t *testing.T) {
	p := listingPipe(t)
	ep := p.Endpoint("Users")
	ev := p.NewEvaluator()
	// result evaluates an entry: a Result is read before the evaluator's
	// next Eval, which reuses its buffers.
	result := func(uid, cn string) *lang.Result {
		e := lang.NewEntry("uid="+uid+",ou=People,dc=example,dc=com", []lang.Attr{{Name: "uid", Values: []string{uid}}, {Name: "cn", Values: []string{cn}}})
		res, err := ev.Eval(&lang.Change{Type: lang.Add, DN: e.DN, Entry: e}, lang.Resync)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	l := NewListing(ep, []byte(`{"id":"1","userName":"alice","displayName":"A"}`))
	d := &Destination{Pipe: p, Listings: map[string]*Listing{"Users": l}}
	ask := func(filter string) string {
		r := l.lookup(filter, "")
		switch {
		case !r.done:
			return "ask"
		case r.current == nil:
			return "none"
		}
		return r.id
	}
	refused := &scim.Error{Status: http.StatusBadRequest}
	unanswered := &scim.Error{Status: http.StatusServiceUnavailable}
	steps := []struct {
		name    string
		uid, cn string // the entry applied ("": none)
		a       Applied
		err     error
		filter  string
		want    string
	}{
		{"unchanged: still answered", "alice", "A", Applied{Outcome: Unchanged, ID: "1", Endpoint: ep}, nil, `userName eq "alice"`, "1"},
		{"updated: the service's", "alice", "B", Applied{Outcome: Updated, ID: "1", Endpoint: ep}, nil, `userName eq "alice"`, "ask"},
		{"created: found by the service", "bob", "Bob", Applied{Outcome: Created, ID: "2", Endpoint: ep}, nil, `userName eq "bob"`, "ask"},
		{"created: by an attribute of its body", "", "", Applied{}, nil, `displayName eq "bob"`, "ask"},
		{"refused create: nothing made", "carol", "C", Applied{Endpoint: ep}, refused, `userName eq "carol"`, "none"},
		{"reference not synced: nothing sent", "dave", "D", Applied{Endpoint: ep}, &notYetError{dn: "x"}, `userName eq "dave"`, "none"},
		{"a miss elsewhere is still a miss", "", "", Applied{}, nil, `userName eq "erin"`, "none"},
		{"create of unknown outcome: no more misses", "frank", "F", Applied{Endpoint: ep}, unanswered, `userName eq "gina"`, "ask"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.uid != "" {
				d.AfterApply(result(s.uid, s.cn), s.a, s.err, nil)
			}
			if got := ask(s.filter); got != s.want {
				t.Fatalf("%s: got %s, want %s", s.filter, got, s.want)
			}
		})
	}
	// A dry run writes nothing: the listing learns nothing.
	dl := NewListing(ep)
	dry := &Destination{Pipe: p, Listings: map[string]*Listing{"Users": dl}, DryRun: func(string, string, []byte) {}}
	dry.AfterApply(result("hank", "H"), Applied{Outcome: Created, ID: dryRunID, Endpoint: ep}, nil, nil)
	if r := dl.lookup(`userName eq "hank"`, ""); !r.done || r.current != nil {
		t.Fatalf("dry run: %+v", r)
	}
}

// TestListFallback: List with a fake service (error paths only; the real
// server's paging is TestResyncListing's): a later page failing after the
// client's retries, refused, or timing out leaves the endpoint to lookups
// with a warning instead of an error; the first page refused likewise; a
// first page failing otherwise is the caller's error; more resources than
// Max, or more pages than the entries want, are not listed; a cancelled
// context is an error.
func TestListFallback(t *testing.T) {
	const n = 45
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf(`{"id":"%02d","userName":"u%02d"}`, i, i)
	}
	tests := []struct {
		name      string
		failAt    int // the startIndex answered with status
		status    int
		opts      ListOptions
		listed    bool
		err       bool
		warned    string
		wantPages int
	}{
		{name: "all pages", listed: true, wantPages: 3},
		{name: "later page 503", failAt: 21, status: 503, warned: "a page of the endpoint's listing failed"},
		{name: "later page 400", failAt: 41, status: 400, warned: "a page of the endpoint's listing failed"},
		{name: "later page 504 then fine", failAt: -21, status: 504, listed: true, wantPages: 3},
		{name: "first page 501", failAt: 1, status: 501, warned: "does not list"},
		{name: "first page 503", failAt: 1, status: 503, err: true},
		{name: "too many", opts: ListOptions{Max: 44}, warned: "more resources than a listing may hold"},
		{name: "enough", opts: ListOptions{Max: 45}, listed: true, wantPages: 3},
		{name: "more pages than entries", opts: ListOptions{Want: 2}},
		{name: "as many pages as entries", opts: ListOptions{Want: 3}, listed: true, wantPages: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var failed atomic.Bool
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/scim+json")
				if strings.HasSuffix(r.URL.Path, "/ServiceProviderConfig") {
					fmt.Fprint(w, `{"filter":{"supported":true,"maxResults":20}}`)
					return
				}
				start, _ := strconv.Atoi(r.URL.Query().Get("startIndex"))
				// failAt < 0: fail once only (the client's retry passes).
				if tt.failAt == start || -tt.failAt == start && !failed.Swap(true) {
					w.WriteHeader(tt.status)
					fmt.Fprintf(w, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"%d"}`, tt.status)
					return
				}
				end := min(start-1+20, n)
				fmt.Fprintf(w, `{"totalResults":%d,"startIndex":%d,"itemsPerPage":20,"Resources":[%s]}`,
					n, start, strings.Join(users[start-1:end], ","))
			}))
			defer srv.Close()
			c, err := scim.NewClient(scim.Config{URL: srv.URL, MaxAttempts: 2})
			if err != nil {
				t.Fatal(err)
			}
			var logged strings.Builder
			opts := tt.opts
			opts.Log = slog.New(slog.NewTextHandler(&logged, nil))
			l, err := (&Destination{Client: c}).List(context.Background(), testEndpoint(t), opts)
			if (err != nil) != tt.err || l.Listed() != tt.listed || tt.listed && (l.Len() != n || l.Pages() != tt.wantPages) {
				t.Fatalf("listed %v (%s), %d resources in %d pages, err %v", l.Listed(), l.Reason(), l.Len(), l.Pages(), err)
			}
			if !tt.listed && (l.Len() != 0 || l.lookup(`userName eq "u01"`, "").done) {
				t.Fatal("a listing not listed answers lookups")
			}
			if tt.warned != "" && !strings.Contains(logged.String(), tt.warned) {
				t.Fatalf("log %q, want %q", logged.String(), tt.warned)
			}
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cancel()
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		defer srv.Close()
		c, err := scim.NewClient(scim.Config{URL: srv.URL, MaxAttempts: 2})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := (&Destination{Client: c}).List(ctx, testEndpoint(t), ListOptions{MaxResults: -1}); err == nil {
			t.Fatal("a cancelled listing is no error")
		}
	})
}

// TestListingBound: a listing that outgrows its Max with what a resync
// creates (or the questions it answers "none") stops answering: every
// lookup then asks the service, and what it held is let go.
func TestListingBound(t *testing.T) {
	p := listingPipe(t)
	l := NewListing(p.Endpoint("Users"), []byte(`{"id":"1","userName":"alice"}`), []byte(`{"id":"2","userName":"bob"}`))
	l.max = 3
	if r := l.lookup(`userName eq "carol"`, ""); !r.done || r.current != nil {
		t.Fatalf("a miss within the bound: %+v", r)
	}
	l.wrote("3", []byte(`{"userName":"carol"}`), `userName eq "carol"`)
	if r := l.lookup(`userName eq "alice"`, ""); !l.Listed() || !r.done || r.id != "1" {
		t.Fatalf("3 resources, max 3: %+v", r)
	}
	l.wrote("4", []byte(`{"userName":"dave"}`), `userName eq "dave"`)
	if r := l.lookup(`userName eq "alice"`, ""); l.Listed() || r.done || len(l.res) != 0 {
		t.Fatalf("4 resources, max 3: still listed (%+v)", r)
	}
}

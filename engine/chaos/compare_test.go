package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/lang"
)

// want is one resource the final directory maps to: what SCIM must hold.
// References (group members) read "Endpoint/name" (the member's userName
// or displayName) instead of SCIM ids, which the directory cannot know.
type want struct {
	endpoint   string // Users, Groups
	dn         string
	externalID string // the entry's identity (entryUUID, nsUniqueId): set on create
	name       string // userName or displayName
	doc        gjson.Result
	managed    []scim.Path // what the class manages on update: compared one by one
}

// got is one resource the SCIM service holds.
type got struct {
	endpoint string
	doc      gjson.Result
}

func (g got) id() string         { return g.doc.Get("id").Str }
func (g got) externalID() string { return g.doc.Get("externalId").Str }
func (g got) name() string {
	if g.endpoint == "Users" {
		return g.doc.Get("userName").Str
	}
	return g.doc.Get("displayName").Str
}

// nameKey is what a resource's name is compared by: userName is
// case-insensitive in SCIM (RFC 7643 §4.1.1), displayName is treated the
// same so that two groups differing only in case count as duplicates.
func nameKey(endpoint, name string) string { return endpoint + "/" + strings.ToLower(name) }

// readDirectory returns every entry under base with the attributes the
// pipe reads (operational ones such as entryUUID included).
func readDirectory(url, bindDN, bindPW, base string, p *lang.Pipe) ([]*lang.Entry, error) {
	c, err := ldap.DialURL(url)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Bind(bindDN, bindPW); err != nil {
		return nil, err
	}
	attrs := append([]string{"*"}, p.Attributes()...)
	res, err := c.SearchWithPaging(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", attrs, nil), 500)
	if err != nil {
		return nil, err
	}
	var out []*lang.Entry
	for _, e := range res.Entries {
		var as []lang.Attr
		for _, a := range e.Attributes {
			as = append(as, lang.Attr{Name: a.Name, Values: a.Values})
		}
		out = append(out, lang.NewEntry(e.DN, as))
	}
	return out, nil
}

// expected maps the final directory with the pipe, as a resync would:
// each entry a class takes becomes the resource of its endpoint, and each
// reference the name of the resource the referenced entry becomes, left
// out when that entry is gone or in no class's scope.
func expected(p *lang.Pipe, entries []*lang.Entry) ([]want, error) {
	byDN := map[string]*lang.Entry{}
	for _, e := range entries {
		byDN[source.NormalizeDN(e.DN)] = e
	}
	refEv := p.NewEvaluator()
	type named struct {
		ep   *lang.Endpoint
		name string
		ok   bool
	}
	names := map[string]named{}
	nameOf := func(dn string) (named, error) {
		key := source.NormalizeDN(dn)
		if n, ok := names[key]; ok {
			return n, nil
		}
		var n named
		if e := byDN[key]; e != nil {
			res, err := refEv.Eval(&lang.Change{Type: lang.Add, DN: e.DN, Entry: e}, lang.Resync)
			if err != nil {
				return n, err
			}
			if !res.OutOfScope {
				doc, err := res.Resource(lang.Create, nil)
				if err != nil {
					return n, err
				}
				n = named{ep: res.Endpoint, name: resourceName(res.Endpoint.Name, gjson.ParseBytes(doc)), ok: true}
			}
		}
		names[key] = n
		return n, nil
	}
	resolver := lang.ResolverFunc(func(dn string, eps []*lang.Endpoint) (lang.Ref, bool, error) {
		n, err := nameOf(dn)
		if err != nil || !n.ok || !slices.Contains(eps, n.ep) {
			return lang.Ref{}, false, err
		}
		return lang.Ref{ID: n.ep.Name + "/" + n.name, Type: n.ep.Type}, true, nil
	})
	ev := p.NewEvaluator()
	var out []want
	for _, e := range entries {
		res, err := ev.Eval(&lang.Change{Type: lang.Add, DN: e.DN, Entry: e}, lang.Resync)
		if err != nil {
			return nil, err
		}
		if res.OutOfScope {
			continue
		}
		doc, err := res.Resource(lang.Create, resolver)
		if err != nil {
			return nil, err
		}
		d := gjson.ParseBytes(doc)
		out = append(out, want{
			endpoint: res.Endpoint.Name, dn: e.DN, externalID: d.Get("externalId").Str,
			name: resourceName(res.Endpoint.Name, d), doc: d, managed: res.Managed(lang.Update),
		})
	}
	return out, nil
}

func resourceName(endpoint string, doc gjson.Result) string {
	if endpoint == "Users" {
		return doc.Get("userName").Str
	}
	return doc.Get("displayName").Str
}

// readSCIM reads every resource of an endpoint straight from the SCIM
// server (not through the fault proxy), a page of 100 at a time.
func readSCIM(ctx context.Context, baseURL, token, endpoint string) ([]got, error) {
	var out []got
	hc := &http.Client{Timeout: 30 * time.Second}
	for start := 1; ; {
		// POST /.search: the test server ignores paging parameters in a query string
		body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"startIndex":%d,"count":100}`, start)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/"+endpoint+"/.search", strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("POST /%s/.search: %s: %s", endpoint, resp.Status, b)
		}
		page := gjson.GetBytes(b, "Resources").Array()
		for _, r := range page {
			out = append(out, got{endpoint: endpoint, doc: r})
		}
		start += len(page)
		total := int(gjson.GetBytes(b, "totalResults").Int())
		if len(page) == 0 || start > total {
			if len(out) != total {
				return nil, fmt.Errorf("/%s: read %d resources, the server counts %d", endpoint, len(out), total)
			}
			return out, nil
		}
	}
}

// report is what compare finds. Every count must be 0.
type report struct {
	wanted, held                         int
	missing, extra, differing, duplicate int
	byPath                               map[string]int // differing resources per managed attribute
	details                              []string       // the first differences, in full
}

const maxDetails = 25

func (r *report) detail(format string, args ...any) {
	if len(r.details) < maxDetails {
		r.details = append(r.details, fmt.Sprintf(format, args...))
	}
}

func (r *report) ok() bool {
	return r.missing == 0 && r.extra == 0 && r.differing == 0 && r.duplicate == 0
}

// compare matches what SCIM holds with what the directory maps to. A
// resource is matched by its externalId (the entry's identity, set on
// create). Missing: an entry without resource. Duplicate: every resource
// beyond the first with one externalId, or one userName/displayName, at an
// endpoint (a create that happened twice). Extra: a resource no entry
// maps to. Differing: a matched resource with a managed attribute unlike
// the mapping; references are compared by the referenced resource's name.
func compare(wants []want, held []got) report {
	r := report{wanted: len(wants), held: len(held), byPath: map[string]int{}}
	names := map[string]string{} // SCIM id -> Endpoint/name
	byExt := map[string][]got{}
	byName := map[string][]got{}
	for _, g := range held {
		names[g.id()] = g.endpoint + "/" + g.name()
		byExt[g.endpoint+"/"+g.externalID()] = append(byExt[g.endpoint+"/"+g.externalID()], g)
		byName[nameKey(g.endpoint, g.name())] = append(byName[nameKey(g.endpoint, g.name())], g)
	}
	surplus := map[string]bool{} // ids of duplicates
	for _, groups := range []map[string][]got{byExt, byName} {
		keys := make([]string, 0, len(groups))
		for k := range groups {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			gs := groups[k]
			if len(gs) < 2 || strings.HasSuffix(k, "/") {
				continue
			}
			var ids []string
			for _, g := range gs {
				ids = append(ids, g.id())
			}
			r.detail("duplicate %s: %d resources %v", k, len(gs), ids)
			for _, g := range gs[1:] {
				surplus[g.id()] = true
			}
		}
	}
	r.duplicate = len(surplus)
	matched := map[string]bool{}
	for _, w := range wants {
		gs := byExt[w.endpoint+"/"+w.externalID]
		if len(gs) == 0 {
			r.missing++
			r.detail("missing %s %q: entry %s (externalId %s)", w.endpoint, w.name, w.dn, w.externalID)
			continue
		}
		for _, g := range gs {
			matched[g.id()] = true
		}
		var diffs []string
		for _, p := range w.managed {
			wv := canonical(valueAt(w.doc, p), nil)
			gv := canonical(valueAt(gs[0].doc, p), names)
			if wv != gv {
				r.byPath[p.String()]++
				diffs = append(diffs, fmt.Sprintf("%s: want %s, SCIM has %s", p, wv, gv))
			}
		}
		if len(diffs) > 0 {
			r.differing++
			r.detail("differing %s %q (id %s, entry %s): %s", w.endpoint, w.name, gs[0].id(), w.dn, strings.Join(diffs, "; "))
		}
	}
	for _, g := range held {
		if !matched[g.id()] && !surplus[g.id()] {
			r.extra++
			r.detail("extra %s %q (id %s, externalId %q): no entry of the directory maps to it", g.endpoint, g.name(), g.id(), g.externalID())
		}
	}
	return r
}

// valueAt returns the value a target path names in a resource: an element
// chosen by the path's filter (emails[type eq "work"].value) when it has
// one.
func valueAt(doc gjson.Result, p scim.Path) gjson.Result {
	if len(p.Filter) == 0 {
		return doc.Get(p.JSONPath())
	}
	arr := doc.Get(scim.Path{URN: p.URN, Attr: p.Attr}.JSONPath())
	for _, el := range arr.Array() {
		match := true
		for _, eq := range p.Filter {
			v := el.Get(scim.EscapeKey(eq.Attr))
			if s, ok := eq.Value.(string); ok {
				match = match && strings.EqualFold(v.Str, s)
			} else {
				match = match && fmt.Sprint(v.Value()) == fmt.Sprint(eq.Value)
			}
		}
		if match {
			if p.Sub == "" {
				return el
			}
			return el.Get(scim.EscapeKey(p.Sub))
		}
	}
	return gjson.Result{}
}

// canonical renders a value for comparison: absent, null, "" and [] are
// one ("(none)"); a list of references (members) becomes the sorted names
// of the referenced resources, through names (SCIM id -> Endpoint/name;
// nil when the values already are names).
func canonical(v gjson.Result, names map[string]string) string {
	switch {
	case !v.Exists() || v.Type == gjson.Null || v.Type == gjson.String && v.Str == "":
		return "(none)"
	case v.IsArray():
		arr := v.Array()
		if len(arr) == 0 {
			return "(none)"
		}
		if arr[0].Get("value").Exists() {
			var refs []string
			for _, el := range arr {
				id := el.Get("value").Str
				if names != nil {
					if n, ok := names[id]; ok {
						id = n
					} else {
						id = "(unknown id " + id + ")"
					}
				}
				refs = append(refs, id)
			}
			sort.Strings(refs)
			return "[" + strings.Join(refs, ", ") + "]"
		}
	case v.Type == gjson.String:
		return fmt.Sprintf("%q", v.Str)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(v.Raw)); err != nil {
		return v.Raw
	}
	return buf.String()
}

// summary is the report's counts, per-attribute differences included.
func (r report) summary() string {
	var paths []string
	for p, n := range r.byPath {
		paths = append(paths, fmt.Sprintf("%s %d", p, n))
	}
	sort.Strings(paths)
	s := fmt.Sprintf("expected %d, SCIM holds %d: missing %d, extra %d, differing %d, duplicate %d",
		r.wanted, r.held, r.missing, r.extra, r.differing, r.duplicate)
	if len(paths) > 0 {
		s += " (" + strings.Join(paths, ", ") + ")"
	}
	return s
}

// TestCompare checks the comparison itself: each kind of difference
// between the directory's mapping and SCIM is found and counted once, and
// equal states give all zeros, so that a passing chaos test means equal.
func TestCompare(t *testing.T) {
	path := func(s string) scim.Path {
		p, err := scim.ParsePath(s, nil)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	userPaths := []scim.Path{path("userName"), path("title"), path(`emails[type eq "work"].value`)}
	groupPaths := []scim.Path{path("displayName"), path("members")}
	user := func(name, ext, title, mail string) want {
		doc := fmt.Sprintf(`{"userName":%q,"externalId":%q,"title":%q,"emails":[{"type":"work","value":%q}]}`, name, ext, title, mail)
		return want{endpoint: "Users", dn: "uid=" + name, externalID: ext, name: name, doc: gjson.Parse(doc), managed: userPaths}
	}
	grp := func(name, ext string, members ...string) want {
		var ms []string
		for _, m := range members {
			ms = append(ms, fmt.Sprintf(`{"value":%q,"type":"User"}`, m))
		}
		doc := fmt.Sprintf(`{"displayName":%q,"externalId":%q,"members":[%s]}`, name, ext, strings.Join(ms, ","))
		return want{endpoint: "Groups", dn: "cn=" + name, externalID: ext, name: name, doc: gjson.Parse(doc), managed: groupPaths}
	}
	scimUser := func(id, name, ext, title, mail string) got {
		return got{"Users", gjson.Parse(fmt.Sprintf(`{"id":%q,"userName":%q,"externalId":%q,"title":%q,"emails":[{"value":%q,"type":"work","primary":false}]}`, id, name, ext, title, mail))}
	}
	scimGroup := func(id, name, ext string, memberIDs ...string) got {
		var ms []string
		for _, m := range memberIDs {
			ms = append(ms, fmt.Sprintf(`{"value":%q,"type":"User"}`, m))
		}
		return got{"Groups", gjson.Parse(fmt.Sprintf(`{"id":%q,"displayName":%q,"externalId":%q,"members":[%s]}`, id, name, ext, strings.Join(ms, ",")))}
	}
	wants := []want{user("ann", "e1", "Engineer", "ann@example.com"), user("bob", "e2", "", "bob@example.com"),
		grp("staff", "e3", "Users/ann", "Users/bob")}
	same := []got{scimUser("1", "ann", "e1", "Engineer", "ann@example.com"), scimUser("2", "bob", "e2", "", "bob@example.com"),
		scimGroup("3", "staff", "e3", "2", "1")}
	tests := []struct {
		name string
		held []got
		want [4]int // missing, extra, differing, duplicate
		path string // a managed attribute counted as differing
	}{
		{"equal", same, [4]int{}, ""},
		{"missing user", []got{same[0], same[2]}, [4]int{1, 0, 1, 0}, "members"}, // staff then names an unknown id
		{"extra user", append(slices.Clone(same), scimUser("9", "zed", "e9", "", "")), [4]int{0, 1, 0, 0}, ""},
		{"differing title", []got{scimUser("1", "ann", "e1", "Manager", "ann@example.com"), same[1], same[2]}, [4]int{0, 0, 1, 0}, "title"},
		{"title set where the entry has none", []got{same[0], scimUser("2", "bob", "e2", "Intern", "bob@example.com"), same[2]}, [4]int{0, 0, 1, 0}, "title"},
		{"differing mail", []got{scimUser("1", "ann", "e1", "Engineer", "old@example.com"), same[1], same[2]}, [4]int{0, 0, 1, 0}, `emails[type eq "work"].value`},
		{"member left over", []got{same[0], same[1], scimGroup("3", "staff", "e3", "1")}, [4]int{0, 0, 1, 0}, "members"},
		{"group created twice", append(slices.Clone(same), scimGroup("4", "staff", "e3", "1", "2")), [4]int{0, 0, 0, 1}, ""},
		{"same displayName, other externalId", append(slices.Clone(same), scimGroup("4", "staff", "e8")), [4]int{0, 0, 0, 1}, ""},
		{"renamed user not renamed in SCIM", []got{scimUser("1", "ann-old", "e1", "Engineer", "ann@example.com"), same[1], same[2]}, [4]int{0, 0, 2, 0}, "userName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := compare(wants, tt.held)
			if gotN := [4]int{r.missing, r.extra, r.differing, r.duplicate}; gotN != tt.want {
				t.Errorf("missing, extra, differing, duplicate = %v, want %v\n%s", gotN, tt.want, strings.Join(r.details, "\n"))
			}
			if tt.path != "" && r.byPath[tt.path] == 0 {
				t.Errorf("no difference counted for %s: %v", tt.path, r.byPath)
			}
			if r.ok() != (tt.want == [4]int{}) {
				t.Errorf("ok() = %v", r.ok())
			}
		})
	}
}

package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/engine/source/ldaptest"
	"github.com/scimsync/scimsync/engine/state"
	"github.com/scimsync/scimsync/lang"
)

// TestCompactListingSameAnswers (issue 15): a listing that keeps only what
// its readers use (keepSet) gives the answers a listing of whole resources
// gives. The shipped scripts/openldap-to-scim.pipe (people deactivated on
// delete, so that verify reads active) from a private slapd (30 users with
// a manager, mail, phone, title and employee number; groups "all", "some"
// and the nested "inner") into a private SCIM server, synced once; then,
// for whole listings and for compact ones in turn, the same drift is made
// at the service — a title, the work email (beside an unmanaged home
// one), phoneNumbers removed (and an unmanaged nickName and photos
// added), the enterprise employeeNumber, active, name.givenName, a user
// deleted, group "all" missing a member and holding a stray one, an
// unmanaged user, an orphan of the id map and an orphan already
// deactivated — and `verify` then a listed `resync` run. Both verify
// reports (every item, count, PATCH body and request count), both
// resyncs' writes (method, path and body of each, alone or in a Bulk
// request, ids shown as names) and the
// service's state afterwards must be equal, and the drift must show.
func TestCompactListingSameAnswers(t *testing.T) {
	const users = 30
	uid := func(i int) string { return fmt.Sprintf("cl-u%02d", i) }
	dn := func(i int) string { return "uid=" + uid(i) + ",ou=People,dc=example,dc=com" }
	var seed strings.Builder
	seed.WriteString("dn: ou=People,dc=example,dc=com\nobjectClass: organizationalUnit\nou: People\n\n")
	seed.WriteString("dn: ou=Groups,dc=example,dc=com\nobjectClass: organizationalUnit\nou: Groups\n\n")
	var all []string
	for i := range users {
		fmt.Fprintf(&seed, "dn: %s\nobjectClass: inetOrgPerson\nuid: %s\ncn: User %d\nsn: Number%d\ngivenName: User\n", dn(i), uid(i), i, i)
		fmt.Fprintf(&seed, "mail: %s@Example.COM\ntitle: Engineer %d\ntelephoneNumber: +1 555 %07d\nemployeeNumber: %d\n", uid(i), i%5, i, i)
		if i > 0 {
			fmt.Fprintf(&seed, "manager: %s\n", dn(0))
		}
		seed.WriteString("\n")
		all = append(all, dn(i))
	}
	group := func(name string, members ...string) {
		fmt.Fprintf(&seed, "dn: cn=%s,ou=Groups,dc=example,dc=com\nobjectClass: groupOfNames\ncn: %s\n", name, name)
		for _, m := range members {
			fmt.Fprintf(&seed, "member: %s\n", m)
		}
		seed.WriteString("\n")
	}
	group("cl-inner", dn(29))
	group("cl-all", all...)
	group("cl-some", append(all[10:20:20], "cn=cl-inner,ou=Groups,dc=example,dc=com")...)
	seedFile := filepath.Join(t.TempDir(), "seed.ldif")
	if err := os.WriteFile(seedFile, []byte(seed.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := ldaptest.StartOpenLDAP(t, "OPENLDAP_SEED_LDIF="+seedFile)
	env := scimtest.Private(t)
	vars := map[string]string{"LDAP_URL": srv.URL, "LDAP_BASE": srv.Base, "LDAP_BIND_DN": srv.BindDN, "LDAP_BIND_PW": srv.BindPW,
		"SCIM_URL": env.URL, "SCIM_TOKEN": env.Token}
	text := strings.Replace(pipeText(t, "openldap-to-scim.pipe"), "  endpoint = Users\n", "  endpoint = Users\n  onDelete = \"deactivate\"\n", 1)
	p, err := lang.Load("compact.pipe", text, lang.LoadOptions{LookupEnv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	client := func(ua string) *scim.Client {
		cfg := p.SCIM
		cfg.UserAgent = ua
		c, err := scim.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.CloseIdleConnections)
		return c
	}
	ua := scimtest.UserAgent(t)
	c, admin := client(ua), client(ua+"-drift")
	entries, err := NewLDAPEntries(ctx, p, LDAPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { entries.Close() })
	store, err := state.Open(t.TempDir(), p.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })

	// dump is the service's state: names by id, and each resource
	// without id and meta, members by name, sorted.
	dump := func() (names map[string]string, text string) {
		t.Helper()
		resp, err := http.Get(strings.TrimRight(env.ControlURL, "/") + "/dump")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var d map[string][]map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
			t.Fatal(err)
		}
		names = map[string]string{}
		for _, r := range d["Users"] {
			names[fmt.Sprint(r["id"])] = fmt.Sprint(r["userName"])
		}
		for _, r := range d["Groups"] {
			names[fmt.Sprint(r["id"])] = fmt.Sprint(r["displayName"])
		}
		var out []string
		for _, kind := range []string{"Users", "Groups"} {
			for _, r := range d[kind] {
				delete(r, "id")
				delete(r, "meta")
				if ms, ok := r["members"].([]any); ok {
					var vals []string
					for _, m := range ms {
						mm, _ := m.(map[string]any)
						vals = append(vals, names[fmt.Sprint(mm["value"])])
					}
					sort.Strings(vals)
					r["members"] = vals
				}
				b, _ := json.Marshal(r)
				out = append(out, kind+" "+string(b))
			}
		}
		sort.Strings(out)
		return names, strings.Join(out, "\n")
	}
	// named shows each id of s as the name of its resource.
	named := func(s string, names map[string]string) string {
		for id, n := range names {
			s = strings.ReplaceAll(s, id, "<"+n+">")
		}
		return s
	}
	// resync runs a listed resync, whole or compact, filling the id map,
	// and returns its writes.
	resync := func(whole bool) []string {
		t.Helper()
		d := &Destination{Client: c, Pipe: p}
		ls, err := d.ListAll(ctx, p.Endpoints, ListOptions{Whole: whole, Who: "test"})
		if err != nil || len(ls) != 2 {
			t.Fatalf("listings %v, err %v", ls, err)
		}
		for _, l := range ls {
			// The listing is whole, or compact, as asked.
			for _, id := range l.IDs() {
				raw, _ := l.Peek(id)
				if got := bytes.Contains(raw, []byte(`"meta"`)); got != whole {
					t.Fatalf("whole %v: a listed resource holds meta %v: %s", whole, got, raw)
				}
			}
		}
		d.Listings = ls
		before := lastSeq(t, env, ua)
		var mu sync.Mutex
		var failed []string
		_, err = Resync(ctx, p, d, entries, ResyncOptions{
			Refs:   &RefResolver{Ctx: ctx, Pipe: p, Dest: d, Mode: lang.Resync, Entry: entries.Get},
			Failed: func(dn string, err error) { mu.Lock(); failed = append(failed, dn+": "+err.Error()); mu.Unlock() },
			Applied: func(e *lang.Entry, class string, a Applied) {
				if a.ID == "" || a.Endpoint == nil {
					return
				}
				key := source.Identity(e, p.Source)
				if key == "" {
					key = "dn:" + source.NormalizeDN(e.DN)
				}
				if err := store.Put(key, state.Mapping{Endpoint: a.Endpoint.Name, SCIMID: a.ID, DN: e.DN, Class: class}); err != nil {
					t.Error(err)
				}
			},
		})
		if err != nil || len(failed) > 0 {
			t.Fatalf("resync: %v %v", err, failed)
		}
		names, _ := dump()
		// Each write, however it travelled (alone, or as an operation of
		// a Bulk request: its bulkId left out, in whatever order the
		// workers queued it).
		var writes []string
		for _, q := range env.Requests(t, ua) {
			if q.Seq <= before || q.Method == http.MethodGet || strings.HasSuffix(q.Path, "/.search") {
				continue
			}
			if q.Method != http.MethodPost || q.Path != "/Bulk" {
				writes = append(writes, named(q.Method+" "+q.Path+" "+string(q.Body), names))
				continue
			}
			var bulk struct {
				Operations []struct {
					Method, Path string
					Data         json.RawMessage
				}
			}
			if err := json.Unmarshal(q.Body, &bulk); err != nil {
				t.Fatalf("%v: %s", err, q.Body)
			}
			for _, op := range bulk.Operations {
				writes = append(writes, named(op.Method+" "+op.Path+" "+string(op.Data), names))
			}
		}
		sort.Strings(writes)
		return writes
	}
	resync(false) // the first load

	// The resources of the drift that the directory does not have: an
	// unmanaged user (and a stray member), and two orphans the id map
	// knows, one still active.
	create := func(userName string, active bool) string {
		body := fmt.Sprintf(`{"schemas":["%s"],"userName":%q,"active":%v}`, scim.URNUser, userName, active)
		b, err := admin.Create(ctx, "/Users", []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		var r struct{ ID string }
		if err := json.Unmarshal(b, &r); err != nil || r.ID == "" {
			t.Fatalf("create %s: %s", userName, b)
		}
		return r.ID
	}
	stray := create("cl-stray", true)
	for _, o := range []struct {
		name   string
		active bool
	}{{"cl-gone", true}, {"cl-gone-inactive", false}} {
		id := create(o.name, o.active)
		if err := store.Put("gone-"+o.name, state.Mapping{Endpoint: "Users", SCIMID: id, DN: "uid=" + o.name + ",ou=People,dc=example,dc=com", Class: "people"}); err != nil {
			t.Fatal(err)
		}
	}
	patch := func(id string, ops ...string) {
		t.Helper()
		body := `{"schemas":["` + scim.URNPatchOp + `"],"Operations":[` + strings.Join(ops, ",") + `]}`
		if _, err := admin.Patch(ctx, "/Users", id, []byte(body)); err != nil {
			if _, gerr := admin.Patch(ctx, "/Groups", id, []byte(body)); gerr != nil {
				t.Fatalf("patch %s: %v / %v", body, err, gerr)
			}
		}
	}
	// drift makes the same differences each time it is called.
	drift := func() {
		t.Helper()
		names, _ := dump()
		ids := map[string]string{}
		for id, n := range names {
			ids[n] = id
		}
		patch(ids[uid(1)], `{"op":"replace","path":"title","value":"Drifted"}`)
		patch(ids[uid(2)], `{"op":"replace","path":"emails","value":[{"value":"wrong@example.com","type":"work"},{"value":"home@example.com","type":"home"}]}`)
		patch(ids[uid(3)], `{"op":"remove","path":"phoneNumbers"}`, `{"op":"replace","path":"nickName","value":"nick"}`,
			`{"op":"replace","path":"photos","value":[{"value":"https://photos.example.com/cl-u03.jpg","type":"photo"}]}`)
		patch(ids[uid(4)], `{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber","value":"999"}`)
		patch(ids[uid(5)], `{"op":"replace","path":"active","value":false}`)
		patch(ids[uid(6)], `{"op":"replace","path":"name.givenName","value":"Drifted"}`)
		if id := ids[uid(7)]; id != "" {
			if err := admin.Delete(ctx, "/Users", id); err != nil {
				t.Fatal(err)
			}
		}
		var members []string
		for i := range users {
			if i != 7 && i != 8 {
				members = append(members, fmt.Sprintf(`{"value":%q}`, ids[uid(i)]))
			}
		}
		members = append(members, fmt.Sprintf(`{"value":%q}`, stray))
		patch(ids["cl-all"], `{"op":"replace","path":"members","value":[`+strings.Join(members, ",")+`]}`)
	}
	// verify runs verify, with whole listings or compact ones: keepFor
	// keeps the listings of a pipe that updates by PUT whole, and verify,
	// which never writes here, reads nothing else of the pipe's update.
	verify := func(whole bool) (string, *VerifyReport) {
		t.Helper()
		vp := p
		if whole {
			cp := *p
			cp.Update = "put"
			vp = &cp
		}
		rep, err := Verify(ctx, vp, &Destination{Client: c, Pipe: vp}, entries, VerifyOptions{Store: store})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range rep.Endpoints {
			if !e.Listed {
				t.Fatalf("verify did not list %s", e.Name)
			}
		}
		b, err := json.MarshalIndent(struct {
			Entries   int64
			Requests  int64
			Endpoints []*EndpointReport
			Items     []*Drift
			Errors    []string
		}{rep.Entries, rep.Requests, rep.Endpoints, rep.Items, rep.Errors}, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		return string(b), rep
	}

	var reports, states [2]string
	var writes [2][]string
	for mode, whole := range []bool{true, false} {
		drift()
		var rep *VerifyReport
		reports[mode], rep = verify(whole)
		writes[mode] = resync(whole)
		_, states[mode] = dump()
		if mode == 0 {
			t.Logf("resync's writes:\n%s", strings.Join(writes[0], "\n"))
			counts := map[string]int{}
			for _, e := range rep.Endpoints {
				counts[e.Name+" differing"], counts[e.Name+" missing"] = e.Differing, e.Missing
				counts[e.Name+" orphans"], counts[e.Name+" unmanaged"] = e.Orphans, e.Unmanaged
			}
			want := map[string]int{"Users differing": 6, "Users missing": 1, "Users orphans": 1, "Users unmanaged": 1,
				"Groups differing": 1, "Groups missing": 0, "Groups orphans": 0, "Groups unmanaged": 0}
			for k, n := range want {
				if counts[k] != n {
					t.Errorf("verify: %s %d, want %d", k, counts[k], n)
				}
			}
			// Six PATCHes of users, the deleted one created again, the
			// group's members.
			if len(writes[0]) != 8 {
				t.Errorf("resync: %d writes, want 8:\n%s", len(writes[0]), strings.Join(writes[0], "\n"))
			}
		}
	}
	if d := lineDiff(reports[0], reports[1]); d != "" {
		t.Errorf("verify's report, whole listings (-) and compact ones (+):\n%s", d)
	}
	if d := lineDiff(strings.Join(writes[0], "\n"), strings.Join(writes[1], "\n")); d != "" {
		t.Errorf("resync's writes, whole listings (-) and compact ones (+):\n%s", d)
	}
	if d := lineDiff(states[0], states[1]); d != "" {
		t.Errorf("the state after the resync, whole listings (-) and compact ones (+):\n%s", d)
	}
	if !strings.Contains(states[1], `"nickName":"nick"`) || !strings.Contains(states[1], "photos.example.com") || !strings.Contains(states[1], "home@example.com") {
		t.Errorf("what the pipe does not manage was not kept:\n%s", states[1])
	}
}

// lineDiff returns the lines of a not in b (-) and of b not in a (+),
// counted as multisets; "" when they hold the same lines.
func lineDiff(a, b string) string {
	count := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		count[l]--
	}
	for _, l := range strings.Split(b, "\n") {
		count[l]++
	}
	var out []string
	for l, n := range count {
		for ; n < 0; n++ {
			out = append(out, "- "+l)
		}
		for ; n > 0; n-- {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

package engine

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/engine/source/ldaptest"
	"github.com/scimsync/scimsync/engine/state"
)

// shadowRun is a run of the shipped OpenLDAP pipe into a private SCIM
// server, with shadows (read) or without (GET-first), counting the changes
// it has finished.
type shadowRun struct {
	*ldapRun
	read bool
	seen atomic.Int64
}

func startShadowRun(t *testing.T, srv ldaptest.Server, env scimtest.Env, pos string, read bool) *shadowRun {
	t.Helper()
	p := shippedPipe(t, "openldap-to-scim.pipe", srv, env)
	r := &shadowRun{ldapRun: &ldapRun{t: t, srv: srv, env: env, pipe: p, ua: scimtest.UserAgent(t), done: make(chan error, 1)}, read: read}
	cfg := p.SCIM
	cfg.UserAgent = r.ua
	var err error
	if r.client, err = scim.NewClient(cfg); err != nil {
		t.Fatal(err)
	}
	if r.st, err = state.Open(t.TempDir(), p.Name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.st.Close() })
	if err := r.st.SetCheckpoint(pos); err != nil {
		t.Fatal(err)
	}
	r.tune = func(run *Runner) {
		run.Observe = func(ChangeRecord) { r.seen.Add(1) }
		if read {
			run.Dest.Shadows = NewShadows(r.st)
			run.ReadShadows = true
		}
	}
	r.start()
	return r
}

// dump returns the private server's resources, each with its id and meta
// taken out, keyed "Users:"+externalId; labels maps every id it holds to
// that key.
func dump(t *testing.T, env scimtest.Env, labels map[string]string) map[string]string {
	t.Helper()
	resp, err := http.Get(strings.TrimRight(env.ControlURL, "/") + "/dump")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, kind := range []string{"Users", "Groups"} {
		for _, r := range gjson.GetBytes(body, kind).Array() {
			key := kind + ":" + r.Get("externalId").String()
			labels[r.Get("id").String()] = key
			var m map[string]any
			if err := json.Unmarshal([]byte(r.Raw), &m); err != nil {
				t.Fatal(err)
			}
			delete(m, "id")
			delete(m, "meta")
			b, _ := json.Marshal(m)
			out[key] = string(b)
		}
	}
	return out
}

// relabel replaces every id labels knows in s by its label.
func relabel(s string, labels map[string]string) string {
	for id, l := range labels {
		if id != "" {
			s = strings.ReplaceAll(s, id, "<"+l+">")
		}
	}
	return s
}

// TestShadowsWriteWhatGETFirstWrites: the same LDAP changes (adds, one with
// a manager; modifies of single-valued attributes, the email and the phone
// number; group members added and removed; a rename; a delete and a
// re-add; an attribute set back to an earlier value) reach two private SCIM
// servers through two runs at once, one with shadows and one reading each
// resource first. Both servers end with the same resources, both runs send
// the same writes (method, path, body, in order), and the run with shadows
// sends no GET of a resource before its PATCH but one: the group's change
// after a member was deleted (the service took the member out of the
// group by itself, so the shadow, which still lists it, is not used). (The
// test server refuses a PATCH of the enterprise manager, with or without
// shadows, so the manager is set by the create only.)
func TestShadowsWriteWhatGETFirstWrites(t *testing.T) {
	srv := ldaptest.StartOpenLDAP(t)
	c := srv.Dial(t)
	sub := srv.Subtree(t, c, "shadows")
	envs := []scimtest.Env{scimtest.Private(t), scimtest.Private(t)}
	pos, err := source.StartPoint(t.Context(), shippedPipe(t, "openldap-to-scim.pipe", sub, envs[0]).Source,
		source.StartSpec{Kind: source.StartEnd}, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	runs := []*shadowRun{startShadowRun(t, sub, envs[0], pos, true), startShadowRun(t, sub, envs[1], pos, false)}

	people := "ou=People," + sub.Base
	dn := func(uid string) string { return "uid=" + uid + "," + people }
	g1 := "cn=shadow-g1,ou=Groups," + sub.Base
	replace := func(who, attr string, vals ...string) func() {
		return func() { ldapModify(t, c, who, func(m *ldap.ModifyRequest) { m.Replace(attr, vals) }) }
	}
	steps := []struct {
		name   string
		op     func()
		modify bool // a modify of an existing resource: one write, and no GET with shadows
		reads  int  // GETs of a resource the run with shadows sends all the same
	}{
		{"add u1", func() {
			sub.AddUser(t, c, "u1", map[string][]string{"mail": {"U1@Example.com"}, "title": {"A"},
				"telephoneNumber": {"+1 555 0101"}, "employeeNumber": {"1"}, "givenName": {"Una"}})
		}, false, 0},
		{"add u2, managed by u1", func() { sub.AddUser(t, c, "u2", map[string][]string{"manager": {dn("u1")}, "title": {"A"}}) }, false, 0},
		{"add u3", func() { sub.AddUser(t, c, "u3", map[string][]string{"mail": {"u3@example.com"}}) }, false, 0},
		{"add group g1 (u1, u2)", func() { ldapAddGroup(t, c, sub, "shadow-g1", dn("u1"), dn("u2")) }, false, 0},
		{"u1 title A→B", replace(dn("u1"), "title", "B"), true, 0},
		{"u1 email", replace(dn("u1"), "mail", "una@example.org"), true, 0},
		{"u1 phone number", replace(dn("u1"), "telephoneNumber", "+1 555 0199"), true, 0},
		{"u1 phone number removed", replace(dn("u1"), "telephoneNumber"), true, 0},
		{"g1 member u3 added", func() { ldapModify(t, c, g1, func(m *ldap.ModifyRequest) { m.Add("member", []string{dn("u3")}) }) }, true, 0},
		{"g1 member u1 removed", func() { ldapModify(t, c, g1, func(m *ldap.ModifyRequest) { m.Delete("member", []string{dn("u1")}) }) }, true, 0},
		{"u2 renamed u2b", func() {
			if err := c.ModifyDN(ldap.NewModifyDNRequest(dn("u2"), "uid=u2b", true, "")); err != nil {
				t.Fatal(err)
			}
		}, true, 0},
		{"g1 member u2 renamed (as refint would)", func() {
			ldapModify(t, c, g1, func(m *ldap.ModifyRequest) {
				m.Delete("member", []string{dn("u2")})
				m.Add("member", []string{dn("u2b")})
			})
		}, false, 0}, // nothing to write: the member's SCIM id did not change
		{"u1 title B→A (back)", replace(dn("u1"), "title", "A"), true, 0},
		{"u2b employee number", replace(dn("u2b"), "employeeNumber", "22"), true, 0},
		{"delete u3", func() { ldapDelete(t, c, dn("u3")) }, false, 0},
		{"g1 member u1 added again", func() { ldapModify(t, c, g1, func(m *ldap.ModifyRequest) { m.Add("member", []string{dn("u1")}) }) }, true, 1},
		{"re-add u3", func() { sub.AddUser(t, c, "u3", map[string][]string{"title": {"again"}}) }, false, 0},
		{"u3 title", replace(dn("u3"), "title", "B"), true, 0},
		{"g1 member u3 (dangling, now the new u3)", func() {
			ldapModify(t, c, g1, func(m *ldap.ModifyRequest) { m.Replace("description", []string{"touched"}) })
		}, true, 0},
		{"u2b display name", replace(dn("u2b"), "displayName", "Two B"), true, 0},
	}

	labels := map[string]string{}
	type counts struct{ gets, writes int }
	var perStep [][2]counts // per step: [shadows, GET-first]
	seq := []int{0, 0}
	want := int64(0)
	for _, s := range steps {
		s.op()
		want++
		for _, r := range runs {
			waitFor(t, 20*time.Second, s.name, func() (bool, string) {
				return r.seen.Load() >= want, fmt.Sprintf("%d of %d changes", r.seen.Load(), want)
			})
		}
		dump(t, envs[0], labels)
		dump(t, envs[1], labels)
		var step [2]counts
		for i, r := range runs {
			for _, q := range r.env.Requests(t, r.ua) {
				if q.Seq <= seq[i] {
					continue
				}
				seq[i] = max(seq[i], q.Seq)
				if testing.Verbose() {
					t.Logf("  run %d: %s %s %v %d %s", i, q.Method, relabel(q.Path, labels), q.Query, q.Status, relabel(string(q.Body), labels))
				}
				switch {
				case q.Method == http.MethodGet && len(q.Query) == 0:
					step[i].gets++
				case q.Method != http.MethodGet:
					step[i].writes++
				}
			}
		}
		perStep = append(perStep, step)
		t.Logf("%-42s shadows: %d GET, %d writes · GET-first: %d GET, %d writes", s.name,
			step[0].gets, step[0].writes, step[1].gets, step[1].writes)
	}

	// (a) the same resources
	a, b := dump(t, envs[0], labels), dump(t, envs[1], labels)
	if len(a) != len(b) || len(a) != 4 {
		t.Errorf("%d resources with shadows, %d without; want 4 each", len(a), len(b))
	}
	for k, v := range a {
		if relabel(v, labels) != relabel(b[k], labels) {
			t.Errorf("%s differs:\n shadows:   %s\n GET-first: %s", k, relabel(v, labels), relabel(b[k], labels))
		}
	}
	// (b) the same writes, in order
	writes := func(r *shadowRun) []string {
		var out []string
		for _, q := range r.env.Requests(t, r.ua) {
			if q.Method != http.MethodGet {
				out = append(out, relabel(q.Method+" "+q.Path+" "+string(q.Body), labels))
			}
		}
		return out
	}
	wa, wb := writes(runs[0]), writes(runs[1])
	if !slices.Equal(wa, wb) {
		t.Errorf("the writes differ:\n shadows:\n  %s\n GET-first:\n  %s", strings.Join(wa, "\n  "), strings.Join(wb, "\n  "))
	}
	// (c) requests per modify
	var mods, shadowGets, shadowWrites, firstGets, firstWrites int
	for i, s := range steps {
		st := perStep[i]
		if !s.modify {
			continue
		}
		mods++
		shadowGets += st[0].gets
		shadowWrites += st[0].writes
		firstGets += st[1].gets
		firstWrites += st[1].writes
		if st[0].gets != s.reads || st[0].writes != 1 || st[1].gets != 1 || st[1].writes != 1 {
			t.Errorf("%s: shadows %d GET %d writes (want %d, 1), GET-first %d GET %d writes (want 1, 1)",
				s.name, st[0].gets, st[0].writes, s.reads, st[1].gets, st[1].writes)
		}
	}
	t.Logf("%d modifies: with shadows %.2f GET and %.2f writes per modify; GET-first %.2f GET and %.2f writes",
		mods, float64(shadowGets)/float64(mods), float64(shadowWrites)/float64(mods),
		float64(firstGets)/float64(mods), float64(firstWrites)/float64(mods))
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("%s: %s", k, relabel(a[k], labels))
	}
}

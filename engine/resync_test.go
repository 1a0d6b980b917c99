package engine

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/lang"
)

// directory builds users and groups with names unique to the test, so
// tests can share one SCIM server: groups "all" (every user), "half" (the
// first half of the users and the nested group "inner"), "inner" (one user).
func directory(t *testing.T, prefix string, users int) *source.Directory {
	t.Helper()
	var b strings.Builder
	var all []string
	for i := 0; i < users; i++ {
		uid := fmt.Sprintf("%s-u%03d", prefix, i)
		dn := "uid=" + uid + ",ou=People,dc=example,dc=com"
		all = append(all, dn)
		fmt.Fprintf(&b, "dn: %s\nuid: %s\nentryUUID: uuid-%s\ngivenName: User\nsn: Number %d\ncn: User %d\nmail: %s@example.com\n\n", dn, uid, uid, i, i, uid)
	}
	group := func(name string, members []string) {
		fmt.Fprintf(&b, "dn: cn=%s-%s,ou=Groups,dc=example,dc=com\ncn: %s-%s\n", prefix, name, prefix, name)
		for _, m := range members {
			fmt.Fprintf(&b, "member: %s\n", m)
		}
		b.WriteString("\n")
	}
	// "half" comes before "inner", which it contains: the nested group
	// must be created before the group that refers to it.
	group("all", all)
	group("half", append(append([]string{}, all[:users/2]...), "cn="+prefix+"-inner,ou=Groups,dc=example,dc=com",
		"uid=nobody,ou=Elsewhere,dc=example,dc=com"))
	group("inner", all[:1])
	_, dir, err := source.ReadLDIF(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// resync runs Resync with a resolver over dir and returns the stats and
// the failures.
func (f *fixture) resync(dir *source.Directory, dns []string, tune func(*Destination, *ResyncOptions)) (*Stats, map[string]error) {
	f.t.Helper()
	d := *f.dest
	var mu sync.Mutex
	failed := map[string]error{}
	opts := ResyncOptions{
		Workers: 4,
		Refs: &RefResolver{Pipe: f.pipe, Dest: &d, Mode: lang.Resync,
			Entry: func(dn string) (*lang.Entry, error) { return dir.Get(dn), nil }},
		Failed: func(dn string, err error) { mu.Lock(); failed[dn] = err; mu.Unlock() },
	}
	if tune != nil {
		tune(&d, &opts)
	}
	opts.Refs.(*RefResolver).Dest = &d
	st, err := Resync(context.Background(), f.pipe, &d, &DirectoryEntries{Dir: dir, DNs: dns}, opts)
	if err != nil {
		f.t.Fatal(err)
	}
	return st, failed
}

// lastSeq is the sequence number of the newest request logged for ua.
func lastSeq(t *testing.T, env scimtest.Env, ua string) int {
	seq := 0
	for _, r := range env.Requests(t, ua) {
		seq = max(seq, r.Seq)
	}
	return seq
}

// writesSince lists the write requests logged for ua after seq (the
// server's log is bounded, so positions in it shift; sequence numbers do not).
func writesSince(t *testing.T, env scimtest.Env, ua string, seq int) []string {
	var out []string
	for _, r := range env.Requests(t, ua) {
		if r.Seq > seq && r.Method != "GET" && !strings.HasSuffix(r.Path, "/.search") {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}

func TestResync(t *testing.T) {
	f := newFixture(t, "patch", "delete")
	prefix := scimtest.Unique("rs")
	const users = 40
	dir := directory(t, prefix, users)
	ua := f.ua

	// Into an empty service: every user and group created, members resolved.
	st, failed := f.resync(dir, nil, nil)
	if len(failed) > 0 || st.Created.Load() != users+3 || st.Failed.Load() != 0 {
		t.Fatalf("first resync: created %d, failed %v", st.Created.Load(), failed)
	}
	ids := map[string]string{}
	for i := 0; i < users; i++ {
		uid := fmt.Sprintf("%s-u%03d", prefix, i)
		found, _, err := f.client.Search(context.Background(), "/Users", `userName eq "`+uid+`"`, false)
		if err != nil || len(found) != 1 {
			t.Fatalf("user %s: %v, %d found", uid, err, len(found))
		}
		ids["uid="+uid+",ou=People,dc=example,dc=com"] = string(bytesField(found[0], "id"))
	}
	group := func(name string) []string {
		found, _, err := f.client.Search(context.Background(), "/Groups", `displayName eq "`+prefix+"-"+name+`"`, false)
		if err != nil || len(found) != 1 {
			t.Fatalf("group %s: %v, %d found", name, err, len(found))
		}
		return memberValues(found[0])
	}
	if got := group("all"); len(got) != users {
		t.Errorf("group all has %d members, want %d", len(got), users)
	}
	half := group("half")
	if len(half) != users/2+1 { // the users and the nested group; the DN outside every class is left out
		t.Errorf("group half has %d members, want %d: %v", len(half), users/2+1, half)
	}
	if got := group("inner"); len(got) != 1 || got[0] != ids["uid="+prefix+"-u000,ou=People,dc=example,dc=com"] {
		t.Errorf("group inner members = %v", got)
	}

	// Again: nothing differs, nothing is written.
	before := lastSeq(t, f.env, ua)
	st, failed = f.resync(dir, nil, nil)
	if len(failed) > 0 || st.Unchanged.Load() != users+3 || st.Requests.Load() != 0 {
		t.Fatalf("second resync: unchanged %d, requests %d, failed %v", st.Unchanged.Load(), st.Requests.Load(), failed)
	}
	if w := writesSince(t, f.env, ua, before); len(w) != 0 {
		t.Fatalf("second resync wrote %v", w)
	}

	// Edits in SCIM are repaired, and only they.
	u5 := ids["uid="+prefix+"-u005,ou=People,dc=example,dc=com"]
	mustPatch(t, f, "/Users", u5, `{"op":"replace","path":"displayName","value":"Edited"}`)
	allID := groupID(t, f, prefix+"-all")
	mustPatch(t, f, "/Groups", allID, `{"op":"remove","path":"members[value eq \"`+u5+`\"]"}`)
	before = lastSeq(t, f.env, ua)
	st, failed = f.resync(dir, nil, nil)
	if len(failed) > 0 || st.Updated.Load() != 2 || st.Unchanged.Load() != users+1 {
		t.Fatalf("repairing resync: updated %d, unchanged %d, failed %v", st.Updated.Load(), st.Unchanged.Load(), failed)
	}
	if w := writesSince(t, f.env, ua, before); len(w) != 2 || !strings.HasPrefix(w[0], "PATCH") || !strings.HasPrefix(w[1], "PATCH") {
		t.Fatalf("repairing resync wrote %v, want two PATCHes", w)
	}

	// A dry run sends nothing, and shows what it would send.
	mustPatch(t, f, "/Users", u5, `{"op":"replace","path":"displayName","value":"Edited again"}`)
	var shown bytes.Buffer
	var shownMu sync.Mutex
	before = lastSeq(t, f.env, ua)
	st, _ = f.resync(dir, nil, func(d *Destination, o *ResyncOptions) {
		d.DryRun = func(method, path string, body []byte) {
			shownMu.Lock()
			fmt.Fprintf(&shown, "%s %s %s\n", method, path, body)
			shownMu.Unlock()
		}
	})
	if w := writesSince(t, f.env, ua, before); len(w) != 0 {
		t.Fatalf("dry run wrote %v", w)
	}
	if st.Updated.Load() != 1 || !strings.Contains(shown.String(), "PATCH /Users/"+u5) || !strings.Contains(shown.String(), `"User 5"`) {
		t.Fatalf("dry run: updated %d, shown:\n%s", st.Updated.Load(), shown.String())
	}
}

// TestResyncDNFileAndFailures: entries that fail are reported with their
// DN and written in the format --dn-file reads; resyncing just those DNs
// works once the cause is fixed.
func TestResyncDNFileAndFailures(t *testing.T) {
	f := newFixture(t, "patch", "delete")
	prefix := scimtest.Unique("dnf")
	dir := directory(t, prefix, 4)
	broken := "uid=" + prefix + "-u002,ou=People,dc=example,dc=com"
	e := dir.Get(broken)
	e.Delete("entryUUID") // the lookup filter is built from it: this entry fails
	st, failed := f.resync(dir, nil, nil)
	if st.Failed.Load() != 1 || failed[broken] == nil {
		t.Fatalf("want exactly %s failed, got %v", broken, failed)
	}
	var file bytes.Buffer
	for dn, err := range failed {
		if err := WriteDN(&file, dn, err.Error()); err != nil {
			t.Fatal(err)
		}
	}
	dns, err := ReadDNFile(&file)
	if err != nil || len(dns) != 1 || dns[0] != broken {
		t.Fatalf("failed-DNs file reads back as %v, %v:\n%s", dns, err, file.String())
	}
	e.Add("entryUUID", "uuid-fixed-"+prefix)
	st, failed = f.resync(dir, dns, nil)
	if len(failed) > 0 || st.Created.Load() != 1 || st.Done.Load() != 1 {
		t.Fatalf("re-fed resync: created %d of %d, failed %v", st.Created.Load(), st.Done.Load(), failed)
	}
}

// TestResyncRate: --rate spaces requests. Only a lower bound on the time
// is asserted (a slow machine cannot make it fail).
func TestResyncRate(t *testing.T) {
	f := newFixture(t, "patch", "delete")
	dir := directory(t, scimtest.Unique("rate"), 10)
	const rate = 40.0
	start := time.Now()
	var requests int64
	st, failed := f.resync(dir, nil, func(d *Destination, o *ResyncOptions) {
		d.Limiter = &RateLimiter{Rate: func() float64 { return rate }}
	})
	if len(failed) > 0 {
		t.Fatal(failed)
	}
	requests = st.Requests.Load() + st.Done.Load() // a lookup per entry, and the writes
	if min := time.Duration(float64(requests-1) / rate * 0.9 * float64(time.Second)); time.Since(start) < min {
		t.Errorf("%d requests at %.0f/s took %s, less than %s", requests, rate, time.Since(start), min)
	}
}

func mustPatch(t *testing.T, f *fixture, endpoint, id, op string) {
	t.Helper()
	body := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[` + op + `]}`
	if _, err := f.client.Patch(context.Background(), endpoint, id, []byte(body)); err != nil {
		t.Fatal(err)
	}
}

func groupID(t *testing.T, f *fixture, name string) string {
	t.Helper()
	found, _, err := f.client.Search(context.Background(), "/Groups", `displayName eq "`+name+`"`, false)
	if err != nil || len(found) != 1 {
		t.Fatalf("group %s: %v", name, err)
	}
	return string(bytesField(found[0], "id"))
}

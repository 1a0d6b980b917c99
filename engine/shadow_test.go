package engine

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/state"
	"github.com/scimsync/scimsync/lang"
)

// The tests in this file drive a Destination that keeps shadows against
// the real SCIM test server (shadow.go); shadow_ldap_test.go runs whole
// runs with and without them.

// shadowFixture is a destination fixture whose Destination keeps shadows
// in a store of its own.
type shadowFixture struct {
	*fixture
	dir string
	st  *state.Store
}

func newShadowFixture(t *testing.T, update string) *shadowFixture {
	t.Helper()
	f := newFixture(t, update, "delete")
	dir := t.TempDir()
	st, err := state.Open(dir, f.pipe.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.dest.Shadows = NewShadows(st)
	return &shadowFixture{fixture: f, dir: dir, st: st}
}

// applyKnown applies ch as run does, reading shadows.
func (f *shadowFixture) applyKnown(ch *lang.Change, id string) (Applied, error) {
	f.t.Helper()
	res, err := f.ev.Eval(ch, lang.Realtime)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.dest.ApplyKnown(context.Background(), res, Known{ID: id, Shadow: true, Alive: func(string) bool { return true }}, nil)
}

// requests returns the requests the fixture's client sent since the log
// had n entries, as "METHOD path" (a query marked with "?").
func (f *shadowFixture) requests(n int) ([]string, int) {
	f.t.Helper()
	log := f.env.Requests(f.t, f.ua)
	var out []string
	for _, r := range log[n:] {
		s := r.Method + " " + r.Path
		if len(r.Query) > 0 {
			s += "?"
		}
		out = append(out, s)
	}
	return out, len(log)
}

// durable waits until the resource's shadow is in the store, as a process
// killed now would leave it.
func (f *shadowFixture) durable(id string) {
	f.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok, err := f.st.Shadow(shadowKey("/Users", id)); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("the shadow of %s never reached the store", id)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func modify(uid string, attrs ...lang.Attr) *lang.Change {
	ch := person(uid, attrs...)
	ch.Type = lang.Modify
	return ch
}

// TestShadowOneRequestPerChange: after a create, each modify is one PATCH
// and no GET, and a modify that changes nothing sends nothing; the
// resource ends as the GET-first path leaves it.
func TestShadowOneRequestPerChange(t *testing.T) {
	f := newShadowFixture(t, "patch")
	uid := scimtest.Unique("shadow-one")
	out, err := f.applyKnown(person(uid), "")
	if err != nil || out.Outcome != Created {
		t.Fatalf("create = %+v %v", out, err)
	}
	id := out.ID
	_, n := f.requests(0)
	steps := []struct {
		name string
		ch   *lang.Change
		want string // the one request, "" for none
	}{
		{"title", modify(uid, lang.Attr{Name: "title", Values: []string{"Manager"}}), "PATCH /Users/" + id},
		{"same again", modify(uid, lang.Attr{Name: "title", Values: []string{"Manager"}}), ""},
		{"email", modify(uid, lang.Attr{Name: "title", Values: []string{"Manager"}}, lang.Attr{Name: "mail", Values: []string{"b@example.com"}}), "PATCH /Users/" + id},
		{"phone numbers, multi-valued", modify(uid, lang.Attr{Name: "title", Values: []string{"Manager"}}, lang.Attr{Name: "mail", Values: []string{"b@example.com"}},
			lang.Attr{Name: "telephoneNumber", Values: []string{"+1 555 0100", "+1 555 0199"}}), "PATCH /Users/" + id},
		{"title back to the first", modify(uid, lang.Attr{Name: "mail", Values: []string{"b@example.com"}},
			lang.Attr{Name: "telephoneNumber", Values: []string{"+1 555 0100", "+1 555 0199"}}), "PATCH /Users/" + id},
	}
	for _, s := range steps {
		out, err := f.applyKnown(s.ch, id)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		var got []string
		got, n = f.requests(n)
		want := []string{}
		if s.want != "" {
			want = []string{s.want}
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: requests %q, want %q (outcome %s)", s.name, got, want, out.Outcome)
		}
	}
	u := f.get("/Users/" + id)
	for path, want := range map[string]string{"title": "Engineer", "emails.0.value": "b@example.com", "phoneNumbers.#": "2"} {
		if got := u.Get(path).String(); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
}

// TestShadowCrashWindow: a PATCH (title A→B) reaches the service and the
// process dies before the shadow says B; the entry then goes back to A.
// The state file as the kill left it (copied while the store is open) is
// opened by the next process: the shadow that says A is gone, so the
// change reads the resource, finds B and sends A back. With the shadow
// kept (a clean close), nothing would be sent and the service would keep
// B: the control case shows that hazard.
func TestShadowCrashWindow(t *testing.T) {
	f := newShadowFixture(t, "patch")
	uid := scimtest.Unique("shadow-crash")
	out, err := f.applyKnown(person(uid), "")
	if err != nil || out.Outcome != Created {
		t.Fatalf("create = %+v %v", out, err)
	}
	id := out.ID
	f.durable(id)
	// The write in flight when the process died: sent, carried out, its
	// shadow never updated.
	if _, err := f.client.Patch(context.Background(), "/Users", id,
		[]byte(`{"schemas":["`+scim.URNPatchOp+`"],"Operations":[{"op":"replace","path":"title","value":"B"}]}`)); err != nil {
		t.Fatal(err)
	}
	// kill -9: the file as it is on disk now.
	crashed := t.TempDir()
	copyFile(t, f.st.Path(), state.Path(crashed, f.pipe.Name))

	st, err := state.Open(crashed, f.pipe.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !st.ShadowsDropped() {
		t.Error("the store opened after the kill did not drop its shadows")
	}
	f.dest.Shadows = NewShadows(st)
	_, n := f.requests(0)
	out, err = f.applyKnown(modify(uid), id) // title back to "Engineer", its first value
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := f.requests(n); out.Outcome != Updated || len(got) != 2 || got[0] != "GET /Users/"+id {
		t.Errorf("after the kill: %+v, requests %q: want a GET, then the PATCH", out, got)
	}
	if title := f.get("/Users/" + id).Get("title").Str; title != "Engineer" {
		t.Errorf("after the kill: title %q, want the directory's %q", title, "Engineer")
	}

	// The control: a shadow that (wrongly) still said "Engineer" would
	// make the same change send nothing while the service holds B.
	if _, err := f.client.Patch(context.Background(), "/Users", id,
		[]byte(`{"schemas":["`+scim.URNPatchOp+`"],"Operations":[{"op":"replace","path":"title","value":"B"}]}`)); err != nil {
		t.Fatal(err)
	}
	f.dest.Shadows = NewShadows(f.st) // the original store, its shadow of title "Engineer" untouched
	out, err = f.applyKnown(modify(uid), id)
	if err != nil {
		t.Fatal(err)
	}
	if out.Outcome != Unchanged || f.get("/Users/"+id).Get("title").Str != "B" {
		t.Errorf("control: %+v, title %q: the test does not show the hazard it guards against", out, f.get("/Users/"+id).Get("title").Str)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestShadowResourceDeletedBehindTheBack: someone deletes the resource in
// SCIM; the next change's PATCH, built from the shadow, gets 404, and the
// change goes the GET-first way from there: the lookup filter finds
// nothing and the resource is created again, with the same body the
// GET-first path sends. Nothing is sent blind a second time.
func TestShadowResourceDeletedBehindTheBack(t *testing.T) {
	f := newShadowFixture(t, "patch")
	uid := scimtest.Unique("shadow-gone")
	out, err := f.applyKnown(person(uid), "")
	if err != nil || out.Outcome != Created {
		t.Fatalf("create = %+v %v", out, err)
	}
	id := out.ID
	if err := f.client.Delete(context.Background(), "/Users", id); err != nil {
		t.Fatal(err)
	}
	_, n := f.requests(0)
	out, err = f.applyKnown(modify(uid, lang.Attr{Name: "title", Values: []string{"Gone"}}), id)
	if err != nil || out.Outcome != Created || out.ID == id || out.ID == "" {
		t.Fatalf("modify of a deleted resource = %+v %v, want created anew", out, err)
	}
	got, _ := f.requests(n)
	want := []string{"PATCH /Users/" + id, "GET /Users?", "POST /Users"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests %q, want %q", got, want)
	}
	log := f.env.Requests(t, f.ua)
	post := log[len(log)-1]
	if got := f.get("/Users/" + out.ID); got.Get("title").Str != "Gone" || got.Get("userName").Str != uid {
		t.Errorf("recreated: %s", got.Raw)
	}
	// The same change the GET-first way, against a resource deleted the
	// same way: the same POST body.
	g := newFixture(t, "patch", "delete")
	uid2 := uid // the same entry: delete what the first part made, then apply again
	if err := f.client.Delete(context.Background(), "/Users", out.ID); err != nil {
		t.Fatal(err)
	}
	res, err := g.ev.Eval(modify(uid2, lang.Attr{Name: "title", Values: []string{"Gone"}}), lang.Realtime)
	if err != nil {
		t.Fatal(err)
	}
	a, err := g.dest.ApplyKnown(context.Background(), res, Known{ID: out.ID}, nil)
	if err != nil || a.Outcome != Created {
		t.Fatalf("GET-first: %+v %v", a, err)
	}
	glog := g.env.Requests(t, g.ua)
	if len(glog) < 3 || glog[0].Method != http.MethodGet || glog[len(glog)-1].Method != http.MethodPost ||
		string(glog[len(glog)-1].Body) != string(post.Body) {
		t.Errorf("GET-first requests %+v\nlast POST %s, shadow path's %s", glog, glog[len(glog)-1].Body, post.Body)
	}
}

// TestShadowNotTrusted: the cases where a change reads the resource
// although a shadow was recorded: another writer (a standalone write
// through the destination, such as a group-member removal) dropped it; the
// record is damaged; a shadow that refers to a resource not alive; PUT
// mode, which never reads shadows.
func TestShadowNotTrusted(t *testing.T) {
	tests := []struct {
		name   string
		update string
		spoil  func(f *shadowFixture, id string)
		alive  bool
	}{
		{"dropped by a write outside the update", "patch", func(f *shadowFixture, id string) {
			if _, err := f.dest.write(context.Background(), http.MethodPatch, "/Users", id,
				[]byte(`{"schemas":["`+scim.URNPatchOp+`"],"Operations":[{"op":"replace","path":"nickName","value":"x"}]}`)); err != nil {
				f.t.Fatal(err)
			}
		}, true},
		{"damaged record", "patch", func(f *shadowFixture, id string) {
			f.durable(id)
			if err := f.st.Update(func(tx *state.Tx) error {
				v, _, _ := tx.Shadow(shadowKey("/Users", id))
				return tx.PutShadow(shadowKey("/Users", id), []byte(strings.Replace(string(v), `"body":{`, `"body":{"x`, 1)))
			}); err != nil {
				f.t.Fatal(err)
			}
			// the in-memory copy of the queued write is gone once committed
			f.dest.Shadows = NewShadows(f.st)
		}, true},
		{"put mode", "put", func(*shadowFixture, string) {}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newShadowFixture(t, tt.update)
			uid := scimtest.Unique("shadow-spoil")
			out, err := f.applyKnown(person(uid), "")
			if err != nil || out.Outcome != Created {
				t.Fatalf("create = %+v %v", out, err)
			}
			tt.spoil(f, out.ID)
			_, n := f.requests(0)
			if _, err := f.applyKnown(modify(uid, lang.Attr{Name: "title", Values: []string{"Read first"}}), out.ID); err != nil {
				t.Fatal(err)
			}
			got, _ := f.requests(n)
			if len(got) != 2 || got[0] != "GET /Users/"+out.ID {
				t.Errorf("requests %q, want a GET and a write", got)
			}
		})
	}
}

// BenchmarkShadowModify applies modifies of one user's title, as run does,
// against the SCIM test server: "get-first" reads the resource before each
// PATCH, "shadows" PATCHes from the shadow. requests/op counts what the
// server logged for this benchmark's client.
func BenchmarkShadowModify(b *testing.B) {
	for _, mode := range []string{"get-first", "shadows"} {
		b.Run(mode, func(b *testing.B) {
			f := newScriptFixtureB(b)
			if mode == "shadows" {
				st, err := state.Open(b.TempDir(), f.pipe.Name)
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				f.dest.Shadows = NewShadows(st)
			}
			uid := scimtest.Unique("shadow-bench")
			apply := func(ch *lang.Change, id string) Applied {
				res, err := f.ev.Eval(ch, lang.Realtime)
				if err != nil {
					b.Fatal(err)
				}
				a, err := f.dest.ApplyKnown(context.Background(), res, Known{ID: id, Shadow: true, Alive: func(string) bool { return true }}, nil)
				if err != nil {
					b.Fatal(err)
				}
				return a
			}
			id := apply(person(uid), "").ID
			before := len(f.env.Requests(b, f.ua))
			b.ResetTimer()
			for i := range b.N {
				apply(modify(uid, lang.Attr{Name: "title", Values: []string{"T" + strconv.Itoa(i)}}), id)
			}
			b.StopTimer()
			b.ReportMetric(float64(len(f.env.Requests(b, f.ua))-before)/float64(b.N), "requests/op")
		})
	}
}

// newScriptFixtureB is newFixture for a benchmark.
func newScriptFixtureB(b *testing.B) *fixture {
	b.Helper()
	env := scimtest.Server(b)
	p, err := lang.Load("dest.pipe", strings.NewReplacer("%UPDATE%", "patch", "%ONDELETE%", "delete").Replace(destScript),
		lang.LoadOptions{LookupEnv: os.LookupEnv})
	if err != nil {
		b.Fatal(err)
	}
	cfg := p.SCIM
	ua := scimtest.UserAgent(b)
	cfg.UserAgent = ua
	c, err := scim.NewClient(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return &fixture{env: env, pipe: p, dest: &Destination{Client: c, Pipe: p}, ev: p.NewEvaluator(), client: c, ua: ua}
}

// TestShadowAfterAWriteInDoubt: a PATCH answered 500 may still be carried
// out later, undoing part of a later write: it is not sent again, and the
// resource's next change waits out the quiet time (doubt.go), then reads
// it first; its answer is the shadow again, and the change after it is the
// PATCH alone.
func TestShadowAfterAWriteInDoubt(t *testing.T) {
	f := newShadowFixture(t, "patch")
	const quiet = 2 * time.Second
	f.dest.CreateGrace = quiet
	uid := scimtest.Unique("shadow-doubt")
	out, err := f.applyKnown(person(uid), "")
	if err != nil || out.Outcome != Created {
		t.Fatalf("create = %+v %v", out, err)
	}
	id := out.ID
	f.env.Fault(t, scimtest.Fault{Status: 500, Count: 1, Method: http.MethodPatch, Path: "/Users", UserAgent: f.ua})
	_, n := f.requests(0)
	sent := time.Now() // the PATCH goes after this: its doubt lasts until after sent+quiet
	if _, err := f.applyKnown(modify(uid, lang.Attr{Name: "title", Values: []string{"lost?"}}), id); err == nil || !Temporary(err) {
		t.Fatalf("the PATCH answered 500: %v, want a temporary failure", err)
	}
	if got, _ := f.requests(n); len(got) != 1 {
		t.Errorf("the PATCH answered 500: requests %q, want it sent once", got)
	}
	_, n = f.requests(0)
	if _, err := f.applyKnown(modify(uid, lang.Attr{Name: "title", Values: []string{"one"}}), id); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(sent); waited < quiet {
		t.Errorf("the next change went after %v, want after the quiet time (%v)", waited, quiet)
	}
	if got, _ := f.requests(n); len(got) != 2 || got[0] != "GET /Users/"+id {
		t.Errorf("the change after the quiet time: requests %q, want a GET first", got)
	}
	_, n = f.requests(0)
	if _, err := f.applyKnown(modify(uid, lang.Attr{Name: "title", Values: []string{"two"}}), id); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.requests(n); len(got) != 1 {
		t.Errorf("after the quiet time: requests %q, want the PATCH alone", got)
	}
}

package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/scimsync/scimsync/engine/scim/scimtest"
	"github.com/scimsync/scimsync/engine/source"
	"github.com/scimsync/scimsync/engine/state"
	"github.com/scimsync/scimsync/lang"
)

// runLDIF applies an LDIF file as a change stream with a Runner, from the
// store's checkpoint to the end.
func (f *fixture) runLDIF(path string, st *state.Store) *Runner {
	f.t.Helper()
	start, err := st.Checkpoint()
	if err != nil {
		f.t.Fatal(err)
	}
	src, err := source.OpenLDIFFile(path, start)
	if err != nil {
		f.t.Fatal(err)
	}
	defer src.Close()
	// References are resolved against the file's final state, as `scimsync
	// run` does for an LDIF source.
	text, err := os.ReadFile(path)
	if err != nil {
		f.t.Fatal(err)
	}
	_, dir, err := source.ReadLDIF(strings.NewReader(string(text)))
	if err != nil {
		f.t.Fatal(err)
	}
	r := &Runner{Pipe: f.pipe, Dest: f.dest, Store: st, Source: src, Workers: 3,
		Log:   slog.New(slog.NewTextHandler(testWriter{f.t}, nil)),
		Entry: func(_ context.Context, dn string) (*lang.Entry, error) { return dir.Get(dn), nil }}
	if err := r.Run(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	return r
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestRunLDIFStream: adds, a modify, a rename, a delete and a group read
// as a change stream reach SCIM; the checkpoint makes a second run apply
// nothing; a failing change is parked and the others go on.
func TestRunLDIFStream(t *testing.T) {
	f := newFixture(t, "patch", "delete")
	p := scimtest.Unique("run")
	dir := t.TempDir()
	user := func(uid, mail string) string {
		return fmt.Sprintf("dn: uid=%s,ou=People,dc=example,dc=com\nuid: %s\nentryUUID: uuid-%s\ngivenName: G\nsn: S\ncn: %s\nmail: %s\n\n", uid, uid, uid, uid, mail)
	}
	ldifText := user(p+"-a", "a@x.example") + user(p+"-b", "b@x.example") + user(p+"-c", "c@x.example") +
		fmt.Sprintf("dn: cn=%s-g,ou=Groups,dc=example,dc=com\ncn: %s-g\nmember: uid=%s-a,ou=People,dc=example,dc=com\nmember: uid=%s-b,ou=People,dc=example,dc=com\n\n", p, p, p, p) +
		fmt.Sprintf("dn: uid=%s-a,ou=People,dc=example,dc=com\nchangetype: modify\nreplace: mail\nmail: a2@x.example\n-\n\n", p) +
		fmt.Sprintf("dn: uid=%s-c,ou=People,dc=example,dc=com\nchangetype: delete\n\n", p) +
		fmt.Sprintf("dn: uid=%s-bad,ou=People,dc=example,dc=com\ncn: no uid, no entryUUID: its lookup filter cannot be built\n\n", p)
	path := filepath.Join(dir, "changes.ldif")
	if err := os.WriteFile(path, []byte(ldifText), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(dir, "run-test")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := f.runLDIF(path, st)
	g, _, err := f.client.Search(context.Background(), "/Groups", `displayName eq "`+p+`-g"`, false)
	if err != nil || len(g) != 1 {
		t.Fatalf("group: %v %d", err, len(g))
	}
	membersBefore := memberValues(g[0])
	if len(membersBefore) != 2 {
		t.Fatalf("group members %v, want a and b", membersBefore)
	}

	// The stream goes on: a group member is renamed. Its resource keeps its
	// id, so the group needs no change.
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(fh, "dn: uid=%s-b,ou=People,dc=example,dc=com\nchangetype: modrdn\nnewrdn: uid=%s-b2\ndeleteoldrdn: 1\n\n", p, p)
	fh.Close()
	parkedBefore := r.Stats.Parked.Load()
	r = f.runLDIF(path, st)
	r.Stats.Parked.Add(parkedBefore)
	if r.Stats.Parked.Load() != 1 {
		t.Errorf("parked %d changes, want 1 (the entry without a lookup value)", r.Stats.Parked.Load())
	}
	find := func(filter string) []gjson.Result {
		found, _, err := f.client.Search(context.Background(), "/Users", filter, false)
		if err != nil {
			t.Fatal(err)
		}
		var out []gjson.Result
		for _, b := range found {
			out = append(out, gjson.ParseBytes(b))
		}
		return out
	}
	a := find(`userName eq "` + p + `-a"`)
	if len(a) != 1 || a[0].Get("emails.0.value").Str != "a2@x.example" {
		t.Fatalf("user a after the modify: %v", a)
	}
	if b := find(`userName eq "` + p + `-b"`); len(b) != 0 {
		t.Errorf("the old userName of the renamed user is still there: %v", b)
	}
	b2 := find(`userName eq "` + p + `-b2"`)
	if len(b2) != 1 {
		t.Fatalf("the renamed user: %v", b2)
	}
	if c := find(`userName eq "` + p + `-c"`); len(c) != 0 {
		t.Errorf("the deleted user is still there: %v", c)
	}
	g, _, err = f.client.Search(context.Background(), "/Groups", `displayName eq "`+p+`-g"`, false)
	if err != nil || len(g) != 1 {
		t.Fatalf("group: %v %d", err, len(g))
	}
	members := memberValues(g[0])
	if len(members) != 2 || !containsStr(members, a[0].Get("id").Str) || !containsStr(members, b2[0].Get("id").Str) {
		t.Errorf("group members %v, want the ids of a and the renamed b (%s, %s)", members, a[0].Get("id").Str, b2[0].Get("id").Str)
	}
	pos, _ := st.Checkpoint()
	if pos != "ldif:8" {
		t.Errorf("checkpoint %q, want ldif:8", pos)
	}
	parked, _ := st.ListParked()
	if len(parked) != 1 || !strings.Contains(parked[0].DN, p+"-bad") || parked[0].Error == "" {
		t.Errorf("parked = %+v", parked)
	}

	// From the checkpoint there is nothing left to apply.
	ua := f.ua
	before := lastSeq(t, f.env, ua)
	r = f.runLDIF(path, st)
	if n := r.Stats.Applied.Load() + r.Stats.Unchanged.Load() + r.Stats.Parked.Load(); n != 0 {
		t.Errorf("the second run handled %d changes, want none", n)
	}
	if w := writesSince(t, f.env, ua, before); len(w) != 0 {
		t.Errorf("the second run wrote %v", w)
	}

	// A parked change is a pointer to its entry: no values are kept, and a
	// retry reads the entry again (here from the LDIF file's final state).
	if parked[0].Key == "" || parked[0].Op != "add" {
		t.Errorf("parked record %+v: want the entry's key and the operation", parked[0])
	}
	parked, _ = st.ListParked()
	attempts := parked[0].Attempts
	rr := &Runner{Pipe: f.pipe, Dest: f.dest, Store: st, Entry: ldifEntries(t, path)}
	ok, failed, err := rr.RetryParked(context.Background())
	if err != nil || ok != 0 || failed != 1 {
		t.Errorf("retrying an unfixable change: ok %d, failed %d, %v", ok, failed, err)
	}
	parked, _ = st.ListParked()
	if len(parked) != 1 || parked[0].Attempts != attempts+1 {
		t.Errorf("after the retry: %+v, want %d attempts", parked, attempts+1)
	}
}

// ldifEntries reads an LDIF file's final state, as `run` reads an LDIF
// source's entries.
func ldifEntries(t *testing.T, path string) func(context.Context, string) (*lang.Entry, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, dir, err := source.ReadLDIF(f)
	if err != nil {
		t.Fatal(err)
	}
	return func(_ context.Context, dn string) (*lang.Entry, error) { return dir.Get(dn), nil }
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestRunNeverLogsPasswords: password values in the changes (as changelogs
// carry them, OpenLDAP's accesslog even in clear) reach neither the log nor
// the failed-changes record.
func TestRunNeverLogsPasswords(t *testing.T) {
	f := newFixture(t, "patch", "delete")
	p := scimtest.Unique("pw")
	const secret = "S3cret-Passw0rd-Value"
	dir := t.TempDir()
	path := filepath.Join(dir, "pw.ldif")
	text := fmt.Sprintf("dn: uid=%s-ok,ou=People,dc=example,dc=com\nuid: %s-ok\nentryUUID: uuid-%s-ok\ncn: OK\nuserPassword: %s\n\n", p, p, p, secret) +
		fmt.Sprintf("dn: uid=%s-ok,ou=People,dc=example,dc=com\nchangetype: modify\nreplace: userPassword\nuserPassword: %s-2\n-\n\n", p, secret) +
		fmt.Sprintf("dn: uid=%s-bad,ou=People,dc=example,dc=com\ncn: no lookup value\nuserPassword: %s\n\n", p, secret)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(dir, "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	src, err := source.OpenLDIFFile(path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var logs strings.Builder
	r := &Runner{Pipe: f.pipe, Dest: f.dest, Store: st, Source: src, Workers: 2,
		Log: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	// the add applied, the modify of userPassword alone untouched (no
	// mapping reads it), the entry without a lookup value parked
	if r.Stats.Parked.Load() != 1 || r.Stats.Applied.Load()+r.Stats.Unchanged.Load() != 1 || r.Stats.Dropped.Load() != 1 {
		t.Fatalf("stats: applied %d, unchanged %d, dropped %d, parked %d\n%s", r.Stats.Applied.Load(), r.Stats.Unchanged.Load(),
			r.Stats.Dropped.Load(), r.Stats.Parked.Load(), logs.String())
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("a password value reached the log:\n%s", logs.String())
	}
	parked, err := st.ListParked()
	if err != nil || len(parked) != 1 {
		t.Fatalf("parked: %v %v", parked, err)
	}
	if data, _ := json.Marshal(parked[0]); strings.Contains(string(data), secret) {
		t.Errorf("a password value reached the failed-changes record: %s", data)
	}
}

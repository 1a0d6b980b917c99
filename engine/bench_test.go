package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/scimsync/scimsync/engine/scim"
	"github.com/scimsync/scimsync/engine/state"
	"github.com/scimsync/scimsync/lang"
)

// BenchmarkMembershipDiff: one member added to a 50 000-member group in
// the directory, through everything real-time sync does for it but the
// HTTP request: the group entry is mapped (50 000 member DNs resolved to
// SCIM ids from the id map), the resource built, diffed against the group
// as the SCIM service holds it, and the PATCH body made (one operation).
func BenchmarkMembershipDiff(b *testing.B) {
	const n = 50000
	script := strings.NewReplacer("%ONDELETE%", "delete", "%ONLEAVE%", "delete").Replace(groupsScript)
	p, err := lang.Load("bench.pipe", script, lang.LoadOptions{LookupEnv: func(k string) (string, bool) {
		return map[string]string{"SCIM_URL": "https://scim.example.com/v2", "SCIM_TOKEN": "t"}[k], true
	}})
	if err != nil {
		b.Fatal(err)
	}
	ids := make(map[string]string, n+1)
	members := make([]string, 0, n+1)
	var current strings.Builder
	current.WriteString(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"id":"g1","displayName":"everyone","members":[`)
	for i := 0; i <= n; i++ {
		dn := fmt.Sprintf("uid=user%06d,ou=People,dc=example,dc=com", i)
		id := fmt.Sprintf("0b6c1f3e-0000-4c4e-9d0a-%012d", i)
		ids[strings.ToLower(dn)] = id
		members = append(members, dn)
		if i < n { // the SCIM group lacks the last member: the change adds it
			if i > 0 {
				current.WriteByte(',')
			}
			fmt.Fprintf(&current, `{"value":%q,"type":"User"}`, id)
		}
	}
	current.WriteString("]}")
	cur := []byte(current.String())
	dn := "cn=everyone,ou=Groups,dc=example,dc=com"
	ch := &lang.Change{Type: lang.Modify, DN: dn, Changed: []string{"member"}, Entry: lang.NewEntry(dn, []lang.Attr{
		{Name: "cn", Values: []string{"everyone"}}, {Name: "member", Values: members}})}
	resolver := lang.ResolverFunc(func(dn string, eps []*lang.Endpoint) (lang.Ref, bool, error) {
		id, ok := ids[strings.ToLower(dn)]
		return lang.Ref{ID: id, Type: "User"}, ok, nil
	})
	ev := p.NewEvaluator()
	b.ReportAllocs()
	b.SetBytes(int64(len(cur)))
	for b.Loop() {
		res, err := ev.Eval(ch, lang.Realtime)
		if err != nil {
			b.Fatal(err)
		}
		desired, err := res.Resource(lang.Update, resolver)
		if err != nil {
			b.Fatal(err)
		}
		bodies, err := Patch(cur, desired, res.Managed(lang.Update), res.Endpoint, 0)
		if err != nil {
			b.Fatal(err)
		}
		if len(bodies) != 1 || strings.Count(string(bodies[0]), `"op"`) != 1 {
			b.Fatalf("want one PATCH with one operation, got %d: %.200s", len(bodies), bodies)
		}
	}
}

// BenchmarkRunChange: one title modify of a user (testdata/bench/genldif.go's
// entry, scripts/openldap-to-scim.pipe), through everything Runner.Apply does
// for it in `run --shadows` (shadows) and `run` (reads): the id map read, the
// mapping, the diff against the resource's shadow (or against a GET), the
// PATCH, and the shadow kept from the answer. The SCIM service is a local
// server that answers as the SCIM test server does (the whole resource), so
// its own work is in the figures too; the log line and the checkpoint of
// each change (Runner.try) are not. The figures are in BENCHMARKS.md.
//
//	go test ./engine -run '^$' -bench BenchmarkRunChange -benchtime 2000x -count 3
func BenchmarkRunChange(b *testing.B) {
	for _, mode := range []string{"shadows", "reads"} {
		b.Run(mode, func(b *testing.B) {
			doc := []byte(benchUser(1))
			var mu sync.Mutex
			var gets, patches atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				switch r.Method {
				case http.MethodGet:
					gets.Add(1)
				case http.MethodPatch:
					patches.Add(1)
					body, _ := io.ReadAll(r.Body)
					gjson.GetBytes(body, "Operations").ForEach(func(_, op gjson.Result) bool {
						doc, _ = sjson.SetRawBytes(doc, op.Get("path").Str, []byte(op.Get("value").Raw))
						return true
					})
				default:
					http.Error(w, "unexpected", http.StatusMethodNotAllowed)
					return
				}
				w.Header().Set("Content-Type", scim.MediaType)
				_, _ = w.Write(doc)
			}))
			b.Cleanup(srv.Close)
			p := openldapPipe(b, srv.URL)
			st, err := state.Open(b.TempDir(), p.Name)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			c, err := scim.NewClient(p.SCIM)
			if err != nil {
				b.Fatal(err)
			}
			log := slog.New(slog.DiscardHandler)
			dest := &Destination{Client: c, Pipe: p, Log: log, Shadows: NewShadows(st)}
			r := &Runner{Pipe: p, Dest: dest, Store: st, Log: log, ReadShadows: mode == "shadows"}
			const dn, identity = "uid=bench-u000001,ou=People,dc=example,dc=com", "2c1f-103f-8f2a-5b1f2f7a8e11"
			if err := st.Put(identity, state.Mapping{Endpoint: "Users", SCIMID: gjson.GetBytes(doc, "id").Str, DN: dn, Class: "people"}); err != nil {
				b.Fatal(err)
			}
			if err := r.loadIndex(); err != nil {
				b.Fatal(err)
			}
			ev := p.NewEvaluator()
			ctx := context.Background()
			apply := func(i int) {
				attrs := []lang.Attr{
					{Name: "objectClass", Values: []string{"top", "person", "organizationalPerson", "inetOrgPerson"}},
					{Name: "uid", Values: []string{"bench-u000001"}}, {Name: "cn", Values: []string{"Bench User 1"}},
					{Name: "sn", Values: []string{"User1"}}, {Name: "givenName", Values: []string{"Bench"}},
					{Name: "displayName", Values: []string{"Bench User 1"}}, {Name: "mail", Values: []string{"bench-u000001@Example.COM"}},
					{Name: "title", Values: []string{fmt.Sprintf("Title %d", i)}}, {Name: "telephoneNumber", Values: []string{"+1 555 0000001"}},
					{Name: "employeeNumber", Values: []string{"1"}}, {Name: "entryUUID", Values: []string{identity}},
				}
				ch := &lang.Change{Type: lang.Modify, DN: dn, Changed: []string{"title"}, Entry: lang.NewEntry(dn, attrs)}
				_, a, err := r.Apply(ctx, ev, identity, ch)
				if err != nil || a.Outcome != Updated {
					b.Fatalf("change %d: %s, %v", i, a.Outcome, err)
				}
			}
			apply(0) // the shadow comes from the answer to this first PATCH
			gets0, patches0 := gets.Load(), patches.Load()
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				n++
				apply(n)
			}
			wantGets := int64(n) // reads: a GET and a PATCH per change; shadows: the PATCH alone
			if mode == "shadows" {
				wantGets = 0
			}
			if g, p := gets.Load()-gets0, patches.Load()-patches0; g != wantGets || p != int64(n) {
				b.Fatalf("%d changes sent %d GETs and %d PATCHes, want %d and %d", n, g, p, wantGets, n)
			}
		})
	}
}

package engine

import (
	"fmt"
	"strings"
	"testing"

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
